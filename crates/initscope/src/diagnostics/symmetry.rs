//! Symmetry classes (effective width) and the quotient network, as DESIGN.md defines them.
//!
//! Two partitions of each hidden layer's units:
//! - *exact*: units are in one class when their bias, incoming row and outgoing column are
//!   bitwise equal (copies). The kernels keep such copies bitwise equal forever.
//! - *tolerance*: the coarsest equitable partition found by refinement: start with one class per
//!   hidden layer (input features and output units are singletons), and split every class by the
//!   signature (bias, sums of incoming weights over each class of the layer below, sums of
//!   outgoing weights over each class of the layer above) until nothing splits. Signatures are
//!   compared componentwise within `tol · scale`, scale = max(|W_l|, |b_l|) for the bias and
//!   incoming sums and max|W_{l+1}| for the outgoing sums; units are assigned greedily in index
//!   order to the first sub-class whose representative (its first unit) is within tolerance.
//!   Deterministic.
//!
//! Within an equitable partition activations and deltas are constant on classes, and the network
//! computes exactly the function of its quotient: one unit per class, V[D, C] = Σ_{k∈C} W[a, k]
//! for any a ∈ D, bias of D = any member's bias. Plain SGD on the full network equals SGD on the
//! quotient with the step on V[D, C] scaled by |C|/|D| and the step on D's bias by 1/|D|.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::matrix::Matrix;
use crate::nn::{LayerParams, Params};

/// Class ids of the units of every hidden layer (index l-1 for layer l), numbered 0.. in order of
/// each class's first unit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partition {
    pub classes: Vec<Vec<usize>>,
}

impl Partition {
    /// Number of classes (the effective width) of each hidden layer.
    pub fn widths(&self) -> Vec<usize> {
        self.classes.iter().map(|c| count_classes(c)).collect()
    }

    /// The members of each class of hidden layer index `h`.
    pub fn members(&self, h: usize) -> Vec<Vec<usize>> {
        members(&self.classes[h])
    }
}

fn count_classes(ids: &[usize]) -> usize {
    ids.iter().copied().max().map_or(0, |m| m + 1)
}

fn members(ids: &[usize]) -> Vec<Vec<usize>> {
    let mut out = vec![Vec::new(); count_classes(ids)];
    for (unit, &c) in ids.iter().enumerate() {
        out[c].push(unit);
    }
    out
}

fn max_abs(xs: &[f64]) -> f64 {
    xs.iter().fold(0.0, |m, x| m.max(x.abs()))
}

/// Bitwise copies: equal bias, incoming row and outgoing column.
pub fn exact_partition(params: &[LayerParams]) -> Partition {
    let hidden = params.len() - 1;
    let classes = (0..hidden)
        .map(|h| {
            let (this, next) = (&params[h], &params[h + 1]);
            let mut seen: HashMap<Vec<u64>, usize> = HashMap::new();
            (0..this.weight.rows())
                .map(|a| {
                    let mut key: Vec<u64> =
                        this.weight.row(a).iter().map(|x| x.to_bits()).collect();
                    key.push(this.bias.as_ref().map_or(0, |b| b[a].to_bits()));
                    key.extend((0..next.weight.rows()).map(|i| next.weight.get(i, a).to_bits()));
                    let n = seen.len();
                    *seen.entry(key).or_insert(n)
                })
                .collect()
        })
        .collect();
    Partition { classes }
}

