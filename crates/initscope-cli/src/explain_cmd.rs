//! `initscope explain`: the step-0 derivation and the verdict after K training steps.

use std::process::ExitCode;

use clap::{Args, ValueEnum};
use initscope::config::validate;
use initscope::explain::{derive, quotient_arch, render, Format};
use initscope::train::{initial_params, train_from};

use crate::args::{note_init_from, warn_unused, RunArgs};

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum OutputFormat {
    Text,
    Markdown,
}

#[derive(Args, Debug)]
pub struct ExplainArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// text, or markdown with LaTeX formulas.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
    /// Print the derivation summary and verdict as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

fn arch(dims: &[usize]) -> String {
    dims.iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("-")
}

pub fn run(a: ExplainArgs) -> anyhow::Result<ExitCode> {
    let mut raw = a.run.raw()?;
    if raw.steps.is_none() && raw.epochs.is_none() {
        raw.steps = Some(200);
    }
    if raw.diagnostics.is_none() {
        raw.diagnostics = Some("off".into());
    }
    let (cfg, data) = validate(&raw)?;
    warn_unused(&raw);
    note_init_from(&raw, &cfg)?;
    let start = initial_params(&cfg, &data)?;
    let derivation = derive(&cfg, &data, &start.params);
    let out = train_from(&cfg, &data, start, &mut |_| {});
    let s = &out.summary;
    let v = &s.verdict;
    let tol = cfg.symmetry_tolerance();
    let (q0, q1) = (
        quotient_arch(&out.initial_params, tol),
        quotient_arch(&out.params, tol),
    );
    if a.json {
        let doc = serde_json::json!({
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
            "quotient_init": q0,
            "quotient_end": q1,
            "derivation": derivation,
        });
        outln!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(ExitCode::SUCCESS);
    }
    let learning = s.learning().name();
    let md = matches!(a.format, OutputFormat::Markdown);
    let format = if md { Format::Markdown } else { Format::Text };
    let title = format!(
        "{} | arch {} | act {} | init {} | {} lr {} | {} steps",
        cfg.data,
        arch(&cfg.arch),
        cfg.act,
        cfg.init_text(),
        cfg.optim.kind,
        cfg.optim.lr,
        s.steps
    );
    if md {
        outln!("# initscope explain\n\n`{title}`\n");
    } else {
        outln!("initscope explain: {title}\n");
    }
    outln!("{}", render(&derivation, format));
    let header = [
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
    let rows: Vec<[String; 10]> = v
        .layers
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
                format!("{} -> {}", l.width_init, l.width_end),
                format!("{} -> {}", l.width_init_tol, l.width_end_tol),
                l.grad_state.map_or("-", |g| g.name()).to_string(),
                l.grad_w_norm_end
                    .map_or_else(|| "-".into(), |n| format!("{n:.3e}")),
            ]
        })
        .collect();
    if md {
        outln!(
            "## After {} steps of {} (lr {})\n",
            s.steps,
            cfg.optim.kind,
            cfg.optim.lr
        );
        outln!("| {} |", header.join(" | "));
        outln!("|{}|", vec!["---"; header.len()].join("|"));
        for r in &rows {
            outln!("| {} |", r.join(" | "));
        }
        outln!(
            "\nLoss {:.6} → {:.6} (best constant predictor {:.6}). Quotient network: {} at init, {} at the end.\n\n**Verdict: {}, {}.** {}",
            s.loss_start, s.train_loss, v.loss_constant_baseline, arch(&q0), arch(&q1), v.verdict.name(), learning, v.summary
        );
    } else {
        outln!(
            "After {} steps of {} (lr {}):",
            s.steps,
            cfg.optim.kind,
            cfg.optim.lr
        );
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
        outln!("  {}", line(header.to_vec()));
        for r in &rows {
            outln!("  {}", line(r.iter().map(String::as_str).collect()));
        }
        outln!(
            "  loss {:.6} -> {:.6} (best constant predictor {:.6}); quotient network {} at init, {} at the end",
            s.loss_start, s.train_loss, v.loss_constant_baseline, arch(&q0), arch(&q1)
        );
        outln!("\nVERDICT: {}", v.summary);
    }
    Ok(ExitCode::SUCCESS)
}
