//! One dense layer with an explicit forward and backward pass.
//!
//! ```text
//! forward:   z = x W^T + b            x: (batch, fan_in), W: (fan_out, fan_in), b: (fan_out)
//!            a = f(z) ⊙ m             m: inverted-dropout mask (0 or 1/(1-p)), or all ones
//! backward:  dz = (da ⊙ m) ⊙ f'(z)    da = dLoss/da: (batch, fan_out)
//!            dW = dz^T x              (fan_out, fan_in)
//!            db = column sums of dz   (fan_out)
//!            dx = dz W                (batch, fan_in)
//! ```

use crate::activation::Activation;
use crate::matrix::{matmul_nn, matmul_nt, matmul_tn, matmul_tn_add_scaled, Matrix};
use crate::rng::{self, Rng};
use crate::scalar::Float;

/// A fully connected layer. Weights are stored `(fan_out, fan_in)` like PyTorch's `nn.Linear`.
#[derive(Clone, Debug, PartialEq)]
pub struct Dense<T> {
    pub weight: Matrix<T>, // (fan_out, fan_in)
    pub bias: Vec<T>,      // (fan_out); all zero and never updated when `has_bias` is false
    pub has_bias: bool,
    pub activation: Activation,
}

/// What `Dense::forward` keeps for `Dense::backward`. Buffers are sized for the largest batch.
#[derive(Clone, Debug)]
pub struct DenseCache<T> {
    pub pre: Matrix<T>,  // (batch, fan_out), z = x W^T + b
    pub act: Matrix<T>,  // (batch, fan_out), f(z)
    pub out: Matrix<T>,  // (batch, fan_out), f(z) ⊙ mask; empty when the layer has no dropout
    pub mask: Matrix<T>, // (batch, fan_out), 0 or 1/(1-p); empty when the layer has no dropout
    dropout: bool,
}

impl<T: Float> DenseCache<T> {
    /// Buffers for up to `capacity` rows; `dropout` allocates the mask and masked output.
    pub fn new(capacity: usize, fan_out: usize, dropout: bool) -> Self {
        let masked = if dropout { capacity } else { 0 };
        DenseCache {
            pre: Matrix::zeros(capacity, fan_out),
            act: Matrix::zeros(capacity, fan_out),
            out: Matrix::zeros(masked, fan_out),
            mask: Matrix::zeros(masked, fan_out),
            dropout,
        }
    }

    /// The layer's output as the next layer sees it: `f(z) ⊙ mask` under dropout, else `f(z)`.
    pub fn output(&self) -> &Matrix<T> {
        if self.dropout {
            &self.out
        } else {
            &self.act
        }
    }
}

/// Gradients of the loss with respect to one layer's parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct DenseGrads<T> {
    pub d_weight: Matrix<T>, // (fan_out, fan_in)
    pub d_bias: Vec<T>,      // (fan_out)
}

impl<T: Float> DenseGrads<T> {
    pub fn zeros(fan_in: usize, fan_out: usize) -> Self {
        DenseGrads {
            d_weight: Matrix::zeros(fan_out, fan_in),
            d_bias: vec![T::ZERO; fan_out],
        }
    }
}

/// Dropout for one forward pass: the drop probability and the stream masks are drawn from.
pub struct Dropout<'a> {
    pub p: f64,
    pub rng: &'a mut Rng,
}

impl<T: Float> Dense<T> {
    pub fn fan_in(&self) -> usize {
        self.weight.cols()
    }

    pub fn fan_out(&self) -> usize {
        self.weight.rows()
    }

    /// `z = x W^T + b`, `a = f(z)`, then the dropout mask when one is given. The cache's row count
    /// is set to `x.rows()`.
    pub fn forward(&self, x: &Matrix<T>, cache: &mut DenseCache<T>, dropout: Option<Dropout<'_>>) {
        let batch = x.rows();
        cache.pre.set_rows(batch);
        cache.act.set_rows(batch);
        matmul_nt(&mut cache.pre, x, &self.weight, false);
        let bias = self.has_bias.then_some(self.bias.as_slice());
        self.activation
            .forward_rows(bias, cache.pre.as_mut_slice(), cache.act.as_mut_slice());
        if cache.dropout {
            cache.out.set_rows(batch);
            cache.mask.set_rows(batch);
            match dropout {
                Some(Dropout { p, rng }) if p > 0.0 => {
                    let keep = T::from_f64(1.0 / (1.0 - p));
                    for m in cache.mask.as_mut_slice() {
                        *m = if rng::uniform01(rng) < p {
                            T::ZERO
                        } else {
                            keep
                        };
                    }
                }
                // Evaluation: the identity mask.
                _ => cache.mask.fill(T::ONE),
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

    /// Backward through this layer. `d_out` holds dLoss/da on entry and dLoss/dz on exit
    /// (for the output layer, whose activation is the identity, pass dLoss/dz directly).
    /// Writes `dW` and `db` into `grads` and, when asked, `dx = dz W` into `d_input`.
    pub fn backward(
        &self,
        x: &Matrix<T>,
        cache: &DenseCache<T>,
        d_out: &mut Matrix<T>,
        grads: &mut DenseGrads<T>,
        d_input: Option<&mut Matrix<T>>,
    ) {
        self.d_pre(cache, d_out);
        matmul_tn(&mut grads.d_weight, d_out, x, false);
        grads.d_bias.fill(T::ZERO);
        if self.has_bias {
            bias_gradient(d_out, &mut grads.d_bias);
        }
        if let Some(dx) = d_input {
            dx.set_rows(d_out.rows());
            matmul_nn(dx, d_out, &self.weight, false);
        }
    }

    /// [`Dense::backward`] fused with a plain SGD step (`torch.optim.SGD` without momentum or
    /// weight decay): `dx = dz W` first, with the weights the gradient belongs to, then
    /// `W += -lr dz^T x` as one GEMM that accumulates into `W`, and `b -= lr db` with the bias
    /// gradient in `d_bias`. The weight gradient is never stored: a pass over the weights and
    /// the gradient's memory traffic are saved. Equal to `backward` then the update up to the
    /// rounding of the weight step (the bias step is the same arithmetic).
    pub fn backward_sgd(
        &mut self,
        x: &Matrix<T>,
        cache: &DenseCache<T>,
        d_out: &mut Matrix<T>,
        lr: f64,
        d_bias: &mut [T],
        d_input: Option<&mut Matrix<T>>,
    ) {
        self.d_pre(cache, d_out);
        if let Some(dx) = d_input {
            dx.set_rows(d_out.rows());
            matmul_nn(dx, d_out, &self.weight, false);
        }
        let lr = T::from_f64(lr);
        matmul_tn_add_scaled(&mut self.weight, d_out, x, -lr);
        if self.has_bias {
            bias_gradient(d_out, d_bias);
            for (b, &g) in self.bias.iter_mut().zip(d_bias.iter()) {
                *b -= lr * g;
            }
        }
    }

    /// `d_out`: dLoss/da on entry, dLoss/dz on exit (through dropout's mask and `f'`).
    fn d_pre(&self, cache: &DenseCache<T>, d_out: &mut Matrix<T>) {
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

/// `db = Σ_rows dz`, row by row (contiguous).
fn bias_gradient<T: Float>(d_out: &Matrix<T>, db: &mut [T]) {
    db.fill(T::ZERO);
    for i in 0..d_out.rows() {
        for (db, &d) in db.iter_mut().zip(d_out.row(i)) {
            *db += d;
        }
    }
}
