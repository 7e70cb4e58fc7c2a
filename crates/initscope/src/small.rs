//! The products of small layers (fan-in and fan-out at most [`SMALL`]), each output element
//! summed as one chain of fused multiply-adds in a fixed order:
//!
//! ```text
//! c[i][j] = fma(a(i, k-1), b[k-1][j], ... fma(a(i, 1), b[1][j], fma(a(i, 0), b[0][j], s[i][j])))
//! forward:          z  = b + x W^T     (batch, fan_out)    s = the bias row (or 0), k = fan_in
//! weight gradient:  dW = δ^T x         (fan_out, fan_in)   s = 0, k = the batch
//! input gradient:   dx = δ W           (batch, fan_in)     s = 0, k = fan_out
//! ```
//! This is the order in which [`crate::lockstep`] sums every lane, so a run trained in a pack of
//! runs ends with the same bits as the same run alone. A fused multiply-add is exactly rounded
//! on every CPU (an instruction inside the AVX2/FMA or AVX-512 dispatch, libm's `fma` elsewhere,
//! as in the lanes), so the bits do not depend on the instruction set either.
//!
//! The kernel holds a tile of `R` rows by up to [`SMALL`] columns of `c` in registers, as packs
//! of [`PACK`] columns, and walks `t` once: per `t`, `R` broadcasts and one load per pack feed
//! `R` FMAs per pack. The lanes' operations ([`LaneOps`]) are the same instructions.

use crate::matrix::Matrix;
#[cfg(target_arch = "x86_64")]
use crate::scalar::Avx512;
use crate::scalar::Float;

/// The widest layer whose products go through this module (both fan-in and fan-out).
pub const SMALL: usize = 32;

/// Scalars per pack: 8 f32 fill one AVX2 register (two for f64).
pub const PACK: usize = 8;

/// [`PACK`] values, one per lane (a column here; a lockstep pack is [`crate::lockstep::Lanes`]).
pub type Pack<T> = [T; PACK];

/// Scalars of scratch a small layer's products need ([`forward`] and [`input_grad`] lay the
/// weights out padded to whole packs there).
pub const SCRATCH: usize = SMALL * SMALL;

/// How lane arithmetic is done; code using it is compiled once per implementation. Packs are
/// `[T; N]`, [`PACK`] here and [`crate::lockstep::LANES`] in the lanes: a multiple of 8 for
/// [`Avx2`], of 16 for [`Avx512`], any for [`Portable`].
pub trait LaneOps: Copy {
    /// Whether `f32::mul_add` is one instruction in code using these operations.
    const FMA: bool;
    /// Whether the registers are 512 bits wide (32 of them) rather than 256 bits (16), which
    /// decides the register tiles of [`crate::lockstep`]'s products.
    const WIDE: bool = false;
    /// `acc + x * w` lane by lane, one rounding per lane (a fused multiply-add).
    fn fma<T: Float, const N: usize>(self, acc: [T; N], x: &[T; N], w: &[T; N]) -> [T; N];
    /// `acc + x` lane by lane.
    fn add<T: Float, const N: usize>(self, acc: [T; N], x: &[T; N]) -> [T; N];
}

/// Lanes `at..at + C` of a pack (`C` divides `N`).
#[inline(always)]
fn part<T: Copy, const N: usize, const C: usize>(v: &[T; N], at: usize) -> [T; C] {
    // Not `array::from_fn`, which stays out of line at 16 lanes (a call per operation).
    *v[at..].first_chunk::<C>().expect("a whole register")
}

/// Explicit AVX2/FMA instructions (x86-64 with AVX2 and FMA).
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
pub struct Avx2(pub pulp::x86::V3);

/// The lanes of `N`-lane packs `$c` at a time (the lanes of one register): `$op` computes
/// lanes `$at..$at + $c`. A macro, not a helper taking a closure: a closure is not
/// reliably inlined, and out of line it loses the dispatch's instruction set (a call per FMA).
#[cfg(target_arch = "x86_64")]
macro_rules! by_registers {
    ($c:literal, $acc:ident, |$at:ident| $op:expr) => {{
        const { assert!(N.is_multiple_of($c), "packs are whole registers") };
        let mut out = $acc;
        for $at in (0..N).step_by($c) {
            out[$at..$at + $c].copy_from_slice(&$op);
        }
        out
    }};
}

