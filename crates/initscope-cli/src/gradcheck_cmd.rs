//! `initscope gradcheck`.

use std::process::ExitCode;

use clap::Args;
use initscope::config::validate;
use initscope::gradcheck::{gradcheck, GradcheckOptions};
use initscope::train::initial_params;

use crate::args::{note_init_from, warn_unused, RunArgs};

#[derive(Args, Debug)]
pub struct GradcheckArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// Finite-difference step.
    #[arg(long, default_value_t = 1e-5)]
    pub fd_eps: f64,
    /// Largest relative error that passes.
    #[arg(long, default_value_t = 1e-5)]
    pub tol: f64,
    /// Use the first N training rows.
    #[arg(long, default_value_t = 64)]
    pub rows: usize,
    /// Check at most N entries per tensor (evenly strided); 0 checks all.
    #[arg(long, default_value_t = 0)]
    pub max_per_tensor: usize,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: GradcheckArgs) -> anyhow::Result<ExitCode> {
    let raw = a.run.raw()?;
    let (cfg, data) = validate(&raw)?;
    warn_unused(&raw);
    note_init_from(&raw, &cfg)?;
    if !(a.fd_eps > 0.0 && a.fd_eps.is_finite()) {
        anyhow::bail!("--fd-eps: must be > 0, got {}", a.fd_eps);
    }
    if !(a.tol > 0.0 && a.tol.is_finite()) {
        anyhow::bail!("--tol: must be > 0, got {}", a.tol);
    }
    let start = initial_params(&cfg, &data)?;
    let opts = GradcheckOptions {
        eps: a.fd_eps,
        tol: a.tol,
        max_rows: a.rows.max(1),
        max_per_tensor: a.max_per_tensor,
        ..GradcheckOptions::default()
    };
    let net = cfg.network::<f64>(&start.params);
    let report = gradcheck(&net, cfg.loss, &data.train, &opts);
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        outln!(
            "gradcheck (f64, central differences, eps {}, {} rows, loss {:.6}): relative error |g - num| / max(|g|, |num|, {:.1e})",
            report.eps, report.rows, report.loss, report.floor
        );
        outln!(
            "{:>5}  {:>8}  {:>14}  {:>14}  {:>12}  result",
            "layer",
            "checked",
            "max err W",
            "max err b",
            "max |grad|"
        );
        for l in &report.layers {
            outln!(
                "{:>5}  {:>8}  {:>14.3e}  {:>14}  {:>12.3e}  {}",
                l.layer,
                l.checked,
                l.max_rel_err_weight,
                l.max_rel_err_bias
                    .map(|e| format!("{e:.3e}"))
                    .unwrap_or_else(|| "-".into()),
                l.max_abs_grad,
                if l.pass { "PASS" } else { "FAIL" }
            );
        }
        for t in &report.others {
            outln!(
                "{:>5}  {:>8}  {:>14.3e}  {:>14}  {:>12.3e}  {}  ({})",
                "-",
                t.checked,
                t.max_rel_err,
                "-",
                t.max_abs_grad,
                if t.pass { "PASS" } else { "FAIL" },
                t.name
            );
        }
        outln!(
            "{} (tolerance {})",
            if report.pass { "PASS" } else { "FAIL" },
            report.tol
        );
    }
    Ok(if report.pass {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
