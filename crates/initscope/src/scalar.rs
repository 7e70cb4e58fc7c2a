//! The one scalar abstraction: `f32` or `f64`, chosen at run time by `--precision`.
//!
//! Everything numeric in the engine is generic over [`Float`]; the two implementations differ
//! only in the concrete faer GEMM they call and in their safetensors dtype.

use std::fmt::{Debug, Display};
use std::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Sub, SubAssign};

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};

/// A real floating-point scalar the engine can train in.
pub trait Float:
    'static
    + Copy
    + Send
    + Sync
    + Default
    + Debug
    + Display
    + PartialEq
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
    + DivAssign
    + 'static
{
    const ZERO: Self;
    const ONE: Self;
    /// "f32" or "f64".
    const NAME: &'static str;
    /// The matching safetensors dtype.
    const DTYPE: safetensors::Dtype;
    /// The unit roundoff u = eps / 2 (2^-24 for f32, 2^-53 for f64): under round-to-nearest,
    /// adding |d| < u * |w| to a power of two w leaves it unchanged.
    const UNIT_ROUNDOFF: f64;

    fn from_f64(x: f64) -> Self;
    fn to_f64(self) -> f64;
    fn exp(self) -> Self;
    fn ln(self) -> Self;
    fn ln_1p(self) -> Self;
    fn tanh(self) -> Self;
    /// The tanh the engine trains with. f64: `std`'s tanh. f32: [`tanh_f32`], a branch-free
    /// rational approximation that the compiler vectorises (libm's `tanhf` does not vectorise and
    /// dominated deep tanh networks). Both keep NaN and map ±inf to ±1.
    fn tanh_fast(self) -> Self;
    /// [`Float::tanh_fast`] by fused multiply-adds ([`tanh_f32_fused`]), for code compiled with
    /// FMA only.
    fn tanh_fast_fused(self) -> Self;
    /// The exponential the engine's activations use. f64: `std`'s exp. f32: [`exp_f32`], branch
    /// free plain arithmetic that the compiler vectorises (libm's `expf` is a call per element:
    /// 23% of `study`, which trains a third of its runs with sigmoid). Same results in every
    /// SIMD dispatch (no fused multiply-adds), so packs and the engine agree bit for bit.
    fn exp_fast(self) -> Self;
    /// `ln(1 + x)` for `0 <= x <= 1` (`x = e^-|z|` in softplus and BCE's stable form), the
    /// engine's. f64: `std`'s ln_1p. f32: [`ln_1p_unit_f32`], plain arithmetic that vectorises
    /// (libm's `log1pf` was 20% of a BCE sweep's step).
    fn ln_1p_unit_fast(self) -> Self;
    /// `ln(1 + e^-|x|)`, the term that makes softplus `max(x, 0) + ln(1 + e^-|x|)` and BCE with
    /// logits stable (never overflows, no cancellation), by [`Float::exp_fast`] and
    /// [`Float::ln_1p_unit_fast`]: the one formula both use.
    #[inline(always)]
    fn ln_1p_exp_neg_abs_fast(self) -> Self {
        (-self.abs()).exp_fast().ln_1p_unit_fast()
    }
    fn sqrt(self) -> Self;
    /// `self * a + b` with one rounding (an FMA instruction inside a SIMD dispatch).
    fn mul_add(self, a: Self, b: Self) -> Self;
    fn abs(self) -> Self;
    fn erf(self) -> Self;
    fn max(self, other: Self) -> Self;
    fn is_finite(self) -> bool;
    /// `acc + x * w` on 8 lanes as explicit AVX2/FMA instructions (one for f32, two for f64);
    /// used by [`crate::lockstep`], where the compiler's own vectorisation of `[T; 8]` loops
    /// produced transposes instead of one instruction per pack.
    #[cfg(target_arch = "x86_64")]
    fn fma8_v3(simd: pulp::x86::V3, acc: [Self; 8], x: [Self; 8], w: [Self; 8]) -> [Self; 8];
    /// `acc + x` on eight lanes with explicit AVX2 instructions (see [`Float::fma8_v3`]).
    #[cfg(target_arch = "x86_64")]
    fn add8_v3(simd: pulp::x86::V3, acc: [Self; 8], x: [Self; 8]) -> [Self; 8];
    /// `a - b` on eight lanes with explicit AVX2 instructions (see [`Float::fma8_v3`]).
    #[cfg(target_arch = "x86_64")]
    fn sub8_v3(simd: pulp::x86::V3, a: [Self; 8], b: [Self; 8]) -> [Self; 8];
    /// `a * b` on eight lanes with explicit AVX2 instructions (see [`Float::fma8_v3`]).
    #[cfg(target_arch = "x86_64")]
    fn mul8_v3(simd: pulp::x86::V3, a: [Self; 8], b: [Self; 8]) -> [Self; 8];
    /// `acc + x * w` on 16 lanes as explicit AVX-512 instructions (one for f32, two for f64),
    /// for [`crate::lockstep`]'s packs on CPUs with AVX-512 (`token` proves it).
    #[cfg(target_arch = "x86_64")]
    fn fma16_v4(token: Avx512, acc: [Self; 16], x: [Self; 16], w: [Self; 16]) -> [Self; 16];
    /// `acc + x` on 16 lanes as explicit AVX-512 instructions (see [`Float::fma16_v4`]).
    #[cfg(target_arch = "x86_64")]
    fn add16_v4(token: Avx512, acc: [Self; 16], x: [Self; 16]) -> [Self; 16];
    /// Little-endian bytes of a slice, for safetensors.
    fn slice_to_le_bytes(xs: &[Self]) -> Vec<u8>;
    /// `s` as a slice of `Self` (no copy) when `Self` is f32; None for f64.
    fn from_f32_slice(s: &[f32]) -> Option<&[Self]>;
    /// `s` as a slice of `Self` (no copy) when `Self` is f64; None for f32.
    fn from_f64_slice(s: &[f64]) -> Option<&[Self]>;

    /// `dst = alpha * lhs * rhs` (or `dst += ...` when `accumulate`), single-threaded faer GEMM.
    fn gemm(
        dst: MatMut<'_, Self>,
        accumulate: bool,
        lhs: MatRef<'_, Self>,
        rhs: MatRef<'_, Self>,
        alpha: Self,
    );
}

