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
//! Tensors (only when `affine`): `weight` = gamma ([`super::ParamKind::NormGain`]) and `bias` = beta
//! ([`super::ParamKind::NormBias`]), both `[width]`; the gradient slice holds dgamma, then dbeta, each
//! as one row. Without `affine` there are no tensors and `y = x̂`, `g = dy`.
//!
//! The cache keeps x̂ in `pre`, y in `act` and each row's rstd in `stats`. The mean is taken
//! as `x_0 + mean_j (x_j - x_0)` (the row's first entry as a shift), so a row whose units are
//! all equal has x - mu = 0 exactly and maps to beta exactly; PyTorch's CPU kernel (Welford
//! moments accumulated in the input's dtype) has the same property. PyTorch writes the output
//! as `(x rstd + (-mu rstd)) gamma + beta`; the two agree up to rounding (relative 1e-5 in f32
//! except where y is near 0 by cancellation).
//!
//! The row sums (the moments, `Σ g` and `Σ g ⊙ x̂`) run in 32 lanes added pairwise at the end
//! (`PACKS`), explicit AVX2 instructions where the CPU has them: the order of the additions is
//! fixed, so every instruction set gives the same bits. dgamma and dbeta add the rows in order.

use super::build::Builder;
use super::module::{Anatomy, Cache, Facts, Module, Pass, Step0, TensorDecl};
use super::spec::{push_init, push_number, Form, KindSpec, Parts, Syntax, NORM_EPS};
use super::torch::Torch;
use crate::init::Init;
use crate::matrix::Matrix;
use crate::scalar::Float;
use crate::spec::fmt_num;

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

/// Eight values, one per SIMD lane (one AVX2 register in f32, two in f64).
type Pack<T> = [T; 8];

/// Packs of accumulators in the row reductions: entry j of a row goes to lane j mod 32
/// (`PACKS` packs of 8), the entries past the last full group of 32 to one separate sum, and
/// the 32 lanes are added pairwise at the end ([`fold`]). The order of the additions is fixed,
/// so every instruction set gives the same bits; the four independent packs keep the adder's
/// pipeline full.
const PACKS: usize = 4;
const GROUP: usize = 8 * PACKS;

/// How the lane arithmetic is done; the passes are compiled once per implementation. Every
/// operation is one IEEE operation per lane (no fused multiply-adds), so both give the same
/// results.
trait Lanes: Copy {
    fn add<T: Float>(self, a: Pack<T>, b: Pack<T>) -> Pack<T>;
    fn sub<T: Float>(self, a: Pack<T>, b: Pack<T>) -> Pack<T>;
    fn mul<T: Float>(self, a: Pack<T>, b: Pack<T>) -> Pack<T>;
}

/// Explicit AVX2 instructions: left to itself the compiler turned the lane arrays into
/// two-lane operations and stack traffic.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
struct Avx2(pulp::x86::V3);

#[cfg(target_arch = "x86_64")]
impl Lanes for Avx2 {
    #[inline(always)]
    fn add<T: Float>(self, a: Pack<T>, b: Pack<T>) -> Pack<T> {
        T::add8_v3(self.0, a, b)
    }
    #[inline(always)]
    fn sub<T: Float>(self, a: Pack<T>, b: Pack<T>) -> Pack<T> {
        T::sub8_v3(self.0, a, b)
    }
    #[inline(always)]
    fn mul<T: Float>(self, a: Pack<T>, b: Pack<T>) -> Pack<T> {
        T::mul8_v3(self.0, a, b)
    }
}

/// Lane loops the compiler vectorises as it can (other CPUs).
#[derive(Clone, Copy)]
struct Portable;

