//! Many independent runs of one small network, trained in lockstep with SIMD lanes across runs.
//!
//! Initialization studies train the same tiny architecture from many starting points (seeds,
//! initializers) on the same small data set. One such run is a few hundred FLOPs per layer and
//! point: any GEMM library spends more time dispatching than computing. Here `LANES` runs share
//! every loop, each scalar of the single-run engine becomes a pack `[T; LANES]` (one value per
//! run), and every operation is one SIMD instruction across runs; JAX's `vmap` does the same.
//!
//! ```text
//! pack of runs r = 0..LANES:   W_l[j][i][r],  b_l[j][r],  z_l[p][j][r],  a_l[p][j][r]
//! forward:   z_l[p][j] = b_l[j] + Σ_i a_{l-1}[p][i] W_l[j][i]      a_l = f(z_l)  (l < L)
//! backward:  dW_l[j][i] = Σ_p δ_l[p][j] a_{l-1}[p][i]      db_l[j] = Σ_p δ_l[p][j]
//!            δ_{l-1}[p][i] = f'(z_{l-1}[p][i]) Σ_j δ_l[p][j] W_l[j][i]
//! update:    W_l -= lr dW_l,  b_l -= lr db_l                       (full-batch gradient descent)
//! ```
//! The formulas are the single-run engine's ([`crate::network`]); only the summation order
//! differs, so the two agree to rounding (test `lockstep_matches_the_single_run_engine`).
//! Scope: full-batch gradient descent (every run sees the whole data set each step), any
//! activation, MSE, BCE-with-logits or cross-entropy, with or without biases. Groups of packs
//! run in parallel on the current rayon pool, never one run across threads.

use rayon::prelude::*;

use crate::activation::Activation;
use crate::error::{Error, Result};
use crate::loss::{Loss, Targets};
use crate::matrix::Matrix;
use crate::network::{LayerParams, Params};
use crate::scalar::Float;

/// Runs per pack: 8 f32 lanes fill one AVX2 register (two for f64).
pub const LANES: usize = 8;

/// One value per run of a pack.
type Pack<T> = [T; LANES];

/// One run's outcome.
#[derive(Clone, Debug, PartialEq)]
pub struct LockstepRun {
    /// Parameters after the last step, in f64 (exact for both precisions).
    pub params: Params,
    /// The full-batch loss before each step, then after the last one (`steps + 1` values).
    pub losses: Vec<f64>,
}

/// Trains every run of `starts` (one parameter set each, all of one architecture) for `steps`
/// full-batch gradient-descent steps at learning rate `lr` on inputs `x` (batch, fan_in) and
/// `targets`, hidden layers with `act`, the output layer linear and fused into `loss`.
pub fn train_lockstep<T: Float>(
    starts: &[Params],
    act: Activation,
    loss: Loss,
    x: &Matrix<T>,
    targets: Targets<'_, T>,
    lr: f64,
    steps: usize,
) -> Result<Vec<LockstepRun>> {
    let Some(first) = starts.first() else {
        return Ok(Vec::new());
    };
    let dims = dims_of(first);
    let has_bias = first[0].bias.is_some();
    for (r, p) in starts.iter().enumerate() {
        if dims_of(p) != dims || p.iter().any(|l| l.bias.is_some() != has_bias) {
            return Err(Error::config(
                "lockstep",
                format!("run {r} has another architecture than run 0 ({dims:?})"),
            ));
        }
    }
    if x.cols() != dims[0] {
        return Err(Error::config(
            "lockstep",
            format!(
                "inputs have {} columns, the network takes {}",
                x.cols(),
                dims[0]
            ),
        ));
    }
    let out = *dims.last().expect("dims");
    match (loss, targets) {
        (Loss::CrossEntropy, Targets::Classes(y)) if y.len() == x.rows() => {
            if let Some(&c) = y.iter().find(|&&c| c as usize >= out) {
                return Err(Error::config(
                    "lockstep",
                    format!("class {c} but only {out} outputs"),
                ));
            }
        }
        (Loss::Mse | Loss::BceWithLogits, Targets::Dense(y)) if y.shape() == (x.rows(), out) => {}
        _ => {
            return Err(Error::config(
                "lockstep",
                format!(
                    "targets do not fit {loss} with {} rows and {out} outputs",
                    x.rows()
                ),
            ))
        }
    }
    let groups: Vec<Vec<LockstepRun>> = starts
        .par_chunks(LANES)
        .map(|chunk| {
            let group = Group::new(chunk, &dims, has_bias, x);
            let runs = chunk.len();
            // One dispatch for the whole run, so every loop below is compiled for the SIMD
            // instruction set in use: AVX2+FMA explicitly where the CPU has it, else portable
            // lane loops on the widest set pulp finds.
            #[cfg(target_arch = "x86_64")]
            if let Some(v3) = pulp::x86::V3::try_new() {
                let ops = Avx2(v3);
                let job = Train {
                    group,
                    ops,
                    runs,
                    act,
                    loss,
                    targets,
                    lr,
                    steps,
                };
                return pulp::Simd::vectorize(v3, job);
            }
            let ops = Portable;
            let job = Train {
                group,
                ops,
                runs,
                act,
                loss,
                targets,
                lr,
                steps,
            };
            pulp::Arch::new().dispatch(job)
        })
        .collect();
    Ok(groups.into_iter().flatten().collect())
}

