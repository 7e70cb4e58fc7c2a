//! BatchNorm as a module of a network spec: `batchnorm(eps=1e-5, momentum=0.1, gamma=SPEC,
//! beta=SPEC)`, as `torch.nn.BatchNorm1d(width, eps, momentum)`: each unit normalised over the
//! batch.
//!
//! ```text
//! training:    mu_j = mean_n x_nj,  var_j = mean_n (x_nj - mu_j)^2 (biased),  N = batch
//!              rstd = 1/sqrt(var + eps),  x̂ = (x - mu) rstd,  y = gamma ⊙ x̂ + beta;
//!              then (update_buffers):
//!              running_mean = (1 - m) running_mean + m mu,
//!              running_var  = (1 - m) running_var + m var · N/(N-1)   (unbiased),
//!              num_batches_tracked += 1
//! backward:    dgamma = Σ_n dy ⊙ x̂,  dbeta = Σ_n dy                   gamma, beta: (width)
//!              dx = (gamma rstd / N) (N dy - dbeta - x̂ ⊙ dgamma)      (through mu and var)
//! evaluation:  rstd = 1/sqrt(running_var + eps),  x̂ = (x - running_mean) rstd,
//!              y = gamma ⊙ x̂ + beta;  backward: dgamma, dbeta as above, dx = gamma rstd dy
//! ```
//! x, y: (batch, width). Tensors `weight` = gamma ([`super::ParamKind::NormGain`]) and `bias` = beta
//! ([`super::ParamKind::NormBias`]), both `[width]`; the gradient slice holds dgamma, then dbeta, each
//! as one row. Buffers, in `state_dict` order: `running_mean` `[width]` (starts at 0),
//! `running_var` `[width]` (starts at 1), `num_batches_tracked` `[]` (a scalar, the number of
//! training batches folded in; PyTorch's is an int64).
//!
//! The cache keeps x̂ in `pre`, y in `act`, and in `stats` three `width`-long blocks: the
//! batch mean, the sum of squared deviations Σ_n (x - mu)^2 and rstd (in evaluation: the
//! running mean, 0 and the running rstd); `train` records which pass filled it, and the
//! backward follows it. The column statistics accumulate row by row into those blocks
//! (contiguous), in `T`, like PyTorch's CPU kernel for a `(batch, width)` input on one thread
//! (its channels-last reduction; it then computes rstd in f64 from the f32 variance, a rounding
//! apart). The mean is taken as `x_0 + mean_n (x_n - x_0)` (the first row as a shift): a unit
//! that is constant over the batch gets x - mu = 0 exactly and y = beta exactly, where
//! PyTorch's `sum / N` can be an ulp off (then y - beta is about ulp(x) rstd gamma, not 0).
//! PyTorch writes the output as `x (gamma rstd) + (beta - mu gamma rstd)`; the two agree up to
//! rounding (relative 1e-5 in f32 except where y is near 0 by cancellation).
//!
//! Precondition: a training batch has at least two rows (PyTorch raises "Expected more than 1
//! value per channel when training"; the configuration layer refuses such a batch). The module
//! still runs on one row without panicking or producing NaN: the forward gives y = beta, the
//! backward dx = 0, and `update_buffers` takes the unbiased variance as the sum of squares over
//! max(N - 1, 1), that is 0.

use super::build::Builder;
use super::module::{Anatomy, Buffer, Cache, Facts, Module, Pass, Step0, TensorDecl};
use super::spec::{
    push_init, push_number, Form, KindSpec, Parts, Syntax, BATCHNORM_MOMENTUM, NORM_EPS,
};
use super::torch::Torch;
use crate::init::Init;
use crate::matrix::Matrix;
use crate::scalar::Float;
use crate::spec::fmt_f64;
use crate::spec::fmt_num;

/// `torch.nn.BatchNorm1d(width, eps, momentum)` on `(batch, width)` inputs: each unit
/// normalised with the batch's statistics while training, with the running statistics in
/// evaluation.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchNorm<T> {
    pub width: usize,
    pub eps: T,
    /// The weight of the new batch in the running statistics, in [0, 1].
    pub momentum: T,
    /// gamma, `(width)`.
    pub gamma: Vec<T>,
    /// beta, `(width)`.
    pub beta: Vec<T>,
    /// `(width)`, starts at 0.
    pub running_mean: Vec<T>,
    /// `(width)`, starts at 1.
    pub running_var: Vec<T>,
    /// The number of training batches folded into the running statistics.
    pub num_batches_tracked: u64,
}

