//! What a watcher of a live run reads at the current parameters, without touching the run
//! (`initscope serve`): each linear layer's gradient norm on fixed training rows, the network's
//! prediction over a grid of the input plane (2-D data), and one unit's values over that grid or
//! over the training rows.
//!
//! The probe has its own workspace and targets, so a run advanced with probes in between takes
//! exactly the steps of one advanced without them.

use crate::batch::{BatchTargets, Prepared};
use crate::config::RunConfig;
use crate::data::{Dataset, Features, Labels};
use crate::loss::Loss;
use crate::matrix::Matrix;
use crate::nn::{Net, Pass, Workspace};
use crate::rng::{self, Stream};
use crate::scalar::Float;

/// Training rows the gradient norms are measured on (the first ones; all of a smaller split).
pub const PROBE_ROWS: usize = 256;

/// Cells per side of the prediction grid of 2-D data.
pub const GRID_RES: usize = 48;

/// The rectangle `[xmin, xmax, ymin, ymax]` a grid covers: the training points' range per
/// axis, widened by 10% of it on each side (a unit square around a constant axis).
pub fn plane_bounds(x: &Features) -> [f64; 4] {
    let mut b = [
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    ];
    for i in 0..x.rows() {
        for axis in 0..2 {
            let v = x.get(i, axis);
            b[2 * axis] = b[2 * axis].min(v);
            b[2 * axis + 1] = b[2 * axis + 1].max(v);
        }
    }
    for axis in 0..2 {
        let (lo, hi) = (b[2 * axis], b[2 * axis + 1]);
        let margin = if hi > lo { 0.1 * (hi - lo) } else { 0.5 };
        b[2 * axis] = if lo.is_finite() { lo - margin } else { -1.0 };
        b[2 * axis + 1] = if hi.is_finite() { hi + margin } else { 1.0 };
    }
    b
}

/// The network's prediction on every grid cell, row 0 at `ymax`, x from `xmin` to `xmax`:
/// the predicted class and the confidence in 0..=255. With K >= 2 outputs the confidence is
/// (p_max - 1/K) / (1 - 1/K) of the softmax; with one output (class z > 0, as accuracy counts
/// it) |tanh(z / 2)| = |2 sigmoid(z) - 1|; for regression the class is 0 and the "confidence"
/// the first output scaled from the targets' range to 0..=255.
#[derive(Clone, Debug, PartialEq)]
pub struct GridImage {
    pub res: usize,
    pub class: Vec<u8>,
    pub confidence: Vec<u8>,
}

/// One unit's values over the grid (2-D data) or over the probe rows.
#[derive(Clone, Debug, PartialEq)]
pub struct UnitValues {
    /// `Some(res)` when the values are the grid's cells (row-major, as [`GridImage`]).
    pub grid: Option<usize>,
    pub values: Vec<f64>,
}

/// The probe of one run (see the [`crate::diagnostics::probe`] module docs).
pub struct Probe<'a, T: Float> {
    loss: Loss,
    train: Prepared<'a, T>,
    rows: Vec<usize>,
    ws: Workspace<T>,
    bt: BatchTargets<T>,
    /// The grid's points as input rows and its bounds (2-D data only).
    grid: Option<(Matrix<T>, [f64; 4])>,
    /// The regression targets' range (first output).
    range: (f64, f64),
    classification: bool,
}

impl<'a, T: Float> Probe<'a, T> {
    /// A probe for runs of `cfg` on `data` (`net` gives the shapes).
    pub fn new(cfg: &RunConfig, data: &'a Dataset, net: &Net<T>) -> Self {
        let outputs = *cfg.arch.last().expect("validated arch");
        let train = Prepared::<T>::new(&data.train, cfg.loss, outputs);
        let rows: Vec<usize> = (0..train.len().min(PROBE_ROWS)).collect();
        let grid = (data.input_dim() == 2).then(|| {
            let b = plane_bounds(&data.train.x);
            let n = GRID_RES;
            let mut pts = Vec::with_capacity(2 * n * n);
            for r in 0..n {
                let y = b[3] - (b[3] - b[2]) * (r as f64 + 0.5) / n as f64;
                for c in 0..n {
                    let x = b[0] + (b[1] - b[0]) * (c as f64 + 0.5) / n as f64;
                    pts.push(T::from_f64(x));
                    pts.push(T::from_f64(y));
                }
            }
            (Matrix::from_vec(n * n, 2, pts), b)
        });
        let capacity = rows
            .len()
            .max(grid.as_ref().map_or(0, |(g, _)| g.rows()))
            .max(1);
        let range = match &data.train.y {
            Labels::Values(v) => (0..v.rows()).fold((f64::INFINITY, f64::NEG_INFINITY), |r, i| {
                (r.0.min(v.get(i, 0)), r.1.max(v.get(i, 0)))
            }),
            Labels::Classes(_) => (0.0, 1.0),
        };
        Probe {
            loss: cfg.loss,
            train,
            rows,
            ws: Workspace::new(net, capacity),
            bt: BatchTargets::new(capacity, outputs),
            grid,
            range,
            classification: matches!(data.train.y, Labels::Classes(_)),
        }
    }