#[cfg(target_arch = "x86_64")]
impl LaneOps for Avx2 {
    const FMA: bool = true;
    #[inline(always)]
    fn fma<T: Float, const N: usize>(self, acc: [T; N], x: &[T; N], w: &[T; N]) -> [T; N] {
        by_registers!(8, acc, |at| T::fma8_v3(
            self.0,
            part(&acc, at),
            part(x, at),
            part(w, at)
        ))
    }
    #[inline(always)]
    fn add<T: Float, const N: usize>(self, acc: [T; N], x: &[T; N]) -> [T; N] {
        by_registers!(8, acc, |at| T::add8_v3(self.0, part(&acc, at), part(x, at)))
    }
}

#[cfg(target_arch = "x86_64")]
impl LaneOps for Avx512 {
    const FMA: bool = true;
    const WIDE: bool = true;
    #[inline(always)]
    fn fma<T: Float, const N: usize>(self, acc: [T; N], x: &[T; N], w: &[T; N]) -> [T; N] {
        by_registers!(16, acc, |at| T::fma16_v4(
            self,
            part(&acc, at),
            part(x, at),
            part(w, at)
        ))
    }
    #[inline(always)]
    fn add<T: Float, const N: usize>(self, acc: [T; N], x: &[T; N]) -> [T; N] {
        by_registers!(16, acc, |at| T::add16_v4(self, part(&acc, at), part(x, at)))
    }
}

/// Lane loops the compiler vectorises as it can (other CPUs); `mul_add` is exactly rounded
/// everywhere (libm's `fma` where the instruction set has none).
#[derive(Clone, Copy)]
pub struct Portable;

impl LaneOps for Portable {
    const FMA: bool = cfg!(target_arch = "aarch64");
    #[inline(always)]
    fn fma<T: Float, const N: usize>(self, acc: [T; N], x: &[T; N], w: &[T; N]) -> [T; N] {
        std::array::from_fn(|r| x[r].mul_add(w[r], acc[r]))
    }
    #[inline(always)]
    fn add<T: Float, const N: usize>(self, acc: [T; N], x: &[T; N]) -> [T; N] {
        std::array::from_fn(|r| acc[r] + x[r])
    }
}

/// `v` in every lane.
#[inline(always)]
pub fn splat<T: Float>(v: T) -> Pack<T> {
    [v; PACK]
}

/// Whether a `fan_in -> fan_out` layer's products go through this module.
pub fn fits(fan_in: usize, fan_out: usize) -> bool {
    fan_in <= SMALL && fan_out <= SMALL
}

/// Columns rounded up to whole packs.
fn padded(n: usize) -> usize {
    n.div_ceil(PACK) * PACK
}

/// `z (batch, fan_out) = bias + x (batch, fan_in) W^T` with `W (fan_out, fan_in)`; without a
/// bias the chains start at zero. `scratch` holds at least [`SCRATCH`] scalars.
///
/// # Panics
/// When the shapes disagree or the layer is not small ([`fits`]).
pub fn forward<T: Float>(
    z: &mut Matrix<T>,
    x: &Matrix<T>,
    w: &Matrix<T>,
    bias: Option<&[T]>,
    scratch: &mut [T],
) {
    let (fan_out, fan_in) = w.shape();
    assert!(
        fits(fan_in, fan_out)
            && x.cols() == fan_in
            && z.shape() == (x.rows(), fan_out)
            && bias.is_none_or(|b| b.len() == fan_out)
            && scratch.len() >= SCRATCH,
        "small::forward: ({}, {}) = ({}, {}) x ({fan_out}, {fan_in})^T",
        z.rows(),
        z.cols(),
        x.rows(),
        x.cols()
    );
    // W^T, its rows padded to whole packs with zeros, so each step of the chains reads whole
    // packs of a contiguous row.
    let np = padded(fan_out);
    let wt = &mut scratch[..fan_in * np];
    wt.fill(T::ZERO);
    for (j, row) in w.as_slice().chunks_exact(fan_in.max(1)).enumerate() {
        for (i, &v) in row.iter().enumerate() {
            wt[i * np + j] = v;
        }
    }
    run(
        z.as_mut_slice(),
        Operands {
            n: fan_out,
            a: x.as_slice(),
            a_rs: fan_in,
            a_cs: 1,
            k: fan_in,
            b: wt,
            b_rs: np,
            start: bias,
        },
    );
}

