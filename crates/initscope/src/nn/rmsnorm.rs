//! RMSNorm as a module of a network spec: `rmsnorm(eps=..., gamma=SPEC)`, as
//! `torch.nn.RMSNorm(width, eps, elementwise_affine=True)`: each sample divided by its root mean
//! square; a gain, no bias.
//!
//! ```text
//! forward:   r = sqrt(mean_j x_j^2 + eps),  x̂ = x / r,  y = gamma ⊙ x̂     x, y: (batch, width)
//! backward:  dgamma = Σ_rows dy ⊙ x̂                                         gamma: (width)
//!            g = dy ⊙ gamma,  dx = (1/r) (g - x̂ mean_j (g ⊙ x̂))
//! ```
//! The backward: with s = 1/r = (m + eps)^(-1/2), m = mean_j x_j^2, ∂s/∂x_k = -s^3 x_k / n, so
//! dx_k = g_k s + Σ_j g_j x_j (-s^3 x_k / n) = s (g_k - x̂_k mean_j (g_j x̂_j)).
//!
//! Tensor: `weight` = gamma ([`ParamKind::NormGain`]), `[width]`; the gradient slice holds
//! dgamma as one row. The default eps is the dtype's machine epsilon (PyTorch's `eps=None`:
//! `torch.finfo(dtype).eps`, 2^-23 in f32 and 2^-52 in f64), resolved when the module is built
//! in its precision. Like PyTorch (`x * rsqrt(mean(x^2) + eps) * weight`) the module multiplies
//! by 1/r; the cache keeps x̂ in `pre`, y in `act` and each row's 1/r in `stats`.

use super::build::Builder;
use super::module::{Anatomy, Cache, Facts, Module, Pass, Step0, TensorDecl};
use super::param::ParamKind;
use super::spec::{push_init, Form, KindSpec, Parts, Syntax};
use super::torch::Torch;
use crate::init::Init;
use crate::matrix::Matrix;
use crate::scalar::Float;
use crate::spec::fmt_f64;
use crate::spec::fmt_num;

/// `torch.nn.RMSNorm(width, eps)`: each row divided by its root mean square, then scaled by
/// gamma.
#[derive(Clone, Debug, PartialEq)]
pub struct RmsNorm<T> {
    pub width: usize,
    /// The spec's eps, or the machine epsilon of `T` when it gives none.
    pub eps: T,
    /// gamma, `(width)`.
    pub gamma: Vec<T>,
}

impl<T: Float> RmsNorm<T> {
    /// An RMSNorm over `width` units with `spec`'s eps (`None`: `T`'s machine epsilon) and
    /// initial gain `gamma` (`width` values).
    pub fn new(width: usize, spec: &RmsNormSpec, gamma: &[f64]) -> Self {
        assert_eq!(gamma.len(), width, "rmsnorm({width}): gamma length");
        RmsNorm {
            width,
            eps: T::from_f64(spec.eps.unwrap_or(2.0 * T::UNIT_ROUNDOFF)),
            gamma: gamma.iter().map(|&v| T::from_f64(v)).collect(),
        }
    }
}

