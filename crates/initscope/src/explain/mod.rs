//! `explain`: the backward pass at step 0 written out layer by layer with the actual numbers, and
//! why any factor is exactly zero; then (from a training run) the verdict.
//!
//! ```text
//! delta_L = dLoss/dz_L                       dW_L = delta_L^T a_{L-1}     db_L = Σ_n delta_L[n, :]
//! delta_l = (delta_{l+1} W_{l+1}) ⊙ f'(z_l)   dW_l = delta_l^T a_{l-1}     db_l = Σ_n delta_l[n, :]
//! ```
//! Everything is computed in f64 on the step-0 minibatch of the run (the rows the first training
//! step sees), without dropout masks. [`explain`] derives step 0 and trains for the configured
//! steps; [`Explanation::render`] writes both out, the per-layer verdict table last
//! ([`verdict_rows`]), and [`Explanation::json`] is the same as one JSON document.

use serde::Serialize;

pub mod modules;

pub use modules::{derive_modules, render_modules, ModuleDerivation, ModuleStep, TensorStep};

use crate::batch::{BatchTargets, Prepared};
use crate::config::{Batch, RunConfig};
use crate::data::Dataset;
use crate::diagnostics::symmetry::{equitable_partition, quotient, UnitGraph};
use crate::error::Result;
use crate::matrix::{matmul_nn, Matrix};
use crate::nn::{self, Params, Pass, Workspace};
use crate::records::verdict::Verdict;
use crate::records::RunOutput;
use crate::rng::{self, Stream};
pub(crate) use crate::spec::fmt_num;
use crate::train::{initial_params, train_from, InitialState};

/// Matrices with at most this many rows and columns (and batches of at most this many rows) are
/// printed in full.
pub const SMALL: usize = 8;

/// One layer of the step-0 derivation (1-based layer number).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LayerStep {
    pub layer: usize,
    pub fan_in: usize,
    pub fan_out: usize,
    pub activation: String,
    pub delta_norm: f64,
    pub grad_w_norm: f64,
    pub grad_b_norm: f64,
    pub input_norm: f64,
    pub weight_norm: f64,
    /// Why a factor is exactly zero, in words.
    pub zero_reasons: Vec<String>,
    /// Facts about the numbers that matter for symmetry (constant inputs, identical rows).
    pub notes: Vec<String>,
    #[serde(skip)]
    pub delta: Matrix<f64>, // (batch, fan_out)
    #[serde(skip)]
    pub grad_w: Matrix<f64>, // (fan_out, fan_in)
    #[serde(skip)]
    pub grad_b: Vec<f64>,
    #[serde(skip)]
    pub input: Matrix<f64>, // (batch, fan_in), a_{l-1}
    #[serde(skip)]
    pub weight: Matrix<f64>, // (fan_out, fan_in)
}

/// The derivation at step 0, output layer first.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Derivation {
    pub rows: usize,
    pub loss_name: String,
    pub batch_loss: f64,
    pub dropout_ignored: bool,
    pub layers: Vec<LayerStep>,
}

fn all_zero(m: &[f64]) -> bool {
    m.iter().all(|&x| x == 0.0)
}

fn rows_identical(m: &Matrix<f64>) -> bool {
    (1..m.rows()).all(|i| m.row(i) == m.row(0))
}

fn column_sums(m: &Matrix<f64>) -> Vec<f64> {
    let mut s = vec![0.0; m.cols()];
    for i in 0..m.rows() {
        for (a, b) in s.iter_mut().zip(m.row(i)) {
            *a += b;
        }
    }
    s
}

/// The rows of the training split the first step sees (same shuffle as training).
pub fn first_batch(cfg: &RunConfig, n: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    if cfg.batch != Batch::Full {
        rng::shuffle(&mut rng::stream(cfg.seed, Stream::Shuffle), &mut order);
    }
    order.truncate(cfg.batch_size(n));
    order
}

