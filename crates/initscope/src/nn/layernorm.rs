//! LayerNorm as a module of a network spec: `layernorm(eps=1e-5, affine=true, gamma=SPEC,
//! beta=SPEC)`, as `torch.nn.LayerNorm(width, eps, elementwise_affine=affine)`: each sample
//! normalised over its units.
//!
//! ```text
//! forward:   mu = mean_j x_j,  var = mean_j (x_j - mu)^2 (biased),  rstd = 1/sqrt(var + eps)
//!            x̂ = (x - mu) rstd,  y = gamma ⊙ x̂ + beta        x, y: (batch, width); per row
//! backward:  dgamma = Σ_rows dy ⊙ x̂,  dbeta = Σ_rows dy       gamma, beta: (width)
//!            g = dy ⊙ gamma,  dx = rstd (g - mean_j g - x̂ mean_j (g ⊙ x̂))
//! ```
//! Tensors (only when `affine`): `weight` = gamma ([`ParamKind::NormGain`]) and `bias` = beta
//! ([`ParamKind::NormBias`]), both `[width]`; the gradient slice holds dgamma, then dbeta, each
//! as one row. Without `affine` there are no tensors and `y = x̂`, `g = dy`.
//!
//! The cache keeps x̂ in `pre`, y in `act` and each row's rstd in `stats`. The mean is taken
//! as `x_0 + mean_j (x_j - x_0)` (the row's first entry as a shift), so a row whose units are
//! all equal has x - mu = 0 exactly and maps to beta exactly; PyTorch's CPU kernel (Welford
//! moments accumulated in the input's dtype) has the same property. PyTorch writes the output
//! as `(x rstd + (-mu rstd)) gamma + beta`; the two agree up to rounding (relative 1e-5 in f32
//! except where y is near 0 by cancellation).

use super::build::Builder;
use super::module::{Cache, Module, Pass, TensorDecl};
use super::param::ParamKind;
use super::spec::{push_init, push_number, Form, KindSpec, Parts, Syntax, NORM_EPS};
use super::torch::Torch;
use crate::init::Init;
use crate::matrix::Matrix;
use crate::scalar::Float;

/// `torch.nn.LayerNorm(width, eps, elementwise_affine)`: each row normalised over its `width`
/// units, then scaled by gamma and shifted by beta when affine.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerNorm<T> {
    pub width: usize,
    pub eps: T,
    pub affine: bool,
    /// gamma, `(width)`; empty without `affine`.
    pub gamma: Vec<T>,
    /// beta, `(width)`; empty without `affine`.
    pub beta: Vec<T>,
}

impl<T: Float> LayerNorm<T> {
    /// A LayerNorm over `width` units with `spec`'s eps and affine flag; `gamma` and `beta`
    /// are the initial gain and bias (`width` values each when `spec.affine`, else empty).
    pub fn new(width: usize, spec: &LayerNormSpec, gamma: &[f64], beta: &[f64]) -> Self {
        let want = if spec.affine { width } else { 0 };
        assert_eq!(gamma.len(), want, "layernorm({width}): gamma length");
        assert_eq!(beta.len(), want, "layernorm({width}): beta length");
        LayerNorm {
            width,
            eps: T::from_f64(spec.eps),
            affine: spec.affine,
            gamma: gamma.iter().map(|&v| T::from_f64(v)).collect(),
            beta: beta.iter().map(|&v| T::from_f64(v)).collect(),
        }
    }
}

/// The mean and biased variance of `xs`, the mean as `x_0 + mean (x - x_0)` (exact when every
/// entry is equal), the variance as `mean (x - mu)^2` (two passes; never negative).
fn mean_var<T: Float>(xs: &[T]) -> (T, T) {
    let Some(&shift) = xs.first() else {
        return (T::ZERO, T::ZERO);
    };
    let n = T::from_f64(xs.len() as f64);
    let mut s = T::ZERO;
    for &x in xs {
        s += x - shift;
    }
    let mu = shift + s / n;
    let mut v = T::ZERO;
    for &x in xs {
        let d = x - mu;
        v += d * d;
    }
    (mu, v / n)
}