impl<T: Float> BatchNorm<T> {
    /// A BatchNorm over `width` units with `spec`'s eps and momentum and initial gain `gamma`
    /// and bias `beta` (`width` values each); running mean 0, running variance 1.
    pub fn new(width: usize, spec: &BatchNormSpec, gamma: &[f64], beta: &[f64]) -> Self {
        assert_eq!(gamma.len(), width, "batchnorm({width}): gamma length");
        assert_eq!(beta.len(), width, "batchnorm({width}): beta length");
        BatchNorm {
            width,
            eps: T::from_f64(spec.eps),
            momentum: T::from_f64(spec.momentum),
            gamma: gamma.iter().map(|&v| T::from_f64(v)).collect(),
            beta: beta.iter().map(|&v| T::from_f64(v)).collect(),
            running_mean: vec![T::ZERO; width],
            running_var: vec![T::ONE; width],
            num_batches_tracked: 0,
        }
    }

    /// The batch statistics of `x` (at least one row) into `stats`: mean, sum of squared
    /// deviations, rstd.
    fn batch_stats(&self, x: &Matrix<T>, stats: &mut [T]) {
        let w = self.width;
        let (mean, rest) = stats.split_at_mut(w);
        let (ss, rest) = rest.split_at_mut(w);
        let rstd = &mut rest[..w];
        let n = T::from_f64(x.rows() as f64);
        let x0 = x.row(0);
        mean.fill(T::ZERO);
        for i in 1..x.rows() {
            for ((s, &v), &v0) in mean.iter_mut().zip(x.row(i)).zip(x0) {
                *s += v - v0;
            }
        }
        for (m, &v0) in mean.iter_mut().zip(x0) {
            *m = v0 + *m / n;
        }
        ss.fill(T::ZERO);
        for i in 0..x.rows() {
            for ((s, &v), &m) in ss.iter_mut().zip(x.row(i)).zip(&*mean) {
                let d = v - m;
                *s += d * d;
            }
        }
        for (r, &s) in rstd.iter_mut().zip(&*ss) {
            *r = T::ONE / (s / n + self.eps).sqrt();
        }
    }

    /// The running statistics into `stats` as [`BatchNorm::batch_stats`] lays them out: the
    /// running mean, 0, the running rstd.
    fn running_stats(&self, stats: &mut [T]) {
        let w = self.width;
        let (mean, rest) = stats.split_at_mut(w);
        let (ss, rest) = rest.split_at_mut(w);
        mean.copy_from_slice(&self.running_mean);
        ss.fill(T::ZERO);
        for (r, &v) in rest[..w].iter_mut().zip(&self.running_var) {
            *r = T::ONE / (v + self.eps).sqrt();
        }
    }
}

