//! Data as the engine consumes it: a split converted once to the training precision with its
//! targets in the form the loss needs ([`Prepared`]), the targets of the rows loaded into a
//! workspace ([`BatchTargets`]), and the mean loss and accuracy over a whole split
//! ([`evaluate`]). Used by training, `explain`, `gradcheck` and the benchmarks alike.

use crate::data::{Labels, Rows, Split};
use crate::loss::{Loss, Targets};
use crate::matrix::Matrix;
use crate::nn::{Net, Pass, Workspace};
use crate::scalar::Float;

/// A split in the training precision (a view of the data set's store when the data is stored in
/// it, one converted copy otherwise), with targets in the form the loss needs.
pub struct Prepared<'a, T: Float> {
    pub x: Rows<'a, T>,            // (n, input)
    pub classes: Option<Vec<u32>>, // labels, for cross-entropy and accuracy
    pub dense: Option<Matrix<T>>,  // (n, output): regression targets or one-hot/0-1 labels
}

impl<'a, T: Float> Prepared<'a, T> {
    pub fn new(split: &'a Split, loss: Loss, outputs: usize) -> Self {
        let x = split.x.as_rows::<T>();
        match &split.y {
            Labels::Classes(c) => {
                let dense = (!loss.wants_classes()).then(|| {
                    let mut m = Matrix::zeros(c.len(), outputs);
                    for (i, &y) in c.iter().enumerate() {
                        if outputs == 1 {
                            m.set(i, 0, T::from_f64(y as f64));
                        } else {
                            m.set(i, y as usize, T::ONE);
                        }
                    }
                    m
                });
                Prepared {
                    x,
                    classes: Some(c.clone()),
                    dense,
                }
            }
            Labels::Values(v) => Prepared {
                x,
                classes: None,
                dense: Some(Matrix::from_f64(v)),
            },
        }
    }

    pub fn len(&self) -> usize {
        self.x.rows()
    }

    pub fn is_empty(&self) -> bool {
        self.x.rows() == 0
    }

    /// The targets `loss` trains on, every row (as [`BatchTargets::targets`] for a batch).
    pub fn targets(&self, loss: Loss) -> Targets<'_, T> {
        match (&self.classes, &self.dense) {
            (Some(c), _) if loss.wants_classes() => Targets::Classes(c),
            (_, Some(d)) => Targets::Dense(d),
            _ => unreachable!("a prepared split holds the targets its loss wants"),
        }
    }
}

/// The targets of the rows currently loaded into a workspace.
pub struct BatchTargets<T> {
    pub classes: Vec<u32>,
    pub dense: Matrix<T>, // (batch, outputs)
}

impl<T: Float> BatchTargets<T> {
    pub fn new(capacity: usize, outputs: usize) -> Self {
        BatchTargets {
            classes: Vec::with_capacity(capacity),
            dense: Matrix::zeros(capacity, outputs),
        }
    }

    /// Copies the targets of rows `idx`.
    pub fn load(&mut self, data: &Prepared<T>, idx: &[usize]) {
        self.classes.clear();
        if let Some(c) = &data.classes {
            self.classes.extend(idx.iter().map(|&i| c[i]));
        }
        if let Some(d) = &data.dense {
            self.dense.set_rows(idx.len());
            for (r, &i) in idx.iter().enumerate() {
                self.dense.row_mut(r).copy_from_slice(d.row(i));
            }
        }
    }

    pub fn targets(&self, loss: Loss) -> Targets<'_, T> {
        if loss.wants_classes() {
            Targets::Classes(&self.classes)
        } else {
            Targets::Dense(&self.dense)
        }
    }
}

/// Mean loss and accuracy (None for regression) of `net` on all of `data`, in chunks.
pub fn evaluate<T: Float>(
    net: &Net<T>,
    ws: &mut Workspace<T>,
    bt: &mut BatchTargets<T>,
    idx: &mut Vec<usize>,
    data: &Prepared<T>,
    loss: Loss,
) -> (f64, Option<f64>) {
    let n = data.len();
    if n == 0 {
        return (f64::NAN, None);
    }
    let (mut total, mut correct) = (0.0, 0usize);
    let chunk = ws.capacity;
    let mut start = 0;
    while start < n {
        let end = (start + chunk).min(n);
        idx.clear();
        idx.extend(start..end);
        ws.load_rows(&data.x, idx);
        bt.load(data, idx);
        let logits = net.forward(ws, Pass::Eval);
        total += loss.forward_backward(logits, bt.targets(loss), None) * (end - start) as f64;
        if data.classes.is_some() {
            correct += loss.correct(logits, &bt.classes);
        }
        start = end;
    }
    let acc = data.classes.as_ref().map(|_| correct as f64 / n as f64);
    (total / n as f64, acc)
}
