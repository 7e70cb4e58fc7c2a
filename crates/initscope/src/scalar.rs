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
    Copy
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

    fn from_f64(x: f64) -> Self;
    fn to_f64(self) -> f64;
    fn exp(self) -> Self;
    fn ln(self) -> Self;
    fn ln_1p(self) -> Self;
    fn tanh(self) -> Self;
    fn sqrt(self) -> Self;
    fn abs(self) -> Self;
    fn erf(self) -> Self;
    fn max(self, other: Self) -> Self;
    fn is_finite(self) -> bool;
    /// Little-endian bytes of a slice, for safetensors.
    fn slice_to_le_bytes(xs: &[Self]) -> Vec<u8>;

    /// `dst = alpha * lhs * rhs` (or `dst += ...` when `accumulate`), single-threaded faer GEMM.
    fn gemm(dst: MatMut<'_, Self>, accumulate: bool, lhs: MatRef<'_, Self>, rhs: MatRef<'_, Self>);
}

macro_rules! impl_float {
    ($t:ty, $name:literal, $dtype:expr, $erf:path) => {
        impl Float for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const NAME: &'static str = $name;
            const DTYPE: safetensors::Dtype = $dtype;

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
            fn slice_to_le_bytes(xs: &[Self]) -> Vec<u8> {
                xs.iter().flat_map(|x| x.to_le_bytes()).collect()
            }
            #[inline]
            fn gemm(
                dst: MatMut<'_, Self>,
                accumulate: bool,
                lhs: MatRef<'_, Self>,
                rhs: MatRef<'_, Self>,
            ) {
                let accum = if accumulate {
                    Accum::Add
                } else {
                    Accum::Replace
                };
                matmul(dst, accum, lhs, rhs, 1.0, Par::Seq);
            }
        }
    };
}

impl_float!(f32, "f32", safetensors::Dtype::F32, libm::erff);
impl_float!(f64, "f64", safetensors::Dtype::F64, libm::erf);
