//! `initscope train`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use initscope::config::validate;
use initscope::output::{check_out_dir, write_run_dir, FolderKind};
use initscope::records::{EvalPoint, Status, Summary};
use initscope::train::{initial_params, train_from, Event};

use crate::args::{note_init_from, warn_unused, RunArgs};
use crate::progress::{self, Unit};

#[derive(Args, Debug)]
pub struct TrainArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// Write the run folder here: config.json, metrics.csv, weights.safetensors, summary.json,
    /// histograms.json, a TensorBoard event file and the .initscope marker. DIR must be
    /// missing, empty, or a run folder initscope wrote (replaced only with --force); anything
    /// else is refused, and so are /, home, the working folder and its parents.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Replace an existing initscope run folder at --out, once the new run is complete (never a
    /// folder holding other files).
    #[arg(long)]
    pub force: bool,
    /// Print the summary as JSON on stdout (and nothing else there).
    #[arg(long)]
    pub json: bool,
    /// No progress bar or per-evaluation lines on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

/// One evaluation as a line: step, losses and accuracies.
pub fn eval_line(e: &EvalPoint, total: usize) -> String {
    let acc = |a: Option<f64>| {
        a.map(|a| format!(" acc {:6.2}%", 100.0 * a))
            .unwrap_or_default()
    };
    let val = e
        .val_loss
        .map(|l| format!("  val loss {l:.6}{}", acc(e.val_acc)))
        .unwrap_or_default();
    format!(
        "step {:>width$}/{total}  train loss {:.6}{}{val}  test loss {:.6}{}",
        e.step,
        e.train_loss,
        acc(e.train_acc),
        e.test_loss,
        acc(e.test_acc),
        width = total.to_string().len()
    )
}

fn summary_text(s: &Summary) -> String {
    let status = match s.status {
        Status::Ok => "ok".to_string(),
        Status::Diverged => format!(
            "DIVERGED at step {} (the loss became NaN or infinite; this is a result, not an error)",
            s.diverged_at_step.unwrap_or(s.steps)
        ),
    };
    let acc = |a: Option<f64>| {
        a.map(|a| format!("{:.2}%", 100.0 * a))
            .unwrap_or_else(|| "-".into())
    };
    let mut text = format!(
        "run {}: {status}\n  {} updates in {:.2} s ({:.0} samples/s, {} parameters, {})\n  loss: {:.6} at init -> train {:.6}, test {:.6}",
        s.run_id, s.steps, s.wall_seconds, s.samples_per_second, s.num_params, s.precision, s.loss_start, s.train_loss, s.test_loss
    );
    if !s.lsuv.is_empty() {
        let layers: Vec<String> = s
            .lsuv
            .iter()
            .map(|l| {
                format!(
                    "layer {} {} rescaling(s), Var(z) {:.4}{}",
                    l.layer,
                    l.iterations,
                    l.variance,
                    if l.converged { "" } else { " (not converged)" }
                )
            })
            .collect();
        text += &format!("\n  LSUV: {}", layers.join("; "));
    }
    if s.nonfinite_diagnostics > 0 {
        let first = s
            .nonfinite_first
            .as_ref()
            .map(|f| {
                let layer = f.layer.map(|l| format!(" layer {l}")).unwrap_or_default();
                format!("; first: {}{layer} at step {}", f.metric, f.step)
            })
            .unwrap_or_default();
        text += &format!(
            "\n  warning: {} diagnostic value{} not finite ({}{first}); metrics.csv keeps them as NaN/inf",
            s.nonfinite_diagnostics,
            if s.nonfinite_diagnostics == 1 { " is" } else { "s are" },
            s.nonfinite_metrics.join(", ")
        );
    }
    if let Some(v) = s.val_loss {
        text += &format!("\n  validation loss {v:.6}");
    }
    if s.train_acc.is_some() {
        let val = s
            .val_acc
            .map(|_| format!(", val {}", acc(s.val_acc)))
            .unwrap_or_default();
        text += &format!(
            "\n  accuracy: train {}{val}, test {}",
            acc(s.train_acc),
            acc(s.test_acc)
        );
    }
    text
}

pub fn run(a: TrainArgs) -> anyhow::Result<ExitCode> {
    let raw = a.run.raw()?;
    let (cfg, data) = validate(&raw)?;
    warn_unused(&raw);
    note_init_from(&raw, &cfg)?;
    if let Some(dir) = &a.out {
        // Refuse before training, not after.
        check_out_dir(dir, FolderKind::Run, a.force)?;
    }
    let start = initial_params(&cfg, &data)?;
    let show = !a.quiet;
    let bar = progress::bar(cfg.steps as u64, Unit::Steps, show);
    if show {
        let header = format!(
            "initscope train: {} | {} | {} steps",
            cfg.headline(),
            cfg.precision.name(),
            cfg.steps
        );
        bar.suspend(|| eprintln!("{header}"));
    }
    let total = cfg.steps;
    let out = train_from(&cfg, &data, start, &mut |event| match event {
        Event::Step { step, .. } => bar.set_position(*step as u64),
        Event::Eval(e) => {
            if show {
                bar.suspend(|| eprintln!("{}", eval_line(e, total)));
            }
        }
    });
    bar.finish_and_clear();
    let written = match &a.out {
        Some(dir) => write_run_dir(dir, &out, a.force)?,
        None => Vec::new(),
    };
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&out.summary)?);
    } else {
        outln!("{}", summary_text(&out.summary));
        if let Some(dir) = &a.out {
            outln!(
                "  wrote {}/ ({} files: {})",
                dir.display(),
                written.len(),
                written.join(", ")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
