//! Feature rows shared between a data set's splits: one row-major buffer, owned by the data set
//! or borrowed from the caller for the length of a call, and for each split the list of its rows
//! in that buffer ([`Rows`]). Holding out test or validation rows, or viewing the features in
//! the training precision they are stored in, copies no feature values.

use std::borrow::Cow;
use std::sync::Arc;

use crate::matrix::Matrix;
use crate::scalar::Float;

/// Anything whose rows a workspace can load: a [`Matrix`] or a split's [`Rows`].
pub trait RowSource<T> {
    /// Row `i`, `cols()` values.
    fn row(&self, i: usize) -> &[T];
    /// Values per row.
    fn cols(&self) -> usize;
    /// Number of rows.
    fn rows(&self) -> usize;
}

impl<T: Float> RowSource<T> for Matrix<T> {
    #[inline]
    fn row(&self, i: usize) -> &[T] {
        Matrix::row(self, i)
    }

    fn cols(&self) -> usize {
        Matrix::cols(self)
    }

    fn rows(&self) -> usize {
        Matrix::rows(self)
    }
}

/// Where the values are: a buffer the data set owns (shared by its splits), or one it borrows
/// (the Python package's C-contiguous arrays in the training precision, read in place).
#[derive(Clone, Debug)]
enum Store<'a, T> {
    Owned(Arc<Vec<T>>),
    Borrowed(&'a [T]),
}

impl<T> Store<'_, T> {
    fn as_slice(&self) -> &[T] {
        match self {
            Store::Owned(v) => v,
            Store::Borrowed(s) => s,
        }
    }
}

/// `rows` rows of `cols` values over a row-major store of shape `(stored rows, cols)`: row `i`
/// is stored row `idx[i]`, or stored row `i` when there is no index list. Cloning, viewing and
/// selecting rows share the store; only [`Rows::to_matrix`], [`Rows::select_rows`] and
/// [`Rows::cast`] copy values.
#[derive(Clone, Debug)]
pub struct Rows<'a, T> {
    store: Store<'a, T>,
    rows: usize,
    cols: usize,
    idx: Option<Arc<[usize]>>, // rows entries, each < stored rows
}

impl<T: Float> From<Matrix<T>> for Rows<'static, T> {
    /// Takes the matrix's buffer as the store (no copy).
    fn from(m: Matrix<T>) -> Self {
        let (rows, cols) = m.shape();
        Rows {
            store: Store::Owned(Arc::new(m.into_vec())),
            rows,
            cols,
            idx: None,
        }
    }
}

impl<'a, T: Float> Rows<'a, T> {
    /// Borrows row-major `data` as `(rows, cols)`; None when `data.len() != rows * cols`.
    pub fn borrowed(rows: usize, cols: usize, data: &'a [T]) -> Option<Self> {
        (rows.checked_mul(cols) == Some(data.len())).then_some(Rows {
            store: Store::Borrowed(data),
            rows,
            cols,
            idx: None,
        })
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Row `i` as a slice of length `cols`.
    #[inline]
    pub fn row(&self, i: usize) -> &[T] {
        let stored = match &self.idx {
            Some(idx) => idx[i],
            None => i,
        };
        &self.store.as_slice()[stored * self.cols..(stored + 1) * self.cols]
    }

    #[inline]
    pub fn get(&self, i: usize, j: usize) -> T {
        self.row(i)[j]
    }

    /// Every value in row-major order.
    pub fn values(&self) -> impl Iterator<Item = &T> + '_ {
        (0..self.rows).flat_map(move |i| self.row(i))
    }