    /// The grid's bounds `[xmin, xmax, ymin, ymax]` (2-D data).
    pub fn bounds(&self) -> Option<[f64; 4]> {
        self.grid.as_ref().map(|(_, b)| *b)
    }

    /// Per linear layer, ||dW|| of the loss on the probe rows at `net`'s parameters, in a
    /// training pass (batch statistics; dropout masks from a fixed stream, so a probe is
    /// repeatable). For a full-batch run on at most [`PROBE_ROWS`] rows without dropout this is
    /// the training gradient itself.
    pub fn grad_norms(&mut self, net: &Net<T>) -> Vec<f64> {
        self.ws.load_rows(&self.train.x, &self.rows);
        self.bt.load(&self.train, &self.rows);
        let mut masks = rng::stream(0, Stream::Dropout);
        net.loss_and_grads(
            &mut self.ws,
            self.loss,
            self.bt.targets(self.loss),
            Pass::Train(&mut masks),
        );
        (0..net.num_layers())
            .map(|i| net.layer_grads(&self.ws.grads, i).0.norm())
            .collect()
    }

    /// The prediction on the grid (2-D data).
    pub fn grid_image(&mut self, net: &Net<T>) -> Option<GridImage> {
        let (points, _) = self.grid.as_ref()?;
        let n = points.rows();
        let all: Vec<usize> = (0..n).collect();
        self.ws.load_rows(points, &all);
        let out = net.forward(&mut self.ws, Pass::Eval);
        let k = out.cols();
        let (mut class, mut confidence) = (Vec::with_capacity(n), Vec::with_capacity(n));
        let byte = |v: f64| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
        for i in 0..n {
            let z: Vec<f64> = out.row(i).iter().map(|v| v.to_f64()).collect();
            let (c, conf) = if !self.classification {
                let (lo, hi) = self.range;
                let t = if hi > lo {
                    (z[0] - lo) / (hi - lo)
                } else {
                    0.5
                };
                (0, if t.is_finite() { t } else { 0.0 })
            } else if k == 1 {
                (u8::from(z[0] > 0.0), (z[0] / 2.0).tanh().abs())
            } else {
                let (arg, max) = z
                    .iter()
                    .enumerate()
                    .fold(
                        (0, f64::NEG_INFINITY),
                        |m, (j, &v)| if v > m.1 { (j, v) } else { m },
                    );
                let sum: f64 = z.iter().map(|v| (v - max).exp()).sum();
                let p = 1.0 / sum;
                let floor = 1.0 / k as f64;
                let conf = (p - floor) / (1.0 - floor);
                (
                    arg.min(255) as u8,
                    if conf.is_finite() { conf } else { 0.0 },
                )
            };
            class.push(c);
            confidence.push(byte(conf));
        }
        Some(GridImage {
            res: GRID_RES,
            class,
            confidence,
        })
    }

    /// The values of unit `unit` (0-based) of linear layer `layer` (1-based) in an evaluation
    /// pass: over the grid for 2-D data, else over the probe rows. What the layer's cache holds
    /// as its output: f(z) for a plain MLP's layer (the activation is fused into it), z for a
    /// `--net` linear module (the activation is the next module). None when out of range.
    pub fn unit_values(&mut self, net: &Net<T>, layer: usize, unit: usize) -> Option<UnitValues> {
        if layer == 0 || layer > net.num_layers() || unit >= net.layer(layer - 1).fan_out() {
            return None;
        }
        let grid = match &self.grid {
            Some((points, _)) => {
                let all: Vec<usize> = (0..points.rows()).collect();
                self.ws.load_rows(points, &all);
                Some(GRID_RES)
            }
            None => {
                self.ws.load_rows(&self.train.x, &self.rows);
                None
            }
        };
        net.forward(&mut self.ws, Pass::Eval);
        let act = &net.layer_cache(&self.ws, layer - 1).act;
        let values = (0..act.rows()).map(|r| act.get(r, unit).to_f64()).collect();
        Some(UnitValues { grid, values })
    }
}