/// A pack's whole training as one SIMD operation: pulp compiles `with_simd` and everything
/// `#[inline(always)]` under it for each instruction set (a closure would not be inlined, and
/// `mul_add` outside an FMA-enabled function is a call to libm's `fmaf`).
struct Train<'a, T, O> {
    group: Group<T>,
    ops: O,
    runs: usize,
    act: Activation,
    loss: Loss,
    targets: Targets<'a, T>,
    lr: f64,
    steps: usize,
}

impl<T: Float, O: LaneOps> pulp::WithSimd for Train<'_, T, O> {
    type Output = Vec<LockstepRun>;

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) -> Vec<LockstepRun> {
        let Train {
            mut group,
            ops,
            runs,
            act,
            loss,
            targets,
            lr,
            steps,
        } = self;
        let lr = T::from_f64(lr);
        let mut losses = Vec::with_capacity(steps + 1);
        for _ in 0..steps {
            losses.push(group.loss_and_grads(ops, act, loss, targets));
            group.update(lr);
        }
        losses.push(group.loss_and_grads(ops, act, loss, targets));
        group.unpack(runs, &losses)
    }
}

fn dims_of(p: &Params) -> Vec<usize> {
    let mut d = vec![p[0].weight.cols()];
    d.extend(p.iter().map(|l| l.weight.rows()));
    d
}

/// `LANES` runs packed side by side, with their buffers.
struct Group<T> {
    dims: Vec<usize>,
    has_bias: bool,
    batch: usize,
    input: Vec<Pack<T>>,   // (batch, dims[0]), the data broadcast to every lane
    w: Vec<Vec<Pack<T>>>,  // layer l: (fan_out, fan_in)
    wt: Vec<Vec<Pack<T>>>, // W transposed, (fan_in, fan_out), for the forward pass
    ones: Vec<Pack<T>>,    // (batch), for bias gradients as inner products
    b: Vec<Vec<Pack<T>>>,  // (fan_out); zero and never updated without biases
    z: Vec<Vec<Pack<T>>>,  // (batch, fan_out)
    a: Vec<Vec<Pack<T>>>,  // (batch, fan_out), hidden layers only (empty for the output)
    delta: Vec<Vec<Pack<T>>>, // (batch, fan_out): dLoss/dz
    dw: Vec<Vec<Pack<T>>>, // dLoss/dW transposed, (fan_in, fan_out) like wt
    db: Vec<Vec<Pack<T>>>,
}

fn splat<T: Float>(v: T) -> Pack<T> {
    [v; LANES]
}

