//! A linear layer fused with its activation and, for hidden layers of a plain MLP, inverted
//! dropout: the module of `--arch` networks.
//!
//! ```text
//! forward:   z = x W^T + b            x: (batch, fan_in), W: (fan_out, fan_in), b: (fan_out)
//!            a = f(z) ⊙ m             m: inverted-dropout mask (0 or 1/(1-p)), or all ones
//! backward:  dz = (da ⊙ m) ⊙ f'(z)    da = dLoss/da: (batch, fan_out)
//!            dW = dz^T x              (fan_out, fan_in)
//!            db = column sums of dz   (fan_out)
//!            dx = dz W                (batch, fan_in)
//! ```
//! Tensors: `weight` (fan_out, fan_in) and, unless the layer has none, `bias` (fan_out). The
//! gradient slice holds dW, then db as one row.
//!
//! Spec: `linear(N, init=SPEC, bias=SPEC|none)` ([`LinearSpec`]); a `linear` without a width,
//! allowed only as the last module, maps to the data's output width.

use super::act::activation_facts;
use super::build::Builder;
use super::module::{Anatomy, Cache, Facts, Module, Pass, Step0, TensorDecl};
use super::param::ParamKind;
use super::spec::{init_value, push_init, Form, KindSpec, Parts, Syntax};
use super::torch::Torch;
use crate::activation::Activation;
use crate::init::Init;
use crate::matrix::{matmul_nn, matmul_nt, matmul_tn, matmul_tn_add_scaled, Matrix};
use crate::rng;
use crate::scalar::Float;
use crate::small;
use crate::spec::fmt_num;

/// A fully connected layer. Weights are stored `(fan_out, fan_in)` like PyTorch's `nn.Linear`.
#[derive(Clone, Debug, PartialEq)]
pub struct Dense<T> {
    pub weight: Matrix<T>, // (fan_out, fan_in)
    pub bias: Vec<T>,      // (fan_out); all zero and never updated when `has_bias` is false
    pub has_bias: bool,
    pub activation: Activation,
    /// Inverted-dropout probability on the layer's output while training (0: none).
    pub dropout: f64,
}

impl<T: Float> Dense<T> {
    pub fn fan_in(&self) -> usize {
        self.weight.cols()
    }

    pub fn fan_out(&self) -> usize {
        self.weight.rows()
    }

    /// Whether the layer's products are [`small`]'s fixed-order chains rather than faer's.
    fn small(&self) -> bool {
        small::fits(self.fan_in(), self.fan_out())
    }

    /// `dW = dz^T x` (fan_out, fan_in).
    fn weight_grad(&self, d_out: &Matrix<T>, x: &Matrix<T>, dw: &mut Matrix<T>, scratch: &mut [T]) {
        if self.small() {
            small::weight_grad(dw, d_out, x, scratch);
        } else {
            matmul_tn(dw, d_out, x, false);
        }
    }

    /// `dx = dz W` (batch, fan_in).
    fn input_grad(&self, d_out: &Matrix<T>, dx: &mut Matrix<T>, scratch: &mut [T]) {
        dx.set_rows(d_out.rows());
        if self.small() {
            small::input_grad(dx, d_out, &self.weight, scratch);
        } else {
            matmul_nn(dx, d_out, &self.weight, false);
        }
    }

    /// `d_out`: dLoss/da on entry, dLoss/dz on exit (through dropout's mask and `f'`).
    fn d_pre(&self, cache: &Cache<T>, d_out: &mut Matrix<T>) {
        if cache.dropout {
            for (d, &m) in d_out.as_mut_slice().iter_mut().zip(cache.mask.as_slice()) {
                *d *= m;
            }
        }
        self.activation.backward_in_place(
            cache.pre.as_slice(),
            cache.act.as_slice(),
            d_out.as_mut_slice(),
        );
    }
}

