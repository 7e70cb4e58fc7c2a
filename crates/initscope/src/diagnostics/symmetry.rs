//! Symmetry classes (effective width) and the quotient network, as DESIGN.md defines them, on
//! the network's unit graph.
//!
//! The unit graph ([`UnitGraph`]) has one node per unit per module output (a *group*: the
//! network's input, then every module's output in forward order, a block's body modules before
//! the block's own output), and weighted edges:
//! - a linear layer `z = x W^T + b`: an edge k -> i of weight `W[i, k]` from every input unit to
//!   every output unit; the bias is the output unit's own parameter;
//! - a pointwise module (activation, dropout, norm, gate, shift): unit i -> unit i, weight 1
//!   (a gate's alpha is one scalar on every unit: it tells no units apart, and at alpha = 0 the
//!   branch's units still differ in what alpha's own gradient, <delta, F(x)>, carries into the
//!   stream at the next step, so the edge is structural); a norm's gamma and beta (batchnorm's
//!   running statistics too) are the unit's own parameters; a layernorm's or rmsnorm's statistics are
//!   symmetric functions of the whole layer and batchnorm's are the unit's own column, so they
//!   tell no units apart;
//! - a residual block `y = x + body(x)`: unit i of the block's input and unit i of the body's
//!   output -> unit i of the block's output, weight 1. One residual stream therefore keeps one
//!   partition across all its blocks.
//!
//! The input features and the network's output units are fixed singletons (each feature is its
//! own; each output has its own target); every other group is partitioned.
//!
//! Two partitions:
//! - *exact*: units are in one class when they are bitwise copies: equal own parameters, equal
//!   incoming rows and outgoing columns of every linear edge (entry by entry), and pointwise
//!   partners in one class (colour refinement from one class per group). The kernels keep such
//!   copies bitwise equal forever.
//! - *tolerance*: the coarsest equitable partition found by refinement: start with one class
//!   per group and split every class by the signature (own parameters, sums of incoming weights
//!   over each class of the group below, sums of outgoing weights over each class of the group
//!   above, for every edge) until nothing splits. Signatures are compared componentwise within
//!   `tol · scale`: for a linear edge scale = max(|W|, |b|) for the bias and incoming sums and
//!   max|W| for the outgoing sums, for a pointwise edge 1, for a norm's parameter vector
//!   its largest magnitude; units are assigned greedily in index order to the first sub-class
//!   whose representative (its first unit) is within tolerance. Groups are visited in forward
//!   order. Deterministic. On a chain of linear layers this is exactly the partition of the
//!   hidden layers of DESIGN.md.
//!
//! Within an equitable partition activations and deltas are constant on classes, and the network
//! computes exactly the function of its quotient: one unit per class, V[D, C] = Σ_{k∈C} W[a, k]
//! for any a ∈ D, bias of D = any member's bias. Plain SGD on the full network equals SGD on the
//! quotient with the step on V[D, C] scaled by |C|/|D| and the step on D's bias by 1/|D|.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::matrix::Matrix;
use crate::nn::{Anatomy, LayerParams, Module, Net, Params};
use crate::scalar::Float;

