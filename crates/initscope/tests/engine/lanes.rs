//! Runs trained side by side in lockstep (`train::train_together`): each equals the same run in
//! a pack of its own and the same run trained alone by `train`, to the bit, whatever shares its
//! pack.

use initscope::lockstep::LANES;
use initscope::records::{MetricRecord, RunOutput};
use initscope::train::{initial_params, share_a_pack, train, train_together};

use super::support::config;

/// Every output of a run but its timing, in bits.
fn fingerprint(out: &RunOutput) -> String {
    let mut summary = serde_json::to_value(&out.summary).unwrap();
    for k in ["wall_seconds", "samples_per_second"] {
        summary.as_object_mut().unwrap().remove(k);
    }
    let metrics: Vec<_> = out
        .metrics
        .iter()
        .map(|r: &MetricRecord| (r.step, r.metric.clone(), r.layer, r.value.to_bits()))
        .collect();
    format!(
        "{summary}\n{metrics:?}\n{:?}\n{:?}\n{:?}",
        out.evals, out.params, out.initial_params
    )
}

#[test]
fn runs_side_by_side_equal_each_run_alone() {
    let base = "data = \"moons:n=160\"\nhidden = \"12,12\"\ndiagnostics = \"off\"";
    let net = "data = \"moons:n=160\"\nnet = \"linear(12) tanh res(linear(12) tanh linear(12) gate(0))*2 res(relu linear(12, bias=none) shift(0.1)) linear\"\ndiagnostics = \"off\"";
    // Runs past the first pack's lanes (8 of the first group's own pack), so that the group
    // fills one pack and starts a second.
    let more: Vec<String> = (11..=LANES + 3)
        .map(|s| format!("seed = {s}\nsteps = 100\nlr = 0.{s}"))
        .collect();
    for (base, shared, mut variants) in [
        // Minibatches, each lane its own shuffle; schedules, warm-up and learning rates apart;
        // a run whose first layer starts at zero (engine steps until it wakes); runs of other
        // lengths and evaluation intervals; one that diverges.
        (
            base,
            "batch = 32\nprecision = \"f32\"",
            vec![
                "seed = 1\nsteps = 150",
                "seed = 2\nsteps = 150\nlr = 0.3\nschedule = \"cosine\"",
                "seed = 3\nsteps = 90\nwarmup = 20\neval_every = 7",
                "seed = 4\nsteps = 150\nlayer_init = [\"1=zeros\"]\nlayer_bias_init = [\"1=zeros\"]",
                "seed = 5\nsteps = 150\nlr = 1e300",
                "seed = 6\nsteps = 200\ninit = \"orthogonal\"",
                "seed = 7\nsteps = 150\nact = \"relu\"",
                "seed = 8\nsteps = 150\nloss = \"mse\"",
                "seed = 9\nsteps = 120",
                "seed = 10\nsteps = 150\nlr = 0.05",
            ],
        ),
        // Full batch in f64.
        (
            base,
            "batch = \"full\"\nprecision = \"f64\"",
            vec!["seed = 1\nsteps = 100", "seed = 2\nsteps = 100\nlr = 0.5", "seed = 3\nsteps = 60\neval_every = 9"],
        ),
        // Networks of modules (residual blocks whose gates start at zero, a shift, a
        // standalone activation), their initializers apart; one diverges.
        (
            net,
            "batch = 20\nprecision = \"f32\"",
            vec![
                "seed = 1\nsteps = 150",
                "seed = 2\nsteps = 150\ninit = \"orthogonal\"",
                "seed = 3\nsteps = 150\nlr = 1e300",
                "seed = 4\nsteps = 120\ninit = \"xavier_uniform\"\nschedule = \"cosine\"",
                "seed = 5\nsteps = 150\nlayer_init = [\"2=zeros\"]",
            ],
        ),
    ] {
        if shared.contains("batch = 32") {
            variants.extend(more.iter().map(String::as_str));
        }
        let loaded: Vec<_> = variants
            .iter()
            .map(|v| config(&format!("{base}\n{shared}\n{v}")))
            .collect();
        let data = &loaded[0].1;
        let n = data.train.len();
        // One pack, and a second for the runs past its lanes; act and loss differ in two runs,
        // which therefore cannot share it.
        let (packable, apart): (Vec<_>, Vec<_>) = loaded
            .iter()
            .map(|(c, _)| c)
            .partition(|c| share_a_pack(&loaded[0].0, c, n));
        assert!(packable.iter().all(|c| c.lockstep(n)));
        let starts = packable
            .iter()
            .map(|c| initial_params(c, data).unwrap())
            .collect();
        let together = train_together(&packable, data, starts).unwrap();
        for (cfg, out) in packable.iter().zip(&together) {
            let alone = train_together(&[cfg], data, vec![initial_params(cfg, data).unwrap()])
                .unwrap()
                .remove(0);
            assert_eq!(fingerprint(out), fingerprint(&alone), "{:?}", cfg.run_id());
            let engine = train(cfg, data, &mut |_| {}).unwrap();
            assert_eq!(fingerprint(out), fingerprint(&engine), "{:?}", cfg.run_id());
        }
        assert!(
            together.iter().any(|o| o.summary.diverged_at_step.is_some()) || shared.contains("full"),
            "the lr = 1e300 run diverges"
        );
        // Configs that cannot share a pack are refused by index.
        if let Some(other) = apart.first() {
            let e = train_together(
                &[packable[0], other],
                data,
                vec![
                    initial_params(packable[0], data).unwrap(),
                    initial_params(other, data).unwrap(),
                ],
            )
            .unwrap_err()
            .to_string();
            assert!(e.contains("run 1 cannot share a pack with run 0"), "{e}");
        }
        // A starting state of another network is refused, not trained: for a network of
        // modules, one whose shift is a gate (the same linear layers).
        if !base.contains("hidden") {
            let (other, _) = config(&format!("{}\n{shared}", base.replace("shift", "gate")));
            let e = train_together(
                &[packable[0]],
                data,
                vec![initial_params(&other, data).unwrap()],
            )
            .unwrap_err()
            .to_string();
            assert!(
                e.contains("run 0: its starting parameters are not the tensors of --net"),
                "{e}"
            );
            continue;
        }
        let (small, _) = config(&format!("{}\n{shared}", base.replace("12,12", "5")));
        let e = train_together(
            &[packable[0]],
            data,
            vec![initial_params(&small, data).unwrap()],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("run 0: its starting parameters are not a 2-12-12-2 network"), "{e}");
    }
}