impl<T: Float> Module<T> for Dense<T> {
    fn kind(&self) -> &'static str {
        "linear"
    }

    fn anatomy(&self) -> Anatomy<'_, T> {
        Anatomy::Linear {
            activation: self.activation,
            dropout: self.dropout,
            has_bias: self.has_bias,
        }
    }

    fn in_width(&self) -> usize {
        self.fan_in()
    }

    fn out_width(&self) -> usize {
        self.fan_out()
    }

    fn tensors(&self) -> Vec<TensorDecl> {
        let mut t = vec![TensorDecl {
            key: "weight".into(),
            dims: vec![self.fan_out(), self.fan_in()],
            kind: ParamKind::Weight,
            linear: true,
        }];
        if self.has_bias {
            t.push(TensorDecl {
                key: "bias".into(),
                dims: vec![self.fan_out()],
                kind: ParamKind::Bias,
                linear: true,
            });
        }
        t
    }

    fn value(&self, k: usize) -> &[T] {
        match k {
            0 => self.weight.as_slice(),
            _ => &self.bias,
        }
    }

    fn value_mut(&mut self, k: usize) -> &mut [T] {
        match k {
            0 => self.weight.as_mut_slice(),
            _ => &mut self.bias,
        }
    }

    fn cache(&self, capacity: usize) -> Cache<T> {
        let mut cache = Cache::new(capacity, self.fan_out(), self.dropout > 0.0);
        if self.small() {
            cache.scratch = vec![T::ZERO; small::SCRATCH];
        }
        cache
    }

    /// `z = x W^T + b`, `a = f(z)`, then, while training, the dropout mask (in evaluation the
    /// mask is all ones).
    fn forward(&self, x: &Matrix<T>, cache: &mut Cache<T>, pass: &mut Pass<'_>) {
        let batch = x.rows();
        cache.pre.set_rows(batch);
        cache.act.set_rows(batch);
        let bias = self.has_bias.then_some(self.bias.as_slice());
        if self.small() {
            // The bias starts each unit's sum.
            small::forward(&mut cache.pre, x, &self.weight, bias, &mut cache.scratch);
            self.activation
                .forward_rows(None, cache.pre.as_mut_slice(), cache.act.as_mut_slice());
        } else {
            matmul_nt(&mut cache.pre, x, &self.weight, false);
            self.activation
                .forward_rows(bias, cache.pre.as_mut_slice(), cache.act.as_mut_slice());
        }
        if cache.dropout {
            cache.out.set_rows(batch);
            cache.mask.set_rows(batch);
            match pass {
                Pass::Train(rng) => {
                    let p = self.dropout;
                    let keep = T::from_f64(1.0 / (1.0 - p));
                    for m in cache.mask.as_mut_slice() {
                        *m = if rng::uniform01(rng) < p {
                            T::ZERO
                        } else {
                            keep
                        };
                    }
                }
                Pass::Eval => cache.mask.fill(T::ONE),
            }
            let (out, act, mask) = (&mut cache.out, &cache.act, &cache.mask);
            for ((o, &a), &m) in out
                .as_mut_slice()
                .iter_mut()
                .zip(act.as_slice())
                .zip(mask.as_slice())
            {
                *o = a * m;
            }
        }
    }

    /// `d_out` holds dLoss/da on entry and dLoss/dz on exit (for the output layer, whose
    /// activation is the identity, dLoss/dz directly).
    fn backward(
        &self,
        x: &Matrix<T>,
        cache: &mut Cache<T>,
        d_out: &mut Matrix<T>,
        grads: &mut [Matrix<T>],
        d_input: Option<&mut Matrix<T>>,
    ) {
        self.d_pre(cache, d_out);
        self.weight_grad(d_out, x, &mut grads[0], &mut cache.scratch);
        if self.has_bias {
            bias_gradient(d_out, grads[1].as_mut_slice());
        }
        if let Some(dx) = d_input {
            self.input_grad(d_out, dx, &mut cache.scratch);
        }
    }

    /// `dx = dz W` first, with the weights the gradient belongs to, then `W += -lr dz^T x` as
    /// one GEMM that accumulates into `W`, and `b -= lr db` with the bias gradient left in
    /// `grads`. The weight gradient is never stored (`grads[0]` is stale): a pass over the
    /// weights and the gradient's memory traffic are saved. Equal to `backward` then the update
    /// up to the rounding of the weight step (the bias step is the same arithmetic). A small
    /// layer ([`small::fits`]) takes `backward`'s arithmetic exactly: dW into `grads[0]`, then
    /// `W -= lr dW` (the lanes' update, and at that size the pass over the weights is cheap).
    fn backward_sgd(
        &mut self,
        x: &Matrix<T>,
        cache: &mut Cache<T>,
        d_out: &mut Matrix<T>,
        lr: f64,
        grads: &mut [Matrix<T>],
        d_input: Option<&mut Matrix<T>>,
    ) {
        self.d_pre(cache, d_out);
        if let Some(dx) = d_input {
            self.input_grad(d_out, dx, &mut cache.scratch);
        }
        let lr = T::from_f64(lr);
        if self.small() {
            let d_weight = &mut grads[0];
            self.weight_grad(d_out, x, d_weight, &mut cache.scratch);
            for (w, &g) in self
                .weight
                .as_mut_slice()
                .iter_mut()
                .zip(d_weight.as_slice())
            {
                *w -= lr * g;
            }
        } else {
            matmul_tn_add_scaled(&mut self.weight, d_out, x, -lr);
        }
        if self.has_bias {
            let d_bias = grads[1].as_mut_slice();
            bias_gradient(d_out, d_bias);
            for (b, &g) in self.bias.iter_mut().zip(d_bias.iter()) {
                *b -= lr * g;
            }
        }
    }

    fn linear_at(&self, k: usize) -> Option<&Dense<T>> {
        (k == 0).then_some(self)
    }

    fn linear_at_mut(&mut self, k: usize) -> Option<&mut Dense<T>> {
        (k == 0).then_some(self)
    }

    fn linear_cache<'c>(&self, cache: &'c Cache<T>, k: usize) -> Option<&'c Cache<T>> {
        (k == 0).then_some(cache)
    }

    /// The output layer's and the hidden layers' zeros: W = 0 stops the delta passed back; a
    /// zero slope stops everything; a zero input (or one constant over the batch against a
    /// delta that sums to 0) stops dW.
    fn explain_step0(&self, s: &Step0<'_, T>, facts: &mut Facts) {
        let w_zero = self.weight.is_zero();
        let slope_zero = activation_facts(
            self.activation,
            s.cache.pre.as_slice(),
            s.cache.act.as_slice(),
            facts,
        );
        if w_zero {
            facts.notes.push(if self.has_bias {
                format!(
                    "W = 0: the output is f(b) for every input (constant over the batch; |b| = {})",
                    fmt_num(crate::matrix::norm(&self.bias))
                )
            } else {
                "W = 0 and no bias: the output is f(0) for every input".to_string()
            });
        }
        if s.dx.is_zero() && !slope_zero {
            facts.zero.push(if w_zero {
                format!(
                    "W = 0 ({}.weight), so the delta it passes back, (delta ⊙ f'(z)) W, is 0",
                    s.path
                )
            } else {
                "(delta ⊙ f'(z)) W = 0 exactly (the back-propagated signal cancels)".to_string()
            });
        }
        let dw_zero = s.grads[0].is_zero();
        if dw_zero && !slope_zero {
            facts.zero.push(if s.x.is_zero() {
                "its input x is 0 on every row, so dW = dz^T x = 0".to_string()
            } else if s.x.rows_identical() {
                "x is the same vector c for every row and every column of dz = delta ⊙ f'(z) sums to 0 (e.g. balanced classes with equal logits), so dW = (Σ_n dz[n])^T c = 0".to_string()
            } else {
                "dW = dz^T x = 0 exactly (cancellation over the batch)".to_string()
            });
        } else if w_zero && !dw_zero {
            facts.notes.push(format!(
                "W = 0, but dW = dz^T x is nonzero (|dW| {}): this layer moves at step 0",
                fmt_num(s.grads[0].norm())
            ));
        }
    }

    fn clone_box(&self) -> Box<dyn Module<T>> {
        Box::new(self.clone())
    }
}