impl Lanes for Portable {
    #[inline(always)]
    fn add<T: Float>(self, a: Pack<T>, b: Pack<T>) -> Pack<T> {
        std::array::from_fn(|k| a[k] + b[k])
    }
    #[inline(always)]
    fn sub<T: Float>(self, a: Pack<T>, b: Pack<T>) -> Pack<T> {
        std::array::from_fn(|k| a[k] - b[k])
    }
    #[inline(always)]
    fn mul<T: Float>(self, a: Pack<T>, b: Pack<T>) -> Pack<T> {
        std::array::from_fn(|k| a[k] * b[k])
    }
}

/// Pack `p` of a group of [`GROUP`] entries.
#[inline(always)]
fn pack<T: Float>(group: &[T], p: usize) -> Pack<T> {
    group[8 * p..8 * p + 8].try_into().expect("a pack of 8")
}

/// The 32 lanes added pairwise (lane k + lane k + 16, then + k + 8, ...), then the tail's sum.
#[inline(always)]
fn fold<T: Float, L: Lanes>(l: L, acc: [Pack<T>; PACKS], tail: T) -> T {
    let half = [l.add(acc[0], acc[2]), l.add(acc[1], acc[3])];
    let mut v = l.add(half[0], half[1]);
    for w in [4, 2, 1] {
        for k in 0..w {
            v[k] += v[k + w];
        }
    }
    v[0] + tail
}

/// `Σ_j g(x_j)` in the lane order of [`PACKS`]; `g` is given lane-wise (`pack`) and for one
/// value (`one`), the same operations.
#[inline(always)]
fn lane_sum<T: Float, L: Lanes>(
    l: L,
    xs: &[T],
    pack_g: impl Fn(Pack<T>) -> Pack<T>,
    one: impl Fn(T) -> T,
) -> T {
    let groups = xs.chunks_exact(GROUP);
    let tail = groups.remainder().iter().fold(T::ZERO, |t, &x| t + one(x));
    let mut acc = [[T::ZERO; 8]; PACKS];
    for c in groups {
        for (p, a) in acc.iter_mut().enumerate() {
            *a = l.add(*a, pack_g(pack(c, p)));
        }
    }
    fold(l, acc, tail)
}

/// The mean and biased variance of `xs`, the mean as `x_0 + mean (x - x_0)` (exact when every
/// entry is equal), the variance as `mean (x - mu)^2` (two passes; never negative).
#[inline(always)]
fn mean_var<T: Float, L: Lanes>(l: L, xs: &[T]) -> (T, T) {
    let Some(&shift) = xs.first() else {
        return (T::ZERO, T::ZERO);
    };
    let n = T::from_f64(xs.len() as f64);
    let s = lane_sum(l, xs, |x| l.sub(x, [shift; 8]), |x| x - shift);
    let mu = shift + s / n;
    let v = lane_sum(
        l,
        xs,
        |x| {
            let d = l.sub(x, [mu; 8]);
            l.mul(d, d)
        },
        |x| (x - mu) * (x - mu),
    );
    (mu, v / n)
}

/// `(Σ_j g_j, Σ_j g_j h_j)` in the lane order of [`PACKS`].
#[inline(always)]
fn lane_sums2<T: Float, L: Lanes>(l: L, g: &[T], h: &[T]) -> (T, T) {
    let (gc, hc) = (g.chunks_exact(GROUP), h.chunks_exact(GROUP));
    let (mut tg, mut tgx) = (T::ZERO, T::ZERO);
    for (&g, &h) in gc.remainder().iter().zip(hc.remainder()) {
        tg += g;
        tgx += g * h;
    }
    let (mut sg, mut sgx) = ([[T::ZERO; 8]; PACKS], [[T::ZERO; 8]; PACKS]);
    for (g, h) in gc.zip(hc) {
        for p in 0..PACKS {
            let (gp, hp) = (pack(g, p), pack(h, p));
            sg[p] = l.add(sg[p], gp);
            sgx[p] = l.add(sgx[p], l.mul(gp, hp));
        }
    }
    (fold(l, sg, tg), fold(l, sgx, tgx))
}

