//! The step-0 derivation of a network of modules (residual blocks, norms, gates, shifts,
//! dropout): the backward pass module by module, output first, with the actual numbers.
//!
//! ```text
//! delta_n = dLoss/da_n (the logits);   for each module i from the output down:
//!   dθ_i = (∂F_i/∂θ_i)^T delta_i,   delta_{i-1} = (∂F_i/∂a_{i-1})^T delta_i
//! a block y = x + body(x):  the body's modules in turn from its last down, then
//!   delta_x = delta_y + (the body's delta into x)
//! ```
//! Computed in f64 on the first training batch exactly as the first step sees it: training
//! mode, so batchnorm normalises with the batch's statistics, and the step's dropout masks
//! (drawn from the run's dropout stream); running statistics are not updated. Each module's own
//! backward pass is run on its forward cache ([`Module::backward`]); what is exactly zero is
//! said in words: a zero incoming gradient with its cause (the module above it), and each kind's
//! own exact zeros and amplifications ([`Module::explain_step0`]).

use serde::Serialize;

use super::{first_batch, fmt_num, Format};
use crate::batch::{BatchTargets, Prepared};
use crate::config::RunConfig;
use crate::data::Dataset;
use crate::matrix::Matrix;
use crate::nn::{Cache, Facts, Module, Params, Pass, Step0, Workspace};
use crate::rng::{self, Stream};

/// One parameter tensor at step 0.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TensorStep {
    /// Its `state_dict` name.
    pub name: String,
    pub shape: Vec<usize>,
    pub value_norm: f64,
    pub grad_norm: f64,
    /// Every entry of its gradient is exactly 0.
    pub grad_zero: bool,
}

/// One module of the step-0 backward pass.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModuleStep {
    /// Its path (`2.body.1`); a block's body modules follow the block's own entry.
    pub path: String,
    pub kind: String,
    /// 0 for a top-level module, 1 inside a block, ...
    pub depth: usize,
    pub in_width: usize,
    pub out_width: usize,
    pub input_norm: f64,
    pub output_norm: f64,
    /// |dLoss/dy| and |dLoss/dx|.
    pub delta_norm: f64,
    pub delta_in_norm: f64,
    pub tensors: Vec<TensorStep>,
    /// Why a factor is exactly zero, in words.
    pub zero_reasons: Vec<String>,
    pub notes: Vec<String>,
}

/// The derivation at step 0, output module first.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModuleDerivation {
    pub rows: usize,
    pub loss_name: String,
    pub batch_loss: f64,
    pub modules: Vec<ModuleStep>,
}

/// Walks the backward pass, recording every module.
struct Tracer<'a> {
    steps: Vec<ModuleStep>,
    names: &'a [String],
}

/// The tensors of `m` (whose first tensor is `first` in state_dict order) with their gradients.
fn tensor_steps(
    m: &dyn Module<f64>,
    names: &[String],
    first: usize,
    grads: &[Matrix<f64>],
) -> Vec<TensorStep> {
    m.tensors()
        .iter()
        .enumerate()
        .map(|(k, t)| TensorStep {
            name: names[first + k].clone(),
            shape: t.dims.clone(),
            value_norm: crate::matrix::norm(m.value(k)),
            grad_norm: grads[k].norm(),
            grad_zero: grads[k].is_zero(),
        })
        .collect()
}