/// `db = Σ_rows dz`, each unit's sum in row order.
fn bias_gradient<T: Float>(d_out: &Matrix<T>, db: &mut [T]) {
    pulp::Arch::new().dispatch(ColumnSums { m: d_out, out: db });
}

/// Columns kept in registers at once by [`ColumnSums`].
const STRIP: usize = 32;

/// `out_j = Σ_i m_ij` (starting from zero, rows in order) inside a SIMD dispatch: strip by strip
/// of [`STRIP`] columns, the strip's sums held in registers down all the rows, so each sum is
/// loaded and stored once instead of once per row. The same additions in the same order as a
/// row-by-row loop.
struct ColumnSums<'a, T> {
    m: &'a Matrix<T>,
    out: &'a mut [T],
}

impl<T: Float> pulp::WithSimd for ColumnSums<'_, T> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        let ColumnSums { m, out } = self;
        let cols = m.cols();
        if cols == 0 {
            return;
        }
        let data = m.as_slice();
        let mut strips = out.chunks_exact_mut(STRIP);
        for (s, strip) in strips.by_ref().enumerate() {
            let mut acc = [T::ZERO; STRIP];
            for row in data.chunks_exact(cols) {
                let r = &row[s * STRIP..(s + 1) * STRIP];
                for (a, &d) in acc.iter_mut().zip(r) {
                    *a += d;
                }
            }
            strip.copy_from_slice(&acc);
        }
        let rest = strips.into_remainder();
        let start = cols - rest.len();
        rest.fill(T::ZERO);
        for row in data.chunks_exact(cols) {
            for (a, &d) in rest.iter_mut().zip(&row[start..]) {
                *a += d;
            }
        }
    }
}