#[test]
fn only_small_plain_sgd_networks_of_packable_modules_train_in_lockstep() {
    let lockstep = |extra: &str| {
        let (cfg, data) = config(&format!(
            "data = \"moons:n=100\"\nhidden = \"16,16\"\ndiagnostics = \"off\"\n{extra}"
        ));
        cfg.lockstep(data.train.len())
    };
    assert!(lockstep(""));
    assert!(lockstep(
        "batch = 16\nschedule = \"cosine\"\nprecision = \"f64\""
    ));
    // With diagnostics, the steps that record go through each run's engine.
    let (cfg, data) = config("data = \"moons:n=100\"\nhidden = \"16,16\"\ndiagnostics = \"on\"");
    assert!(cfg.lockstep(data.train.len()));
    for off in [
        "optim = \"adam\"",
        "optim = \"momentum\"",
        "weight_decay = 0.01",
        "dropout = 0.1",
        "grad_noise = 0.01",
        "clip_grad_norm = 1.0",
        "hidden = \"33\"",
    ] {
        let text =
            format!("data = \"moons:n=100\"\nhidden = \"16,16\"\ndiagnostics = \"off\"\n{off}");
        let text = if off.starts_with("hidden") || off.starts_with("diagnostics") {
            text.replace("hidden = \"16,16\"\n", "").replace(
                "diagnostics = \"off\"\n",
                if off.starts_with("diagnostics") {
                    ""
                } else {
                    "diagnostics = \"off\"\n"
                },
            )
        } else {
            text
        };
        let (cfg, data) = config(&text);
        assert!(!cfg.lockstep(data.train.len()), "{off}");
    }
    // Networks of modules: linear layers, activations, residual blocks, gates and shifts
    // train in lockstep; norms and dropout alone.
    let net = |spec: &str| {
        let (cfg, data) = config(&format!(
            "data = \"moons:n=100\"\nnet = \"{spec}\"\ndiagnostics = \"off\""
        ));
        cfg.lockstep(data.train.len())
    };
    assert!(net("linear(8) tanh linear"));
    assert!(net(
        "linear(8) res(relu linear(8) gate(0) shift(0))*2 res(res(linear(8))) linear"
    ));
    for alone in [
        "linear(8) layernorm tanh linear",
        "linear(8) res(linear(8) rmsnorm) linear",
        "linear(8) batchnorm relu linear",
        "linear(8) tanh dropout(0.1) linear",
        "linear(40) tanh linear",
    ] {
        assert!(!net(alone), "{alone}");
    }
}