/// What the unit graph reads of a module, in f64: a linear layer's weight (out, in) and bias; a
/// pointwise module's per-unit parameter vectors (a norm's gamma and beta, batchnorm's running
/// statistics; none for activations, dropout, gates and shifts, whose one scalar tells no units
/// apart); a block's body modules with their keys and kinds.
#[derive(Clone, Debug, PartialEq)]
enum Wiring {
    Linear {
        weight: Matrix<f64>,
        bias: Option<Vec<f64>>,
    },
    Pointwise {
        per_unit: Vec<Vec<f64>>,
    },
    Residual(Vec<(String, &'static str, Wiring)>),
}

/// The [`Wiring`] of module `m`, from its anatomy, values and buffers.
fn wiring<T: Float>(m: &dyn Module<T>) -> Wiring {
    let values = |k: usize| -> Vec<f64> { m.value(k).iter().map(|v| v.to_f64()).collect() };
    let pointwise = |per_unit| Wiring::Pointwise { per_unit };
    match m.anatomy() {
        Anatomy::Linear { has_bias, .. } => {
            let dims = &m.tensors()[0].dims;
            Wiring::Linear {
                weight: Matrix::from_vec(dims[0], dims[1], values(0)),
                bias: has_bias.then(|| values(1)),
            }
        }
        Anatomy::Activation(_) | Anatomy::Dropout(_) | Anatomy::Gate | Anatomy::Shift => {
            pointwise(Vec::new())
        }
        Anatomy::LayerNorm { affine, .. } => pointwise(if affine {
            vec![values(0), values(1)]
        } else {
            Vec::new()
        }),
        Anatomy::RmsNorm { .. } => pointwise(vec![values(0)]),
        Anatomy::BatchNorm { .. } => {
            let buffers = m.buffers();
            let buffer = |key: &str| {
                buffers
                    .iter()
                    .find(|b| b.key == key)
                    .map_or_else(Vec::new, |b| b.values.clone())
            };
            pointwise(vec![
                values(0),
                values(1),
                buffer("running_mean"),
                buffer("running_var"),
            ])
        }
        Anatomy::Residual(_) => {
            let (body, keys) = m.body().expect("a residual block has a body");
            Wiring::Residual(
                body.iter()
                    .zip(keys)
                    .map(|(b, k)| (format!("body.{k}"), b.kind(), wiring(&**b)))
                    .collect(),
            )
        }
    }
}

/// What a group of units is, for reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupLabel {
    /// The path of the module whose output the group is (`2.body.1`); empty for the input.
    pub module: String,
    /// The module's kind (`linear`, `layernorm`, `res`, ...; `input` for the input).
    pub kind: &'static str,
    /// The linear layer's number (1-based, forward order) when the group is a linear's output.
    pub linear: Option<usize>,
    /// The residual stream (0-based, forward order) the group belongs to: a block's input and
    /// output and the outputs of the blocks that follow it directly.
    pub stream: Option<usize>,
}

/// One layer of units of the unit graph.
#[derive(Clone, Debug)]
pub struct Group {
    pub width: usize,
    /// Told apart by position (input features, output units): never partitioned.
    pub fixed: bool,
    /// Per-unit parameters (a bias; a norm's gamma and beta) and each one's comparison scale.
    own: Vec<(Vec<f64>, f64)>,
    pub label: GroupLabel,
}

#[derive(Clone, Debug)]
enum EdgeMap {
    /// `W` (to width, from width).
    Dense(Matrix<f64>),
    /// Unit i to unit i, weight 1.
    Pointwise,
}

#[derive(Clone, Debug)]
struct Edge {
    from: usize,
    to: usize,
    map: EdgeMap,
    /// Comparison scale of the sums into `to` and out of `from`.
    scale_in: f64,
    scale_out: f64,
}

/// The network's unit graph (module docs).
#[derive(Clone, Debug)]
pub struct UnitGraph {
    pub groups: Vec<Group>,
    edges: Vec<Edge>,
    /// Edge indices into and out of each group.
    incoming: Vec<Vec<usize>>,
    outgoing: Vec<Vec<usize>>,
}

fn max_abs(xs: &[f64]) -> f64 {
    xs.iter().fold(0.0, |m, x| m.max(x.abs()))
}

/// Builds the graph as the modules are walked.
struct Builder {
    groups: Vec<Group>,
    edges: Vec<Edge>,
    linears: usize,
    streams: usize,
}

impl Builder {
    fn group(&mut self, width: usize, own: Vec<(Vec<f64>, f64)>, label: GroupLabel) -> usize {
        self.groups.push(Group {
            width,
            fixed: false,
            own,
            label,
        });
        self.groups.len() - 1
    }

    fn edge(&mut self, from: usize, to: usize, map: EdgeMap, scale_in: f64, scale_out: f64) {
        self.edges.push(Edge {
            from,
            to,
            map,
            scale_in,
            scale_out,
        });
    }