impl<T: Float> Module<T> for BatchNorm<T> {
    fn kind(&self) -> &'static str {
        "batchnorm"
    }

    fn anatomy(&self) -> Anatomy<'_, T> {
        Anatomy::BatchNorm {
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
        TensorDecl::gain_and_bias(self.width)
    }

    fn value(&self, k: usize) -> &[T] {
        match k {
            0 => &self.gamma,
            _ => &self.beta,
        }
    }

    fn value_mut(&mut self, k: usize) -> &mut [T] {
        match k {
            0 => &mut self.gamma,
            _ => &mut self.beta,
        }
    }

    /// `pre` (x̂) and `act` (y) of `(capacity, width)`, `stats` three blocks of `width`.
    fn cache(&self, capacity: usize) -> Cache<T> {
        let mut c = Cache::new(capacity, self.width, false);
        c.stats = vec![T::ZERO; 3 * self.width];
        c
    }

    /// The batch's statistics (training) or the running ones (evaluation) into `stats`, then
    /// x̂ into `pre` and y into `act`, row by row. The running statistics are not touched
    /// ([`Module::update_buffers`] folds the batch in).
    fn forward(&self, x: &Matrix<T>, cache: &mut Cache<T>, pass: &mut Pass<'_>) {
        let batch = x.rows();
        cache.pre.set_rows(batch);
        cache.act.set_rows(batch);
        cache.train = matches!(pass, Pass::Train(_));
        if batch == 0 {
            return;
        }
        if cache.train {
            self.batch_stats(x, &mut cache.stats);
        } else {
            self.running_stats(&mut cache.stats);
        }
        let w = self.width;
        let Cache {
            pre, act, stats, ..
        } = cache;
        let (mean, rstd) = (&stats[..w], &stats[2 * w..3 * w]);
        for i in 0..batch {
            let xh = pre.row_mut(i);
            for (((h, &v), &m), &r) in xh.iter_mut().zip(x.row(i)).zip(mean).zip(rstd) {
                *h = (v - m) * r;
            }
            let y = act.row_mut(i);
            for (((y, &h), &g), &b) in y.iter_mut().zip(&*xh).zip(&self.gamma).zip(&self.beta) {
                *y = g * h + b;
            }
        }
    }

    /// dgamma and dbeta accumulate down the rows (contiguous); dx row by row from them. After
    /// a training pass dx goes through the batch statistics; after an evaluation pass the
    /// statistics are constants and dx = gamma rstd dy.
    fn backward(
        &self,
        _x: &Matrix<T>,
        cache: &mut Cache<T>,
        dy: &mut Matrix<T>,
        grads: &mut [Matrix<T>],
        dx: Option<&mut Matrix<T>>,
    ) {
        let batch = dy.rows();
        let (dgamma, dbeta) = grads.split_at_mut(1);
        let (dgamma, dbeta) = (dgamma[0].as_mut_slice(), dbeta[0].as_mut_slice());
        dgamma.fill(T::ZERO);
        dbeta.fill(T::ZERO);
        for i in 0..batch {
            for (((dg, db), &d), &h) in dgamma
                .iter_mut()
                .zip(dbeta.iter_mut())
                .zip(dy.row(i))
                .zip(cache.pre.row(i))
            {
                *dg += d * h;
                *db += d;
            }
        }
        let Some(dx) = dx else { return };
        dx.set_rows(batch);
        let w = self.width;
        let rstd = &cache.stats[2 * w..3 * w];
        if cache.train {
            let n = T::from_f64(batch as f64);
            let (gamma, dgamma, dbeta) = (&self.gamma[..w], &dgamma[..w], &dbeta[..w]);
            for i in 0..batch {
                let (out, d, h) = (
                    &mut dx.row_mut(i)[..w],
                    &dy.row(i)[..w],
                    &cache.pre.row(i)[..w],
                );
                for j in 0..w {
                    out[j] = gamma[j] * rstd[j] / n * (n * d[j] - dbeta[j] - h[j] * dgamma[j]);
                }
            }
        } else {
            for i in 0..batch {
                for (((out, &d), &g), &r) in dx
                    .row_mut(i)
                    .iter_mut()
                    .zip(dy.row(i))
                    .zip(&self.gamma)
                    .zip(rstd)
                {
                    *out = g * r * d;
                }
            }
        }
    }

    /// Folds the batch statistics of a training pass into the running statistics (PyTorch's
    /// order: `m mu + (1 - m) running_mean`, the unbiased variance as the sum of squares over
    /// N - 1) and counts the batch. A cache from an evaluation pass (or an empty batch)
    /// changes nothing.
    fn update_buffers(&mut self, cache: &Cache<T>) {
        if !cache.train || cache.pre.rows() == 0 {
            return;
        }
        let w = self.width;
        let (mean, ss) = (&cache.stats[..w], &cache.stats[w..2 * w]);
        let m = self.momentum;
        let keep = T::ONE - m;
        let dof = T::from_f64(cache.pre.rows().saturating_sub(1).max(1) as f64);
        for (r, &mu) in self.running_mean.iter_mut().zip(mean) {
            *r = m * mu + keep * *r;
        }
        for (r, &s) in self.running_var.iter_mut().zip(ss) {
            *r = m * (s / dof) + keep * *r;
        }
        self.num_batches_tracked += 1;
    }

    /// `running_mean` and `running_var` take `width` values (cast to `T`);
    /// `num_batches_tracked` one whole number >= 0 (PyTorch's int64 as f64).
    fn set_buffer(&mut self, key: &str, values: &[f64]) -> bool {
        let w = self.width;
        let stats = match key {
            "running_mean" => &mut self.running_mean,
            "running_var" => &mut self.running_var,
            "num_batches_tracked" => {
                return match values {
                    &[n] if n >= 0.0 && n.fract() == 0.0 && n < u64::MAX as f64 => {
                        self.num_batches_tracked = n as u64;
                        true
                    }
                    _ => false,
                };
            }
            _ => return false,
        };
        // A variance is finite and >= 0 (a negative one would make every evaluation NaN).
        let valid = |v: f64| v.is_finite() && (key != "running_var" || v >= 0.0);
        if values.len() != w || !values.iter().all(|&v| valid(v)) {
            return false;
        }
        for (s, &v) in stats.iter_mut().zip(values) {
            *s = T::from_f64(v);
        }
        true
    }

    fn buffers(&self) -> Vec<Buffer> {
        let f64s = |v: &[T]| v.iter().map(|x| x.to_f64()).collect();
        vec![
            Buffer {
                key: "running_mean".into(),
                dims: vec![self.width],
                values: f64s(&self.running_mean),
            },
            Buffer {
                key: "running_var".into(),
                dims: vec![self.width],
                values: f64s(&self.running_var),
            },
            Buffer {
                key: "num_batches_tracked".into(),
                dims: Vec::new(),
                values: vec![self.num_batches_tracked as f64],
            },
        ]
    }

    /// Units constant over the batch: x - mean = 0, y = beta, and the gradient passed back is
    /// (gamma/sqrt(eps)) (dy - mean over the batch of dy), amplified 1/sqrt(eps) times.
    fn explain_step0(&self, s: &Step0<'_, T>, facts: &mut Facts) {
        if self.gamma.iter().all(|&g| g == T::ZERO) && s.dx.is_zero() {
            facts.zero.push(
                "gamma = 0, so the output is beta for every input and the delta passed back is 0"
                    .into(),
            );
        }
        if !s.cache.train {
            return;
        }
        let constant = s.x.constant_columns();
        if constant.is_empty() || s.x.rows() < 2 {
            return;
        }
        let eps = self.eps.to_f64();
        let sub = |m: &Matrix<T>| {
            (0..m.rows())
                .flat_map(|r| constant.iter().map(move |&j| m.get(r, j).to_f64()))
                .map(|v| v * v)
                .sum::<f64>()
                .sqrt()
        };
        let (dx, dy) = (sub(s.dx), sub(s.dy));
        facts.notes.push(format!(
            "{} of {} units are constant over the batch: x - mean = 0, so they normalise to beta for every input; the gradient they pass back is (gamma/sqrt(eps)) (delta - mean over the batch of delta): nonzero whenever delta varies over the batch, amplified by 1/sqrt(eps) = {} (eps {}); here |delta_x| = {} against |delta_y| = {} on those units{}",
            constant.len(),
            self.width,
            fmt_num(1.0 / eps.sqrt()),
            fmt_num(eps),
            fmt_num(dx),
            fmt_num(dy),
            if dx != 0.0 {
                ", so a zero-weight linear feeding them wakes at step 0 (its dW is the batch covariance of that delta and its input)"
            } else {
                ""
            }
        ));
        // Σ_n (delta_n - mean delta) = 0 in exact arithmetic: the layer before gets no bias
        // gradient through these units; rounding may leave a residue.
        let residue = constant
            .iter()
            .map(|&j| {
                (0..s.dx.rows())
                    .map(|r| s.dx.get(r, j).to_f64())
                    .sum::<f64>()
                    .abs()
            })
            .fold(0.0, f64::max);
        if residue != 0.0 {
            facts.notes.push(format!(
                "the delta passed back through those units sums to 0 over the batch in exact arithmetic (the bias before them gets no gradient); rounding leaves a sum of up to {} (a rounding residue), which moves that bias",
                fmt_num(residue)
            ));
        }
        if dx == 0.0 && dy != 0.0 {
            facts.zero.push("delta is constant over the batch on the constant units, so delta - mean over the batch of delta = 0 and nothing passes back through them".into());
        }
    }

    fn clone_box(&self) -> Box<dyn Module<T>> {
        Box::new(self.clone())
    }
}