impl<T: Float> Group<T> {
    /// Packs up to `LANES` runs; empty lanes repeat run 0 and are dropped by `unpack`.
    fn new(runs: &[Params], dims: &[usize], has_bias: bool, x: &Matrix<T>) -> Self {
        let layers = dims.len() - 1;
        let batch = x.rows();
        let lane = |r: usize| &runs[r.min(runs.len() - 1)];
        let w: Vec<Vec<Pack<T>>> = (0..layers)
            .map(|l| {
                let n = dims[l] * dims[l + 1];
                (0..n)
                    .map(|e| std::array::from_fn(|r| T::from_f64(lane(r)[l].weight.as_slice()[e])))
                    .collect()
            })
            .collect();
        let b = (0..layers)
            .map(|l| {
                (0..dims[l + 1])
                    .map(|j| {
                        std::array::from_fn(|r| {
                            T::from_f64(lane(r)[l].bias.as_ref().map_or(0.0, |b| b[j]))
                        })
                    })
                    .collect()
            })
            .collect();
        let per_layer = |rows: usize, hidden_only: bool| -> Vec<Vec<Pack<T>>> {
            (0..layers)
                .map(|l| {
                    let n = if hidden_only && l + 1 == layers {
                        0
                    } else {
                        rows * dims[l + 1]
                    };
                    vec![splat(T::ZERO); n]
                })
                .collect()
        };
        let mut g = Group {
            input: x.as_slice().iter().map(|&v| splat(v)).collect(),
            wt: w.clone(),
            ones: vec![splat(T::ONE); batch],
            w,
            b,
            z: per_layer(batch, false),
            a: per_layer(batch, true),
            delta: per_layer(batch, false),
            dw: (0..layers)
                .map(|l| vec![splat(T::ZERO); dims[l] * dims[l + 1]])
                .collect(),
            db: per_layer(1, false),
            dims: dims.to_vec(),
            has_bias,
            batch,
        };
        g.transpose_weights();
        g
    }

    /// `W = wt^T` for every layer (after each update, which works on `wt`).
    #[inline(always)]
    fn untranspose_weights(&mut self) {
        for l in 0..self.w.len() {
            transpose(&self.wt[l], &mut self.w[l], self.dims[l]);
        }
    }

    /// `wt = W^T` for every layer.
    #[inline(always)]
    fn transpose_weights(&mut self) {
        for l in 0..self.w.len() {
            transpose(&self.w[l], &mut self.wt[l], self.dims[l + 1]);
        }
    }