/// Proof that the CPU has AVX-512 (F, VL, DQ, BW, CD) and F16C (which rustc's `avx512f`
/// enables) besides pulp's AVX2 level (FMA, BMI1/2, LZCNT, POPCNT, ...): code compiled
/// with those features ([`Avx512::vectorize`]) runs one instruction per 16 f32 lanes. Not a
/// pulp level: pulp's AVX-512 feature would also switch faer's own kernels (other bits).
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
pub struct Avx512(());

#[cfg(target_arch = "x86_64")]
impl Avx512 {
    /// The token, where the CPU has every feature [`Avx512::vectorize`] compiles for (detected
    /// once per process: a pack asks at every step).
    pub fn try_new() -> Option<Self> {
        static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        let has = *HAS.get_or_init(|| {
            std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512vl")
                && std::arch::is_x86_feature_detected!("avx512dq")
                && std::arch::is_x86_feature_detected!("avx512bw")
                && std::arch::is_x86_feature_detected!("avx512cd")
                && std::arch::is_x86_feature_detected!("f16c")
                && pulp::x86::V3::try_new().is_some()
        });
        has.then_some(Avx512(()))
    }

    /// `op` with everything `#[inline(always)]` under it compiled for AVX-512 (and the AVX2
    /// level below it, `v3`).
    #[inline]
    pub fn vectorize<Op: pulp::WithSimd>(self, v3: pulp::x86::V3, op: Op) -> Op::Output {
        // SAFETY: the token exists only where `try_new` found every feature enabled below.
        unsafe { with_avx512(v3, op) }
    }
}