impl<T: Float> Module<T> for RmsNorm<T> {
    fn kind(&self) -> &'static str {
        "rmsnorm"
    }

    fn anatomy(&self) -> Anatomy<'_, T> {
        Anatomy::RmsNorm {
            eps: self.eps.to_f64(),
        }
    }

    fn in_width(&self) -> usize {
        self.width
    }

    fn out_width(&self) -> usize {
        self.width
    }

    fn tensors(&self) -> Vec<TensorDecl> {
        vec![TensorDecl::vector(
            "weight",
            self.width,
            ParamKind::NormGain,
        )]
    }

    fn value(&self, _k: usize) -> &[T] {
        &self.gamma
    }

    fn value_mut(&mut self, _k: usize) -> &mut [T] {
        &mut self.gamma
    }

    /// `pre` (x̂) and `act` (y) of `(capacity, width)`, `stats` one 1/r per row.
    fn cache(&self, capacity: usize) -> Cache<T> {
        let mut c = Cache::new(capacity, self.width, false);
        c.stats = vec![T::ZERO; capacity];
        c
    }

    /// Row by row: 1/r into `stats`, x̂ into `pre`, y into `act`. Training and evaluation are
    /// the same.
    fn forward(&self, x: &Matrix<T>, cache: &mut Cache<T>, _pass: &mut Pass<'_>) {
        let batch = x.rows();
        cache.pre.set_rows(batch);
        cache.act.set_rows(batch);
        let n = T::from_f64(self.width as f64);
        let Cache {
            pre, act, stats, ..
        } = cache;
        for (i, stat) in stats[..batch].iter_mut().enumerate() {
            let xr = x.row(i);
            let mut ss = T::ZERO;
            for &v in xr {
                ss += v * v;
            }
            let s = T::ONE / (ss / n + self.eps).sqrt();
            *stat = s;
            let xh = pre.row_mut(i);
            for (h, &v) in xh.iter_mut().zip(xr) {
                *h = v * s;
            }
            for ((y, &h), &g) in act.row_mut(i).iter_mut().zip(&*xh).zip(&self.gamma) {
                *y = h * g;
            }
        }
    }

    /// dgamma accumulates down the rows (contiguous); dx row by row from the row's
    /// `mean_j (g ⊙ x̂)`. `dy` is overwritten with g.
    fn backward(
        &self,
        _x: &Matrix<T>,
        cache: &mut Cache<T>,
        dy: &mut Matrix<T>,
        grads: &mut [Matrix<T>],
        dx: Option<&mut Matrix<T>>,
    ) {
        let batch = dy.rows();
        let dgamma = grads[0].as_mut_slice();
        dgamma.fill(T::ZERO);
        for i in 0..batch {
            for ((dg, &d), &h) in dgamma.iter_mut().zip(dy.row(i)).zip(cache.pre.row(i)) {
                *dg += d * h;
            }
        }
        let Some(dx) = dx else { return };
        dx.set_rows(batch);
        let n = T::from_f64(self.width as f64);
        for i in 0..batch {
            let (g, xh) = (dy.row_mut(i), cache.pre.row(i));
            let mut sgx = T::ZERO;
            for ((g, &gamma), &h) in g.iter_mut().zip(&self.gamma).zip(xh) {
                *g *= gamma;
                sgx += *g * h;
            }
            let mgx = sgx / n;
            let s = cache.stats[i];
            for ((d, &g), &h) in dx.row_mut(i).iter_mut().zip(&*g).zip(xh) {
                *d = s * (g - h * mgx);
            }
        }
    }

    /// x = 0: r = sqrt(eps), the output is 0 and the backward map is (gamma/sqrt(eps)) I;
    /// gamma = 0 stops the delta.
    fn explain_step0(&self, s: &Step0<'_, T>, facts: &mut Facts) {
        if self.gamma.iter().all(|&g| g == T::ZERO) && s.dx.is_zero() {
            facts.zero.push(
                "gamma = 0, so the output is 0 for every input and the delta passed back is 0"
                    .into(),
            );
        }
        if s.x.is_zero() {
            let eps = self.eps.to_f64();
            facts.notes.push(format!(
                "x = 0 in every row: r = sqrt(eps), so the output is 0 and the backward map is (gamma/sqrt(eps)) I: the delta is amplified by 1/sqrt(eps) = {} (eps {})",
                fmt_num(1.0 / eps.sqrt()),
                fmt_num(eps)
            ));
        }
    }

    fn clone_box(&self) -> Box<dyn Module<T>> {
        Box::new(self.clone())
    }
}

/// `rmsnorm(eps, gamma)`: `eps: None` is the dtype's machine epsilon; `gamma: None` is 1.
#[derive(Clone, Debug, PartialEq)]
pub struct RmsNormSpec {
    pub eps: Option<f64>,
    pub gamma: Option<Init>,
}

impl KindSpec for RmsNormSpec {
    const SYNTAX: Syntax = Syntax {
        names: &["rmsnorm"],
        keys: &["eps", "gamma"],
        positional: 0,
        form: Form::Args,
    };

    fn parse(p: &Parts<'_>) -> Result<Self, String> {
        let eps = match p.value(0) {
            None => None,
            Some(_) => Some(p.positive_or(0, 0.0)?),
        };
        Ok(RmsNormSpec {
            eps,
            gamma: p.init(1)?,
        })
    }

    fn args(&self) -> Vec<String> {
        let mut args: Vec<String> = self
            .eps
            .iter()
            .map(|e| format!("eps={}", fmt_f64(*e)))
            .collect();
        push_init(&mut args, "gamma", &self.gamma);
        args
    }

