//! Dense row-major storage and the three GEMM shapes backprop needs, through faer on slices.
//!
//! A [`Matrix`] owns a buffer whose row count can shrink and grow within its capacity without
//! allocating, so one workspace serves full minibatches and the shorter last one.

use faer::{MatMut, MatRef};

use crate::scalar::Float;

/// A row-major matrix of shape `(rows, cols)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Matrix<T> {
    rows: usize,
    cols: usize,
    data: Vec<T>, // rows * cols, row-major
}

impl<T: Float> Matrix<T> {
    /// A zero matrix of shape `(rows, cols)`.
    pub fn zeros(rows: usize, cols: usize) -> Self {
        Matrix {
            rows,
            cols,
            data: vec![T::ZERO; rows * cols],
        }
    }

    /// Wraps row-major data; `data.len()` must be `rows * cols`.
    pub fn from_vec(rows: usize, cols: usize, data: Vec<T>) -> Self {
        assert_eq!(data.len(), rows * cols, "Matrix::from_vec: shape mismatch");
        Matrix { rows, cols, data }
    }

    /// Converts every entry from `f64`.
    pub fn from_f64(m: &Matrix<f64>) -> Self {
        m.cast()
    }

    /// Converts every entry to another precision (exact from f32 to f64 and back).
    pub fn cast<U: Float>(&self) -> Matrix<U> {
        Matrix {
            rows: self.rows,
            cols: self.cols,
            data: self.data.iter().map(|&x| U::from_f64(x.to_f64())).collect(),
        }
    }

    /// The rows `idx`, in that order.
    pub fn select_rows(&self, idx: &[usize]) -> Matrix<T> {
        let mut data = Vec::with_capacity(idx.len() * self.cols);
        for &i in idx {
            data.extend_from_slice(self.row(i));
        }
        Matrix {
            rows: idx.len(),
            cols: self.cols,
            data,
        }
    }

    /// Converts every entry to `f64`.
    pub fn to_f64(&self) -> Matrix<f64> {
        Matrix {
            rows: self.rows,
            cols: self.cols,
            data: self.data.iter().map(|x| x.to_f64()).collect(),
        }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    pub fn shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    pub fn as_slice(&self) -> &[T] {
        &self.data
    }

    pub fn as_mut_slice(&mut self) -> &mut [T] {
        &mut self.data
    }

    pub fn into_vec(self) -> Vec<T> {
        self.data
    }

    /// Row `i` as a slice of length `cols`.
    #[inline]
    pub fn row(&self, i: usize) -> &[T] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }

    #[inline]
    pub fn row_mut(&mut self, i: usize) -> &mut [T] {
        &mut self.data[i * self.cols..(i + 1) * self.cols]
    }

    #[inline]
    pub fn get(&self, i: usize, j: usize) -> T {
        self.data[i * self.cols + j]
    }

    #[inline]
    pub fn set(&mut self, i: usize, j: usize, v: T) {
        self.data[i * self.cols + j] = v;
    }

    /// Sets the number of rows, keeping the column count. Never allocates while
    /// `rows * cols` stays within the capacity the matrix was created with.
    pub fn set_rows(&mut self, rows: usize) {
        self.rows = rows;
        self.data.resize(rows * self.cols, T::ZERO);
    }

    pub fn fill(&mut self, v: T) {
        self.data.fill(v);
    }

    /// Frobenius norm, accumulated in f64.
    /// Every entry is exactly 0.
    pub fn is_zero(&self) -> bool {
        self.as_slice().iter().all(|&x| x == T::ZERO)
    }

    /// Every row is the same vector (a value that does not vary over the batch).
    pub fn rows_identical(&self) -> bool {
        (1..self.rows()).all(|i| self.row(i) == self.row(0))
    }

    /// Within every row all entries are equal (a value equal across the units).
    pub fn rows_constant(&self) -> bool {
        (0..self.rows()).all(|i| {
            let r = self.row(i);
            r.iter().all(|&x| x == r[0])
        })
    }

    /// The columns whose entries are all equal (units constant over the batch).
    pub fn constant_columns(&self) -> Vec<usize> {
        (0..self.cols())
            .filter(|&j| (1..self.rows()).all(|i| self.get(i, j) == self.get(0, j)))
            .collect()
    }

    pub fn norm(&self) -> f64 {
        norm(&self.data)
    }

    fn view(&self) -> MatRef<'_, T> {
        MatRef::from_row_major_slice(&self.data, self.rows, self.cols)
    }

    fn view_mut(&mut self) -> MatMut<'_, T> {
        MatMut::from_row_major_slice_mut(&mut self.data, self.rows, self.cols)
    }
}

/// Euclidean norm of a slice, accumulated in f64.
pub fn norm<T: Float>(xs: &[T]) -> f64 {
    xs.iter()
        .map(|x| {
            let x = x.to_f64();
            x * x
        })
        .sum::<f64>()
        .sqrt()
}

/// Population variance of a slice (mean of squared deviations from the mean).
pub fn variance(xs: &[f64]) -> f64 {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n
}

