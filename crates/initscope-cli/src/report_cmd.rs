//! `initscope report` and `initscope study`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use initscope::memory::MemoryLimit;
use initscope::output::folder::{is_initscope_report, open_sweep_dir};
use initscope::output::{check_out_dir, write_file_atomically, FolderKind};
use initscope::report::{load, render};
use initscope::study;
use initscope::sweep::{check_resumable, plan_within, run, Grid, Packing, SweepEvent};

use crate::progress::{self, Unit};
use crate::sweep_cmd::parallel_runs;

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// A run directory (train --out) or a sweep directory.
    pub dir: PathBuf,
    /// Where to write the HTML [default: DIR/report.html, rewritten each time]. An existing
    /// file is replaced only when it is an initscope report, or with --force.
    #[arg(long, value_name = "FILE.html")]
    pub out: Option<PathBuf>,
    /// Replace an existing --out file that is not an initscope report.
    #[arg(long)]
    pub force: bool,
}

pub fn run_report(a: ReportArgs) -> anyhow::Result<ExitCode> {
    let out = a.out.clone().unwrap_or_else(|| a.dir.join("report.html"));
    if out.is_dir() {
        anyhow::bail!("{}: is a folder; --out names the HTML file", out.display());
    }
    if out.exists() && !a.force && !is_initscope_report(&out) {
        anyhow::bail!(
            "{}: exists and is not an initscope report (use --force to replace it)",
            out.display()
        );
    }
    let data = load(&a.dir)?;
    let html = render(&data)?;
    write_file_atomically(&out, html.as_bytes())?;
    outln!(
        "wrote {} ({} runs, {} KiB)",
        out.display(),
        data.runs.len(),
        html.len() / 1024
    );
    Ok(ExitCode::SUCCESS)
}

/// Which study `initscope study` runs (described in `--help` under KIND).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum StudyKind {
    Mlp,
    Residual,
}

#[derive(Args, Debug)]
pub struct StudyArgs {
    /// Which study: `mlp`, initializer x activation x seed on a plain MLP (64,64; SGD lr 0.1,
    /// 1500 steps), or `residual`, a residual MLP (body width 64, 2 linears per block, relu) as
    /// named variants (he, pytorch, fixup, rezero: gate 0 at each branch's end, layernorm-he:
    /// pre-norm, batchnorm-zero-gamma: zero_init_residual, zeros) x depth 8, 32, 128 blocks x
    /// seeds 0, 1, 2 (SGD lr 0.05, 500 steps; release build on 2 cores: about 4 minutes)
    #[arg(value_enum, default_value = "mlp", hide_possible_values = true)]
    pub kind: StudyKind,
    /// Dataset, any of train's --data (mnist1d is generated, so every machine shows the same).
    #[arg(long, default_value = "mnist1d")]
    pub data: String,
    /// Output folder: created when missing, used when empty, resumed when it holds a study or
    /// sweep; a folder holding anything else is refused.
    #[arg(long, default_value = "study")]
    pub out: PathBuf,
    /// A short version: one seed and 400 steps, 24 runs instead of 72 (release build on 2 cores:
    /// about 1 s, the full study about 8 s); residual: one seed and 150 steps, 21 runs instead of
    /// 63 (about 45 s).
    #[arg(long)]
    pub quick: bool,
    /// Parallel runs [default: all cores].
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Directory searched first for fashion-mnist/mnist.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Memory all parallel runs together may take, e.g. 8G [default: the smaller of the
    /// cgroup's limit and MemAvailable].
    #[arg(long, value_name = "SIZE")]
    pub max_memory: Option<String>,
}

pub fn run_study(a: StudyArgs) -> anyhow::Result<ExitCode> {
    let kind = match a.kind {
        StudyKind::Mlp => study::Kind::Mlp,
        StudyKind::Residual => study::Kind::Residual,
    };
    let grid_text = study::grid_text(kind, &a.data, a.quick, a.data_dir.as_deref());
    check_out_dir(&a.out, FolderKind::Study, false)?;
    let grid_path = a.out.join("grid.toml");
    let grid = Grid::parse(&grid_text, &grid_path)?;
    let limit = a
        .max_memory
        .as_deref()
        .map(|m| MemoryLimit::resolve(Some(m)))
        .transpose()?;
    let runs = plan_within(&grid, &grid_path, limit)?;
    // Refuse a folder holding another study before its grid.toml is touched.
    check_resumable(&a.out, FolderKind::Study, &runs)?;
    open_sweep_dir(&a.out, FolderKind::Study)?;
    write_file_atomically(&grid_path, grid_text.as_bytes())?;
    let (jobs, capped) = parallel_runs(
        &runs.iter().collect::<Vec<_>>(),
        a.jobs,
        a.max_memory.as_deref(),
    )?;
    let bar = progress::bar(runs.len() as u64, Unit::Runs, true);
    eprintln!(
        "initscope study{}: {} runs on {} ({} parallel{capped}) into {}",
        if kind == study::Kind::Residual {
            " residual"
        } else {
            ""
        },
        runs.len(),
        a.data,
        jobs,
        a.out.display()
    );
    let report = run(
        FolderKind::Study,
        &grid,
        &runs,
        &a.out,
        jobs.max(1),
        None,
        Packing::Lockstep,
        &|e| {
            if let SweepEvent::Failed { error, .. } = e {
                bar.suspend(|| eprintln!("run failed: {error}"));
            }
            bar.inc(1);
        },
    )?;
    bar.finish_and_clear();
    let (answer, report_path) = study::write_report(&a.out, kind, &a.data, a.quick)?;
    outln!("{}", answer.text());
    outln!(
        "\n{} runs ({} ran now, {} already done, {} failed); report: {}",
        report.planned,
        report.ran,
        report.skipped,
        report.failed.len(),
        report_path.display()
    );
    Ok(if report.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `--quick`'s help states the run counts and steps the grids really have.
    #[test]
    fn the_quick_help_matches_the_grids() {
        use clap::Args as _;
        let cmd = StudyArgs::augment_args(clap::Command::new("study"));
        let help = cmd
            .get_arguments()
            .find(|a| a.get_id() == "quick")
            .and_then(|a| a.get_help())
            .unwrap()
            .to_string();
        let runs = |quick: bool| {
            let text = study::grid_text(study::Kind::Mlp, "mnist1d", quick, None);
            let grid =
                initscope::sweep::Grid::parse(&text, std::path::Path::new("grid.toml")).unwrap();
            let steps = grid.fixed["steps"].as_integer().unwrap();
            (
                grid.axes.iter().map(|(_, v)| v.len()).product::<usize>(),
                steps,
            )
        };
        let ((quick, quick_steps), (full, _)) = (runs(true), runs(false));
        assert!(
            help.contains(&format!(
                "{quick_steps} steps, {quick} runs instead of {full}"
            )),
            "{help}"
        );
        assert!(!help.contains("30-second"), "{help}");
    }
}