impl Tracer<'_> {
    /// Module `m` at `path` read `x` into `cache`; `dy` is dLoss/dy, `why` the reason it is
    /// zero (when it is). Returns dLoss/dx and the reason it is zero.
    #[allow(clippy::too_many_arguments)]
    fn module(
        &mut self,
        m: &dyn Module<f64>,
        path: &str,
        depth: usize,
        first: usize,
        x: &Matrix<f64>,
        cache: &mut Cache<f64>,
        dy: Matrix<f64>,
        why: Option<String>,
    ) -> (Matrix<f64>, Option<String>) {
        let here = self.steps.len();
        let mut step = ModuleStep {
            path: path.to_string(),
            kind: m.kind().to_string(),
            depth,
            in_width: m.in_width(),
            out_width: m.out_width(),
            input_norm: x.norm(),
            output_norm: cache.output().norm(),
            delta_norm: dy.norm(),
            delta_in_norm: 0.0,
            tensors: Vec::new(),
            zero_reasons: Vec::new(),
            notes: Vec::new(),
        };
        let dy_zero = dy.is_zero();
        if dy_zero {
            step.zero_reasons.push(format!(
                "dLoss/dy = 0 ({})",
                why.clone().unwrap_or_else(|| {
                    "the outputs already match the targets on this batch".into()
                })
            ));
        }
        if let Some((body, keys)) = m.body() {
            step.notes.push("delta into the block's input = delta + the body's delta into it (the skip passes delta unchanged)".into());
            self.steps.push(step);
            // The body, from its last module down.
            let mut d = dy.clone();
            let mut w = why.clone();
            let mut starts = vec![first];
            for b in body {
                starts.push(starts.last().copied().unwrap_or(first) + b.tensors().len());
            }
            for j in (0..body.len()).rev() {
                let (before, rest) = cache.body.split_at_mut(j);
                let h = if j == 0 { x } else { before[j - 1].output() };
                let (dx, w2) = self.module(
                    &*body[j],
                    &format!("{path}.body.{}", keys[j]),
                    depth + 1,
                    starts[j],
                    h,
                    &mut rest[0],
                    d,
                    w,
                );
                d = dx;
                w = w2;
            }
            let body_zero = d.is_zero();
            if body_zero && !dy_zero {
                self.steps[here].zero_reasons.push(format!(
                    "the body passes back 0 ({}), so the block's input receives delta through the skip unchanged",
                    w.unwrap_or_else(|| "its delta cancels".into())
                ));
            }
            let mut dx = dy;
            for (a, b) in dx.as_mut_slice().iter_mut().zip(d.as_slice()) {
                *a += b;
            }
            self.steps[here].delta_in_norm = dx.norm();
            let zero = dx.is_zero().then(|| {
                why.unwrap_or_else(|| {
                    format!("module {path}: the skip and the body's delta cancel")
                })
            });
            return (dx, zero);
        }
        let mut grads: Vec<Matrix<f64>> = m.tensors().iter().map(|t| t.grad_buffer()).collect();
        let mut dx = Matrix::zeros(x.rows(), m.in_width());
        let mut d = dy.clone();
        m.backward(x, cache, &mut d, &mut grads, Some(&mut dx));
        let mut facts = Facts::default();
        if !dy_zero {
            m.explain_step0(
                &Step0 {
                    path,
                    x,
                    cache,
                    dy: &dy,
                    dx: &dx,
                    grads: &grads,
                },
                &mut facts,
            );
        }
        step.tensors = tensor_steps(m, self.names, first, &grads);
        if dy_zero && !step.tensors.is_empty() {
            step.zero_reasons.push(format!(
                "so every gradient of module {path} is 0 and it passes 0 back"
            ));
        }
        step.zero_reasons.extend(facts.zero.iter().cloned());
        step.notes.extend(facts.notes);
        step.delta_in_norm = dx.norm();
        let zero = if dx.is_zero() {
            Some(if dy_zero {
                why.unwrap_or_default()
            } else {
                facts
                    .zero
                    .first()
                    .map(|r| format!("module {path}: {}", r.split(", so").next().unwrap_or(r)))
                    .unwrap_or_else(|| format!("module {path} passes back exactly 0"))
            })
        } else {
            None
        };
        self.steps.push(step);
        (dx, zero)
    }
}

/// The step-0 derivation of any network (module docs). A zero delta's cause, as the modules
/// below it repeat it, is the first zero reason of the module that stopped it, up to its
/// ", so" (`module 3.body.4: gate alpha = 0`).
pub fn derive_modules(cfg: &RunConfig, data: &Dataset, params: &Params) -> ModuleDerivation {
    let outputs = *cfg.arch.last().expect("validated arch");
    let train = Prepared::<f64>::new(&data.train, cfg.loss, outputs);
    let idx = first_batch(cfg, train.len());
    let net = cfg.network::<f64>(params);
    let mut ws = Workspace::<f64>::new(&net, idx.len());
    let mut bt = BatchTargets::<f64>::new(idx.len(), outputs);
    ws.load_rows(&train.x, &idx);
    bt.load(&train, &idx);
    let mut masks = rng::stream(cfg.seed, Stream::Dropout);
    let batch_loss = net.loss_forward(
        &mut ws,
        cfg.loss,
        bt.targets(cfg.loss),
        Pass::Train(&mut masks),
    );
    let names: Vec<String> = net.param_infos().iter().map(|p| p.name.clone()).collect();
    let mut tracer = Tracer {
        steps: Vec::new(),
        names: &names,
    };
    let modules = net.modules();
    let last = modules.len() - 1;
    let mut d = ws.deltas[last].clone();
    let mut why = d
        .is_zero()
        .then(|| "the outputs already match the targets on this batch".to_string());
    for i in (0..modules.len()).rev() {
        let (before, rest) = ws.caches.split_at_mut(i);
        let x = if i == 0 {
            &ws.input
        } else {
            before[i - 1].output()
        };
        let (dx, w) = tracer.module(
            &*modules[i],
            &net.prefixes()[i],
            0,
            net.tensor_range(i).start,
            x,
            &mut rest[0],
            d,
            why,
        );
        d = dx;
        why = w;
    }
    ModuleDerivation {
        rows: idx.len(),
        loss_name: cfg.loss.name().to_string(),
        batch_loss,
        modules: tracer.steps,
    }
}