/// `batchnorm(eps, momentum, gamma, beta)`: `None` initializers are gamma 1 and beta 0.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchNormSpec {
    pub eps: f64,
    pub momentum: f64,
    pub gamma: Option<Init>,
    pub beta: Option<Init>,
}

impl KindSpec for BatchNormSpec {
    const SYNTAX: Syntax = Syntax {
        names: &["batchnorm"],
        keys: &["eps", "momentum", "gamma", "beta"],
        positional: 0,
        form: Form::Args,
    };

    fn parse(p: &Parts<'_>) -> Result<Self, String> {
        let momentum = p.number_or(1, BATCHNORM_MOMENTUM)?;
        if !(0.0..=1.0).contains(&momentum) {
            return Err(p.err(format!(
                "momentum must be in [0, 1], got {}",
                fmt_f64(momentum)
            )));
        }
        Ok(BatchNormSpec {
            eps: p.positive_or(0, NORM_EPS)?,
            momentum,
            gamma: p.init(2)?,
            beta: p.init(3)?,
        })
    }

    fn args(&self) -> Vec<String> {
        let mut args = Vec::new();
        push_number(&mut args, "eps", self.eps, NORM_EPS);
        push_number(&mut args, "momentum", self.momentum, BATCHNORM_MOMENTUM);
        push_init(&mut args, "gamma", &self.gamma);
        push_init(&mut args, "beta", &self.beta);
        args
    }