/// [`LayerNorm`]'s forward pass of a batch inside a SIMD dispatch (compiled once per
/// instruction set): row by row the moments, then x̂ and y in one pass.
struct Forward<'a, T, L> {
    lanes: L,
    ln: &'a LayerNorm<T>,
    x: &'a Matrix<T>,
    pre: &'a mut Matrix<T>,
    act: &'a mut Matrix<T>,
    stats: &'a mut [T],
}

impl<T: Float, L: Lanes> pulp::WithSimd for Forward<'_, T, L> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        let Forward {
            lanes,
            ln,
            x,
            pre,
            act,
            stats,
        } = self;
        for (i, stat) in stats.iter_mut().enumerate() {
            let xr = x.row(i);
            let (mu, var) = mean_var(lanes, xr);
            let rstd = T::ONE / (var + ln.eps).sqrt();
            *stat = rstd;
            let (xh, y) = (pre.row_mut(i), act.row_mut(i));
            if ln.affine {
                for ((((h, y), &v), &g), &b) in xh
                    .iter_mut()
                    .zip(y.iter_mut())
                    .zip(xr)
                    .zip(&ln.gamma)
                    .zip(&ln.beta)
                {
                    let t = (v - mu) * rstd;
                    *h = t;
                    *y = g * t + b;
                }
            } else {
                for ((h, y), &v) in xh.iter_mut().zip(y.iter_mut()).zip(xr) {
                    let t = (v - mu) * rstd;
                    *h = t;
                    *y = t;
                }
            }
        }
    }
}

/// [`LayerNorm`]'s backward pass inside a SIMD dispatch: per row, dgamma and dbeta accumulate
/// (each unit's sum in row order, as a row-by-row loop adds them), g = dy ⊙ gamma is written
/// over dy, `Σ g` and `Σ g ⊙ x̂` are summed lane by lane, then dx is written.
struct Backward<'a, T, L> {
    lanes: L,
    ln: &'a LayerNorm<T>,
    xh: &'a Matrix<T>,
    rstd: &'a [T],
    dy: &'a mut Matrix<T>,
    /// dgamma and dbeta (zeroed by the caller), when affine.
    dparams: Option<(&'a mut [T], &'a mut [T])>,
    dx: Option<&'a mut Matrix<T>>,
}

impl<T: Float, L: Lanes> pulp::WithSimd for Backward<'_, T, L> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        let Backward {
            lanes,
            ln,
            xh,
            rstd,
            dy,
            mut dparams,
            mut dx,
        } = self;
        let n = T::from_f64(ln.width as f64);
        for (i, &rstd) in rstd.iter().enumerate() {
            let (g, h) = (dy.row_mut(i), xh.row(i));
            if let Some((dgamma, dbeta)) = dparams.as_mut() {
                for (((dg, db), &d), &h) in dgamma.iter_mut().zip(dbeta.iter_mut()).zip(&*g).zip(h)
                {
                    *dg += d * h;
                    *db += d;
                }
            }
            let Some(dx) = dx.as_deref_mut() else {
                continue;
            };
            if ln.affine {
                for (g, &gamma) in g.iter_mut().zip(&ln.gamma) {
                    *g *= gamma;
                }
            }
            let (sg, sgx) = lane_sums2(lanes, g, h);
            let (mg, mgx) = (sg / n, sgx / n);
            for ((d, &g), &h) in dx.row_mut(i).iter_mut().zip(&*g).zip(h) {
                *d = rstd * (g - mg - h * mgx);
            }
        }
    }
}

/// Runs `op` with explicit AVX2 lanes where the CPU has them, else with portable lanes under
/// the widest instruction set pulp finds.
macro_rules! dispatch {
    ($op:ident { $($field:ident: $value:expr),* $(,)? }) => {{
        #[cfg(target_arch = "x86_64")]
        if let Some(v3) = pulp::x86::V3::try_new() {
            return pulp::Simd::vectorize(v3, $op { lanes: Avx2(v3), $($field: $value),* });
        }
        pulp::Arch::new().dispatch($op { lanes: Portable, $($field: $value),* })
    }};
}

