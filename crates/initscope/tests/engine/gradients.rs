//! Finite-difference checks (f64) of every activation, every loss, a layer, and 2- and 4-layer
//! networks with each activation.

use initscope::activation::all_activations;
use initscope::gradcheck::{gradcheck, GradcheckOptions};
use initscope::loss::{Loss, Targets};
use initscope::nn::{Dense, Module, Pass};
use initscope::rng::{self, Stream};

use initscope::Matrix;

use crate::support::{config, params};

fn random_matrix(rows: usize, cols: usize, seed: u64) -> Matrix<f64> {
    let mut r = rng::stream(seed, Stream::Data);
    Matrix::from_vec(
        rows,
        cols,
        (0..rows * cols).map(|_| rng::normal(&mut r)).collect(),
    )
}

fn rel_err(a: f64, b: f64) -> f64 {
    (a - b).abs() / a.abs().max(b.abs()).max(1e-6)
}

#[test]
fn every_loss_gradient_matches_central_differences() {
    let (batch, k) = (5, 3);
    let logits = random_matrix(batch, k, 1);
    let labels = vec![0u32, 2, 1, 1, 0];
    let mut dense = random_matrix(batch, k, 2);
    let mut binary = Matrix::zeros(batch, k);
    for (i, v) in binary.as_mut_slice().iter_mut().enumerate() {
        *v = (i % 2) as f64;
    }
    for (loss, targets) in [
        (Loss::CrossEntropy, Targets::Classes(&labels)),
        (Loss::Mse, Targets::Dense(&dense)),
        (Loss::BceWithLogits, Targets::Dense(&binary)),
    ] {
        let mut grad = Matrix::zeros(batch, k);
        loss.forward_backward(&logits, targets, Some(&mut grad));
        for idx in 0..batch * k {
            let h = 1e-6;
            let mut plus = logits.clone();
            plus.as_mut_slice()[idx] += h;
            let mut minus = logits.clone();
            minus.as_mut_slice()[idx] -= h;
            let num = (loss.forward_backward(&plus, targets, None)
                - loss.forward_backward(&minus, targets, None))
                / (2.0 * h);
            let err = rel_err(grad.as_slice()[idx], num);
            assert!(
                err < 1e-6,
                "{loss} entry {idx}: backprop {} vs numeric {num}",
                grad.as_slice()[idx]
            );
        }
    }
    dense.fill(0.0);
}

#[test]
fn cross_entropy_is_stable_for_huge_logits() {
    let logits = Matrix::from_vec(1, 3, vec![1000.0f32, -1000.0, 0.0]);
    let mut grad = Matrix::zeros(1, 3);
    let l = Loss::CrossEntropy.forward_backward(&logits, Targets::Classes(&[1]), Some(&mut grad));
    assert_eq!(l, 2000.0);
    assert!(grad.as_slice().iter().all(|g| g.is_finite()));
    let bce = Loss::BceWithLogits.forward_backward(
        &Matrix::from_vec(1, 1, vec![-1000.0f32]),
        Targets::Dense(&Matrix::from_vec(1, 1, vec![1.0f32])),
        None,
    );
    assert_eq!(bce, 1000.0);
}

/// Moves one parameter or input of a layer by the given amount.
type Perturb<'a> = dyn Fn(&mut Dense<f64>, &mut Matrix<f64>, f64) + 'a;