/// [`Avx512::vectorize`]'s body, compiled with the features the token proves.
#[cfg(target_arch = "x86_64")]
#[target_feature(
    enable = "avx512f,avx512vl,avx512dq,avx512bw,avx512cd,f16c,avx2,fma,bmi1,bmi2,lzcnt"
)]
unsafe fn with_avx512<Op: pulp::WithSimd>(v3: pulp::x86::V3, op: Op) -> Op::Output {
    op.with_simd(v3)
}

// The AVX-512 lane operations of `Float::fma16_v4` / `add16_v4`. SAFETY (every `unsafe` below):
// the intrinsics need AVX-512F, which an `Avx512` token proves the CPU has; the transmutes are
// between plain-data types of 64 bytes ([f32; 16] and __m512, [f64; 8] and __m512d).
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::Avx512;
    use std::arch::x86_64::{
        __m512, __m512d, _mm512_add_pd, _mm512_add_ps, _mm512_fmadd_pd, _mm512_fmadd_ps,
    };
    use std::mem::transmute;

    #[inline(always)]
    fn ps(v: [f32; 16]) -> __m512 {
        unsafe { transmute::<[f32; 16], __m512>(v) }
    }

    #[inline(always)]
    fn from_ps(v: __m512) -> [f32; 16] {
        unsafe { transmute::<__m512, [f32; 16]>(v) }
    }

    #[inline(always)]
    fn pd(v: [f64; 16]) -> [__m512d; 2] {
        unsafe { transmute::<[f64; 16], [__m512d; 2]>(v) }
    }

    #[inline(always)]
    fn from_pd(v: [__m512d; 2]) -> [f64; 16] {
        unsafe { transmute::<[__m512d; 2], [f64; 16]>(v) }
    }

    #[inline(always)]
    pub(crate) fn fma16_f32(_: Avx512, acc: [f32; 16], x: [f32; 16], w: [f32; 16]) -> [f32; 16] {
        from_ps(unsafe { _mm512_fmadd_ps(ps(x), ps(w), ps(acc)) })
    }

    #[inline(always)]
    pub(crate) fn add16_f32(_: Avx512, acc: [f32; 16], x: [f32; 16]) -> [f32; 16] {
        from_ps(unsafe { _mm512_add_ps(ps(acc), ps(x)) })
    }

    #[inline(always)]
    pub(crate) fn fma16_f64(_: Avx512, acc: [f64; 16], x: [f64; 16], w: [f64; 16]) -> [f64; 16] {
        let (acc, x, w) = (pd(acc), pd(x), pd(w));
        from_pd(unsafe {
            [
                _mm512_fmadd_pd(x[0], w[0], acc[0]),
                _mm512_fmadd_pd(x[1], w[1], acc[1]),
            ]
        })
    }

    #[inline(always)]
    pub(crate) fn add16_f64(_: Avx512, acc: [f64; 16], x: [f64; 16]) -> [f64; 16] {
        let (acc, x) = (pd(acc), pd(x));
        from_pd(unsafe { [_mm512_add_pd(acc[0], x[0]), _mm512_add_pd(acc[1], x[1])] })
    }
}
#[cfg(target_arch = "x86_64")]
use avx512::{add16_f32, add16_f64, fma16_f32, fma16_f64};