/// Computes the step-0 derivation of `params` on the run's first batch.
pub fn derive(cfg: &RunConfig, data: &Dataset, params: &Params) -> Derivation {
    let outputs = *cfg.arch.last().expect("validated arch");
    let train = Prepared::<f64>::new(&data.train, cfg.loss, outputs);
    let idx = first_batch(cfg, train.len());
    let net = cfg.network::<f64>(params);
    let mut ws = Workspace::<f64>::new(&net, idx.len());
    let mut bt = BatchTargets::<f64>::new(idx.len(), outputs);
    ws.load_rows(&train.x, &idx);
    bt.load(&train, &idx);
    let batch_loss = net.loss_and_grads(&mut ws, cfg.loss, bt.targets(cfg.loss), Pass::Eval);
    let layers_n = net.num_layers();
    // Recompute the pieces the backward pass consumed in place: delta_l and delta_{l+1} W_{l+1}.
    let deltas: Vec<Matrix<f64>> = ws.deltas.clone();
    let mut layers = Vec::new();
    for i in (0..layers_n).rev() {
        let l = i + 1;
        // A plain MLP: linear layer l is module l - 1.
        let layer = net.layer(i);
        let input = if i == 0 {
            ws.input.clone()
        } else {
            ws.caches[i - 1].act.clone()
        };
        let (g_w, g_b) = net.layer_grads(&ws.grads, i);
        let g_b = g_b.map_or_else(|| vec![0.0; layer.fan_out()], <[f64]>::to_vec);
        let delta = &deltas[i];
        let mut zero_reasons = Vec::new();
        let mut notes = Vec::new();
        let act = layer.activation;
        let name = act.spec();
        // Why delta_l is zero.
        if all_zero(delta.as_slice()) {
            if nn::is_output(i, layers_n) {
                zero_reasons.push(format!(
                    "delta_{l} = dLoss/dz_{l} = 0: the outputs already match the targets on this batch"
                ));
            } else {
                let above = &deltas[i + 1];
                let w_above = &net.layer(i + 1).weight;
                let mut back = Matrix::zeros(above.rows(), w_above.cols());
                matmul_nn(&mut back, above, w_above, false);
                let slope_zero = ws.caches[i]
                    .pre
                    .as_slice()
                    .iter()
                    .zip(ws.caches[i].act.as_slice())
                    .all(|(&z, &a)| act.df(z, a) == 0.0);
                if all_zero(above.as_slice()) {
                    zero_reasons.push(format!(
                        "delta_{} = 0, so delta_{l} = (delta_{} W_{}) * f'(z_{l}) = 0",
                        l + 1,
                        l + 1,
                        l + 1
                    ));
                } else if all_zero(w_above.as_slice()) {
                    zero_reasons.push(format!(
                        "W_{} = 0, so delta_{l} = (delta_{} W_{}) * f'(z_{l}) = 0",
                        l + 1,
                        l + 1,
                        l + 1
                    ));
                } else if all_zero(back.as_slice()) {
                    let rows_sum_zero =
                        (0..above.rows()).all(|r| above.row(r).iter().sum::<f64>().abs() <= 1e-15);
                    if rows_identical(w_above) && rows_sum_zero {
                        zero_reasons.push(format!(
                            "every row of W_{} is the same vector w and every row of delta_{} sums to 0 (softmax gradients do), so delta_{} W_{} = 0 and delta_{l} = 0",
                            l + 1, l + 1, l + 1, l + 1
                        ));
                    } else {
                        zero_reasons.push(format!("delta_{} W_{} = 0 exactly (the back-propagated signal cancels), so delta_{l} = 0", l + 1, l + 1));
                    }
                } else if slope_zero {
                    zero_reasons.push(format!(
                        "{name}'(z_{l}) = 0 for every input and unit, so delta_{l} = 0"
                    ));
                }
            }
        }
        // Why dW_l is zero.
        let below = if l == 1 {
            "x".to_string()
        } else {
            format!("a_{}", l - 1)
        };
        if all_zero(g_w.as_slice()) {
            if all_zero(delta.as_slice()) {
                zero_reasons.push(format!(
                    "delta_{l} = 0, so dW_{l} = delta_{l}^T {below} = 0"
                ));
            } else if all_zero(input.as_slice()) {
                if l == 1 {
                    zero_reasons.push("the inputs x are 0 on this batch, so dW_1 = 0".to_string());
                } else {
                    let prev = net.layer(i - 1);
                    let z_zero = all_zero(ws.caches[i - 1].pre.as_slice());
                    if z_zero && prev.activation.zero_at_zero() {
                        let why = if all_zero(prev.weight.as_slice()) && all_zero(&prev.bias) {
                            format!("W_{} = 0 and b_{} = 0 give z_{} = 0", l - 1, l - 1, l - 1)
                        } else {
                            format!("z_{} = 0 for every input", l - 1)
                        };
                        zero_reasons.push(format!(
                            "a_{} = {}(0) = 0 for every input ({why}), so dW_{l} = delta_{l}^T a_{} = 0",
                            l - 1,
                            prev.activation.spec(),
                            l - 1
                        ));
                    } else {
                        zero_reasons
                            .push(format!("a_{} = 0 for every input, so dW_{l} = 0", l - 1));
                    }
                }
            } else if rows_identical(&input) && column_sums(delta).iter().all(|s| *s == 0.0) {
                zero_reasons.push(format!(
                    "{below} is the same vector c for every input and every column of delta_{l} sums to 0 (mean residual 0, e.g. balanced classes with equal logits), so dW_{l} = (Σ_n delta_{l}[n])^T c = 0"
                ));
            } else {
                zero_reasons.push(format!(
                    "delta_{l}^T {below} = 0 exactly (cancellation over the batch)"
                ));
            }
        }
        if layer.has_bias && all_zero(&g_b) && !all_zero(delta.as_slice()) {
            zero_reasons.push(format!(
                "every column of delta_{l} sums to 0, so db_{l} = 0"
            ));
        }
        if let Some(g0) = act.grad_at_zero() {
            let pre = ws.caches[i].pre.as_slice();
            let at_zero = pre.iter().filter(|&&z| z == 0.0).count();
            if at_zero > 0 {
                notes.push(format!(
                    "{at_zero} of {} pre-activations z_{l} sit exactly at 0, where {}'(0) = {g0} was used{}",
                    pre.len(),
                    act.almost_everywhere().spec(),
                    match act {
                        crate::activation::Activation::Relu => " (PyTorch's convention: no gradient passes there; relu:grad0=1 would pass it)",
                        crate::activation::Activation::ReluGrad1 => " (the ZerO authors' convention: the gradient passes there; PyTorch's relu would stop it)",
                        _ => "",
                    }
                ));
            }
        }
        if input.rows() > 1 && rows_identical(&input) && !all_zero(input.as_slice()) {
            notes.push(format!(
                "{below} is the same for every input: layer {l} sees no variation in x"
            ));
        }
        if layer.fan_out() > 1 && rows_identical(g_w) && !all_zero(g_w.as_slice()) {
            notes.push(format!(
                "every row of dW_{l} is the same: the units of layer {l} receive identical updates"
            ));
        }
        // Output units are singleton classes (each has its own target): never copies.
        if layer.fan_out() > 1 && rows_identical(&layer.weight) {
            notes.push(if nn::is_output(i, layers_n) {
                format!(
                    "every row of W_{l} is the same: the outputs differ only through their biases (output units have their own targets, so they are never copies)"
                )
            } else {
                let above = &net.layer(i + 1).weight;
                let same_bias = layer.bias.iter().all(|&b| b == layer.bias[0]);
                let same_out = (0..above.rows()).all(|r| {
                    let row = above.row(r);
                    row.iter().all(|&x| x == row[0])
                });
                if same_bias && same_out {
                    format!(
                        "every row of W_{l} is the same, and so are the biases and outgoing weights: the units of layer {l} are copies of each other"
                    )
                } else {
                    format!(
                        "every row of W_{l} is the same: the units of layer {l} see the same weighted input (they differ by their biases or outgoing weights)"
                    )
                }
            });
        }
        layers.push(LayerStep {
            layer: l,
            fan_in: layer.fan_in(),
            fan_out: layer.fan_out(),
            activation: name,
            delta_norm: delta.norm(),
            grad_w_norm: g_w.norm(),
            grad_b_norm: crate::matrix::norm(&g_b),
            input_norm: input.norm(),
            weight_norm: layer.weight.norm(),
            zero_reasons,
            notes,
            delta: delta.clone(),
            grad_w: g_w.clone(),
            grad_b: g_b,
            input,
            weight: layer.weight.clone(),
        });
    }
    Derivation {
        rows: idx.len(),
        loss_name: cfg.loss.name().to_string(),
        batch_loss,
        dropout_ignored: cfg.dropout > 0.0,
        layers,
    }
}

