//! LSUV, layer-sequential unit-variance initialization (Mishkin & Matas 2016, Algorithm 1).
//!
//! After the orthonormal pre-init (done by `Init::Lsuv`'s fill), for each LSUV layer l in order:
//! forward a data batch, measure Var(z_l) over all batch entries and units of the layer's
//! pre-activation, and divide W_l by sqrt(Var(z_l)) until |Var(z_l) - 1| < tol or `max_iter`
//! rescalings. Later layers see the already rescaled earlier ones. Runs in f64.

use serde::{Deserialize, Serialize};

use crate::json::f64_or_null;

use crate::matrix::{variance, Matrix};
use crate::nn::{Net, Pass, Workspace};

/// What LSUV did to one layer (1-based).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LsuvLayer {
    pub layer: usize,
    /// Rescalings applied.
    pub iterations: usize,
    /// Var(z_l) on the batch after the last rescaling.
    #[serde(deserialize_with = "f64_or_null")]
    pub variance: f64,
    /// Whether |Var(z_l) - 1| < tol was reached.
    pub converged: bool,
}

/// Applies LSUV to the linear layers of `net` with `Some((tol, max_iter))` in `which` (index
/// l-1), on the batch `x` (rows of inputs), in evaluation mode. Returns one report per LSUV
/// layer.
pub fn lsuv(net: &mut Net<f64>, x: &Matrix<f64>, which: &[Option<(f64, usize)>]) -> Vec<LsuvLayer> {
    let mut ws = Workspace::<f64>::new(net, x.rows());
    let idx: Vec<usize> = (0..x.rows()).collect();
    ws.load_rows(x, &idx);
    let mut reports = Vec::new();
    for (i, spec) in which.iter().enumerate() {
        let Some((tol, max_iter)) = *spec else {
            continue;
        };
        let mut iterations = 0;
        let var = loop {
            net.forward(&mut ws, Pass::Eval);
            let var = variance(net.layer_cache(&ws, i).pre.as_slice());
            if (var - 1.0).abs() < tol || iterations >= max_iter || !(var > 0.0 && var.is_finite())
            {
                break var;
            }
            let s = 1.0 / var.sqrt();
            net.layer_mut(i)
                .weight
                .as_mut_slice()
                .iter_mut()
                .for_each(|w| *w *= s);
            iterations += 1;
        };
        reports.push(LsuvLayer {
            layer: i + 1,
            iterations,
            variance: var,
            converged: (var - 1.0).abs() < tol,
        });
    }
    reports
}