impl<T: Float> Module<T> for LayerNorm<T> {
    fn kind(&self) -> &'static str {
        "layernorm"
    }

    fn in_width(&self) -> usize {
        self.width
    }

    fn out_width(&self) -> usize {
        self.width
    }

    fn tensors(&self) -> Vec<TensorDecl> {
        if !self.affine {
            return Vec::new();
        }
        let decl = |key: &str, kind| TensorDecl {
            key: key.into(),
            dims: vec![self.width],
            kind,
            linear: false,
        };
        vec![
            decl("weight", ParamKind::NormGain),
            decl("bias", ParamKind::NormBias),
        ]
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

    /// `pre` (x̂) and `act` (y) of `(capacity, width)`, `stats` one rstd per row.
    fn cache(&self, capacity: usize) -> Cache<T> {
        let mut c = Cache::new(capacity, self.width, false);
        c.stats = vec![T::ZERO; capacity];
        c
    }

    /// Row by row: the moments, x̂ into `pre`, y into `act`, rstd into `stats`. Training and
    /// evaluation are the same.
    fn forward(&self, x: &Matrix<T>, cache: &mut Cache<T>, _pass: &mut Pass<'_>) {
        let batch = x.rows();
        cache.pre.set_rows(batch);
        cache.act.set_rows(batch);
        let Cache {
            pre, act, stats, ..
        } = cache;
        for (i, stat) in stats[..batch].iter_mut().enumerate() {
            let xr = x.row(i);
            let (mu, var) = mean_var(xr);
            let rstd = T::ONE / (var + self.eps).sqrt();
            *stat = rstd;
            let xh = pre.row_mut(i);
            for (h, &v) in xh.iter_mut().zip(xr) {
                *h = (v - mu) * rstd;
            }
            let y = act.row_mut(i);
            if self.affine {
                for (((y, &h), &g), &b) in y.iter_mut().zip(&*xh).zip(&self.gamma).zip(&self.beta) {
                    *y = g * h + b;
                }
            } else {
                y.copy_from_slice(xh);
            }
        }
    }

    /// dgamma and dbeta accumulate down the rows (contiguous); dx row by row from the row's
    /// `mean_j g` and `mean_j (g ⊙ x̂)`. `dy` is overwritten with g.
    fn backward(
        &self,
        _x: &Matrix<T>,
        cache: &mut Cache<T>,
        dy: &mut Matrix<T>,
        grads: &mut [Matrix<T>],
        dx: Option<&mut Matrix<T>>,
    ) {
        let batch = dy.rows();
        if self.affine {
            let (dgamma, dbeta) = grads.split_at_mut(1);
            let (dgamma, dbeta) = (dgamma[0].as_mut_slice(), dbeta[0].as_mut_slice());
            dgamma.fill(T::ZERO);
            dbeta.fill(T::ZERO);
            for i in 0..batch {
                let (d, xh) = (dy.row(i), cache.pre.row(i));
                for (((dg, db), &d), &h) in dgamma.iter_mut().zip(dbeta.iter_mut()).zip(d).zip(xh) {
                    *dg += d * h;
                    *db += d;
                }
            }
        }
        let Some(dx) = dx else { return };
        dx.set_rows(batch);
        let n = T::from_f64(self.width as f64);
        for i in 0..batch {
            let (g, xh) = (dy.row_mut(i), cache.pre.row(i));
            if self.affine {
                for (g, &gamma) in g.iter_mut().zip(&self.gamma) {
                    *g *= gamma;
                }
            }
            let (mut sg, mut sgx) = (T::ZERO, T::ZERO);
            for (&g, &h) in g.iter().zip(xh) {
                sg += g;
                sgx += g * h;
            }
            let (mg, mgx) = (sg / n, sgx / n);
            let rstd = cache.stats[i];
            for ((d, &g), &h) in dx.row_mut(i).iter_mut().zip(&*g).zip(xh) {
                *d = rstd * (g - mg - h * mgx);
            }
        }
    }

    fn clone_box(&self) -> Box<dyn Module<T>> {
        Box::new(self.clone())
    }
}

