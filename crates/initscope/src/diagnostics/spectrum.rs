//! Spectra: the largest singular value by warm-started power iteration (cheap enough for every
//! recorded step), full singular values through faer (on the sparse schedule), numerical and
//! stable rank, and the singular values of the input-output Jacobian for dynamical-isometry
//! studies (Saxe et al. 2014; Pennington et al. 2017).

use serde::{Deserialize, Serialize};

use crate::activation::Activation;
use crate::matrix::{matmul_nn, Matrix};
use crate::nn::{LayerParams, Net, Pass, Workspace};
use crate::scalar::Float;

/// Largest singular value of `w` (rows, cols) by power iteration on W^T W, starting from `v`
/// (length cols; updated in place so the next call is warm-started). `iters` iterations.
pub fn sigma_max<T: Float>(w: &Matrix<T>, v: &mut [f64], u: &mut [f64], iters: usize) -> f64 {
    let (rows, cols) = w.shape();
    debug_assert!(v.len() == cols && u.len() == rows);
    if v.iter().all(|&x| x == 0.0) {
        v.iter_mut()
            .enumerate()
            .for_each(|(i, x)| *x = 1.0 + (i % 7) as f64 * 0.1);
    }
    let mut sigma = 0.0;
    for _ in 0..iters.max(1) {
        // u = W v, v = W^T u / |W^T u|, sigma = |W v| for unit v.
        let nv = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        if nv == 0.0 {
            return 0.0;
        }
        v.iter_mut().for_each(|x| *x /= nv);
        for (i, ui) in u.iter_mut().enumerate() {
            *ui = w
                .row(i)
                .iter()
                .zip(v.iter())
                .map(|(a, b)| a.to_f64() * b)
                .sum();
        }
        sigma = u.iter().map(|x| x * x).sum::<f64>().sqrt();
        v.iter_mut().for_each(|x| *x = 0.0);
        for (i, &ui) in u.iter().enumerate() {
            for (vj, a) in v.iter_mut().zip(w.row(i)) {
                *vj += a.to_f64() * ui;
            }
        }
    }
    sigma
}

/// All singular values of a matrix, largest first (faer's SVD).
pub fn singular_values(w: &Matrix<f64>) -> Vec<f64> {
    let (rows, cols) = w.shape();
    let m = faer::Mat::<f64>::from_fn(rows, cols, |i, j| w.get(i, j));
    let mut s = m.singular_values().unwrap_or_default();
    s.sort_by(|a, b| b.total_cmp(a));
    s
}

/// Number of singular values above σ_max · max(rows, cols) · eps (NumPy's matrix_rank rule).
pub fn numerical_rank(s: &[f64], rows: usize, cols: usize, eps: f64) -> usize {
    let top = s.first().copied().unwrap_or(0.0);
    let threshold = top * rows.max(cols) as f64 * eps;
    s.iter().filter(|&&x| x > threshold).count()
}

/// Stable rank ||W||_F² / σ_max² (0 for the zero matrix).
pub fn stable_rank(frobenius: f64, sigma_max: f64) -> f64 {
    if sigma_max == 0.0 {
        0.0
    } else {
        (frobenius / sigma_max).powi(2)
    }
}

/// Statistics of the squared singular values of the input-output Jacobian dz_L/dx, pooled over
/// the inputs of a batch.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct JacobianSpectrum {
    pub mean: f64,
    pub variance: f64,
    pub max: f64,
    pub inputs: usize,
}

/// [`jacobian_spectrum`] of any network (`--net`): J(x) = d logits / dx by backpropagation, one
/// pass per input with every output's unit vector as a row of the batch, in evaluation mode
/// (running statistics for batchnorm, no dropout), in f64.
pub fn net_jacobian_spectrum(
    net: &Net<f64>,
    x: &Matrix<f64>,
    max_inputs: usize,
) -> JacobianSpectrum {
    let n = x.rows().min(max_inputs);
    let outputs = *net.dims().last().expect("at least one module");
    let mut ws = Workspace::new(net, outputs);
    let mut dx = Matrix::zeros(outputs, x.cols());
    let mut sq = Vec::new();
    for r in 0..n {
        ws.load_rows(x, &vec![r; outputs]);
        net.forward(&mut ws, Pass::Eval);
        let last = ws.deltas.last_mut().expect("at least one module");
        last.set_rows(outputs);
        last.fill(0.0);
        for k in 0..outputs {
            last.set(k, k, 1.0);
        }
        net.backward_to_input(&mut ws, &mut dx);
        sq.extend(singular_values(&dx).into_iter().map(|s| s * s));
    }
    pooled(sq, n)
}

/// Mean, variance and maximum of squared singular values pooled over `inputs` inputs.
fn pooled(sq: Vec<f64>, inputs: usize) -> JacobianSpectrum {
    let count = sq.len().max(1) as f64;
    let mean = sq.iter().sum::<f64>() / count;
    JacobianSpectrum {
        mean,
        variance: sq.iter().map(|s| (s - mean) * (s - mean)).sum::<f64>() / count,
        max: sq.iter().copied().fold(0.0, f64::max),
        inputs,
    }
}