/// The signature of every unit of hidden layer index `h` under the current partition, and the
/// scale of each component.
fn signatures(
    params: &[LayerParams],
    classes: &[Vec<usize>],
    h: usize,
) -> (Vec<Vec<f64>>, Vec<f64>) {
    let (this, next) = (&params[h], &params[h + 1]);
    let (units, fan_in) = this.weight.shape();
    let prev: Vec<usize> = if h == 0 {
        (0..fan_in).collect()
    } else {
        classes[h - 1].clone()
    };
    let next_ids: Vec<usize> = if h + 1 == classes.len() {
        (0..next.weight.rows()).collect()
    } else {
        classes[h + 1].clone()
    };
    let (n_prev, n_next) = (count_classes(&prev), count_classes(&next_ids));
    let scale_in = max_abs(this.weight.as_slice()).max(this.bias.as_deref().map_or(0.0, max_abs));
    let scale_out = max_abs(next.weight.as_slice());
    let mut scales = vec![scale_in; 1 + n_prev];
    scales.extend(std::iter::repeat_n(scale_out, n_next));
    let sigs = (0..units)
        .map(|a| {
            let mut s = vec![0.0; 1 + n_prev + n_next];
            s[0] = this.bias.as_ref().map_or(0.0, |b| b[a]);
            for (k, &c) in prev.iter().enumerate() {
                s[1 + c] += this.weight.get(a, k);
            }
            for (i, &d) in next_ids.iter().enumerate() {
                s[1 + n_prev + d] += next.weight.get(i, a);
            }
            s
        })
        .collect();
    (sigs, scales)
}

/// The coarsest equitable partition within tolerance `tol` (see the module docs).
pub fn equitable_partition(params: &[LayerParams], tol: f64) -> Partition {
    let hidden = params.len() - 1;
    let mut classes: Vec<Vec<usize>> = (0..hidden)
        .map(|h| vec![0; params[h].weight.rows()])
        .collect();
    loop {
        let mut changed = false;
        for h in 0..hidden {
            let (sigs, scales) = signatures(params, &classes, h);
            let close = |a: &[f64], b: &[f64]| {
                a.iter()
                    .zip(b)
                    .zip(&scales)
                    .all(|((x, y), s)| (x - y).abs() <= tol * s)
            };
            // Split each old class greedily; new ids in order of first unit.
            let mut reps: Vec<(usize, usize)> = Vec::new(); // (old class, representative unit)
            let new: Vec<usize> = (0..sigs.len())
                .map(|a| {
                    let old = classes[h][a];
                    match reps
                        .iter()
                        .position(|&(c, r)| c == old && close(&sigs[r], &sigs[a]))
                    {
                        Some(id) => id,
                        None => {
                            reps.push((old, a));
                            reps.len() - 1
                        }
                    }
                })
                .collect();
            if reps.len() > count_classes(&classes[h]) {
                changed = true;
            }
            classes[h] = new;
        }
        if !changed {
            return Partition { classes };
        }
    }
}

/// The quotient network of an equitable partition: one unit per class.
#[derive(Clone, Debug, PartialEq)]
pub struct Quotient {
    pub params: Params,
    /// Class sizes per layer of units, input first and output last (1 for inputs and outputs).
    pub sizes: Vec<Vec<usize>>,
}

/// Builds the quotient of `params` under `partition` (which should be equitable).
pub fn quotient(params: &[LayerParams], partition: &Partition) -> Quotient {
    let layers = params.len();
    // Members of every layer of units: inputs, hidden layers, outputs.
    let mut groups: Vec<Vec<Vec<usize>>> =
        vec![(0..params[0].weight.cols()).map(|k| vec![k]).collect()];
    for h in 0..layers - 1 {
        groups.push(partition.members(h));
    }
    groups.push(
        (0..params[layers - 1].weight.rows())
            .map(|i| vec![i])
            .collect(),
    );
    let q = (0..layers)
        .map(|l| {
            let (below, here) = (&groups[l], &groups[l + 1]);
            let p = &params[l];
            let mut v = Matrix::zeros(here.len(), below.len());
            for (d, dm) in here.iter().enumerate() {
                let rep = dm[0];
                for (c, cm) in below.iter().enumerate() {
                    v.set(d, c, cm.iter().map(|&k| p.weight.get(rep, k)).sum());
                }
            }
            LayerParams {
                weight: v,
                bias: p
                    .bias
                    .as_ref()
                    .map(|b| here.iter().map(|dm| b[dm[0]]).collect()),
            }
        })
        .collect();
    Quotient {
        params: q,
        sizes: groups
            .iter()
            .map(|g| g.iter().map(Vec::len).collect())
            .collect(),
    }
}