/// `dW (fan_out, fan_in) = δ^T x`, with `δ (batch, fan_out)` and `x (batch, fan_in)`: each
/// element a chain over the batch's rows in order. `scratch` holds at least [`SCRATCH`]
/// scalars.
///
/// # Panics
/// When the shapes disagree or the layer is not small ([`fits`]).
pub fn weight_grad<T: Float>(dw: &mut Matrix<T>, d: &Matrix<T>, x: &Matrix<T>, scratch: &mut [T]) {
    let (fan_out, fan_in) = dw.shape();
    assert!(
        fits(fan_in, fan_out)
            && d.cols() == fan_out
            && x.cols() == fan_in
            && d.rows() == x.rows()
            && scratch.len() >= SCRATCH,
        "small::weight_grad: ({fan_out}, {fan_in}) = ({}, {})^T x ({}, {})",
        d.rows(),
        d.cols(),
        x.rows(),
        x.cols()
    );
    if fan_in % PACK != 0 && fan_out % PACK == 0 {
        // dW^T = x^T δ into `scratch`, then transposed: each row of x^T δ is whole packs of δ's
        // rows, where dW's would end in a part pack of x's every step. The chains are the same
        // (fma(x, δ, acc) is fma(δ, x, acc)).
        let dwt = &mut scratch[..fan_in * fan_out];
        run(
            dwt,
            Operands {
                n: fan_out,
                a: x.as_slice(),
                a_rs: 1,
                a_cs: fan_in,
                k: d.rows(),
                b: d.as_slice(),
                b_rs: fan_out,
                start: None,
            },
        );
        for (j, row) in dw.as_mut_slice().chunks_exact_mut(fan_in).enumerate() {
            for (i, v) in row.iter_mut().enumerate() {
                *v = dwt[i * fan_out + j];
            }
        }
        return;
    }
    run(
        dw.as_mut_slice(),
        Operands {
            n: fan_in,
            a: d.as_slice(),
            a_rs: 1,
            a_cs: fan_out,
            k: d.rows(),
            b: x.as_slice(),
            b_rs: fan_in,
            start: None,
        },
    );
}

/// `dx (batch, fan_in) = δ (batch, fan_out) W (fan_out, fan_in)`: each element a chain over the
/// layer's units in order. `scratch` holds at least [`SCRATCH`] scalars.
///
/// # Panics
/// When the shapes disagree or the layer is not small ([`fits`]).
pub fn input_grad<T: Float>(dx: &mut Matrix<T>, d: &Matrix<T>, w: &Matrix<T>, scratch: &mut [T]) {
    let (fan_out, fan_in) = w.shape();
    assert!(
        fits(fan_in, fan_out)
            && d.cols() == fan_out
            && dx.shape() == (d.rows(), fan_in)
            && scratch.len() >= SCRATCH,
        "small::input_grad: ({}, {}) = ({}, {}) x ({fan_out}, {fan_in})",
        dx.rows(),
        dx.cols(),
        d.rows(),
        d.cols()
    );
    // W with its rows padded to whole packs.
    let np = padded(fan_in);
    let wp = &mut scratch[..fan_out * np];
    for (dst, row) in wp
        .chunks_exact_mut(np.max(1))
        .zip(w.as_slice().chunks_exact(fan_in.max(1)))
    {
        dst[..fan_in].copy_from_slice(row);
        dst[fan_in..].fill(T::ZERO);
    }
    run(
        dx.as_mut_slice(),
        Operands {
            n: fan_in,
            a: d.as_slice(),
            a_rs: fan_out,
            a_cs: 1,
            k: fan_out,
            b: wp,
            b_rs: np,
            start: None,
        },
    );
}

/// `c = start + a b` ([`Operands`]), compiled for AVX2/FMA where the CPU has it (the lanes'
/// choice), else for the widest instruction set pulp finds.
fn run<T: Float>(c: &mut [T], ab: Operands<'_, T>) {
    #[cfg(target_arch = "x86_64")]
    if let Some(v3) = pulp::x86::V3::try_new() {
        return pulp::Simd::vectorize(
            v3,
            Chains {
                c,
                ab,
                ops: Avx2(v3),
            },
        );
    }
    pulp::Arch::new().dispatch(Chains {
        c,
        ab,
        ops: Portable,
    })
}