    /// Forward and backward over the whole data set; returns each lane's loss and leaves the
    /// gradients in `dw`, `db`.
    #[inline(always)]
    fn loss_and_grads(
        &mut self,
        ops: impl LaneOps,
        act: Activation,
        loss: Loss,
        targets: Targets<'_, T>,
    ) -> Pack<f64> {
        let layers = self.dims.len() - 1;
        // Forward: z[p][j] = b[j] + Σ_i x[p][i] W[j][i], eight outputs j per pass over x[p] (W^T rows).
        for l in 0..layers {
            let (fan_in, fan_out) = (self.dims[l], self.dims[l + 1]);
            let (lower, upper) = self.a.split_at_mut(l);
            let x: &[Pack<T>] = if l == 0 { &self.input } else { &lower[l - 1] };
            let z = &mut self.z[l];
            let (wt, b) = (&self.wt[l], &self.b[l]);
            for p in 0..self.batch {
                let xr = &x[p * fan_in..(p + 1) * fan_in];
                let zr = &mut z[p * fan_out..(p + 1) * fan_out];
                zr.copy_from_slice(b);
                let xr = Strided {
                    data: xr,
                    stride: 1,
                };
                accumulate_blocks(ops, zr, fan_in, xr, wt, fan_out);
            }
            if l + 1 < layers {
                act.forward_rows(None, z.as_flattened_mut(), upper[0].as_flattened_mut());
            }
        }
        // Loss and dLoss/dz of the output layer.
        let value = output_grad(
            loss,
            &self.z[layers - 1],
            targets,
            &mut self.delta[layers - 1],
            self.dims[layers],
        );
        // Backward.
        for l in (0..layers).rev() {
            let (fan_in, fan_out) = (self.dims[l], self.dims[l + 1]);
            let x: &[Pack<T>] = if l == 0 { &self.input } else { &self.a[l - 1] };
            let (lower, upper) = self.delta.split_at_mut(l);
            let d = &upper[0];
            let (dw, db, w) = (&mut self.dw[l], &mut self.db[l], &self.w[l]);
            let batch = self.batch;
            // dW^T[i][j] = Σ_p x[p][i] δ[p][j], eight outputs j per pass over the batch (the
            // transposed layout keeps both δ[p][j0..j0+8] and the result contiguous).
            for i in 0..fan_in {
                let dwr = &mut dw[i * fan_out..(i + 1) * fan_out];
                let xi = Strided {
                    data: &x[i..],
                    stride: fan_in,
                };
                dwr.fill(splat(T::ZERO));
                accumulate_blocks(ops, dwr, batch, xi, d, fan_out);
            }
            // db[j] = Σ_p δ[p][j] (times a pack of ones, to share the blocked FMA kernel).
            db.fill(splat(T::ZERO));
            let ones = Strided {
                data: &self.ones[..batch],
                stride: 1,
            };
            accumulate_blocks(ops, db, batch, ones, d, fan_out);
            if l > 0 {
                // δ_{l-1}[p][i] = Σ_j δ[p][j] W[j][i], eight inputs i per pass over δ[p].
                let below = &mut lower[l - 1];
                for p in 0..batch {
                    let br = &mut below[p * fan_in..(p + 1) * fan_in];
                    let dr = &d[p * fan_out..(p + 1) * fan_out];
                    br.fill(splat(T::ZERO));
                    let dr = Strided {
                        data: dr,
                        stride: 1,
                    };
                    accumulate_blocks(ops, br, fan_out, dr, w, fan_in);
                }
                act.backward_in_place(
                    self.z[l - 1].as_flattened(),
                    self.a[l - 1].as_flattened(),
                    below.as_flattened_mut(),
                );
            }
        }
        value
    }

    /// `p -= lr * g` for every weight (and bias, when the runs have them), as torch.optim.SGD.
    #[inline(always)]
    fn update(&mut self, lr: T) {
        let step = |p: &mut [Pack<T>], g: &[Pack<T>]| {
            for (p, g) in p.as_flattened_mut().iter_mut().zip(g.as_flattened()) {
                *p -= lr * *g;
            }
        };
        for l in 0..self.w.len() {
            step(&mut self.wt[l], &self.dw[l]);
            if self.has_bias {
                step(&mut self.b[l], &self.db[l]);
            }
        }
        self.untranspose_weights();
    }

    /// The first `n` lanes as separate runs.
    fn unpack(&self, n: usize, losses: &[Pack<f64>]) -> Vec<LockstepRun> {
        let layers = self.dims.len() - 1;
        (0..n)
            .map(|r| LockstepRun {
                params: (0..layers)
                    .map(|l| LayerParams {
                        weight: Matrix::from_vec(
                            self.dims[l + 1],
                            self.dims[l],
                            self.w[l].iter().map(|v| v[r].to_f64()).collect(),
                        ),
                        bias: self
                            .has_bias
                            .then(|| self.b[l].iter().map(|v| v[r].to_f64()).collect()),
                    })
                    .collect(),
                losses: losses.iter().map(|v| v[r]).collect(),
            })
            .collect()
    }
}

/// How lane arithmetic is done; the training loop is compiled once per implementation.
trait LaneOps: Copy {
    /// `acc + x * w` lane by lane, one rounding per lane (a fused multiply-add).
    fn fma<T: Float>(self, acc: Pack<T>, x: &Pack<T>, w: &Pack<T>) -> Pack<T>;
}

/// Explicit AVX2/FMA instructions (x86-64 with AVX2 and FMA).
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
struct Avx2(pulp::x86::V3);