    fn build<T: Float>(
        &self,
        width: usize,
        b: &mut Builder<'_>,
    ) -> Result<Box<dyn Module<T>>, String> {
        let gamma = b.draw("weight", width, self.gamma.as_ref(), 1.0);
        Ok(Box::new(RmsNorm::<T>::new(width, self, &gamma)))
    }

    fn torch(&self, width: usize, _t: &Torch) -> String {
        match self.eps {
            Some(e) => format!("nn.RMSNorm({width}, eps={})", fmt_f64(e)),
            None => format!("nn.RMSNorm({width})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::layernorm::tests::{
        assert_close, check_gradients, check_symmetry, normal, run, run64,
    };

    fn rms(width: usize, eps: Option<f64>) -> RmsNorm<f64> {
        let gamma: Vec<f64> = (0..width).map(|j| 1.2 - 0.25 * j as f64).collect();
        RmsNorm::new(width, &RmsNormSpec { eps, gamma: None }, &gamma)
    }

    #[test]
    fn default_eps_is_the_machine_epsilon_of_the_precision() {
        let spec = RmsNormSpec {
            eps: None,
            gamma: None,
        };
        let m32 = RmsNorm::<f32>::new(2, &spec, &[1.0, 1.0]);
        assert_eq!(m32.eps, f32::EPSILON);
        assert_eq!(m32.eps, 1.192_092_9e-7);
        let m64 = RmsNorm::<f64>::new(2, &spec, &[1.0, 1.0]);
        assert_eq!(m64.eps, f64::EPSILON);
        assert_eq!(m64.eps, 2f64.powi(-52));
        assert_eq!(rms(2, Some(1e-6)).eps, 1e-6);
        let t = m64.tensors();
        assert_eq!(t.len(), 1);
        assert_eq!(
            (t[0].key.as_str(), t[0].kind, &t[0].dims[..], t[0].linear),
            ("weight", ParamKind::NormGain, &[2][..], false)
        );
        assert_eq!(
            (m64.kind(), m64.in_width(), m64.out_width()),
            ("rmsnorm", 2, 2)
        );
    }

    #[test]
    fn rmsnorm_backward_matches_finite_differences() {
        let x = normal(5, 4, 11, 1.3, 0.4);
        check_gradients(&rms(4, Some(1e-3)), &x, true);
        check_gradients(&rms(4, None), &x, true);
        check_gradients(&rms(4, None), &x, false);
    }

    #[test]
    fn rmsnorm_forward_divides_by_the_root_mean_square() {
        let x = normal(5, 4, 12, 2.0, 1.0);
        let m = rms(4, Some(1e-3));
        let (y, ..) = run(&m, &x, &Matrix::zeros(5, 4), false);
        for i in 0..5 {
            let r = (x.row(i).iter().map(|v| v * v).sum::<f64>() / 4.0 + 1e-3).sqrt();
            let want: Vec<f64> = (0..4).map(|j| m.gamma[j] * x.get(i, j) / r).collect();
            assert_close(y.row(i), &want, 1e-15);
        }
    }

    #[test]
    fn rmsnorm_columns_with_equal_inputs_and_gains_stay_bitwise_equal() {
        let mut m = rms(4, None);
        m.gamma[2] = m.gamma[0];
        check_symmetry(&m, &normal(5, 4, 13, 1.0, 0.5), true, 0, 2);
    }

    #[test]
    fn rmsnorm_in_f32_agrees_with_f64() {
        let x = normal(5, 4, 14, 1.0, 0.2);
        let dy = normal(5, 4, 15, 1.0, 0.0);
        let m = rms(4, Some(1e-6));
        let m32 = RmsNorm::<f32>::new(
            4,
            &RmsNormSpec {
                eps: Some(1e-6),
                gamma: None,
            },
            &m.gamma,
        );
        let got = run64(&m, &x, &dy, true);
        let (y32, g32, dx32, _) = run(&m32, &x.cast(), &dy.cast(), true);
        assert_close(y32.to_f64().as_slice(), got.y.as_slice(), 1e-5);
        assert_close(dx32.to_f64().as_slice(), got.dx.as_slice(), 1e-5);
        assert_close(g32[0].to_f64().as_slice(), got.grads[0].as_slice(), 1e-5);
    }
}