/// `c (m, n) = start + a b`: `a(i, t) = a[i a_rs + t a_cs]` for `t < k`, `b(t, j) = b[t b_rs + j]`,
/// `start` a row added to every row of `c` (or zero); `c` row-major with `n <= SMALL` columns.
/// When `b_rs` is a whole number of packs, `b`'s rows are read in whole packs (the padding
/// columns must be finite: they are multiplied, and dropped).
struct Operands<'a, T> {
    n: usize,
    a: &'a [T],
    a_rs: usize,
    a_cs: usize,
    k: usize,
    b: &'a [T],
    b_rs: usize,
    start: Option<&'a [T]>,
}

/// [`Operands`]' product into `c`, as one SIMD dispatch.
struct Chains<'a, T, O> {
    c: &'a mut [T],
    ab: Operands<'a, T>,
    ops: O,
}

impl<T: Float, O: LaneOps> pulp::WithSimd for Chains<'_, T, O> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        let Chains { c, ab, ops } = self;
        // Whole packs read from each row of b, and whether a part pack follows (b's rows not
        // padded to whole packs).
        let (full, part) = if ab.b_rs % PACK == 0 {
            (ab.n.div_ceil(PACK), false)
        } else {
            (ab.n / PACK, ab.n % PACK != 0)
        };
        // Rows per tile: the tile's R x (full + part) packs, one pack of b and R broadcasts
        // within the 16 AVX2 registers (an f64 pack takes two).
        macro_rules! go {
            ($($full:literal, $part:literal => $r32:literal, $r64:literal;)*) => {
                match (full, part) {
                    $(($full, $part) => if std::mem::size_of::<T>() == 4 {
                        tiles::<T, O, $r32, $full, $part>(ops, c, &ab)
                    } else {
                        tiles::<T, O, $r64, $full, $part>(ops, c, &ab)
                    },)*
                    _ => unreachable!("at most {SMALL} columns"),
                }
            };
        }
        go! {
            0, false => 1, 1;
            0, true => 4, 4;
            1, false => 4, 4;
            1, true => 4, 2;
            2, false => 4, 2;
            2, true => 3, 2;
            3, false => 3, 2;
            3, true => 2, 1;
            4, false => 2, 1;
        }
    }
}

/// Every row of `c` in tiles of `R` rows (then single rows), `FULL` whole packs wide and a part
/// pack when `PART`.
#[inline(always)]
fn tiles<T: Float, O: LaneOps, const R: usize, const FULL: usize, const PART: bool>(
    ops: O,
    c: &mut [T],
    ab: &Operands<'_, T>,
) {
    let n = ab.n;
    if n == 0 {
        return;
    }
    // The start row in packs, padded with zeros.
    let mut start = [splat(T::ZERO); 4];
    if let Some(b) = ab.start {
        for (j, &v) in b.iter().enumerate() {
            start[j / PACK][j % PACK] = v;
        }
    }
    let mut blocks = c.chunks_exact_mut(R * n);
    let mut i = 0;
    for c in blocks.by_ref() {
        tile::<T, O, R, FULL, PART>(ops, c, ab, i, &start);
        i += R;
    }
    for c in blocks.into_remainder().chunks_exact_mut(n) {
        tile::<T, O, 1, FULL, PART>(ops, c, ab, i, &start);
        i += 1;
    }
}