/// `layernorm(eps, affine, gamma, beta)`: `None` initializers are gamma 1 and beta 0.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerNormSpec {
    pub eps: f64,
    pub affine: bool,
    pub gamma: Option<Init>,
    pub beta: Option<Init>,
}

impl KindSpec for LayerNormSpec {
    const SYNTAX: Syntax = Syntax {
        names: &["layernorm"],
        keys: &["eps", "affine", "gamma", "beta"],
        positional: 0,
        form: Form::Args,
    };

    fn parse(p: &Parts<'_>) -> Result<Self, String> {
        let affine = p.bool_or(1, true)?;
        let (gamma, beta) = (p.init(2)?, p.init(3)?);
        if !affine && (gamma.is_some() || beta.is_some()) {
            return Err(p.err("gamma and beta need affine=true"));
        }
        Ok(LayerNormSpec {
            eps: p.positive_or(0, NORM_EPS)?,
            affine,
            gamma,
            beta,
        })
    }

    fn args(&self) -> Vec<String> {
        let mut args = Vec::new();
        push_number(&mut args, "eps", self.eps, NORM_EPS);
        if !self.affine {
            args.push("affine=false".into());
        }
        push_init(&mut args, "gamma", &self.gamma);
        push_init(&mut args, "beta", &self.beta);
        args
    }

    fn build<T: Float>(
        &self,
        width: usize,
        b: &mut Builder<'_>,
    ) -> Result<Box<dyn Module<T>>, String> {
        let (gamma, beta) = if self.affine {
            (
                b.draw("weight", width, self.gamma.as_ref(), 1.0),
                b.draw("bias", width, self.beta.as_ref(), 0.0),
            )
        } else {
            (Vec::new(), Vec::new())
        };
        Ok(Box::new(LayerNorm::<T>::new(width, self, &gamma, &beta)))
    }

    fn torch(&self, width: usize, _t: &Torch) -> String {
        format!(
            "nn.LayerNorm({width}, eps={}, elementwise_affine={})",
            crate::spec::fmt_f64(self.eps),
            if self.affine { "True" } else { "False" }
        )
    }
}