/// One plain-SGD step on the quotient that reproduces SGD on the full network: the step on
/// V_l[D, C] is scaled by |C|/|D| and the step on D's bias by 1/|D|. `grads` are the quotient's
/// own backprop gradients (d_weight, d_bias) per layer.
pub fn quotient_sgd_step(q: &mut Quotient, grads: &[(Matrix<f64>, Vec<f64>)], lr: f64) {
    for (l, (p, (dw, db))) in q.params.iter_mut().zip(grads).enumerate() {
        let (below, here) = (&q.sizes[l], &q.sizes[l + 1]);
        for (d, &nd) in here.iter().enumerate() {
            for (c, &nc) in below.iter().enumerate() {
                let v = p.weight.get(d, c) - lr * nc as f64 / nd as f64 * dw.get(d, c);
                p.weight.set(d, c, v);
            }
            if let Some(b) = p.bias.as_mut() {
                b[d] -= lr / nd as f64 * db[d];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(rows: usize, cols: usize, w: &[f64], b: &[f64]) -> LayerParams {
        LayerParams {
            weight: Matrix::from_vec(rows, cols, w.to_vec()),
            bias: Some(b.to_vec()),
        }
    }

    #[test]
    fn block_sum_equal_rows_are_one_tolerance_class_but_two_exact_classes() {
        // 1 input -> 2 hidden (copies) -> 2 hidden whose rows [1, 2] and [2, 1] have equal sums
        // over the single class below -> 1 output with equal outgoing weights.
        let params = vec![
            layer(2, 1, &[0.5, 0.5], &[0.1, 0.1]),
            layer(2, 2, &[1.0, 2.0, 2.0, 1.0], &[0.0, 0.0]),
            layer(1, 2, &[0.3, 0.3], &[0.0]),
        ];
        assert_eq!(equitable_partition(&params, 1e-9).widths(), vec![1, 1]);
        // Layer 1 units are copies only if their outgoing columns agree: they do not ([1,2] vs [2,1]).
        assert_eq!(exact_partition(&params).widths(), vec![2, 2]);
    }

    #[test]
    fn refinement_propagates_splits_between_layers() {
        // Layer 2 units differ in their outgoing weights, which splits layer 2; layer 1 units feed
        // the two layer-2 classes differently, which must then split layer 1 as well.
        let params = vec![
            layer(2, 1, &[1.0, 1.0], &[0.0, 0.0]),
            layer(2, 2, &[1.0, 0.0, 0.0, 1.0], &[0.0, 0.0]),
            layer(1, 2, &[1.0, -1.0], &[0.0]),
        ];
        assert_eq!(equitable_partition(&params, 1e-9).widths(), vec![2, 2]);
    }

    #[test]
    fn tolerance_merges_near_copies_and_zero_networks_have_width_one() {
        let params = vec![
            layer(3, 2, &[1.0, 2.0, 1.0 + 1e-9, 2.0, 5.0, 2.0], &[0.0; 3]),
            layer(1, 3, &[1.0, 1.0, 1.0], &[0.0]),
        ];
        assert_eq!(
            equitable_partition(&params, 1e-6).classes,
            vec![vec![0, 0, 1]]
        );
        assert_eq!(exact_partition(&params).widths(), vec![3]);
        let zeros = vec![
            layer(4, 2, &[0.0; 8], &[0.0; 4]),
            layer(2, 4, &[0.0; 8], &[0.0; 2]),
        ];
        assert_eq!(equitable_partition(&zeros, 1e-6).widths(), vec![1]);
        assert_eq!(exact_partition(&zeros).widths(), vec![1]);
    }

    /// NaN and inf weights (a diverged run's end) give some partition, never a panic or a hang.
    #[test]
    fn non_finite_weights_partition_without_panicking() {
        for bad in [f64::NAN, f64::INFINITY, -f64::NAN] {
            let params = vec![
                layer(3, 2, &[bad, 1.0, bad, 1.0, 0.5, bad], &[0.0, bad, 0.0]),
                layer(1, 3, &[1.0, bad, 1.0], &[bad]),
            ];
            let w = equitable_partition(&params, 1e-6).widths();
            assert!((1..=3).contains(&w[0]), "{w:?}");
            let w = exact_partition(&params).widths();
            assert!((1..=3).contains(&w[0]), "{w:?}");
        }
    }
}
