//! `train::Live` (a run taken a few steps at a time) and `diagnostics::probe` (what the live
//! page reads): advancing in any pattern of calls, with probes and evaluations in between, ends
//! with the bits of one `train` call; the probe measures what it says.

use initscope::diagnostics::probe::{plane_bounds, Probe, GRID_RES, PROBE_ROWS};
use initscope::nn::Pass;
use initscope::records::MetricRecord;
use initscope::scalar::Float;
use initscope::train::{initial_params, train, Live};
use initscope::{Dataset, Precision, RunConfig, RunOutput, Workspace};

use super::support::config;

/// A live run advanced in chunks of uneven sizes, with probes and evaluations between them.
fn chunked<T: Float>(cfg: &RunConfig, data: &Dataset) -> RunOutput {
    let mut live = Live::<T>::new(cfg, data, initial_params(cfg, data).unwrap());
    let mut probe = Probe::new(cfg, data, live.net());
    live.evaluate_due(&mut |_| {});
    let mut taken = 0;
    for chunk in [1, 2, 3, 5, 8, 13, 21, 34, 55] {
        taken += live.advance(chunk, &mut |_| {});
        probe.grad_norms(live.net());
        probe.grid_image(live.net());
        probe.unit_values(live.net(), 1, 0);
        live.evaluate_due(&mut |_| {});
        assert_eq!(live.steps_done(), taken);
    }
    assert_eq!(taken, cfg.steps);
    assert!(live.ended());
    assert_eq!(live.advance(10, &mut |_| {}), 0, "no step past the end");
    assert_eq!(
        live.evals().last().unwrap().step,
        cfg.steps,
        "the end is evaluated at once"
    );
    live.finish(&mut |_| {})
}

/// Chunks of uneven sizes, probes and early evaluations between them: the same output as
/// `train` (weights, metrics to the bit, evaluations, verdict), for a plain MLP, dropout in f64,
/// Adam with a cosine schedule, and a residual net with a norm and a gate.
#[test]
fn a_live_run_advanced_in_chunks_with_probes_equals_train() {
    for extra in [
        "hidden = \"8,8\"",
        "hidden = \"8,8\"\ndropout = 0.2\nbatch = 32\nprecision = \"f64\"",
        "hidden = \"8,8\"\noptim = \"adam\"\nlr = 0.01\nschedule = \"cosine\"\nbatch = 50",
        "net = \"linear(8) relu res(layernorm linear(8) relu linear(8) gate(0))*2 linear\"\ninit = \"kaiming_normal\"",
    ] {
        let (cfg, data) = config(&format!(
            "data = \"moons:n=200\"\nsteps = 137\neval_every = 10\n{extra}"
        ));
        let whole = train(&cfg, &data, &mut |_| {}).unwrap();
        let out = match cfg.precision {
            Precision::F32 => chunked::<f32>(&cfg, &data),
            Precision::F64 => chunked::<f64>(&cfg, &data),
        };
        assert_eq!(out.params, whole.params, "{extra}");
        assert_eq!(out.evals, whole.evals, "{extra}");
        assert_eq!(out.summary.verdict, whole.summary.verdict, "{extra}");
        let bits = |m: &[MetricRecord]| {
            m.iter()
                .map(|r| (r.step, r.metric.clone(), r.layer, r.value.to_bits()))
                .collect::<Vec<_>>()
        };
        assert_eq!(bits(&out.metrics), bits(&whole.metrics), "{extra}");
    }
}

/// The probe's gradient norms are those of the full-batch training gradient (a full-batch run
/// on fewer than PROBE_ROWS rows, no dropout); its grid covers the data with a margin; the
/// prediction is the class the network's logits favour; a unit's values are its layer's
/// activations.
#[test]
fn the_probe_measures_the_training_gradient_the_prediction_and_a_unit() {
    let (cfg, data) = config(
        "data = \"moons:n=100\"\nhidden = \"6,5\"\nbatch = \"full\"\nsteps = 20\nprecision = \"f64\"",
    );
    assert!(data.train.len() <= PROBE_ROWS);
    let mut live = Live::<f64>::new(&cfg, &data, initial_params(&cfg, &data).unwrap());
    live.advance(7, &mut |_| {});
    let mut probe = Probe::new(&cfg, &data, live.net());
    let norms = probe.grad_norms(live.net());

    // The same gradient by hand: every training row through loss_and_grads.
    let net = live.net();
    let n = data.train.len();
    let mut ws = Workspace::new(net, n);
    let x = data.train.x.to_matrix::<f64>();
    let rows: Vec<usize> = (0..n).collect();
    ws.load_rows(&x, &rows);
    let prepared = initscope::batch::Prepared::<f64>::new(&data.train, cfg.loss, 2);
    let mut bt = initscope::batch::BatchTargets::<f64>::new(n, 2);
    bt.load(&prepared, &rows);
    net.loss_and_grads(&mut ws, cfg.loss, bt.targets(cfg.loss), Pass::Eval);
    for (i, &g) in norms.iter().enumerate() {
        let want = net.layer_grads(&ws.grads, i).0.norm();
        assert_eq!(g, want, "layer {}", i + 1);
        assert!(g > 0.0);
    }

    let b = plane_bounds(&data.train.x);
    for i in 0..n {
        let (px, py) = (data.train.x.get(i, 0), data.train.x.get(i, 1));
        assert!(b[0] < px && px < b[1] && b[2] < py && py < b[3]);
    }
    assert_eq!(probe.bounds(), Some(b));
    let img = probe.grid_image(live.net()).unwrap();
    assert_eq!(
        (img.res, img.class.len(), img.confidence.len()),
        (GRID_RES, GRID_RES * GRID_RES, GRID_RES * GRID_RES)
    );
    // Cell (r, c): its centre through the network, the larger logit is the class.
    let (r, c) = (5, 40);
    let cx = b[0] + (b[1] - b[0]) * (c as f64 + 0.5) / GRID_RES as f64;
    let cy = b[3] - (b[3] - b[2]) * (r as f64 + 0.5) / GRID_RES as f64;
    let mut one = Workspace::new(live.net(), 1);
    one.load_rows(&initscope::Matrix::from_vec(1, 2, vec![cx, cy]), &[0]);
    let z = live.net().forward(&mut one, Pass::Eval).row(0).to_vec();
    assert_eq!(img.class[r * GRID_RES + c], u8::from(z[1] > z[0]));

    let u = probe.unit_values(live.net(), 2, 3).unwrap();
    assert_eq!(u.grid, Some(GRID_RES));
    assert_eq!(u.values.len(), GRID_RES * GRID_RES);
    assert!(u.values.iter().all(|v| v.abs() <= 1.0), "tanh outputs");
    assert!(probe.unit_values(live.net(), 0, 0).is_none());
    assert!(
        probe.unit_values(live.net(), 3, 2).is_none(),
        "the output layer has 2 units"
    );
    assert!(probe.unit_values(live.net(), 9, 0).is_none());
}