/// Tests, and the harness the norm kinds' tests share (finite differences, bitwise symmetry).
#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::rng::{self, Stream};

    /// What one forward and backward pass produced.
    pub(in crate::nn) struct Run {
        pub y: Matrix<f64>,
        pub grads: Vec<Matrix<f64>>,
        pub dx: Matrix<f64>,
    }

    /// A `(rows, cols)` matrix of standard normal draws from data stream `seed`, scaled by
    /// `scale` and shifted by `shift`.
    pub(in crate::nn) fn normal(
        rows: usize,
        cols: usize,
        seed: u64,
        scale: f64,
        shift: f64,
    ) -> Matrix<f64> {
        let mut r = rng::stream(seed, Stream::Data);
        let data = (0..rows * cols)
            .map(|_| shift + scale * rng::normal(&mut r))
            .collect();
        Matrix::from_vec(rows, cols, data)
    }

    /// Forward of `x` (a training pass when `train`) on a fresh cache, then backward of `dy`:
    /// the output, the gradients (one row per tensor) and dx.
    pub(in crate::nn) fn run<T: Float, M: Module<T>>(
        m: &M,
        x: &Matrix<T>,
        dy: &Matrix<T>,
        train: bool,
    ) -> (Matrix<T>, Vec<Matrix<T>>, Matrix<T>, Cache<T>) {
        let batch = x.rows();
        let mut cache = m.cache(batch);
        let mut stream = rng::stream(0, Stream::Dropout);
        let mut pass = if train {
            Pass::Train(&mut stream)
        } else {
            Pass::Eval
        };
        m.forward(x, &mut cache, &mut pass);
        let mut grads: Vec<Matrix<T>> = m
            .tensors()
            .iter()
            .map(|t| Matrix::zeros(1, t.dims.iter().product()))
            .collect();
        let mut d = dy.clone();
        let mut dx = Matrix::zeros(batch, m.in_width());
        m.backward(x, &mut cache, &mut d, &mut grads, Some(&mut dx));
        (cache.output().clone(), grads, dx, cache)
    }

    /// [`run`] in f64, without the cache.
    pub(in crate::nn) fn run64<M: Module<f64>>(
        m: &M,
        x: &Matrix<f64>,
        dy: &Matrix<f64>,
        train: bool,
    ) -> Run {
        let (y, grads, dx, _) = run(m, x, dy, train);
        Run { y, grads, dx }
    }

    /// S = Σ y ⊙ r for the forward pass of `x`.
    fn objective<M: Module<f64>>(m: &M, x: &Matrix<f64>, r: &Matrix<f64>, train: bool) -> f64 {
        let mut cache = m.cache(x.rows());
        let mut stream = rng::stream(0, Stream::Dropout);
        let mut pass = if train {
            Pass::Train(&mut stream)
        } else {
            Pass::Eval
        };
        m.forward(x, &mut cache, &mut pass);
        let y = cache.output();
        y.as_slice()
            .iter()
            .zip(r.as_slice())
            .map(|(y, r)| y * r)
            .sum()
    }

    /// Central finite differences (h = 1e-6) of S = Σ y ⊙ r against the backward pass of
    /// dy = r, for dx and every tensor; relative error `|a - f| / max(|a|, |f|, 1e-3)` below
    /// 1e-6. Each difference re-runs the forward pass (in training mode when `train`, so batch
    /// statistics follow x). Returns the worst error.
    pub(in crate::nn) fn check_gradients<M: Module<f64> + Clone>(
        m: &M,
        x: &Matrix<f64>,
        train: bool,
    ) -> f64 {
        const H: f64 = 1e-6;
        let r = normal(x.rows(), m.out_width(), 99, 1.0, 0.0);
        let got = run64(m, x, &r, train);
        let mut worst = 0.0f64;
        let mut compare = |what: String, analytic: f64, fd: f64| {
            let err = (analytic - fd).abs() / analytic.abs().max(fd.abs()).max(1e-3);
            assert!(
                err < 1e-6,
                "{what}: backward {analytic} vs FD {fd} (rel {err:e})"
            );
            worst = worst.max(err);
        };
        for e in 0..x.as_slice().len() {
            let mut xp = x.clone();
            xp.as_mut_slice()[e] += H;
            let mut xm = x.clone();
            xm.as_mut_slice()[e] -= H;
            let fd = (objective(m, &xp, &r, train) - objective(m, &xm, &r, train)) / (2.0 * H);
            compare(format!("dx[{e}]"), got.dx.as_slice()[e], fd);
        }
        for (k, t) in m.tensors().iter().enumerate() {
            for e in 0..m.value(k).len() {
                let mut mp = m.clone();
                mp.value_mut(k)[e] += H;
                let mut mm = m.clone();
                mm.value_mut(k)[e] -= H;
                let fd = (objective(&mp, x, &r, train) - objective(&mm, x, &r, train)) / (2.0 * H);
                compare(format!("d{}[{e}]", t.key), got.grads[k].as_slice()[e], fd);
            }
        }
        worst
    }

    /// Column `b` of `m` set bitwise equal to column `a`.
    pub(in crate::nn) fn copy_column(m: &mut Matrix<f64>, a: usize, b: usize) {
        for i in 0..m.rows() {
            let v = m.get(i, a);
            m.set(i, b, v);
        }
    }

    /// Columns `a` and `b` of `x` and of a random dy made bitwise equal (the caller has made
    /// the module's per-unit values of `a` and `b` equal): the output columns, the dx columns
    /// and every tensor's entries `a` and `b` are bitwise equal.
    pub(in crate::nn) fn check_symmetry<M: Module<f64>>(
        m: &M,
        x: &Matrix<f64>,
        train: bool,
        a: usize,
        b: usize,
    ) {
        let mut x = x.clone();
        copy_column(&mut x, a, b);
        let mut dy = normal(x.rows(), m.out_width(), 7, 1.0, 0.0);
        copy_column(&mut dy, a, b);
        let got = run64(m, &x, &dy, train);
        for i in 0..x.rows() {
            assert_eq!(
                got.y.get(i, a).to_bits(),
                got.y.get(i, b).to_bits(),
                "y row {i}"
            );
            assert_eq!(
                got.dx.get(i, a).to_bits(),
                got.dx.get(i, b).to_bits(),
                "dx row {i}"
            );
        }
        for (k, g) in got.grads.iter().enumerate() {
            let g = g.as_slice();
            assert_eq!(g[a].to_bits(), g[b].to_bits(), "tensor {k}");
        }
    }

    fn spec(eps: f64, affine: bool) -> LayerNormSpec {
        LayerNormSpec {
            eps,
            affine,
            gamma: None,
            beta: None,
        }
    }

    fn affine(width: usize) -> LayerNorm<f64> {
        let gamma: Vec<f64> = (0..width).map(|j| 0.8 + 0.15 * j as f64).collect();
        let beta: Vec<f64> = (0..width).map(|j| 0.1 * j as f64 - 0.2).collect();
        LayerNorm::new(width, &spec(1e-5, true), &gamma, &beta)
    }

    #[test]
    fn tensors_are_weight_and_bias_only_when_affine() {
        let m = affine(4);
        let t = m.tensors();
        assert_eq!(t.len(), 2);
        assert_eq!(
            (t[0].key.as_str(), t[0].kind, &t[0].dims[..], t[0].linear),
            ("weight", ParamKind::NormGain, &[4][..], false)
        );
        assert_eq!(
            (t[1].key.as_str(), t[1].kind, &t[1].dims[..], t[1].linear),
            ("bias", ParamKind::NormBias, &[4][..], false)
        );
        assert_eq!(m.value(0), &m.gamma[..]);
        assert_eq!(m.value(1), &m.beta[..]);
        let plain = LayerNorm::<f64>::new(4, &spec(1e-5, false), &[], &[]);
        assert!(plain.tensors().is_empty());
        assert_eq!(
            (plain.kind(), plain.in_width(), plain.out_width()),
            ("layernorm", 4, 4)
        );
    }

    #[test]
    fn layernorm_backward_matches_finite_differences() {
        let x = normal(5, 4, 1, 1.5, 0.3);
        check_gradients(&affine(4), &x, true);
        let plain = LayerNorm::<f64>::new(4, &spec(1e-5, false), &[], &[]);
        check_gradients(&plain, &x, true);
        check_gradients(&plain, &x, false);
    }

    #[test]
    fn layernorm_forward_normalises_each_row() {
        let x = normal(5, 4, 2, 2.0, -1.0);
        let plain = LayerNorm::<f64>::new(4, &spec(0.0, false), &[], &[]);
        let (y, ..) = run(&plain, &x, &Matrix::zeros(5, 4), true);
        for i in 0..5 {
            let r = y.row(i);
            let mean = r.iter().sum::<f64>() / 4.0;
            let var = r.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / 4.0;
            assert!(mean.abs() < 1e-14 && (var - 1.0).abs() < 1e-12, "row {i}");
        }
        // gamma and beta act per unit on the plain output.
        let m = affine(4);
        let (ya, ..) = run(&m, &x, &Matrix::zeros(5, 4), true);
        let plain = LayerNorm::<f64>::new(4, &spec(1e-5, false), &[], &[]);
        let (yp, ..) = run(&plain, &x, &Matrix::zeros(5, 4), true);
        for i in 0..5 {
            for j in 0..4 {
                let want = m.gamma[j] * yp.get(i, j) + m.beta[j];
                assert_eq!(ya.get(i, j), want);
            }
        }
    }

    #[test]
    fn layernorm_columns_with_equal_inputs_and_parameters_stay_bitwise_equal() {
        let mut m = affine(4);
        m.gamma[3] = m.gamma[1];
        m.beta[3] = m.beta[1];
        let x = normal(5, 4, 3, 1.0, 0.5);
        check_symmetry(&m, &x, true, 1, 3);
        let plain = LayerNorm::<f64>::new(4, &spec(1e-5, false), &[], &[]);
        check_symmetry(&plain, &x, true, 0, 2);
    }

    #[test]
    fn layernorm_of_a_row_of_equal_units_is_beta_exactly() {
        let m = affine(3);
        let mut x = normal(4, 3, 4, 1.0, 0.0);
        for (i, v) in [0.1, -7.3, 1e-3, 123.456].into_iter().enumerate() {
            x.row_mut(i).fill(v);
        }
        let (y, grads, dx, _) = run(&m, &x, &normal(4, 3, 5, 1.0, 0.0), true);
        for i in 0..4 {
            assert_eq!(y.row(i), &m.beta[..], "row {i}");
            assert!(dx.row(i).iter().all(|v| v.is_finite()));
        }
        assert_eq!(grads[0].as_slice(), &[0.0; 3], "x̂ = 0: no gain gradient");
        // The same in f32.
        let m32 = LayerNorm::<f32>::new(3, &spec(1e-5, true), &[0.5, 1.0, 2.0], &[0.1, 0.2, 0.3]);
        let (y, ..) = run(&m32, &x.cast::<f32>(), &Matrix::zeros(4, 3), true);
        for i in 0..4 {
            assert_eq!(y.row(i), &m32.beta[..], "f32 row {i}");
        }
    }

    #[test]
    fn layernorm_in_f32_agrees_with_f64() {
        let x = normal(5, 4, 6, 1.0, 0.2);
        let dy = normal(5, 4, 8, 1.0, 0.0);
        let m = affine(4);
        let s = spec(1e-5, true);
        let gamma: Vec<f64> = m.gamma.clone();
        let beta: Vec<f64> = m.beta.clone();
        let m32 = LayerNorm::<f32>::new(4, &s, &gamma, &beta);
        assert_eq!(m32.eps, 1e-5f32);
        let (y64, g64, dx64, _) = run(&m, &x, &dy, true);
        let (y32, g32, dx32, _) = run(&m32, &x.cast(), &dy.cast(), true);
        assert_close(y32.to_f64().as_slice(), y64.as_slice(), 1e-5);
        assert_close(dx32.to_f64().as_slice(), dx64.as_slice(), 1e-5);
        for (a, b) in g32.iter().zip(&g64) {
            assert_close(a.to_f64().as_slice(), b.as_slice(), 1e-5);
        }
    }

    /// `|a - b| <= tol max(|b|, 1)` entrywise.
    pub(in crate::nn) fn assert_close(a: &[f64], b: &[f64], tol: f64) {
        assert_eq!(a.len(), b.len());
        for (k, (a, b)) in a.iter().zip(b).enumerate() {
            assert!((a - b).abs() <= tol * b.abs().max(1.0), "[{k}]: {a} vs {b}");
        }
    }

    #[test]
    fn passes_reuse_the_cache_buffers() {
        let m = affine(4);
        let mut cache = m.cache(6);
        let ptrs = |c: &Cache<f64>| {
            (
                c.pre.as_slice().as_ptr(),
                c.act.as_slice().as_ptr(),
                c.stats.as_ptr(),
                c.stats.len(),
            )
        };
        let before = ptrs(&cache);
        let mut stream = rng::stream(0, Stream::Dropout);
        for rows in [3, 6] {
            let x = normal(rows, 4, rows as u64, 1.0, 0.0);
            m.forward(&x, &mut cache, &mut Pass::Train(&mut stream));
            assert_eq!(ptrs(&cache), before);
        }
    }
}