    /// Adds the module `path` of `kind` reading group `from`; returns its output group.
    fn module(&mut self, from: usize, path: String, kind: &'static str, w: Wiring) -> usize {
        let label = |linear, stream| GroupLabel {
            module: path.clone(),
            kind,
            linear,
            stream,
        };
        match w {
            Wiring::Linear { weight, bias } => {
                self.linears += 1;
                let scale_out = max_abs(weight.as_slice());
                let scale_in = scale_out.max(bias.as_deref().map_or(0.0, max_abs));
                let own = bias.map(|b| vec![(b, scale_in)]).unwrap_or_default();
                let to = self.group(weight.rows(), own, label(Some(self.linears), None));
                self.edge(from, to, EdgeMap::Dense(weight), scale_in, scale_out);
                to
            }
            Wiring::Pointwise { per_unit } => {
                let own = per_unit
                    .into_iter()
                    .map(|v| {
                        let s = max_abs(&v);
                        (v, s)
                    })
                    .collect();
                let to = self.group(self.groups[from].width, own, label(None, None));
                self.edge(from, to, EdgeMap::Pointwise, 1.0, 1.0);
                to
            }
            Wiring::Residual(body) => {
                let stream = match self.groups[from].label.stream {
                    Some(s) => s,
                    None => {
                        self.streams += 1;
                        self.groups[from].label.stream = Some(self.streams - 1);
                        self.streams - 1
                    }
                };
                let mut h = from;
                for (key, kind, w) in body {
                    h = self.module(h, format!("{path}.{key}"), kind, w);
                }
                let to = self.group(
                    self.groups[from].width,
                    Vec::new(),
                    label(None, Some(stream)),
                );
                self.edge(from, to, EdgeMap::Pointwise, 1.0, 1.0);
                self.edge(h, to, EdgeMap::Pointwise, 1.0, 1.0);
                to
            }
        }
    }
}

impl UnitGraph {
    /// The graph of a sequence of modules `(path, kind, wiring)` reading `inputs` features.
    fn new(
        inputs: usize,
        modules: impl IntoIterator<Item = (String, &'static str, Wiring)>,
    ) -> Self {
        let mut b = Builder {
            groups: Vec::new(),
            edges: Vec::new(),
            linears: 0,
            streams: 0,
        };
        let input = GroupLabel {
            module: String::new(),
            kind: "input",
            linear: None,
            stream: None,
        };
        let mut h = b.group(inputs, Vec::new(), input);
        for (path, kind, w) in modules {
            h = b.module(h, path, kind, w);
        }
        b.groups[0].fixed = true;
        b.groups[h].fixed = true;
        let n = b.groups.len();
        let (mut incoming, mut outgoing) = (vec![Vec::new(); n], vec![Vec::new(); n]);
        for (i, e) in b.edges.iter().enumerate() {
            incoming[e.to].push(i);
            outgoing[e.from].push(i);
        }
        UnitGraph {
            groups: b.groups,
            edges: b.edges,
            incoming,
            outgoing,
        }
    }

    /// The graph of `net`'s modules.
    pub fn of_net<T: Float>(net: &Net<T>) -> Self {
        let inputs = net.modules()[0].in_width();
        UnitGraph::new(
            inputs,
            net.prefixes()
                .iter()
                .zip(net.modules())
                .map(|(p, m)| (p.clone(), m.kind(), wiring(&**m))),
        )
    }

    /// The graph of a chain of linear layers (a plain MLP's parameters; activations do not
    /// change the graph).
    pub fn of_layers(params: &[LayerParams]) -> Self {
        UnitGraph::new(
            params[0].weight.cols(),
            params.iter().enumerate().map(|(i, p)| {
                (
                    format!("{}", 2 * i),
                    "linear",
                    Wiring::Linear {
                        weight: p.weight.clone(),
                        bias: p.bias.clone(),
                    },
                )
            }),
        )
    }

    /// The indices of the partitioned groups, in forward order ([`Partition::classes`] order).
    pub fn free(&self) -> Vec<usize> {
        (0..self.groups.len())
            .filter(|&g| !self.groups[g].fixed)
            .collect()
    }

    /// Class ids of every group's units under `classes` (free groups in [`Self::free`] order;
    /// fixed groups' units are their own classes).
    fn ids<'a>(&self, classes: &'a [Vec<usize>], slot: &[Option<usize>], g: usize) -> Ids<'a> {
        match slot[g] {
            Some(i) => Ids::Classes(&classes[i]),
            None => Ids::Own(self.groups[g].width),
        }
    }

    fn slots(&self) -> Vec<Option<usize>> {
        let mut next = 0;
        self.groups
            .iter()
            .map(|g| {
                (!g.fixed).then(|| {
                    next += 1;
                    next - 1
                })
            })
            .collect()
    }

