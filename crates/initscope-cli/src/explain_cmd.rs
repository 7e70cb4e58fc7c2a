//! `initscope explain`: the step-0 derivation and the verdict after K training steps.

use std::process::ExitCode;

use clap::{Args, ValueEnum};
use initscope::config::validate;
use initscope::explain::{explain, Format};

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
    let explanation = explain(&cfg, &data)?;
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&explanation.json())?);
        return Ok(ExitCode::SUCCESS);
    }
    let format = match a.format {
        OutputFormat::Text => Format::Text,
        OutputFormat::Markdown => Format::Markdown,
    };
    outln!("{}", explanation.render(format));
    Ok(ExitCode::SUCCESS)
}
