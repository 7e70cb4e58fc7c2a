//! `initscope report` and `initscope study`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use initscope::output::folder::{is_initscope_report, open_sweep_dir};
use initscope::output::{check_out_dir, write_file_atomically, FolderKind};
use initscope::report::{load, render};
use initscope::sweep::{plan, run, Grid, SweepEvent};

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

#[derive(Args, Debug)]
pub struct StudyArgs {
    /// Dataset, any of train's --data (mnist1d is generated, so every machine shows the same).
    #[arg(long, default_value = "mnist1d")]
    pub data: String,
    /// Output folder: created when missing, used when empty, resumed when it holds a study or
    /// sweep; a folder holding anything else is refused.
    #[arg(long, default_value = "study")]
    pub out: PathBuf,
    /// A 30-second version: one seed and fewer steps.
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

/// The canonical comparison: the initializers people argue about, crossed with tanh, relu and
/// sigmoid, a few seeds, plain SGD.
pub fn study_grid(data: &str, quick: bool, data_dir: Option<&std::path::Path>) -> String {
    let (steps, seeds) = if quick {
        (400, "[0]")
    } else {
        (1500, "[0, 1, 2]")
    };
    let dir = data_dir
        .map(|d| format!("data_dir = {:?}\n", d.display().to_string()))
        .unwrap_or_default();
    format!(
        r#"# initscope study: the seed question, measured.
[fixed]
data = {data:?}
{dir}hidden = "64,64"
optim = "sgd"
lr = 0.1
batch = 100
steps = {steps}
eval_every = 100

[axes]
init = ["zeros", "constant:0.1", "pytorch", "xavier_uniform", "kaiming_normal", "orthogonal", "lsuv", "zero_hadamard"]
act = ["tanh", "relu", "sigmoid"]
seed = {seeds}
"#
    )
}

/// The seed question answered in numbers: verdict and median test accuracy per (init, act).
fn answer(data: &initscope::report::ReportData) -> String {
    let mut lines = vec![format!(
        "{:<16} {:<8} {:<10} {:>9} {:>10}  widths at the end",
        "init", "act", "verdict", "test acc", "test loss"
    )];
    let mut seen: Vec<(String, String)> = Vec::new();
    for r in &data.runs {
        let get = |k: &str| {
            r.axes
                .iter()
                .find(|(a, _)| a == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let key = (get("init"), get("act"));
        if seen.contains(&key) {
            continue;
        }
        let group: Vec<&initscope::report::RunRecord> = data
            .runs
            .iter()
            .filter(|o| {
                let g = |k: &str| {
                    o.axes
                        .iter()
                        .find(|(a, _)| a == k)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default()
                };
                (g("init"), g("act")) == key
            })
            .collect();
        let mut accs: Vec<f64> = group.iter().filter_map(|o| o.summary.test_acc).collect();
        accs.sort_by(|a, b| a.total_cmp(b));
        let acc = accs.get(accs.len() / 2).copied();
        let mut losses: Vec<f64> = group.iter().map(|o| o.summary.test_loss).collect();
        losses.sort_by(|a, b| a.total_cmp(b));
        let v = &r.summary.verdict;
        let hidden = v.layers.len().saturating_sub(1);
        let widths = v.layers[..hidden]
            .iter()
            .map(|l| format!("{}/{}", l.width_end_tol, l.fan_out))
            .collect::<Vec<_>>()
            .join(" ");
        lines.push(format!(
            "{:<16} {:<8} {:<10} {:>9} {:>10.4}  {widths}",
            key.0,
            key.1,
            v.verdict.name(),
            acc.map(|a| format!("{:.1}%", 100.0 * a))
                .unwrap_or_else(|| "-".into()),
            losses[losses.len() / 2],
        ));
        seen.push(key);
    }
    let baseline = data.runs[0].summary.verdict.loss_constant_baseline;
    lines.push(format!("(best constant predictor: test loss about {baseline:.4}; verdict and widths of the first seed, accuracy and loss median over seeds)"));
    lines.join("\n")
}

pub fn run_study(a: StudyArgs) -> anyhow::Result<ExitCode> {
    let grid_text = study_grid(&a.data, a.quick, a.data_dir.as_deref());
    check_out_dir(&a.out, FolderKind::Study, false)?;
    open_sweep_dir(&a.out, FolderKind::Study)?;
    let grid_path = a.out.join("grid.toml");
    write_file_atomically(&grid_path, grid_text.as_bytes())?;
    let grid = Grid::from_file(&grid_path)?;
    let runs = plan(&grid, &grid_path)?;
    let (jobs, capped) = parallel_runs(
        &runs.iter().collect::<Vec<_>>(),
        a.jobs,
        a.max_memory.as_deref(),
    )?;
    let bar = if std::io::stderr().is_terminal() {
        let pb = ProgressBar::new(runs.len() as u64);
        pb.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} runs  {msg}  eta {eta}")
                .expect("static template"),
        );
        pb
    } else {
        ProgressBar::hidden()
    };
    eprintln!(
        "initscope study: {} runs on {} ({} parallel{capped}) into {}",
        runs.len(),
        a.data,
        jobs,
        a.out.display()
    );
    let failed = AtomicUsize::new(0);
    let report = run(&grid, &runs, &a.out, jobs.max(1), None, &|e| {
        if let SweepEvent::Failed { error, .. } = e {
            failed.fetch_add(1, Ordering::Relaxed);
            bar.suspend(|| eprintln!("run failed: {error}"));
        }
        bar.inc(1);
    })?;
    bar.finish_and_clear();
    let mut data = load(&a.out)?;
    data.title = format!(
        "initscope study: {} (initializer x activation{})",
        a.data,
        if a.quick { ", quick" } else { " x seed" }
    );
    let text = answer(&data);
    data.answer = Some(text.clone());
    let html = render(&data)?;
    let report_path = a.out.join("report.html");
    write_file_atomically(&report_path, html.as_bytes())?;
    outln!("{text}");
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