impl<T: Float> Module<T> for LayerNorm<T> {
    fn kind(&self) -> &'static str {
        "layernorm"
    }

    fn anatomy(&self) -> Anatomy<'_, T> {
        Anatomy::LayerNorm {
            affine: self.affine,
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
        if !self.affine {
            return Vec::new();
        }
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
        dispatch!(Forward {
            ln: self,
            x: x,
            pre: pre,
            act: act,
            stats: &mut stats[..batch],
        });
    }

    /// dgamma and dbeta accumulate down the rows (contiguous); dx row by row from the row's
    /// `mean_j g` and `mean_j (g ⊙ x̂)`. `dy` is overwritten with g when dx is asked for.
    fn backward(
        &self,
        _x: &Matrix<T>,
        cache: &mut Cache<T>,
        dy: &mut Matrix<T>,
        grads: &mut [Matrix<T>],
        mut dx: Option<&mut Matrix<T>>,
    ) {
        let batch = dy.rows();
        let dparams = if self.affine {
            let (dgamma, dbeta) = grads.split_at_mut(1);
            let (dgamma, dbeta) = (dgamma[0].as_mut_slice(), dbeta[0].as_mut_slice());
            dgamma.fill(T::ZERO);
            dbeta.fill(T::ZERO);
            Some((dgamma, dbeta))
        } else {
            None
        };
        if let Some(dx) = dx.as_deref_mut() {
            dx.set_rows(batch);
        }
        dispatch!(Backward {
            ln: self,
            xh: &cache.pre,
            rstd: &cache.stats[..batch],
            dy: dy,
            dparams: dparams,
            dx: dx,
        });
    }

    /// A vector whose units are equal: x - mean = 0, y = beta, and the backward map
    /// (gamma/sqrt(eps)) (I - 11^T/n) sends a gradient equal across the units to 0 and amplifies
    /// any difference by 1/sqrt(eps); gamma = 0 stops the delta.
    fn explain_step0(&self, s: &Step0<'_, T>, facts: &mut Facts) {
        let eps = self.eps.to_f64();
        let amp = 1.0 / eps.sqrt();
        let gamma_zero = self.affine && self.gamma.iter().all(|&g| g == T::ZERO);
        if gamma_zero && s.dx.is_zero() {
            facts.zero.push(
                "gamma = 0, so the output is beta for every input and the delta passed back, gamma ⊙ ..., is 0"
                    .into(),
            );
        }
        if !s.x.rows_constant() {
            return;
        }
        let exact = s.cache.pre.is_zero();
        facts.notes.push(format!(
            "layernorm of a vector whose units are equal (every row): x - mean = 0{}, so the output is beta for every input; the backward map is (gamma/sqrt(eps)) (I - 11^T/n): a gradient equal across the units maps to exactly 0, any difference between units is amplified by 1/sqrt(eps) = {} (eps {})",
            if exact {
                " exactly".to_string()
            } else {
                format!(" in exact arithmetic (rounding of the mean leaves |x̂| = {})", fmt_num(s.cache.pre.norm()))
            },
            fmt_num(amp),
            fmt_num(eps)
        ));
        // What the map was applied to: gamma ⊙ delta.
        let width = self.width;
        let equal_units = (0..s.dy.rows()).all(|r| {
            let row = s.dy.row(r);
            let g = |j: usize| {
                if self.affine {
                    row[j] * self.gamma[j]
                } else {
                    row[j]
                }
            };
            (1..width).all(|j| g(j) == g(0))
        });
        if equal_units {
            if s.dx.is_zero() {
                facts.zero.push("gamma ⊙ delta is equal across the units, so the delta passed back is exactly 0".into());
            } else {
                facts.notes.push(format!(
                    "gamma ⊙ delta is equal across the units, so the delta passed back is 0 in exact arithmetic; rounding of its mean leaves |delta_x| = {} (a rounding residue), which reaches the parameters below",
                    fmt_num(s.dx.norm())
                ));
            }
        } else {
            facts.notes.push(format!(
                "gamma ⊙ delta differs across the units, so the delta passed back is nonzero: |delta_x| = {} against |delta_y| = {}",
                fmt_num(s.dx.norm()),
                fmt_num(s.dy.norm())
            ));
        }
        if self.affine && s.grads[0].is_zero() {
            facts.zero.push(if exact {
                "x̂ = 0, so dgamma = Σ delta ⊙ x̂ = 0".to_string()
            } else {
                "dgamma = Σ delta ⊙ x̂ = 0".to_string()
            });
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
    use crate::nn::ParamKind;
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

    /// The forward and backward passes written plainly (one sequential sum per row, as before
    /// the lane reductions), in f64: the reference the lane order is checked against.
    fn reference(m: &LayerNorm<f64>, x: &Matrix<f64>, dy: &Matrix<f64>) -> Run {
        let (rows, n) = (x.rows(), m.width);
        let (mut y, mut dx) = (Matrix::zeros(rows, n), Matrix::zeros(rows, n));
        let (mut dgamma, mut dbeta) = (vec![0.0; n], vec![0.0; n]);
        for i in 0..rows {
            let xr = x.row(i);
            let mu = xr.iter().sum::<f64>() / n as f64;
            let var = xr.iter().map(|v| (v - mu) * (v - mu)).sum::<f64>() / n as f64;
            let rstd = 1.0 / (var + m.eps).sqrt();
            let xh: Vec<f64> = xr.iter().map(|v| (v - mu) * rstd).collect();
            let gamma = |j: usize| if m.affine { m.gamma[j] } else { 1.0 };
            let g: Vec<f64> = (0..n).map(|j| dy.get(i, j) * gamma(j)).collect();
            let mg = g.iter().sum::<f64>() / n as f64;
            let mgx = g.iter().zip(&xh).map(|(g, h)| g * h).sum::<f64>() / n as f64;
            for j in 0..n {
                let b = if m.affine { m.beta[j] } else { 0.0 };
                y.set(i, j, gamma(j) * xh[j] + b);
                dx.set(i, j, rstd * (g[j] - mg - xh[j] * mgx));
                dgamma[j] += dy.get(i, j) * xh[j];
                dbeta[j] += dy.get(i, j);
            }
        }
        let grads = if m.affine {
            vec![
                Matrix::from_vec(1, n, dgamma),
                Matrix::from_vec(1, n, dbeta),
            ]
        } else {
            Vec::new()
        };
        Run { y, grads, dx }
    }

    /// Widths around the reductions' groups of 32: tail only, whole groups, groups and a tail.
    const WIDTHS: [usize; 5] = [7, 32, 40, 77, 256];

    fn wide(width: usize) -> LayerNorm<f64> {
        let gamma: Vec<f64> = (0..width).map(|j| 0.7 + 0.01 * j as f64).collect();
        let beta: Vec<f64> = (0..width).map(|j| 0.02 * j as f64 - 0.3).collect();
        LayerNorm::new(width, &spec(1e-5, true), &gamma, &beta)
    }

    #[test]
    fn layernorm_at_wide_rows_matches_the_plain_formulas() {
        for width in WIDTHS {
            let x = normal(6, width, 10 + width as u64, 1.3, 0.4);
            let dy = normal(6, width, 11, 1.0, 0.0);
            for m in [
                wide(width),
                LayerNorm::new(width, &spec(1e-5, false), &[], &[]),
            ] {
                let want = reference(&m, &x, &dy);
                let got = run64(&m, &x, &dy, true);
                assert_close(got.y.as_slice(), want.y.as_slice(), 1e-13);
                assert_close(got.dx.as_slice(), want.dx.as_slice(), 1e-12);
                for (a, b) in got.grads.iter().zip(&want.grads) {
                    assert_close(a.as_slice(), b.as_slice(), 1e-13);
                }
                // And in f32, within f32 rounding of the f64 result.
                let m32 = LayerNorm::<f32>::new(width, &spec(1e-5, m.affine), &m.gamma, &m.beta);
                let (y, grads, dx, _) = run(&m32, &x.cast(), &dy.cast(), true);
                assert_close(y.to_f64().as_slice(), want.y.as_slice(), 1e-5);
                assert_close(dx.to_f64().as_slice(), want.dx.as_slice(), 2e-5);
                for (a, b) in grads.iter().zip(&want.grads) {
                    assert_close(a.to_f64().as_slice(), b.as_slice(), 1e-5);
                }
            }
        }
    }

    #[test]
    fn layernorm_at_wide_rows_matches_finite_differences() {
        let x = normal(3, 40, 12, 1.0, 0.2);
        check_gradients(&wide(40), &x, true);
    }

    #[test]
    fn layernorm_lanes_give_the_same_bits_on_every_instruction_set() {
        // The dispatched passes (explicit AVX2 where the CPU has it) against portable lanes.
        fn portable<T: Float>(m: &LayerNorm<T>, x: &Matrix<T>, dy: &Matrix<T>) -> Vec<Vec<T>> {
            let rows = x.rows();
            let mut c = m.cache(rows);
            let Cache {
                pre, act, stats, ..
            } = &mut c;
            pulp::Arch::new().dispatch(Forward {
                lanes: Portable,
                ln: m,
                x,
                pre,
                act,
                stats: &mut stats[..rows],
            });
            let (mut dgamma, mut dbeta) = (vec![T::ZERO; m.width], vec![T::ZERO; m.width]);
            let (mut d, mut dx) = (dy.clone(), Matrix::zeros(rows, m.width));
            pulp::Arch::new().dispatch(Backward {
                lanes: Portable,
                ln: m,
                xh: &c.pre,
                rstd: &c.stats[..rows],
                dy: &mut d,
                dparams: Some((&mut dgamma, &mut dbeta)),
                dx: Some(&mut dx),
            });
            vec![c.act.into_vec(), dx.into_vec(), dgamma, dbeta]
        }
        fn check<T: Float>(m: &LayerNorm<T>, x: &Matrix<T>, dy: &Matrix<T>) {
            let (y, grads, dx, _) = run(m, x, dy, true);
            let got = vec![
                y.into_vec(),
                dx.into_vec(),
                grads[0].as_slice().to_vec(),
                grads[1].as_slice().to_vec(),
            ];
            assert!(got == portable(m, x, dy), "width {}", m.width);
        }
        for width in WIDTHS {
            let x = normal(5, width, 13, 2.0, -0.7);
            let dy = normal(5, width, 14, 1.0, 0.0);
            let m = wide(width);
            check(&m, &x, &dy);
            let m32 = LayerNorm::<f32>::new(width, &spec(1e-5, true), &m.gamma, &m.beta);
            check(&m32, &x.cast(), &dy.cast());
        }
    }

    #[test]
    fn layernorm_at_wide_rows_keeps_equal_columns_equal_and_equal_rows_at_beta() {
        let mut m = wide(77);
        // Column 70 is in the tail, column 3 in the first group, column 37 in the second.
        for (a, b) in [(3, 70), (3, 37)] {
            m.gamma[b] = m.gamma[a];
            m.beta[b] = m.beta[a];
            check_symmetry(&m, &normal(4, 77, 15, 1.0, 0.5), true, a, b);
        }
        let mut x = normal(2, 77, 16, 1.0, 0.0);
        x.row_mut(0).fill(-2.75);
        x.row_mut(1).fill(1e-3);
        let (y, ..) = run(&m, &x, &Matrix::zeros(2, 77), true);
        assert_eq!(y.row(0), &m.beta[..]);
        assert_eq!(y.row(1), &m.beta[..]);
    }
}
