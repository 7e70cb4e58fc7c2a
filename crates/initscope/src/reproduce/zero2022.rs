//! Zhao, Schaefer & Anandkumar 2022, "ZerO initialization", secs. 3-4 (low-rank learning,
//! partial identity's symmetry).
//!
//! Measured: rank(W_2 - I) of a ZerO-initialized (`zero_hadamard`) 40-64-64-64-10 ReLU MLP at
//! steps 0, 20, 100 and 1500; then, after 1500 steps from ZerO, partial identity (`identity`)
//! and He, the effective width of layer 1 and the test accuracy.
//!
//! Criterion: ZerO: rank(W_2 - I) is 0 at init and grows gradually (below half the width at
//! step 20); partial identity never breaks the symmetry of the units beyond its identity block
//! (layer-1 width stays < 64) while ZerO uses the full width; ZerO's test accuracy is within 3
//! points of He's or better.
//!
//! Deviations: a 40-64-64-64-10 ReLU MLP on mnist1d (SGD lr 0.1, batch 100, 1500 steps) instead
//! of ResNets on CIFAR-10/ImageNet; rank counts singular values above 1e-3.

use serde_json::json;

use super::{new, row, run_toml, Reproduction};
use crate::diagnostics::spectrum::singular_values;
use crate::error::Result;
use crate::nn::Params;

/// Runs this reproduction (the module doc says what it measures and why).
pub(super) fn run() -> Result<Reproduction> {
    let mut r = new(
        "zero2022",
        "Zhao, Schaefer & Anandkumar 2022, ZerO initialization, secs. 3-4 (low-rank learning, \
         partial identity's symmetry)",
        "ZerO: rank(W_2 - I) is 0 at init and grows gradually (below half the width at step 20); \
         partial identity never breaks the symmetry of the units beyond its identity block (layer-1 \
         width stays < 64) while ZerO uses the full width; ZerO's test accuracy is within 3 points \
         of He's or better",
        "a 40-64-64-64-10 ReLU MLP on mnist1d (SGD lr 0.1, batch 100, 1500 steps) instead of \
         ResNets on CIFAR-10/ImageNet; rank counts singular values above 1e-3",
    );
    let base = "data = \"mnist1d\"\nhidden = \"64,64,64\"\nact = \"relu\"\noptim = \"sgd\"\n\
                lr = 0.1\nbatch = 100\nseed = 0\n";
    let rank_minus_identity = |p: &Params| {
        let mut w = p[1].weight.clone();
        for i in 0..w.rows().min(w.cols()) {
            w.set(i, i, w.get(i, i) - 1.0);
        }
        singular_values(&w).iter().filter(|&&s| s > 1e-3).count()
    };
    let mut ranks = Vec::new();
    for steps in [0usize, 20, 100, 1500] {
        let (out, _) = run_toml(&format!(
            "{base}init = \"zero_hadamard\"\nsteps = {steps}\ndiagnostics = \"off\"\n"
        ))?;
        ranks.push((steps, rank_minus_identity(&out.params)));
    }
    let text: Vec<String> = ranks.iter().map(|(s, k)| format!("{s}: {k}")).collect();
    let ok = ranks[0].1 == 0 && ranks[1].1 < 32 && ranks.windows(2).all(|w| w[0].1 <= w[1].1);
    r.rows.push(row(
        "ZerO: rank(W_2 - I) at steps 0, 20, 100, 1500",
        text.join(", "),
        "0, then growing gradually",
        ok,
    ));
    let mut acc = Vec::new();
    let mut widths = Vec::new();
    for (label, init) in [
        ("ZerO", "zero_hadamard"),
        ("partial identity", "identity"),
        ("He", "kaiming_normal:nonlinearity=relu"),
    ] {
        let (out, _) = run_toml(&format!("{base}init = \"{init}\"\nsteps = 1500\n"))?;
        let s = &out.summary;
        let w1 = s.verdict.layers[0]
            .width_end_tol
            .expect("a plain MLP's widths are computed");
        r.rows.push(row(
            format!("{label}: layer-1 width at the end | test acc"),
            format!("{w1} | {:.1}%", 100.0 * s.test_acc.unwrap_or(f64::NAN)),
            "(table)",
            true,
        ));
        acc.push(s.test_acc.unwrap_or(f64::NAN));
        widths.push(w1);
    }
    r.rows.push(row(
        "partial identity breaks no symmetry",
        format!("width {} vs ZerO {}", widths[1], widths[0]),
        "< 64 vs 64",
        widths[1] < 64 && widths[0] == 64,
    ));
    r.rows.push(row(
        "ZerO - He test accuracy",
        format!("{:+.1} points", 100.0 * (acc[0] - acc[2])),
        ">= -3",
        acc[0] - acc[2] >= -0.03,
    ));
    r.measured = json!({"rank_w2_minus_identity": ranks, "test_acc": {"zero": acc[0], "partial_identity": acc[1], "he": acc[2]}, "layer1_width_end": widths});
    Ok(r)
}