    /// Colour refinement: from one class per partitioned group, replaces each group's class ids
    /// by `split(classes, slot, g, i)` (group `g`, its index `i` among the partitioned groups;
    /// new ids numbered by first unit, splitting only within the old classes), groups in
    /// forward order, until a whole pass splits nothing or every unit is a class of its own
    /// (nothing left to split: the usual case after one pass at a random start).
    fn refine(
        &self,
        mut split: impl FnMut(&[Vec<usize>], &[Option<usize>], usize, usize) -> Vec<usize>,
    ) -> Partition {
        let slot = self.slots();
        let free = self.free();
        let mut classes: Vec<Vec<usize>> = free
            .iter()
            .map(|&g| vec![0; self.groups[g].width])
            .collect();
        let discrete = |classes: &[Vec<usize>]| classes.iter().all(|c| count_classes(c) == c.len());
        while !discrete(&classes) {
            let mut changed = false;
            for (i, &g) in free.iter().enumerate() {
                let new = split(&classes, &slot, g, i);
                if count_classes(&new) > count_classes(&classes[i]) {
                    changed = true;
                }
                classes[i] = new;
            }
            if !changed {
                break;
            }
        }
        Partition { classes }
    }

    /// Bitwise copies (module docs).
    pub fn exact_partition(&self) -> Partition {
        self.refine(|classes, slot, g, i| {
            let mut seen: HashMap<Vec<u64>, usize> = HashMap::new();
            (0..self.groups[g].width)
                .map(|a| {
                    let mut key = vec![classes[i][a] as u64];
                    for (v, _) in &self.groups[g].own {
                        key.push(v[a].to_bits());
                    }
                    for &e in &self.incoming[g] {
                        let e = &self.edges[e];
                        match &e.map {
                            EdgeMap::Dense(w) => key.extend(w.row(a).iter().map(|x| x.to_bits())),
                            EdgeMap::Pointwise => {
                                key.push(self.ids(classes, slot, e.from).of(a) as u64)
                            }
                        }
                    }
                    for &e in &self.outgoing[g] {
                        let e = &self.edges[e];
                        match &e.map {
                            EdgeMap::Dense(w) => {
                                key.extend((0..w.rows()).map(|r| w.get(r, a).to_bits()))
                            }
                            EdgeMap::Pointwise => {
                                key.push(self.ids(classes, slot, e.to).of(a) as u64)
                            }
                        }
                    }
                    let n = seen.len();
                    *seen.entry(key).or_insert(n)
                })
                .collect()
        })
    }

    /// The signature of every unit of group `g` under the current partition, and the scale of
    /// each component.
    fn signatures(
        &self,
        classes: &[Vec<usize>],
        slot: &[Option<usize>],
        g: usize,
    ) -> (Vec<Vec<f64>>, Vec<f64>) {
        let group = &self.groups[g];
        let mut scales: Vec<f64> = group.own.iter().map(|(_, s)| *s).collect();
        let mut sigs: Vec<Vec<f64>> = (0..group.width)
            .map(|a| group.own.iter().map(|(v, _)| v[a]).collect())
            .collect();
        for (edges, incoming) in [(&self.incoming[g], true), (&self.outgoing[g], false)] {
            for &e in edges {
                let e = &self.edges[e];
                let other = if incoming { e.from } else { e.to };
                let ids = self.ids(classes, slot, other);
                let n = ids.count();
                let base = scales.len();
                scales.extend(std::iter::repeat_n(
                    if incoming { e.scale_in } else { e.scale_out },
                    n,
                ));
                for (a, s) in sigs.iter_mut().enumerate() {
                    s.resize(base + n, 0.0);
                    match &e.map {
                        EdgeMap::Dense(w) if incoming => {
                            for (k, &x) in w.row(a).iter().enumerate() {
                                s[base + ids.of(k)] += x;
                            }
                        }
                        EdgeMap::Dense(w) => {
                            for i in 0..w.rows() {
                                s[base + ids.of(i)] += w.get(i, a);
                            }
                        }
                        EdgeMap::Pointwise => s[base + ids.of(a)] += 1.0,
                    }
                }
            }
        }
        (sigs, scales)
    }