macro_rules! impl_float {
    ($t:ty, $from32:expr, $from64:expr, $name:literal, $dtype:expr, $erf:path, $tanh_fast:path, $tanh_fused:path, $exp_fast:path, $ln_1p_unit:path, $simd:ident, $chunks:literal, $fma:ident, $add:ident, $sub:ident, $mul:ident, $fma16:path, $add16:path) => {
        impl Float for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const NAME: &'static str = $name;
            const DTYPE: safetensors::Dtype = $dtype;
            const UNIT_ROUNDOFF: f64 = <$t>::EPSILON as f64 / 2.0;

            fn from_f32_slice(s: &[f32]) -> Option<&[Self]> {
                $from32(s)
            }
            fn from_f64_slice(s: &[f64]) -> Option<&[Self]> {
                $from64(s)
            }
            #[inline]
            fn from_f64(x: f64) -> Self {
                x as $t
            }
            #[inline]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline]
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            #[inline]
            fn ln(self) -> Self {
                <$t>::ln(self)
            }
            #[inline]
            fn ln_1p(self) -> Self {
                <$t>::ln_1p(self)
            }
            #[inline]
            fn tanh(self) -> Self {
                <$t>::tanh(self)
            }
            #[inline(always)]
            fn tanh_fast(self) -> Self {
                $tanh_fast(self)
            }
            #[inline(always)]
            fn tanh_fast_fused(self) -> Self {
                $tanh_fused(self)
            }
            #[inline(always)]
            fn exp_fast(self) -> Self {
                $exp_fast(self)
            }
            #[inline(always)]
            fn ln_1p_unit_fast(self) -> Self {
                $ln_1p_unit(self)
            }
            #[inline(always)]
            fn mul_add(self, a: Self, b: Self) -> Self {
                <$t>::mul_add(self, a, b)
            }
            #[inline]
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            #[inline]
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            #[inline]
            fn erf(self) -> Self {
                $erf(self)
            }
            #[inline]
            fn max(self, other: Self) -> Self {
                <$t>::max(self, other)
            }
            #[inline]
            fn is_finite(self) -> bool {
                <$t>::is_finite(self)
            }
            #[cfg(target_arch = "x86_64")]
            #[inline(always)]
            fn fma8_v3(
                simd: pulp::x86::V3,
                acc: [Self; 8],
                x: [Self; 8],
                w: [Self; 8],
            ) -> [Self; 8] {
                use pulp::Simd;
                type V = [<pulp::x86::V3 as Simd>::$simd; $chunks];
                let (acc, x, w): (V, V, V) = (pulp::cast(acc), pulp::cast(x), pulp::cast(w));
                pulp::cast::<V, [Self; 8]>(std::array::from_fn(|i| simd.$fma(x[i], w[i], acc[i])))
            }
            #[cfg(target_arch = "x86_64")]
            #[inline(always)]
            fn add8_v3(simd: pulp::x86::V3, acc: [Self; 8], x: [Self; 8]) -> [Self; 8] {
                use pulp::Simd;
                type V = [<pulp::x86::V3 as Simd>::$simd; $chunks];
                let (acc, x): (V, V) = (pulp::cast(acc), pulp::cast(x));
                pulp::cast::<V, [Self; 8]>(std::array::from_fn(|i| simd.$add(acc[i], x[i])))
            }
            #[cfg(target_arch = "x86_64")]
            #[inline(always)]
            fn sub8_v3(simd: pulp::x86::V3, a: [Self; 8], b: [Self; 8]) -> [Self; 8] {
                use pulp::Simd;
                type V = [<pulp::x86::V3 as Simd>::$simd; $chunks];
                let (a, b): (V, V) = (pulp::cast(a), pulp::cast(b));
                pulp::cast::<V, [Self; 8]>(std::array::from_fn(|i| simd.$sub(a[i], b[i])))
            }
            #[cfg(target_arch = "x86_64")]
            #[inline(always)]
            fn mul8_v3(simd: pulp::x86::V3, a: [Self; 8], b: [Self; 8]) -> [Self; 8] {
                use pulp::Simd;
                type V = [<pulp::x86::V3 as Simd>::$simd; $chunks];
                let (a, b): (V, V) = (pulp::cast(a), pulp::cast(b));
                pulp::cast::<V, [Self; 8]>(std::array::from_fn(|i| simd.$mul(a[i], b[i])))
            }
            #[cfg(target_arch = "x86_64")]
            #[inline(always)]
            fn fma16_v4(
                token: Avx512,
                acc: [Self; 16],
                x: [Self; 16],
                w: [Self; 16],
            ) -> [Self; 16] {
                $fma16(token, acc, x, w)
            }
            #[cfg(target_arch = "x86_64")]
            #[inline(always)]
            fn add16_v4(token: Avx512, acc: [Self; 16], x: [Self; 16]) -> [Self; 16] {
                $add16(token, acc, x)
            }
            fn slice_to_le_bytes(xs: &[Self]) -> Vec<u8> {
                xs.iter().flat_map(|x| x.to_le_bytes()).collect()
            }
            #[inline]
            fn gemm(
                dst: MatMut<'_, Self>,
                accumulate: bool,
                lhs: MatRef<'_, Self>,
                rhs: MatRef<'_, Self>,
                alpha: Self,
            ) {
                let accum = if accumulate {
                    Accum::Add
                } else {
                    Accum::Replace
                };
                matmul(dst, accum, lhs, rhs, alpha, Par::Seq);
            }
        }
    };
}