/// A linear layer's bias, when the spec sets it.
#[derive(Clone, Debug, PartialEq)]
pub enum BiasSpec {
    /// `bias=none`: the layer has no bias.
    Off,
    /// `bias=SPEC`: the bias is drawn from this initializer.
    Init(Init),
}

/// `linear(N, init=SPEC, bias=SPEC|none)`: z = x W^T + b with N outputs. `width: None` is a
/// final `linear` mapping to the data's output width; `None` initializers are the run's
/// `--init` and `--bias-init`.
#[derive(Clone, Debug, PartialEq)]
pub struct LinearSpec {
    pub width: Option<usize>,
    pub init: Option<Init>,
    pub bias: Option<BiasSpec>,
}

impl KindSpec for LinearSpec {
    const SYNTAX: Syntax = Syntax {
        names: &["linear"],
        keys: &["width", "init", "bias"],
        positional: 1,
        form: Form::Args,
    };

    fn parse(p: &Parts<'_>) -> Result<Self, String> {
        let width = match p.value(0) {
            None => None,
            Some(v) => match v.parse::<usize>() {
                Ok(w) if w >= 1 => Some(w),
                _ => return Err(p.err(format!("bad width `{v}` (a whole number >= 1)"))),
            },
        };
        if width.is_none() && p.empty_parens() {
            return Err(p.err("missing width: linear(N), or a bare `linear` as the last module"));
        }
        let bias = match p.value(2) {
            None => None,
            Some(v) if v.eq_ignore_ascii_case("none") => Some(BiasSpec::Off),
            Some(_) => p.init(2)?.map(BiasSpec::Init),
        };
        Ok(LinearSpec {
            width,
            init: p.init(1)?,
            bias,
        })
    }

    fn args(&self) -> Vec<String> {
        let mut args: Vec<String> = self.width.iter().map(|w| w.to_string()).collect();
        push_init(&mut args, "init", &self.init);
        args.extend(self.bias.as_ref().map(|b| match b {
            BiasSpec::Off => "bias=none".to_string(),
            BiasSpec::Init(i) => format!("bias={}", init_value(i)),
        }));
        args
    }

    fn build<T: Float>(
        &self,
        width: usize,
        b: &mut Builder<'_>,
    ) -> Result<Box<dyn Module<T>>, String> {
        let fan_out = self.width.unwrap_or(b.outputs());
        Ok(Box::new(b.linear::<T>(
            width,
            fan_out,
            self.init.as_ref(),
            self.bias.as_ref(),
            Activation::Identity,
        )))
    }

    fn torch(&self, width: usize, t: &Torch) -> String {
        let bias = match &self.bias {
            Some(BiasSpec::Off) => false,
            Some(BiasSpec::Init(_)) => true,
            None => t.bias,
        };
        let out = self.width.unwrap_or(t.outputs);
        format!(
            "nn.Linear({width}, {out}, bias={})",
            if bias { "True" } else { "False" }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bias_gradient_adds_each_column_in_row_order() {
        // Widths below, at and past the strip of 32 columns; rows of mixed magnitudes, so the
        // order of the additions shows in the bits.
        for cols in [1, 5, 32, 70, 256] {
            let rows = 9;
            let data: Vec<f32> = (0..rows * cols)
                .map(|k| ((k as f32) * 0.731).sin() * 10f32.powi((k % 7) as i32 - 3))
                .collect();
            let m = Matrix::from_vec(rows, cols, data);
            let mut got = vec![f32::NAN; cols];
            bias_gradient(&m, &mut got);
            let mut want = vec![0.0f32; cols];
            for i in 0..rows {
                for (w, &d) in want.iter_mut().zip(m.row(i)) {
                    *w += d;
                }
            }
            assert_eq!(got, want, "{cols} columns");
        }
        let mut none = vec![1.0f64; 3];
        bias_gradient(&Matrix::zeros(0, 3), &mut none);
        assert_eq!(none, [0.0; 3]);
    }
}