/// J(x) = W_L D_{L-1}(x) W_{L-1} ... D_1(x) W_1 with D_l = diag(f'(z_l(x))), for each of the
/// first `max_inputs` rows of `x`, in f64. The product is formed from the output side, so each
/// step costs outputs x width x width (faer GEMM), not width³.
pub fn jacobian_spectrum(
    params: &[LayerParams],
    act: Activation,
    x: &Matrix<f64>,
    max_inputs: usize,
) -> JacobianSpectrum {
    let n = x.rows().min(max_inputs);
    let layers = params.len();
    let mut sq = Vec::new();
    for r in 0..n {
        // Forward pass for this input, keeping f'(z_l) of every hidden layer.
        let mut a: Vec<f64> = x.row(r).to_vec();
        let mut slopes: Vec<Vec<f64>> = Vec::with_capacity(layers - 1);
        for p in &params[..layers - 1] {
            let z: Vec<f64> = (0..p.weight.rows())
                .map(|i| {
                    p.weight
                        .row(i)
                        .iter()
                        .zip(&a)
                        .map(|(w, v)| w * v)
                        .sum::<f64>()
                        + p.bias.as_ref().map_or(0.0, |b| b[i])
                })
                .collect();
            slopes.push(z.iter().map(|&zi| act.df(zi, act.f(zi))).collect());
            a = z.iter().map(|&zi| act.f(zi)).collect();
        }
        // M = W_L, then M = (M D_l) W_l for l = L-1 .. 1.
        let mut m = params[layers - 1].weight.clone();
        for l in (0..layers - 1).rev() {
            for i in 0..m.rows() {
                for (v, d) in m.row_mut(i).iter_mut().zip(&slopes[l]) {
                    *v *= d;
                }
            }
            let w = &params[l].weight;
            let mut next = Matrix::zeros(m.rows(), w.cols());
            matmul_nn(&mut next, &m, w, false);
            m = next;
        }
        sq.extend(singular_values(&m).into_iter().map(|s| s * s));
    }
    pooled(sq, n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::LayerParams;

    #[test]
    fn power_iteration_matches_the_svd() {
        let w = Matrix::from_vec(
            3,
            4,
            (0..12).map(|i| ((i * 7 % 5) as f64 - 2.0) * 0.3).collect(),
        );
        let s = singular_values(&w);
        let (mut v, mut u) = (vec![0.0; 4], vec![0.0; 3]);
        let top = sigma_max(&w, &mut v, &mut u, 200);
        assert!((top - s[0]).abs() < 1e-9 * s[0], "{top} vs {:?}", s);
        assert_eq!(numerical_rank(&s, 3, 4, f64::EPSILON), 3);
        let rank_one = Matrix::from_vec(2, 2, vec![1.0, 2.0, 2.0, 4.0]);
        assert_eq!(
            numerical_rank(&singular_values(&rank_one), 2, 2, f64::EPSILON),
            1
        );
        assert!(
            (stable_rank(w.norm(), s[0]) - s.iter().map(|x| x * x).sum::<f64>() / (s[0] * s[0]))
                .abs()
                < 1e-9
        );
    }

    #[test]
    fn linear_orthogonal_network_is_an_isometry() {
        // Two 2x2 rotations composed: every squared singular value is exactly 1.
        let (c, s) = (0.6, 0.8);
        let rot = LayerParams {
            weight: Matrix::from_vec(2, 2, vec![c, -s, s, c]),
            bias: Some(vec![0.0; 2]),
        };
        let params = vec![rot.clone(), rot];
        let x = Matrix::from_vec(3, 2, vec![0.1, 0.2, -1.0, 0.5, 2.0, 0.0]);
        let j = jacobian_spectrum(&params, Activation::Identity, &x, 10);
        assert!((j.mean - 1.0).abs() < 1e-12 && j.variance < 1e-12 && (j.max - 1.0).abs() < 1e-12);
        assert_eq!(j.inputs, 3);
    }

    /// A diverged run's weights (NaN, inf) give non-finite or empty spectra, never a panic or a
    /// hang.
    #[test]
    fn non_finite_weights_do_not_panic() {
        for bad in [f64::NAN, f64::INFINITY, -f64::NAN] {
            let w = Matrix::from_vec(3, 3, vec![1.0, bad, 0.5, 2.0, 0.1, -1.0, bad, 3.0, 0.0]);
            let s = singular_values(&w);
            let _ = numerical_rank(&s, 3, 3, f64::EPSILON);
            let (mut v, mut u) = (vec![0.0; 3], vec![0.0; 3]);
            let top = sigma_max(&w, &mut v, &mut u, 5);
            let _ = stable_rank(w.norm(), top);
            let layer = LayerParams {
                weight: w,
                bias: Some(vec![0.0; 3]),
            };
            let x = Matrix::from_vec(2, 3, vec![0.1, 0.2, 0.3, -1.0, 0.5, 2.0]);
            let j = jacobian_spectrum(&[layer.clone(), layer], Activation::Tanh, &x, 2);
            assert_eq!(j.inputs, 2);
        }
    }
}