#[cfg(target_arch = "x86_64")]
impl LaneOps for Avx2 {
    #[inline(always)]
    fn fma<T: Float>(self, acc: Pack<T>, x: &Pack<T>, w: &Pack<T>) -> Pack<T> {
        T::fma8_v3(self.0, acc, *x, *w)
    }
}

/// Lane loops the compiler vectorises as it can (other CPUs).
#[derive(Clone, Copy)]
struct Portable;

impl LaneOps for Portable {
    #[inline(always)]
    fn fma<T: Float>(self, acc: Pack<T>, x: &Pack<T>, w: &Pack<T>) -> Pack<T> {
        std::array::from_fn(|r| x[r].mul_add(w[r], acc[r]))
    }
}

/// `dst = src^T` for `src` stored row-major with `rows` rows.
#[inline(always)]
fn transpose<T: Copy>(src: &[T], dst: &mut [T], rows: usize) {
    let cols = src.len() / rows;
    for (r, row) in src.chunks_exact(cols).enumerate() {
        for (c, v) in row.iter().enumerate() {
            dst[c * rows + r] = *v;
        }
    }
}

/// `out[k] += Σ_{t < len} a(t) b[t * stride + k]` for every `k < out.len()`, in blocks of
/// `BLOCK` outputs (then the remainder one by one): the shape of every inner product here.
#[inline(always)]
fn accumulate_blocks<T: Float>(
    ops: impl LaneOps,
    out: &mut [Pack<T>],
    len: usize,
    a: Strided<'_, T>,
    b: &[Pack<T>],
    stride: usize,
) {
    for (k0, n) in blocks(out.len()) {
        let rows = Rows {
            data: &b[k0..],
            stride,
        };
        accumulate(ops, &mut out[k0..k0 + n], len, a, rows);
    }
}

/// `(start, n)` over `0..len` in blocks of `BLOCK`, then the remainder one by one.
#[inline(always)]
fn blocks(len: usize) -> impl Iterator<Item = (usize, usize)> {
    let full = len - len % BLOCK;
    (0..full)
        .step_by(BLOCK)
        .map(|s| (s, BLOCK))
        .chain((full..len).map(|s| (s, 1)))
}

/// Outputs computed together in the inner products: each pass loads `a(t)` once for `BLOCK`
/// FMAs into accumulators held in registers (9 loads per 8 FMAs instead of 2 loads and a
/// store per FMA), and 8 independent FMA chains hide the instruction's latency.
const BLOCK: usize = 8;

/// `b(k, t) = data[t * stride + k]`: for each t, the `k` values are contiguous.
#[derive(Clone, Copy)]
struct Rows<'a, T> {
    data: &'a [Pack<T>],
    stride: usize,
}

/// `a(t) = data[t * stride]`.
#[derive(Clone, Copy)]
struct Strided<'a, T> {
    data: &'a [Pack<T>],
    stride: usize,
}