impl_float!(
    f32,
    Some,
    |_| None,
    "f32",
    safetensors::Dtype::F32,
    libm::erff,
    tanh_f32,
    tanh_f32_fused,
    exp_f32,
    ln_1p_unit_f32,
    f32s,
    1,
    mul_add_f32s,
    add_f32s,
    sub_f32s,
    mul_f32s,
    fma16_f32,
    add16_f32
);
impl_float!(
    f64,
    |_| None,
    Some,
    "f64",
    safetensors::Dtype::F64,
    libm::erf,
    f64::tanh,
    f64::tanh,
    f64::exp,
    f64::ln_1p,
    f64s,
    2,
    mul_add_f64s,
    add_f64s,
    sub_f64s,
    mul_f64s,
    fma16_f64,
    add16_f64
);

/// tanh in f32 as the rational function `x P(x^2) / Q(x^2)` (degrees 13/6) of Eigen's and XLA's
/// `fast_tanh`, on `x` clamped to ±7.905311 where the result rounds to ±1; `|x| < 4e-4` returns
/// `x` itself (tanh x = x - x^3/3 there to f32 precision). Measured against f64 tanh over
/// [-10, 10]: within 7 ulp of the correctly rounded value, relative error below 4.3e-7 (test
/// `fast_tanh_is_within_a_few_ulp`); f32 training noise is far larger. Plain arithmetic
/// and selects only, so loops over it vectorise; NaN propagates (`clamp` keeps it, unlike
/// `max`/`min`), so a diverging run stays visible.
#[inline(always)]
pub fn tanh_f32(x: f32) -> f32 {
    tanh_rational(x, 7.905_311, |a, b, c| a * b + c)
}

/// [`tanh_f32`] with its polynomials evaluated by fused multiply-adds (11 instead of 20
/// arithmetic operations; the clamp moves to Eigen's ±7.998812, where the fused evaluation
/// rounds to ±1), for code compiled where FMA is an instruction (a SIMD dispatch with FMA,
/// aarch64): elsewhere each `mul_add` is a call into libm. Same accuracy bounds (test
/// `fast_tanh_is_within_a_few_ulp`).
#[inline(always)]
pub fn tanh_f32_fused(x: f32) -> f32 {
    tanh_rational(x, 7.998_811_7, f32::mul_add)
}