    /// The coarsest equitable partition within tolerance `tol` (module docs).
    pub fn equitable_partition(&self, tol: f64) -> Partition {
        self.refine(|classes, slot, g, i| {
            let (sigs, scales) = self.signatures(classes, slot, g);
            let close = |a: &[f64], b: &[f64]| {
                a.iter()
                    .zip(b)
                    .zip(&scales)
                    .all(|((x, y), s)| (x - y).abs() <= tol * s)
            };
            // Split each old class greedily; new ids in order of first unit.
            let mut reps: Vec<(usize, usize)> = Vec::new(); // (old class, representative unit)
            (0..sigs.len())
                .map(|a| {
                    let old = classes[i][a];
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
                .collect()
        })
    }

    /// The effective width of every linear layer's output under `p`, linear l at index l - 1:
    /// `None` for a linear whose outputs are the network's (fixed singletons).
    pub fn linear_widths(&self, p: &Partition) -> Vec<Option<usize>> {
        let slot = self.slots();
        let widths = p.widths();
        let mut out = Vec::new();
        for (g, group) in self.groups.iter().enumerate() {
            if group.label.linear.is_some() {
                out.push(slot[g].map(|i| widths[i]));
            }
        }
        out
    }

    /// The class id of every unit of every linear layer's output under `p`, linear l at index
    /// l - 1 (copies share an id; ids numbered from 0 in order of first unit): `None` for a
    /// linear whose outputs are the network's.
    pub fn linear_classes(&self, p: &Partition) -> Vec<Option<Vec<usize>>> {
        let slot = self.slots();
        self.groups
            .iter()
            .enumerate()
            .filter(|(_, group)| group.label.linear.is_some())
            .map(|(g, _)| slot[g].map(|i| p.classes[i].clone()))
            .collect()
    }

    /// Every residual stream: the paths of its first and last block, its units and its
    /// effective width under `p` (the width of its last group, which the identity edges make
    /// the width of all of them; `None` when the stream's end is the network's output).
    pub fn stream_widths(&self, p: &Partition) -> Vec<StreamWidth> {
        let slot = self.slots();
        let widths = p.widths();
        let mut out: Vec<StreamWidth> = Vec::new();
        for (g, group) in self.groups.iter().enumerate() {
            let Some(s) = group.label.stream else {
                continue;
            };
            if out.len() <= s {
                out.push(StreamWidth {
                    first: String::new(),
                    last: String::new(),
                    blocks: 0,
                    units: group.width,
                    width: None,
                });
            }
            let w = &mut out[s];
            if group.label.kind == "res" {
                if w.blocks == 0 {
                    w.first = group.label.module.clone();
                }
                w.last = group.label.module.clone();
                w.blocks += 1;
            }
            w.width = slot[g].map(|i| widths[i]);
        }
        out
    }
}

/// One residual stream's effective width ([`UnitGraph::stream_widths`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamWidth {
    /// The paths of its first and last block.
    pub first: String,
    pub last: String,
    pub blocks: usize,
    pub units: usize,
    pub width: Option<usize>,
}

/// A group's class ids: a free group's partition, or a fixed group's units as singletons.
#[derive(Clone, Copy)]
enum Ids<'a> {
    Classes(&'a [usize]),
    Own(usize),
}

impl Ids<'_> {
    fn of(&self, unit: usize) -> usize {
        match self {
            Ids::Classes(c) => c[unit],
            Ids::Own(_) => unit,
        }
    }

    fn count(&self) -> usize {
        match self {
            Ids::Classes(c) => count_classes(c),
            Ids::Own(n) => *n,
        }
    }
}

/// Class ids of the units of every partitioned group (for a chain of linear layers: hidden
/// layer l at index l - 1), numbered 0.. in order of each class's first unit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partition {
    pub classes: Vec<Vec<usize>>,
}

impl Partition {
    /// Number of classes (the effective width) of each partitioned group.
    pub fn widths(&self) -> Vec<usize> {
        self.classes.iter().map(|c| count_classes(c)).collect()
    }

    /// The members of each class of group index `h`.
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

/// Bitwise copies of a chain of linear layers: equal bias, incoming row and outgoing column.
pub fn exact_partition(params: &[LayerParams]) -> Partition {
    UnitGraph::of_layers(params).exact_partition()
}

/// The coarsest equitable partition of a chain of linear layers within tolerance `tol`.
pub fn equitable_partition(params: &[LayerParams], tol: f64) -> Partition {
    UnitGraph::of_layers(params).equitable_partition(tol)
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