/// Rows `i..i + R` of the product into `c` (those rows): `R x FULL` packs of chains, and a part
/// pack per row when `PART`, in registers, each chain in order over `t`. The accumulators are
/// indexed by constant ranges only, so that they stay in registers (an index the compiler cannot
/// unroll puts the whole array in memory: measured 1.6x slower).
#[allow(clippy::needless_range_loop)]
#[inline(always)]
fn tile<T: Float, O: LaneOps, const R: usize, const FULL: usize, const PART: bool>(
    ops: O,
    c: &mut [T],
    ab: &Operands<'_, T>,
    i: usize,
    start: &[Pack<T>; 4],
) {
    let n = ab.n;
    let mut acc = [[splat(T::ZERO); FULL]; R];
    let mut tail = [splat(T::ZERO); R];
    for r in 0..R {
        acc[r].copy_from_slice(&start[..FULL]);
        if PART {
            tail[r] = start[FULL];
        }
    }
    if ab.k > 0 {
        // The largest offsets read below: strides are non-negative, so these bound every
        // (r, t, column) of the tile.
        let last = ab.k - 1;
        assert!(
            (i + R - 1) * ab.a_rs + last * ab.a_cs < ab.a.len()
                && last * ab.b_rs + n.max(FULL * PACK) <= ab.b.len(),
            "small: tile out of bounds"
        );
    }
    let (pa, pb) = (ab.a.as_ptr(), ab.b.as_ptr());
    for t in 0..ab.k {
        // SAFETY: every offset is below one asserted in bounds above. Checked, the loads cost
        // a multiply, a compare and a branch each (a quarter of the profile of a 2-32-32-3
        // network's training, where faer's products were 1.5x faster than these).
        let av: [Pack<T>; R] =
            std::array::from_fn(|r| splat(unsafe { *pa.add((i + r) * ab.a_rs + t * ab.a_cs) }));
        let row = unsafe { pb.add(t * ab.b_rs) };
        for s in 0..FULL {
            let mut bv = splat(T::ZERO);
            for (q, v) in bv.iter_mut().enumerate() {
                *v = unsafe { *row.add(s * PACK + q) };
            }
            for r in 0..R {
                acc[r][s] = ops.fma(acc[r][s], &av[r], &bv);
            }
        }
        if PART {
            let mut bv = splat(T::ZERO);
            for (q, v) in bv.iter_mut().enumerate().take(n - FULL * PACK) {
                *v = unsafe { *row.add(FULL * PACK + q) };
            }
            for r in 0..R {
                tail[r] = ops.fma(tail[r], &av[r], &bv);
            }
        }
    }
    // Each pack copied out whole before its columns are written: indexing the accumulators
    // by a run-time column would keep them in memory through the loop above.
    for r in 0..R {
        let dst = &mut c[r * n..(r + 1) * n];
        let mut chunks = dst.chunks_mut(PACK);
        for s in 0..FULL {
            let pack = acc[r][s];
            match chunks.next() {
                // A whole pack: one vector store.
                Some(d) if d.len() == PACK => {
                    let d: &mut Pack<T> = d.try_into().expect("a whole pack");
                    *d = pack;
                }
                Some(d) => {
                    for (d, v) in d.iter_mut().zip(pack) {
                        *d = v;
                    }
                }
                None => {}
            }
        }
        if PART {
            let pack = tail[r];
            if let Some(d) = chunks.next() {
                for (d, v) in d.iter_mut().zip(pack) {
                    *d = v;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::{matmul_nn, matmul_nt, matmul_tn};

    /// Values of mixed signs and magnitudes, so that the order of the additions shows in the
    /// bits.
    fn mixed<T: Float>(rows: usize, cols: usize, salt: usize) -> Matrix<T> {
        let data = (0..rows * cols)
            .map(|k| {
                let k = (k + 31 * salt) as f64;
                T::from_f64((k * 0.731).sin() * 10f64.powi((k as i32 % 7) - 3))
            })
            .collect();
        Matrix::from_vec(rows, cols, data)
    }

    /// The chain written out: `s + a_0 b_0`, then `+ a_1 b_1`, ..., one rounding per step.
    fn chain<T: Float>(s: T, terms: impl Iterator<Item = (T, T)>) -> T {
        terms.fold(s, |acc, (a, b)| a.mul_add(b, acc))
    }

    #[allow(clippy::needless_range_loop)]
    fn check<T: Float>(shapes: &[(usize, usize, usize)]) {
        for &(batch, fan_in, fan_out) in shapes {
            let x = mixed::<T>(batch, fan_in, 1);
            let w = mixed::<T>(fan_out, fan_in, 2);
            let bias = mixed::<T>(1, fan_out, 3).into_vec();
            let d = mixed::<T>(batch, fan_out, 4);
            let mut z = Matrix::zeros(batch, fan_out);
            forward(&mut z, &x, &w, Some(&bias), &mut [T::ZERO; SCRATCH]);
            let mut z0 = Matrix::zeros(batch, fan_out);
            forward(&mut z0, &x, &w, None, &mut [T::ZERO; SCRATCH]);
            let mut dw = Matrix::zeros(fan_out, fan_in);
            weight_grad(&mut dw, &d, &x, &mut [T::ZERO; SCRATCH]);
            let mut dx = Matrix::zeros(batch, fan_in);
            input_grad(&mut dx, &d, &w, &mut [T::ZERO; SCRATCH]);
            for p in 0..batch {
                for j in 0..fan_out {
                    let terms = || (0..fan_in).map(|i| (x.get(p, i), w.get(j, i)));
                    assert_eq!(z.get(p, j), chain(bias[j], terms()), "z[{p}][{j}]");
                    assert_eq!(z0.get(p, j), chain(T::ZERO, terms()), "z0[{p}][{j}]");
                }
                for i in 0..fan_in {
                    let terms = (0..fan_out).map(|j| (d.get(p, j), w.get(j, i)));
                    assert_eq!(dx.get(p, i), chain(T::ZERO, terms), "dx[{p}][{i}]");
                }
            }
            for j in 0..fan_out {
                for i in 0..fan_in {
                    let terms = (0..batch).map(|p| (d.get(p, j), x.get(p, i)));
                    assert_eq!(dw.get(j, i), chain(T::ZERO, terms), "dW[{j}][{i}]");
                }
            }
            // The same products as faer's, to rounding.
            let close = |a: &Matrix<T>, b: &Matrix<T>, what: &str| {
                let scale = 1e3 * T::UNIT_ROUNDOFF * (1.0 + b.norm());
                for (u, v) in a.as_slice().iter().zip(b.as_slice()) {
                    assert!(
                        (u.to_f64() - v.to_f64()).abs() <= scale,
                        "{what}: {u} vs {v}"
                    );
                }
            };
            let mut want = Matrix::zeros(batch, fan_out);
            matmul_nt(&mut want, &x, &w, false);
            close(&z0, &want, "forward");
            let mut want = Matrix::zeros(fan_out, fan_in);
            matmul_tn(&mut want, &d, &x, false);
            close(&dw, &want, "weight_grad");
            let mut want = Matrix::zeros(batch, fan_in);
            matmul_nn(&mut want, &d, &w, false);
            close(&dx, &want, "input_grad");
        }
    }

    #[test]
    fn each_element_is_one_fma_chain_in_order() {
        check::<f32>(&[(1, 1, 1), (3, 2, 16), (4, 16, 1), (9, 7, 32), (130, 32, 5)]);
        check::<f64>(&[(1, 1, 1), (3, 2, 16), (4, 16, 1), (9, 7, 32), (130, 32, 5)]);
    }

    /// Every layer shape up to SMALL x SMALL (every tile kind: whole packs, a part pack, both,
    /// the transposed weight gradient) at batches below, at and past a tile's rows.
    #[test]
    fn every_shape_up_to_the_limit_is_chained_in_order() {
        let mut shapes = Vec::new();
        for batch in [0, 1, 2, 3, 5, 9] {
            for fan_in in 1..=SMALL {
                for fan_out in 1..=SMALL {
                    shapes.push((batch, fan_in, fan_out));
                }
            }
        }
        check::<f32>(&shapes);
        check::<f64>(&shapes[..shapes.len() / 3]);
    }

    #[test]
    fn an_empty_batch_writes_nothing_and_a_zero_batch_gradient_is_zero() {
        let w = mixed::<f64>(3, 2, 0);
        let mut z = Matrix::zeros(0, 3);
        forward(&mut z, &Matrix::zeros(0, 2), &w, None, &mut [0.0; SCRATCH]);
        let mut dw = Matrix::from_vec(3, 2, vec![f64::NAN; 6]);
        weight_grad(
            &mut dw,
            &Matrix::zeros(0, 3),
            &Matrix::zeros(0, 2),
            &mut [0.0; SCRATCH],
        );
        assert_eq!(dw.as_slice(), &[0.0; 6]);
    }

    #[test]
    #[should_panic(expected = "small::forward")]
    fn a_layer_past_the_limit_is_refused() {
        let (x, w) = (
            Matrix::<f32>::zeros(2, SMALL + 1),
            Matrix::zeros(4, SMALL + 1),
        );
        forward(&mut Matrix::zeros(2, 4), &x, &w, None, &mut [0.0; SCRATCH]);
    }
}