#[test]
fn dense_layer_backward_matches_central_differences_for_every_activation() {
    let (batch, fan_in, fan_out) = (4, 3, 5);
    let x = random_matrix(batch, fan_in, 3);
    let r = random_matrix(batch, fan_out, 4); // objective S = sum(a ⊙ r), so dS/da = r
    for act in all_activations() {
        let layer = Dense {
            weight: random_matrix(fan_out, fan_in, 5),
            bias: random_matrix(1, fan_out, 6).into_vec(),
            has_bias: true,
            activation: act,
            dropout: 0.0,
        };
        let objective = |layer: &Dense<f64>, x: &Matrix<f64>| {
            let mut cache = layer.cache(batch);
            layer.forward(x, &mut cache, &mut Pass::Eval);
            cache
                .act
                .as_slice()
                .iter()
                .zip(r.as_slice())
                .map(|(a, r)| a * r)
                .sum::<f64>()
        };
        let mut cache = layer.cache(batch);
        layer.forward(&x, &mut cache, &mut Pass::Eval);
        let mut d_out = r.clone();
        let mut grads = [Matrix::zeros(fan_out, fan_in), Matrix::zeros(1, fan_out)];
        let mut dx = Matrix::zeros(batch, fan_in);
        layer.backward(&x, &mut cache, &mut d_out, &mut grads, Some(&mut dx));

        let h = 1e-6;
        let numeric = |perturb: &Perturb<'_>| {
            let (mut lp, mut xp) = (layer.clone(), x.clone());
            perturb(&mut lp, &mut xp, h);
            let plus = objective(&lp, &xp);
            let (mut lm, mut xm) = (layer.clone(), x.clone());
            perturb(&mut lm, &mut xm, -h);
            (plus - objective(&lm, &xm)) / (2.0 * h)
        };
        for i in 0..fan_out * fan_in {
            let n = numeric(&|l, _, d| l.weight.as_mut_slice()[i] += d);
            assert!(rel_err(grads[0].as_slice()[i], n) < 1e-6, "{act} dW[{i}]");
        }
        for i in 0..fan_out {
            let n = numeric(&|l, _, d| l.bias[i] += d);
            assert!(rel_err(grads[1].as_slice()[i], n) < 1e-6, "{act} db[{i}]");
        }
        for i in 0..batch * fan_in {
            let n = numeric(&|_, x, d| x.as_mut_slice()[i] += d);
            assert!(rel_err(dx.as_slice()[i], n) < 1e-6, "{act} dx[{i}]");
        }
    }
}

#[test]
fn two_and_four_layer_networks_pass_gradcheck_for_every_activation() {
    let opts = GradcheckOptions {
        max_rows: 32,
        ..GradcheckOptions::default()
    };
    for act in all_activations() {
        for hidden in ["8", "6,6,6"] {
            let (cfg, data) = config(&format!(
                "data = \"moons\"\nact = \"{act}\"\nhidden = \"{hidden}\"\nseed = 3"
            ));
            let report = gradcheck(
                &cfg.network::<f64>(&params(&cfg)),
                cfg.loss,
                &data.train,
                &opts,
            );
            assert!(report.pass, "{act} hidden {hidden}: {report:?}");
            assert!(
                report.layers.iter().all(|l| l.max_abs_grad > 0.0),
                "{act}: a layer with zero gradient proves nothing"
            );
        }
    }
}

#[test]
fn every_loss_passes_gradcheck_through_a_network_including_no_bias_and_zero_hidden_layers() {
    let opts = GradcheckOptions::default();
    for toml in [
        "data = \"teacher:dim=4,outputs=2\"\nloss = \"mse\"\nhidden = \"8,8\"",
        "data = \"moons\"\nloss = \"bce\"\nhidden = \"8,8\"",
        "data = \"spirals\"\nloss = \"mse\"\nhidden = \"8\"\nact = \"relu\"",
        "data = \"blobs\"\nloss = \"cross_entropy\"\nhidden = \"8,8\"\nno_bias = true",
        "data = \"blobs\"\nhidden = \"\"",
        "data = \"circles\"\nhidden = \"8\"\ninit = \"normal:std=1.5\"\nbias_init = \"uniform:-1,1\"",
    ] {
        let (cfg, data) = config(toml);
        let report = gradcheck(&cfg.network::<f64>(&params(&cfg)), cfg.loss, &data.train, &opts);
        assert!(report.pass, "{toml}: {report:?}");
    }
}