/// Renders the derivation (text, or Markdown with LaTeX).
pub fn render_modules(d: &ModuleDerivation, format: Format) -> String {
    let md = format == Format::Markdown;
    let mut out = String::new();
    let mode = "training mode: batchnorm uses the batch's statistics and dropout the step's masks; running statistics are not updated";
    if md {
        out += &format!(
            "## Backward pass at step 0\n\nOn the first minibatch ({} rows), loss `{}` = {} ({mode}). Modules from the output down; a block's body follows its entry.\n\n$$\\delta_{{i-1}} = \\Big(\\frac{{\\partial F_i}}{{\\partial a_{{i-1}}}}\\Big)^\\top \\delta_i, \\qquad d\\theta_i = \\Big(\\frac{{\\partial F_i}}{{\\partial \\theta_i}}\\Big)^\\top \\delta_i, \\qquad \\text{{block: }} \\delta_x = \\delta_y + \\delta_{{\\text{{body}}\\to x}}$$\n\n",
            d.rows,
            d.loss_name,
            fmt_num(d.batch_loss)
        );
    } else {
        out += &format!(
            "Backward pass at step 0, on the first minibatch ({} rows), loss {} = {}\n({mode})\nModules from the output down; a block's body follows its entry, indented.\n  delta_(i-1) = (dF_i/da_(i-1))^T delta_i    dtheta_i = (dF_i/dtheta_i)^T delta_i    block: delta_x = delta_y + body's delta into x\n",
            d.rows,
            d.loss_name,
            fmt_num(d.batch_loss)
        );
    }
    for m in &d.modules {
        let shape = if m.in_width == m.out_width {
            format!("{}", m.out_width)
        } else {
            format!("{} -> {}", m.in_width, m.out_width)
        };
        if md {
            out += &format!(
                "{} Module `{}` ({}, {shape})\n\n| quantity | Frobenius norm |\n|---|---|\n| input $x$ | {} |\n| output $y$ | {} |\n| $\\delta_y$ | {} |\n| $\\delta_x$ | {} |\n",
                if m.depth == 0 { "###" } else { "####" },
                m.path,
                m.kind,
                fmt_num(m.input_norm),
                fmt_num(m.output_norm),
                fmt_num(m.delta_norm),
                fmt_num(m.delta_in_norm)
            );
            for t in &m.tensors {
                out += &format!(
                    "| `{}` / its gradient | {} / {}{} |\n",
                    t.name,
                    fmt_num(t.value_norm),
                    fmt_num(t.grad_norm),
                    if t.grad_zero { " (exactly 0)" } else { "" }
                );
            }
            out += "\n";
            for r in &m.zero_reasons {
                out += &format!("- **zero:** {r}\n");
            }
            for r in &m.notes {
                out += &format!("- {r}\n");
            }
            out += "\n";
        } else {
            let ind = "  ".repeat(m.depth);
            out += &format!("\n{ind}Module {} ({}, {shape})\n", m.path, m.kind);
            out += &format!(
                "{ind}  norms: |x| {}  |y| {}  |delta_y| {}  |delta_x| {}\n",
                fmt_num(m.input_norm),
                fmt_num(m.output_norm),
                fmt_num(m.delta_norm),
                fmt_num(m.delta_in_norm)
            );
            for t in &m.tensors {
                out += &format!(
                    "{ind}  {}: |value| {}  |grad| {}{}\n",
                    t.name,
                    fmt_num(t.value_norm),
                    fmt_num(t.grad_norm),
                    if t.grad_zero { " (exactly 0)" } else { "" }
                );
            }
            for r in &m.zero_reasons {
                out += &format!("{ind}  ZERO: {r}\n");
            }
            for r in &m.notes {
                out += &format!("{ind}  note: {r}\n");
            }
        }
    }
    out
}