/// e^x in f32 by Cody and Waite's range reduction and Cephes' `expf` polynomial (as in Eigen's
/// and XLA's vectorised `exp`): `x = n ln2 + r` with `n = round(x / ln2)` and `|r| <= ln2 / 2`,
/// `e^r ~ 1 + r + r^2 P(r)` (P of degree 5), times `2^n` built from exponent bits in two
/// factors, so that results down to the smallest subnormal round once, as libm's do. `x` is
/// clamped to [-104, 89] first: below, e^x rounds to 0; above, the product overflows to +inf,
/// as `expf` does. Measured against f64's exp over [-104, 89]: within 2 ulp of the correctly
/// rounded value for normal results (test `fast_exp_is_within_a_few_ulp`); `exp(0) = 1` exactly;
/// NaN propagates. Plain multiplies and adds only (no FMA), so every SIMD dispatch and the
/// scalar code give the same bits.
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 = LN2_HI + LN2_LO, LN2_HI with 9 significant bits so that n LN2_HI is exact.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // 1.5 * 2^23: adding it rounds to an integer (ties to even) held in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    const P0: f32 = 1.987_569_1e-4;
    const P1: f32 = 1.398_199_9e-3;
    const P2: f32 = 8.333_452e-3;
    const P3: f32 = 4.166_579_6e-2;
    const P4: f32 = 1.666_666_5e-1;
    const P5: f32 = 0.5; // Cephes: 5.0000001201e-1, which rounds to 0.5 in f32
    let c = x.clamp(-104.0, 89.0); // NaN stays NaN
    let t = c * LOG2E + ROUND;
    let n = t - ROUND;
    // n as an integer, from t's bits: in [-150, 128], so no saturating conversion is needed.
    let ni = (t.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
    let r = (c - n * LN2_HI) - n * LN2_LO;
    let p = ((((P0 * r + P1) * r + P2) * r + P3) * r + P4) * r + P5;
    let er = (p * (r * r) + r) + 1.0;
    // 2^n = 2^a 2^b with a = floor(n / 2) and b = n - a, both in [-75, 64]: normal numbers.
    let a = ni >> 1;
    let b = ni - a;
    let pow2 = |k: i32| f32::from_bits(((k + 127) as u32) << 23);
    er * pow2(a) * pow2(b)
}

/// `ln(1 + x)` in f32 for `0 <= x <= 1` as `2 atanh(s)`, `s = x / (2 + x)` in [0, 1/3],
/// by atanh's series to `s^15` (the next term is below 2e-9 of the sum): no cancellation for
/// small `x`, one division and plain multiplies and adds (no FMA), so the same bits in every
/// SIMD dispatch. Measured against f64 over [0, 1]: within 2 ulp (test
/// `fast_ln_1p_is_within_a_few_ulp`); `ln_1p(0) = 0` exactly; NaN propagates. Outside [0, 1]
/// the series is truncated too early: callers pass `e^-|z|`.
#[inline(always)]
pub fn ln_1p_unit_f32(x: f32) -> f32 {
    let s = x / (2.0 + x);
    let s2 = s * s;
    let mut p = 1.0 / 15.0;
    for c in [
        1.0 / 13.0,
        1.0 / 11.0,
        1.0 / 9.0,
        1.0 / 7.0,
        1.0 / 5.0,
        1.0 / 3.0,
    ] {
        p = p * s2 + c;
    }
    let ps = (p * s2) * s;
    2.0 * (s + ps)
}