    fn build<T: Float>(
        &self,
        width: usize,
        b: &mut Builder<'_>,
    ) -> Result<Box<dyn Module<T>>, String> {
        let gamma = b.draw("weight", width, self.gamma.as_ref(), 1.0);
        let beta = b.draw("bias", width, self.beta.as_ref(), 0.0);
        Ok(Box::new(BatchNorm::<T>::new(width, self, &gamma, &beta)))
    }

    fn torch(&self, width: usize, _t: &Torch) -> String {
        format!(
            "nn.BatchNorm1d({width}, eps={}, momentum={})",
            fmt_f64(self.eps),
            fmt_f64(self.momentum)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::layernorm::tests::{
        assert_close, check_gradients, check_symmetry, normal, run, run64,
    };
    use crate::nn::ParamKind;
    use crate::rng::{self, Stream};

    fn spec(eps: f64, momentum: f64) -> BatchNormSpec {
        BatchNormSpec {
            eps,
            momentum,
            gamma: None,
            beta: None,
        }
    }

    fn bn(width: usize) -> BatchNorm<f64> {
        let gamma: Vec<f64> = (0..width).map(|j| 0.7 + 0.2 * j as f64).collect();
        let beta: Vec<f64> = (0..width).map(|j| 0.3 - 0.1 * j as f64).collect();
        BatchNorm::new(width, &spec(1e-5, 0.1), &gamma, &beta)
    }

    /// `bn(width)` with running statistics away from their initial values.
    fn bn_with_running_stats(width: usize) -> BatchNorm<f64> {
        let mut m = bn(width);
        m.running_mean = (0..width).map(|j| 0.4 * j as f64 - 0.5).collect();
        m.running_var = (0..width).map(|j| 0.3 + 0.6 * j as f64).collect();
        m
    }

    fn train_forward(m: &BatchNorm<f64>, x: &Matrix<f64>) -> Cache<f64> {
        let mut cache = m.cache(x.rows());
        let mut stream = rng::stream(0, Stream::Dropout);
        m.forward(x, &mut cache, &mut Pass::Train(&mut stream));
        cache
    }

    #[test]
    fn tensors_and_buffers_are_torchs() {
        let m = bn(3);
        let t = m.tensors();
        assert_eq!(t.len(), 2);
        assert_eq!(
            (t[0].key.as_str(), t[0].kind, &t[0].dims[..], t[0].linear),
            ("weight", ParamKind::NormGain, &[3][..], false)
        );
        assert_eq!(
            (t[1].key.as_str(), t[1].kind, &t[1].dims[..], t[1].linear),
            ("bias", ParamKind::NormBias, &[3][..], false)
        );
        assert_eq!((m.kind(), m.in_width(), m.out_width()), ("batchnorm", 3, 3));
        let b = m.buffers();
        let keys: Vec<&str> = b.iter().map(|b| b.key.as_str()).collect();
        assert_eq!(keys, ["running_mean", "running_var", "num_batches_tracked"]);
        assert_eq!(
            (&b[0].dims[..], &b[0].values[..]),
            (&[3][..], &[0.0; 3][..])
        );
        assert_eq!(
            (&b[1].dims[..], &b[1].values[..]),
            (&[3][..], &[1.0; 3][..])
        );
        assert_eq!((&b[2].dims[..], &b[2].values[..]), (&[][..], &[0.0][..]));
    }

    #[test]
    fn buffers_are_set_by_key_and_bad_values_are_refused() {
        let mut m = bn(3);
        assert!(m.set_buffer("running_mean", &[0.5, -1.0, 2.0]));
        assert!(m.set_buffer("running_var", &[0.25, 3.0, 1.5]));
        assert!(m.set_buffer("num_batches_tracked", &[7.0]));
        let before = m.clone();
        for (key, values) in [
            ("running_mean", &[1.0, 2.0][..]),
            ("running_var", &[1.0; 4][..]),
            ("num_batches_tracked", &[1.5][..]),
            ("num_batches_tracked", &[-1.0][..]),
            ("num_batches_tracked", &[1.0, 2.0][..]),
            ("weight", &[1.0; 3][..]),
            ("running_std", &[1.0; 3][..]),
        ] {
            assert!(!m.set_buffer(key, values), "{key} {values:?}");
        }
        assert_eq!(m, before);
        let b = m.buffers();
        assert_eq!(b[0].values, [0.5, -1.0, 2.0]);
        assert_eq!(b[1].values, [0.25, 3.0, 1.5]);
        assert_eq!(b[2].values, [7.0]);
    }

    #[test]
    fn batchnorm_training_backward_matches_finite_differences() {
        // Running statistics that differ from the batch's: training must not read them.
        let m = bn_with_running_stats(4);
        check_gradients(&m, &normal(5, 4, 21, 1.4, 0.6), true);
    }

    #[test]
    fn batchnorm_evaluation_backward_matches_finite_differences() {
        let m = bn_with_running_stats(4);
        check_gradients(&m, &normal(5, 4, 22, 1.4, 0.6), false);
    }

    #[test]
    fn batchnorm_training_normalises_each_unit_over_the_batch() {
        let x = normal(6, 3, 23, 2.0, 1.5);
        let m = BatchNorm::<f64>::new(3, &spec(0.0, 0.1), &[1.0; 3], &[0.0; 3]);
        let (y, ..) = run(&m, &x, &Matrix::zeros(6, 3), true);
        for j in 0..3 {
            let col: Vec<f64> = (0..6).map(|i| y.get(i, j)).collect();
            let mean = col.iter().sum::<f64>() / 6.0;
            let var = col.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / 6.0;
            assert!(mean.abs() < 1e-14 && (var - 1.0).abs() < 1e-12, "unit {j}");
        }
        // Evaluation uses the running statistics.
        let m = bn_with_running_stats(3);
        let (y, ..) = run(&m, &x, &Matrix::zeros(6, 3), false);
        for i in 0..6 {
            let want: Vec<f64> = (0..3)
                .map(|j| {
                    m.gamma[j] * (x.get(i, j) - m.running_mean[j])
                        / (m.running_var[j] + 1e-5).sqrt()
                        + m.beta[j]
                })
                .collect();
            assert_close(y.row(i), &want, 1e-14);
        }
    }

    #[test]
    fn running_statistics_follow_torchs_update() {
        let (momentum, width) = (0.3, 3);
        let mut m = BatchNorm::<f64>::new(width, &spec(1e-5, momentum), &[1.0; 3], &[0.0; 3]);
        let batches = [
            normal(5, width, 24, 1.5, 2.0),
            normal(4, width, 25, 0.5, -1.0),
        ];
        let (mut rm, mut rv) = (vec![0.0; width], vec![1.0; width]);
        for x in &batches {
            let cache = train_forward(&m, x);
            m.update_buffers(&cache);
            let n = x.rows() as f64;
            for j in 0..width {
                let mean = (0..x.rows()).map(|i| x.get(i, j)).sum::<f64>() / n;
                let ss = (0..x.rows())
                    .map(|i| (x.get(i, j) - mean).powi(2))
                    .sum::<f64>();
                rm[j] = (1.0 - momentum) * rm[j] + momentum * mean;
                rv[j] = (1.0 - momentum) * rv[j] + momentum * (ss / n) * n / (n - 1.0);
            }
        }
        assert_close(&m.running_mean, &rm, 1e-14);
        assert_close(&m.running_var, &rv, 1e-14);
        assert_eq!(m.num_batches_tracked, 2);
        let b = m.buffers();
        assert_eq!(b[0].values, m.running_mean);
        assert_eq!(b[1].values, m.running_var);
        assert_eq!(b[2].values, [2.0]);
        // Evaluation neither reads the batch into them nor counts it, even when its cache is
        // handed to update_buffers.
        let before = m.clone();
        let (_, _, _, cache) = run(&m, &batches[0], &Matrix::zeros(5, width), false);
        assert!(!cache.train);
        m.update_buffers(&cache);
        assert_eq!(m, before);
    }

    #[test]
    fn batchnorm_columns_with_equal_inputs_and_parameters_stay_bitwise_equal() {
        let mut m = bn_with_running_stats(4);
        m.gamma[3] = m.gamma[1];
        m.beta[3] = m.beta[1];
        m.running_mean[3] = m.running_mean[1];
        m.running_var[3] = m.running_var[1];
        let x = normal(5, 4, 26, 1.0, 0.5);
        check_symmetry(&m, &x, true, 1, 3);
        check_symmetry(&m, &x, false, 1, 3);
        // And the running statistics they fold in.
        let mut x = x;
        crate::nn::layernorm::tests::copy_column(&mut x, 1, 3);
        let cache = train_forward(&m, &x);
        m.update_buffers(&cache);
        assert_eq!(m.running_mean[1].to_bits(), m.running_mean[3].to_bits());
        assert_eq!(m.running_var[1].to_bits(), m.running_var[3].to_bits());
    }

    #[test]
    fn a_unit_constant_over_the_batch_gives_beta_exactly() {
        let m = bn(2);
        let mut x = normal(5, 2, 27, 1.0, 0.0);
        for i in 0..5 {
            x.set(i, 1, 0.1);
        }
        let dy = normal(5, 2, 28, 1.0, 0.0);
        let got = run64(&m, &x, &dy, true);
        // dx is not 0 there: the unit's deviations from its batch mean are amplified by
        // 1/sqrt(eps), dx = gamma (dy - mean_n dy) / sqrt(eps).
        let mean_dy = (0..5).map(|i| dy.get(i, 1)).sum::<f64>() / 5.0;
        for i in 0..5 {
            assert_eq!(got.y.get(i, 1), m.beta[1]);
            let want = m.gamma[1] * (dy.get(i, 1) - mean_dy) / 1e-5f64.sqrt();
            assert!((got.dx.get(i, 1) - want).abs() < 1e-9 * want.abs().max(1.0));
        }
        assert_eq!(got.grads[0].as_slice()[1], 0.0, "x̂ = 0: no gain gradient");
    }

    #[test]
    fn a_single_training_row_does_not_panic_or_produce_nan() {
        let mut m = bn(3);
        let x = normal(1, 3, 29, 1.0, 0.0);
        let got = run64(&m, &x, &normal(1, 3, 30, 1.0, 0.0), true);
        assert_eq!(got.y.row(0), &m.beta[..]);
        assert!(got.dx.as_slice().iter().all(|&v| v == 0.0));
        let cache = train_forward(&m, &x);
        m.update_buffers(&cache);
        assert!(m
            .running_mean
            .iter()
            .chain(&m.running_var)
            .all(|v| v.is_finite()));
    }

    #[test]
    fn batchnorm_in_f32_agrees_with_f64() {
        let x = normal(5, 4, 31, 1.0, 0.2);
        let dy = normal(5, 4, 32, 1.0, 0.0);
        let m = bn_with_running_stats(4);
        let mut m32 = BatchNorm::<f32>::new(4, &spec(1e-5, 0.1), &m.gamma, &m.beta);
        m32.running_mean = m.running_mean.iter().map(|&v| v as f32).collect();
        m32.running_var = m.running_var.iter().map(|&v| v as f32).collect();
        for train in [false, true] {
            let got = run64(&m, &x, &dy, train);
            let (y32, g32, dx32, cache) = run(&m32, &x.cast(), &dy.cast(), train);
            assert_close(y32.to_f64().as_slice(), got.y.as_slice(), 1e-5);
            assert_close(dx32.to_f64().as_slice(), got.dx.as_slice(), 1e-5);
            for (a, b) in g32.iter().zip(&got.grads) {
                assert_close(a.to_f64().as_slice(), b.as_slice(), 1e-5);
            }
            if train {
                let mut m = m.clone();
                m.update_buffers(&train_forward(&m, &x));
                m32.update_buffers(&cache);
                assert_close(&m32.buffers()[0].values, &m.running_mean, 1e-6);
                assert_close(&m32.buffers()[1].values, &m.running_var, 1e-6);
            }
        }
        assert_eq!(m32.num_batches_tracked, 1);
    }
}