/// `out[k] += Σ_{t < len} a(t) b(k, t)` for every `k < out.len()` (`BLOCK`, or 1).
#[inline(always)]
fn accumulate<T: Float>(
    ops: impl LaneOps,
    out: &mut [Pack<T>],
    len: usize,
    a: Strided<'_, T>,
    b: Rows<'_, T>,
) {
    let a = a.data.iter().step_by(a.stride).take(len);
    if let Ok(out) = <&mut [Pack<T>; BLOCK]>::try_from(&mut *out) {
        let mut acc = *out;
        for (t, av) in a.enumerate() {
            let row: &[Pack<T>; BLOCK] = b.data[t * b.stride..t * b.stride + BLOCK]
                .try_into()
                .expect("a block of BLOCK packs");
            for (acc, bv) in acc.iter_mut().zip(row) {
                *acc = ops.fma(*acc, av, bv);
            }
        }
        *out = acc;
    } else {
        // One output at a time, in four chains (t mod 4, held in registers) summed at the end.
        for (k, o) in out.iter_mut().enumerate() {
            let mut acc = [*o, splat(T::ZERO), splat(T::ZERO), splat(T::ZERO)];
            let mut terms = a.clone().enumerate();
            while let (Some((t0, a0)), Some((t1, a1)), Some((t2, a2)), Some((t3, a3))) =
                (terms.next(), terms.next(), terms.next(), terms.next())
            {
                acc[0] = ops.fma(acc[0], a0, &b.data[t0 * b.stride + k]);
                acc[1] = ops.fma(acc[1], a1, &b.data[t1 * b.stride + k]);
                acc[2] = ops.fma(acc[2], a2, &b.data[t2 * b.stride + k]);
                acc[3] = ops.fma(acc[3], a3, &b.data[t3 * b.stride + k]);
            }
            for (t, av) in a.clone().enumerate().skip(len - len % 4) {
                acc[0] = ops.fma(acc[0], av, &b.data[t * b.stride + k]);
            }
            let [mut s, s1, s2, s3] = acc;
            for x in [s1, s2, s3] {
                add(&mut s, &x);
            }
            *o = s;
        }
    }
}

#[inline(always)]
fn add<T: Float>(acc: &mut Pack<T>, x: &Pack<T>) {
    for (a, &x) in acc.iter_mut().zip(x) {
        *a += x;
    }
}

/// The loss of every lane (mean over the batch, as [`Loss::forward_backward`]) and dLoss/dz of
/// the output layer into `delta`; `z` and `delta` are (batch, k).
#[inline(always)]
fn output_grad<T: Float>(
    loss: Loss,
    z: &[Pack<T>],
    targets: Targets<'_, T>,
    delta: &mut [Pack<T>],
    k: usize,
) -> Pack<f64> {
    let batch = z.len() / k;
    let mut total = [0.0f64; LANES];
    match (loss, targets) {
        (Loss::Mse, Targets::Dense(y)) => {
            let scale = T::from_f64(2.0 / (batch * k) as f64);
            for ((zv, dv), &t) in z.iter().zip(delta.iter_mut()).zip(y.as_slice()) {
                for r in 0..LANES {
                    let e = zv[r] - t;
                    total[r] += (e * e).to_f64();
                    dv[r] = scale * e;
                }
            }
            total.map(|t| t / (batch * k) as f64)
        }
        (Loss::BceWithLogits, Targets::Dense(y)) => {
            let scale = T::from_f64(1.0 / (batch * k) as f64);
            for ((zv, dv), &t) in z.iter().zip(delta.iter_mut()).zip(y.as_slice()) {
                for r in 0..LANES {
                    let z = zv[r];
                    let l = z.max(T::ZERO) - z * t + (-z.abs()).exp().ln_1p();
                    total[r] += l.to_f64();
                    dv[r] = (Activation::Sigmoid.f(z) - t) * scale;
                }
            }
            total.map(|t| t / (batch * k) as f64)
        }
        (Loss::CrossEntropy, Targets::Classes(y)) => {
            let inv_b = T::from_f64(1.0 / batch as f64);
            for (p, &label) in y.iter().enumerate() {
                let (zr, dr) = (&z[p * k..(p + 1) * k], &mut delta[p * k..(p + 1) * k]);
                for r in 0..LANES {
                    let m = zr.iter().map(|v| v[r]).fold(zr[0][r], T::max);
                    let mut sum = T::ZERO;
                    for (d, zv) in dr.iter_mut().zip(zr) {
                        d[r] = (zv[r] - m).exp();
                        sum += d[r];
                    }
                    total[r] += (m + sum.ln() - zr[label as usize][r]).to_f64();
                    let inv_sum = T::ONE / sum;
                    for d in dr.iter_mut() {
                        d[r] = d[r] * inv_sum * inv_b;
                    }
                    dr[label as usize][r] -= inv_b;
                }
            }
            total.map(|t| t / batch as f64)
        }
        (loss, _) => unreachable!("{loss}: targets checked by train_lockstep"),
    }
}