/// `x P(x^2) / Q(x^2)` on `x` clamped to `±clamp`, Horner's scheme with `m(a, b, c) = a b + c`.
#[inline(always)]
fn tanh_rational(x: f32, clamp: f32, m: impl Fn(f32, f32, f32) -> f32) -> f32 {
    const A1: f32 = 4.893_524_6e-3;
    const A3: f32 = 6.372_619_3e-4;
    const A5: f32 = 1.485_722_4e-5;
    const A7: f32 = 5.122_297e-8;
    const A9: f32 = -8.604_672e-11;
    const A11: f32 = 2.000_188e-13;
    const A13: f32 = -2.760_768_5e-16;
    const B0: f32 = 4.893_525e-3;
    const B2: f32 = 2.268_434_6e-3;
    const B4: f32 = 1.185_347_1e-4;
    const B6: f32 = 1.198_258_4e-6;
    let c = x.clamp(-clamp, clamp); // NaN stays NaN
    let x2 = c * c;
    let p = m(
        m(m(m(m(m(A13, x2, A11), x2, A9), x2, A7), x2, A5), x2, A3),
        x2,
        A1,
    ) * c;
    let q = m(m(m(B6, x2, B4), x2, B2), x2, B0);
    if x.abs() < 4e-4 {
        x
    } else {
        p / q
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Distance in units in the last place between two finite f32 of the same sign.
    fn ulps(a: f32, b: f32) -> u32 {
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs() as u32
    }

    #[test]
    fn fast_exp_is_within_a_few_ulp() {
        let (mut worst_ulp, mut worst_sub) = (0, 0.0f64);
        for i in -10_400_000..=8_900_000 {
            let x = i as f32 * 1e-5;
            let exact = (x as f64).exp();
            let got = exp_f32(x);
            if exact >= f32::MIN_POSITIVE as f64 && exact <= f32::MAX as f64 {
                worst_ulp = worst_ulp.max(ulps(got, exact as f32));
            } else if exact < f32::MIN_POSITIVE as f64 {
                // Subnormal results: within one step of the smallest subnormal.
                worst_sub = worst_sub.max((got as f64 - exact).abs() / 2f64.powi(-149));
            } else {
                assert_eq!(got, f32::INFINITY, "exp({x})");
            }
        }
        assert!(worst_ulp <= 2, "worst error {worst_ulp} ulp");
        assert!(worst_sub <= 1.0, "worst subnormal error {worst_sub} steps");
        assert_eq!(exp_f32(0.0), 1.0);
        assert_eq!(exp_f32(-0.0), 1.0);
        assert_eq!(exp_f32(1.0), std::f32::consts::E);
        assert_eq!(exp_f32(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_f32(-200.0), 0.0);
        assert_eq!(exp_f32(f32::INFINITY), f32::INFINITY);
        assert_eq!(exp_f32(88.8), f32::INFINITY);
        assert!(exp_f32(88.7).is_finite());
        assert!(exp_f32(f32::NAN).is_nan());
    }

    #[test]
    fn fast_ln_1p_is_within_a_few_ulp() {
        let mut worst = 0;
        for i in 0..=4_000_000 {
            let x = i as f32 / 4_000_000.0;
            worst = worst.max(ulps(ln_1p_unit_f32(x), (x as f64).ln_1p() as f32));
        }
        // Small x, where ln(1 + x) ~ x: no cancellation.
        for k in 1..=149 {
            let x = 2f32.powi(-k);
            worst = worst.max(ulps(ln_1p_unit_f32(x), (x as f64).ln_1p() as f32));
        }
        assert!(worst <= 2, "worst error {worst} ulp");
        assert_eq!(ln_1p_unit_f32(0.0).to_bits(), 0);
        assert!(ln_1p_unit_f32(f32::NAN).is_nan());
    }

    #[test]
    fn fast_tanh_is_within_a_few_ulp() {
        check_tanh(tanh_f32);
        check_tanh(tanh_f32_fused);
    }

    fn check_tanh(tanh_f32: fn(f32) -> f32) {
        let (mut worst_ulp, mut worst_rel) = (0, 0.0f64);
        for i in -2_000_000..=2_000_000 {
            let x = i as f32 * 5e-6;
            let exact = (x as f64).tanh();
            let got = tanh_f32(x);
            let e = if exact == 0.0 {
                got.to_bits()
            } else {
                ulps(got, exact as f32)
            };
            worst_ulp = worst_ulp.max(e);
            if exact != 0.0 {
                worst_rel = worst_rel.max(((got as f64 - exact) / exact).abs());
            }
        }
        assert!(worst_ulp <= 7, "worst error {worst_ulp} ulp");
        assert!(worst_rel < 5e-7, "worst relative error {worst_rel:e}");
        assert_eq!(tanh_f32(f32::INFINITY), 1.0);
        assert_eq!(tanh_f32(f32::NEG_INFINITY), -1.0);
        assert_eq!(tanh_f32(30.0), 1.0);
        assert_eq!(tanh_f32(0.0).to_bits(), 0.0f32.to_bits());
        assert!(tanh_f32(f32::NAN).is_nan());
    }
}