/// Output format of the derivation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Markdown,
}

fn matrix_text(m: &Matrix<f64>, indent: &str) -> String {
    (0..m.rows())
        .map(|i| {
            format!(
                "{indent}[{}]",
                m.row(i)
                    .iter()
                    .map(|&x| format!("{:>9}", fmt_num(x)))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn matrix_latex(m: &Matrix<f64>) -> String {
    let rows: Vec<String> = (0..m.rows())
        .map(|i| {
            m.row(i)
                .iter()
                .map(|&x| fmt_num(x))
                .collect::<Vec<_>>()
                .join(" & ")
        })
        .collect();
    format!(
        "\\begin{{bmatrix}} {} \\end{{bmatrix}}",
        rows.join(" \\\\ ")
    )
}

/// Renders the derivation (text or Markdown with LaTeX).
pub fn render(d: &Derivation, format: Format) -> String {
    let md = format == Format::Markdown;
    let mut out = String::new();
    let small_batch = d.rows <= SMALL;
    if md {
        out += &format!(
            "## Backward pass at step 0\n\nOn the first minibatch ({} rows), loss `{}` = {}.\n\n",
            d.rows,
            d.loss_name,
            fmt_num(d.batch_loss)
        );
    } else {
        out += &format!(
            "Backward pass at step 0, on the first minibatch ({} rows), loss {} = {}\n",
            d.rows,
            d.loss_name,
            fmt_num(d.batch_loss)
        );
    }
    if d.dropout_ignored {
        out += if md {
            "_Dropout masks are not applied in this derivation._\n\n"
        } else {
            "(dropout masks are not applied in this derivation)\n"
        };
    }
    let last = d.layers.first().map_or(0, |l| l.layer);
    for l in &d.layers {
        let n = l.layer;
        let below = if n == 1 {
            "x".to_string()
        } else {
            format!("a_{}", n - 1)
        };
        let below_tex = if n == 1 {
            "x".to_string()
        } else {
            format!("a_{{{}}}", n - 1)
        };
        let kind = if n == last { "output" } else { "hidden" };
        let small = small_batch && l.fan_in <= SMALL && l.fan_out <= SMALL;
        if md {
            out += &format!(
                "### Layer {n} ({kind}, {} → {}, {})\n\n",
                l.fan_in, l.fan_out, l.activation
            );
            if n == last {
                out += &format!("$$\\delta_{{{n}}} = \\frac{{\\partial \\mathcal{{L}}}}{{\\partial z_{{{n}}}}}$$\n");
            } else {
                out += &format!(
                    "$$\\delta_{{{n}}} = (\\delta_{{{}}} W_{{{}}}) \\odot f'(z_{{{n}}})$$\n",
                    n + 1,
                    n + 1
                );
            }
            out += &format!("$$dW_{{{n}}} = \\delta_{{{n}}}^\\top {below_tex}, \\qquad db_{{{n}}} = \\textstyle\\sum_n \\delta_{{{n}}}[n,:]$$\n\n");
            if small {
                out += &format!(
                    "$$\\delta_{{{n}}} = {}$$\n$${below_tex} = {}$$\n$$dW_{{{n}}} = {}$$\n\n",
                    matrix_latex(&l.delta),
                    matrix_latex(&l.input),
                    matrix_latex(&l.grad_w)
                );
            }
            out += &format!(
                "| quantity | Frobenius norm |\n|---|---|\n| $\\delta_{{{n}}}$ | {} |\n| ${below_tex}$ | {} |\n| $W_{{{n}}}$ | {} |\n| $dW_{{{n}}}$ | {} |\n| $db_{{{n}}}$ | {} |\n\n",
                fmt_num(l.delta_norm), fmt_num(l.input_norm), fmt_num(l.weight_norm), fmt_num(l.grad_w_norm), fmt_num(l.grad_b_norm)
            );
            for r in &l.zero_reasons {
                out += &format!("- **zero:** {r}\n");
            }
            for r in &l.notes {
                out += &format!("- {r}\n");
            }
            out += "\n";
        } else {
            out += &format!(
                "\nLayer {n} ({kind}, {} -> {}, {})\n",
                l.fan_in, l.fan_out, l.activation
            );
            if n == last {
                out += &format!("  delta_{n} = dLoss/dz_{n}\n");
            } else {
                out += &format!("  delta_{n} = (delta_{} W_{}) * f'(z_{n})\n", n + 1, n + 1);
            }
            out +=
                &format!("  dW_{n} = delta_{n}^T {below}      db_{n} = column sums of delta_{n}\n");
            out += &format!(
                "  norms: |delta_{n}| {}  |{below}| {}  |W_{n}| {}  |dW_{n}| {}  |db_{n}| {}\n",
                fmt_num(l.delta_norm),
                fmt_num(l.input_norm),
                fmt_num(l.weight_norm),
                fmt_num(l.grad_w_norm),
                fmt_num(l.grad_b_norm)
            );
            if small {
                out += &format!(
                    "  delta_{n} =\n{}\n  {below} =\n{}\n  dW_{n} =\n{}\n",
                    matrix_text(&l.delta, "    "),
                    matrix_text(&l.input, "    "),
                    matrix_text(&l.grad_w, "    ")
                );
            }
            for r in &l.zero_reasons {
                out += &format!("  ZERO: {r}\n");
            }
            for r in &l.notes {
                out += &format!("  note: {r}\n");
            }
        }
    }
    out
}

/// The quotient network's widths (input, one per hidden layer's tolerance classes, output).
pub fn quotient_arch(params: &Params, tol: f64) -> Vec<usize> {
    let q = quotient(params, &equitable_partition(params, tol));
    q.sizes.iter().map(Vec::len).collect()
}

/// [`quotient_arch`] for a plain MLP; for a network of modules, its input width, then the
/// tolerance classes of each linear layer's outputs (the output layer's units are its own).
fn widths_arch(cfg: &RunConfig, params: &Params, tol: f64) -> Vec<usize> {
    if params.is_plain() {
        return quotient_arch(params, tol);
    }
    let net = cfg.network::<f64>(params);
    let graph = UnitGraph::of_net(&net);
    let widths = graph.linear_widths(&graph.equitable_partition(tol));
    std::iter::once(net.modules()[0].in_width())
        .chain(
            widths
                .iter()
                .enumerate()
                .map(|(i, w)| w.unwrap_or_else(|| net.layer(i).fan_out())),
        )
        .collect()
}

/// What `explain` shows: the step-0 derivation of the starting parameters, the training run that
/// follows from them (its summary holds the verdict), and the quotient network before and after.
#[derive(Clone, Debug)]
pub struct Explanation {
    /// The step-0 derivation; `None` for a network that is not a chain of linear layers and
    /// activations (residual blocks, norms, gates, shifts, dropout modules), which `derive` does
    /// not read yet.
    pub derivation: Option<Derivation>,
    /// The step-0 derivation module by module, for every network that is not a chain of linear
    /// layers and activations ([`derive_modules`]).
    pub modules: Option<ModuleDerivation>,
    /// The run of the configured steps, from the parameters the derivation was computed on.
    pub run: RunOutput,
    /// Widths of the quotient network at the start (input, tolerance classes per hidden layer,
    /// output); for a network of modules, the tolerance classes of every linear layer's outputs
    /// in forward order (its quotient, [`crate::diagnostics::quotient`], has these widths
    /// there). `None` in explanations that did not compute them.
    pub quotient_init: Option<Vec<usize>>,
    /// Widths of the quotient network at the end.
    pub quotient_end: Option<Vec<usize>>,
}

/// Derives step 0 for `cfg` on `data`, then trains for the configured steps (the verdict). Errors
/// when the starting parameters cannot be made (an `--init-from` file that does not fit).
pub fn explain(cfg: &RunConfig, data: &Dataset) -> Result<Explanation> {
    explain_with(cfg, data, |start| {
        Ok(train_from(cfg, data, start, &mut |_| {}))
    })
}

/// [`explain`] with the training run left to `run`: given the starting state, it returns the run
/// [`train_from`] would make from it, or its own error (a caller that trains a few steps at a
/// time to stay interruptible, as the Python package does with [`crate::train::Live`]).
pub fn explain_with<E: From<crate::error::Error>>(
    cfg: &RunConfig,
    data: &Dataset,
    run: impl FnOnce(InitialState) -> Result<RunOutput, E>,
) -> Result<Explanation, E> {
    let start = initial_params(cfg, data)?;
    explain_from(cfg, data, start, run)
}

/// [`explain_with`] from a starting state the caller made (weights given in memory,
/// [`crate::train::params_from`]).
pub fn explain_from<E: From<crate::error::Error>>(
    cfg: &RunConfig,
    data: &Dataset,
    start: InitialState,
    run: impl FnOnce(InitialState) -> Result<RunOutput, E>,
) -> Result<Explanation, E> {
    let chain = cfg
        .network::<f64>(&start.params)
        .modules()
        .iter()
        .all(|m| m.kind() == "linear");
    let derivation = chain.then(|| derive(cfg, data, &start.params));
    let modules = (!chain).then(|| derive_modules(cfg, data, &start.params));
    let run = run(start)?;
    let tol = cfg.symmetry_tolerance();
    Ok(Explanation {
        quotient_init: Some(widths_arch(cfg, &run.initial_params, tol)),
        quotient_end: Some(widths_arch(cfg, &run.params, tol)),
        derivation,
        modules,
        run,
    })
}

/// The columns of the per-layer verdict table ([`verdict_rows`]).
pub const VERDICT_COLUMNS: [&str; 10] = [
    "layer",
    "shape",
    "act",
    "‖dW‖ step 0",
    "wake step",
    "W unchanged",
    "width exact",
    "width tol",
    "gradient",
    "‖dW‖ end",
];

/// The per-layer verdict table after K steps, one row of [`VERDICT_COLUMNS`] cells per layer:
/// shape, activation, ‖dW‖ at step 0 and at the end, the step a layer's weights first moved
/// (`never`), whether they never changed, the effective width (exact and within tolerance) at
/// init and at the end, and the gradient state; then one row per residual stream (its name, its
/// units, its blocks and its widths).
pub fn verdict_rows(v: &Verdict) -> Vec<[String; 10]> {
    v.layers
        .iter()
        .map(|l| {
            [
                l.layer.to_string(),
                format!("{}->{}", l.fan_in, l.fan_out),
                l.activation.clone(),
                format!("{:.3e}", l.grad_w_norm_step0),
                l.wake_step
                    .map(|w| w.to_string())
                    .unwrap_or_else(|| "never".into()),
                if l.weights_unchanged {
                    "yes".into()
                } else {
                    "no".into()
                },
                widths_text(l.width_init, l.width_end),
                widths_text(l.width_init_tol, l.width_end_tol),
                l.grad_state.map_or("-", |g| g.name()).to_string(),
                l.grad_w_norm_end
                    .map_or_else(|| "-".into(), |n| format!("{n:.3e}")),
            ]
        })
        .chain(v.streams.iter().map(|s| {
            let dash = || "-".to_string();
            [
                s.name(),
                s.units.to_string(),
                format!("{} block{}", s.blocks, if s.blocks == 1 { "" } else { "s" }),
                dash(),
                dash(),
                dash(),
                widths_text(s.width_init, s.width_end),
                widths_text(s.width_init_tol, s.width_end_tol),
                dash(),
                dash(),
            ]
        }))
        .collect()
}

impl Explanation {
    /// The explanation as one JSON document: the run's figures and verdict, the quotient
    /// networks and the derivation.
    pub fn json(&self) -> serde_json::Value {
        let s = &self.run.summary;
        let v = &s.verdict;
        let mut json = serde_json::json!({
            "run_id": s.run_id,
            "steps": s.steps,
            "status": s.status,
            "layers": v.layers,
            "loss_start": s.loss_start,
            "loss_end": s.train_loss,
            "loss_constant_baseline": v.loss_constant_baseline,
            "symmetry_breakers": v.symmetry_breakers,
            "symmetry_broken": v.symmetry_broken,
            "verdict": v.verdict,
            "learning": s.learning(),
            "summary": v.summary,
            "quotient_init": self.quotient_init,
            "quotient_end": self.quotient_end,
            "derivation": self.derivation,
        });
        if !v.tensors.is_empty() {
            json["tensors"] = serde_json::json!(v.tensors);
        }
        if let Some(m) = &self.modules {
            json["module_derivation"] = serde_json::json!(m);
        }
        json
    }

    /// The whole explanation as text (or Markdown with LaTeX): a title naming the run, the
    /// step-0 derivation ([`render`]) and the verdict after training ([`Self::render_verdict`]).
    pub fn render(&self, format: Format) -> String {
        let cfg = &self.run.config;
        let title = format!("{} | {} steps", cfg.headline(), self.run.summary.steps);
        let head = match format {
            Format::Markdown => format!("# initscope explain\n\n`{title}`\n"),
            Format::Text => format!("initscope explain: {title}\n"),
        };
        let derivation = match (&self.derivation, &self.modules) {
            (Some(d), _) => render(d, format),
            (None, Some(m)) => render_modules(m, format),
            (None, None) => String::new(),
        };
        format!("{head}\n{derivation}\n{}", self.render_verdict(format))
    }

    /// The verdict after training: the per-layer table ([`verdict_rows`]), the loss against the
    /// best constant predictor, the quotient network at init and at the end, and the verdict in
    /// words.
    pub fn render_verdict(&self, format: Format) -> String {
        let cfg = &self.run.config;
        let s = &self.run.summary;
        let v = &s.verdict;
        let header = VERDICT_COLUMNS;
        let rows = verdict_rows(v);
        let quotient = |q: &Option<Vec<usize>>| q.as_deref().map_or("-".to_string(), nn::arch_text);
        let (q0, q1) = (quotient(&self.quotient_init), quotient(&self.quotient_end));
        let mut lines = Vec::new();
        match format {
            Format::Markdown => {
                lines.push(format!(
                    "## After {} steps of {} (lr {})\n",
                    s.steps, cfg.optim.kind, cfg.optim.lr
                ));
                lines.push(format!("| {} |", header.join(" | ")));
                lines.push(format!("|{}|", vec!["---"; header.len()].join("|")));
                for r in &rows {
                    lines.push(format!("| {} |", r.join(" | ")));
                }
                if !v.tensors.is_empty() {
                    lines.push("\n**Wake-up steps per tensor** (the first step its gradient had a nonzero entry), predicted from the zero pattern of the initialization and measured:\n".into());
                    lines.push(
                        "| tensor | predicted | measured | gradient |\n|---|---|---|---|".into(),
                    );
                    for t in &v.tensors {
                        lines.push(format!(
                            "| `{}` | {} | {} | {} |",
                            t.name,
                            step_text(t.wake_predicted),
                            step_text(t.wake_measured),
                            t.grad_state.map_or("-", |g| g.name())
                        ));
                    }
                    for t in v.tensors.iter().filter_map(|t| t.note.as_ref()) {
                        lines.push(format!("- {t}"));
                    }
                }
                lines.push(format!(
                    "\nLoss {:.6} → {:.6} (best constant predictor {:.6}). Quotient network: {q0} at init, {q1} at the end.\n\n**Verdict: {}, {}.** {}",
                    s.loss_start,
                    s.train_loss,
                    v.loss_constant_baseline,
                    v.verdict.name(),
                    s.learning().name(),
                    v.summary
                ));
            }
            Format::Text => {
                lines.push(format!(
                    "After {} steps of {} (lr {}):",
                    s.steps, cfg.optim.kind, cfg.optim.lr
                ));
                let widths: Vec<usize> = (0..header.len())
                    .map(|c| {
                        rows.iter()
                            .map(|r| r[c].chars().count())
                            .chain([header[c].chars().count()])
                            .max()
                            .unwrap_or(0)
                    })
                    .collect();
                let line = |cells: Vec<&str>| {
                    cells
                        .iter()
                        .zip(&widths)
                        .map(|(c, w)| format!("{c:<w$}"))
                        .collect::<Vec<_>>()
                        .join("  ")
                };
                lines.push(format!("  {}", line(header.to_vec())));
                for r in &rows {
                    lines.push(format!(
                        "  {}",
                        line(r.iter().map(String::as_str).collect())
                    ));
                }
                if !v.tensors.is_empty() {
                    lines.push("  wake-up step per tensor (the first step its gradient had a nonzero entry), predicted from the zero pattern / measured, and its gradient state:".into());
                    let w = v.tensors.iter().map(|t| t.name.len()).max().unwrap_or(0);
                    for t in &v.tensors {
                        let agree = if t.wake_predicted == t.wake_measured {
                            ""
                        } else {
                            "  (differ, see below)"
                        };
                        let steps = format!(
                            "{} / {}",
                            step_text(t.wake_predicted),
                            step_text(t.wake_measured)
                        );
                        lines.push(format!(
                            "    {:<w$}  {steps:<15}  {}{agree}",
                            t.name,
                            t.grad_state.map_or("-", |g| g.name())
                        ));
                    }
                    for t in v.tensors.iter().filter_map(|t| t.note.as_ref()) {
                        lines.push(format!("    note: {t}"));
                    }
                }
                lines.push(format!(
                    "  loss {:.6} -> {:.6} (best constant predictor {:.6}); quotient network {q0} at init, {q1} at the end",
                    s.loss_start, s.train_loss, v.loss_constant_baseline
                ));
                lines.push(format!("\nVERDICT: {}", v.summary));
            }
        }
        lines.join("\n")
    }
}

/// A wake-up step, or `never`.
fn step_text(s: Option<usize>) -> String {
    s.map_or_else(|| "never".into(), |s| s.to_string())
}

/// `a -> b`, or `-` when the widths were not computed.
fn widths_text(a: Option<usize>, b: Option<usize>) -> String {
    match (a, b) {
        (Some(a), Some(b)) => format!("{a} -> {b}"),
        _ => "-".into(),
    }
}