/// `out (m, n) = a (m, k) · b (n, k)^T`, or `+=` when `accumulate`. Forward: `z = a W^T`.
pub fn matmul_nt<T: Float>(out: &mut Matrix<T>, a: &Matrix<T>, b: &Matrix<T>, accumulate: bool) {
    assert!(
        out.rows == a.rows && out.cols == b.rows && a.cols == b.cols,
        "matmul_nt: ({}, {}) = ({}, {}) x ({}, {})^T",
        out.rows,
        out.cols,
        a.rows,
        a.cols,
        b.rows,
        b.cols
    );
    T::gemm(
        out.view_mut(),
        accumulate,
        a.view(),
        b.view().transpose(),
        T::ONE,
    );
}

/// `out (m, n) = a (k, m)^T · b (k, n)`, or `+=`. Weight gradient: `dW = delta^T a`.
pub fn matmul_tn<T: Float>(out: &mut Matrix<T>, a: &Matrix<T>, b: &Matrix<T>, accumulate: bool) {
    tn(out, a, b, accumulate, T::ONE);
}

/// `out (m, n) += alpha a (k, m)^T · b (k, n)`: a gradient-descent step on `out` straight from
/// the product, `W -= lr delta^T a` with `alpha = -lr`, without the gradient in memory.
pub fn matmul_tn_add_scaled<T: Float>(out: &mut Matrix<T>, a: &Matrix<T>, b: &Matrix<T>, alpha: T) {
    tn(out, a, b, true, alpha);
}

fn tn<T: Float>(out: &mut Matrix<T>, a: &Matrix<T>, b: &Matrix<T>, accumulate: bool, alpha: T) {
    assert!(
        out.rows == a.cols && out.cols == b.cols && a.rows == b.rows,
        "matmul_tn: ({}, {}) {} ({}, {})^T x ({}, {})",
        out.rows,
        out.cols,
        if accumulate { "+=" } else { "=" },
        a.rows,
        a.cols,
        b.rows,
        b.cols
    );
    T::gemm(
        out.view_mut(),
        accumulate,
        a.view().transpose(),
        b.view(),
        alpha,
    );
}

/// `out (m, n) = a (m, k) · b (k, n)`, or `+=`. Input gradient: `d_input = delta W`.
pub fn matmul_nn<T: Float>(out: &mut Matrix<T>, a: &Matrix<T>, b: &Matrix<T>, accumulate: bool) {
    assert!(
        out.rows == a.rows && out.cols == b.cols && a.cols == b.rows,
        "matmul_nn: ({}, {}) = ({}, {}) x ({}, {})",
        out.rows,
        out.cols,
        a.rows,
        a.cols,
        b.rows,
        b.cols
    );
    T::gemm(out.view_mut(), accumulate, a.view(), b.view(), T::ONE);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f64], b: &[f64], m: usize, k: usize, n: usize) -> Vec<f64> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                for l in 0..k {
                    c[i * n + j] += a[i * k + l] * b[l * n + j];
                }
            }
        }
        c
    }

    fn transpose(x: &[f64], r: usize, c: usize) -> Vec<f64> {
        let mut t = vec![0.0; r * c];
        for i in 0..r {
            for j in 0..c {
                t[j * r + i] = x[i * c + j];
            }
        }
        t
    }

    #[test]
    fn three_gemm_shapes_match_naive_products() {
        let (m, k, n) = (5, 7, 3);
        let a: Vec<f64> = (0..m * k).map(|i| (i as f64 * 0.37).sin()).collect();
        let b: Vec<f64> = (0..k * n).map(|i| (i as f64 * 0.91).cos()).collect();
        let want = naive(&a, &b, m, k, n);

        let am = Matrix::from_vec(m, k, a.clone());
        let bt = Matrix::from_vec(n, k, transpose(&b, k, n));
        let mut out = Matrix::zeros(m, n);
        matmul_nt(&mut out, &am, &bt, false);
        for (x, y) in out.as_slice().iter().zip(&want) {
            assert!((x - y).abs() < 1e-12);
        }

        let at = Matrix::from_vec(k, m, transpose(&a, m, k));
        let bm = Matrix::from_vec(k, n, b.clone());
        matmul_tn(&mut out, &at, &bm, false);
        for (x, y) in out.as_slice().iter().zip(&want) {
            assert!((x - y).abs() < 1e-12);
        }

        matmul_nn(&mut out, &am, &bm, true);
        for (x, y) in out.as_slice().iter().zip(&want) {
            assert!((x - 2.0 * y).abs() < 1e-12);
        }
    }

    #[test]
    fn set_rows_within_capacity_keeps_the_buffer() {
        let mut m = Matrix::<f32>::zeros(8, 4);
        let ptr = m.as_slice().as_ptr();
        m.set_rows(3);
        assert_eq!(m.shape(), (3, 4));
        m.set_rows(8);
        assert_eq!(m.as_slice().as_ptr(), ptr);
    }
}