    /// The same rows, borrowing this store (no copy).
    pub fn view(&self) -> Rows<'_, T> {
        Rows {
            store: Store::Borrowed(self.store.as_slice()),
            rows: self.rows,
            cols: self.cols,
            idx: self.idx.clone(),
        }
    }

    /// The same rows as values of type `U`, borrowing this store, when `same` sees the values
    /// are of type `U` ([`Float::from_f32_slice`], [`Float::from_f64_slice`]); None otherwise.
    pub fn view_as<U>(&self, same: fn(&[T]) -> Option<&[U]>) -> Option<Rows<'_, U>> {
        Some(Rows {
            store: Store::Borrowed(same(self.store.as_slice())?),
            rows: self.rows,
            cols: self.cols,
            idx: self.idx.clone(),
        })
    }

    /// The rows `idx`, in that order, sharing the store (no copy of values).
    pub fn select(&self, idx: &[usize]) -> Rows<'a, T> {
        let stored: Arc<[usize]> = match &self.idx {
            Some(own) => idx.iter().map(|&i| own[i]).collect(),
            None => {
                assert!(idx.iter().all(|&i| i < self.rows), "row out of range");
                idx.into()
            }
        };
        Rows {
            store: self.store.clone(),
            rows: idx.len(),
            cols: self.cols,
            idx: Some(stored),
        }
    }

    /// The rows `idx`, in that order, copied into a matrix.
    pub fn select_rows(&self, idx: &[usize]) -> Matrix<T> {
        let mut data = Vec::with_capacity(idx.len() * self.cols);
        for &i in idx {
            data.extend_from_slice(self.row(i));
        }
        Matrix::from_vec(idx.len(), self.cols, data)
    }

    /// Every row copied into a matrix.
    pub fn to_matrix(&self) -> Matrix<T> {
        Matrix::from_vec(self.rows, self.cols, self.contiguous().into_owned())
    }

    /// The values in row-major order: borrowed when the store holds exactly these rows in
    /// order, copied otherwise.
    pub fn contiguous(&self) -> Cow<'_, [T]> {
        match &self.idx {
            None => Cow::Borrowed(self.store.as_slice()),
            Some(_) => Cow::Owned(self.values().copied().collect()),
        }
    }

    /// Every row converted to precision `U` (one copy, exact from f32 to f64).
    pub fn cast<U: Float>(&self) -> Rows<'static, U> {
        let data = self.values().map(|v| U::from_f64(v.to_f64())).collect();
        Matrix::from_vec(self.rows, self.cols, data).into()
    }

    /// Applies `f(value, column)` to every value: in place when this split owns its store alone
    /// and holds all of its rows in order, else into a new store holding just these rows.
    pub fn map_values(&mut self, f: impl Fn(T, usize) -> T) {
        let cols = self.cols;
        if cols == 0 {
            return;
        }
        if let (Store::Owned(v), None) = (&mut self.store, &self.idx) {
            if let Some(values) = Arc::get_mut(v) {
                for row in values.chunks_exact_mut(cols) {
                    for (j, x) in row.iter_mut().enumerate() {
                        *x = f(*x, j);
                    }
                }
                return;
            }
        }
        let mut data = Vec::with_capacity(self.rows * cols);
        for i in 0..self.rows {
            data.extend(self.row(i).iter().enumerate().map(|(j, &x)| f(x, j)));
        }
        *self = Matrix::from_vec(self.rows, cols, data).into();
    }
}

impl<T: Float> RowSource<T> for Rows<'_, T> {
    #[inline]
    fn row(&self, i: usize) -> &[T] {
        Rows::row(self, i)
    }

    fn cols(&self) -> usize {
        self.cols
    }

    fn rows(&self) -> usize {
        Rows::rows(self)
    }
}

impl<T: Float> PartialEq for Rows<'_, T> {
    /// Same shape and the same values (wherever they are stored).
    fn eq(&self, other: &Self) -> bool {
        self.rows == other.rows
            && self.cols == other.cols
            && (0..self.rows).all(|i| self.row(i) == other.row(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(rows: usize, cols: usize) -> Matrix<f32> {
        Matrix::from_vec(rows, cols, (0..rows * cols).map(|v| v as f32).collect())
    }

    #[test]
    fn selections_share_the_store_and_compose() {
        let r: Rows<f32> = m(5, 2).into();
        let s = r.select(&[4, 1, 3]);
        let t = s.select(&[2, 0]);
        assert_eq!(t.to_matrix(), m(5, 2).select_rows(&[3, 4]));
        assert_eq!(
            s.row(0).as_ptr(),
            r.row(4).as_ptr(),
            "a selection copies no values"
        );
        assert_eq!(s.view().row(1).as_ptr(), r.row(1).as_ptr());
    }

    #[test]
    fn borrowed_rows_read_in_place_and_check_the_shape() {
        let data: Vec<f64> = (0..6).map(f64::from).collect();
        let r = Rows::borrowed(3, 2, &data).unwrap();
        assert_eq!(r.row(2), &[4.0, 5.0]);
        assert_eq!(r.row(0).as_ptr(), data.as_ptr());
        assert!(Rows::borrowed(4, 2, &data).is_none());
        assert!(Rows::<f64>::borrowed(usize::MAX, 2, &data).is_none());
    }

    #[test]
    fn map_values_is_in_place_only_for_a_sole_owner() {
        let mut r: Rows<f32> = m(3, 2).into();
        let ptr = r.row(0).as_ptr();
        r.map_values(|x, j| x + j as f32);
        assert_eq!(r.row(0).as_ptr(), ptr);
        assert_eq!(r.row(2), &[4.0, 6.0]);
        let shared = r.clone();
        let mut held = r.select(&[2]);
        held.map_values(|x, _| -x);
        assert_eq!(held.row(0), &[-4.0, -6.0]);
        assert_eq!(shared.row(2), &[4.0, 6.0], "the shared store is unchanged");
        r.map_values(|x, _| x * 2.0);
        assert_eq!(r.row(2), &[8.0, 12.0]);
        assert_eq!(shared.row(2), &[4.0, 6.0]);
    }
}
