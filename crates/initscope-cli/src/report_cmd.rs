//! `initscope report` and `initscope study`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use initscope::memory::MemoryLimit;
use initscope::output::folder::{is_initscope_report, open_sweep_dir};
use initscope::output::{check_out_dir, write_file_atomically, FolderKind};
use initscope::records::Status;
use initscope::report::{final_acc, load, render};
use initscope::sweep::{check_resumable, plan_within, run_as, Grid, SweepEvent};

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
    /// A short version: one seed and 400 steps, 24 runs instead of 72 (release build on 2 cores:
    /// about 1 s, the full study about 8 s).
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
eval_every = 25

[axes]
init = ["zeros", "constant:0.1", "pytorch", "xavier_uniform", "kaiming_normal", "orthogonal", "lsuv", "zero_hadamard"]
act = ["tanh", "relu", "sigmoid"]
seed = {seeds}
"#
    )
}

/// The upper median of per-run figures, a missing one (`None`: a diverged run, or a figure that is
/// not finite) ranked worst: lowest when `higher_is_better` (accuracy), highest otherwise (loss).
/// `None` when the median falls on a missing figure (at least half of the group diverged).
fn median_worst_missing(mut v: Vec<Option<f64>>, higher_is_better: bool) -> Option<f64> {
    use std::cmp::Ordering;
    let finite = |x: &Option<f64>| x.filter(|x| x.is_finite());
    let missing_first = if higher_is_better {
        Ordering::Less
    } else {
        Ordering::Greater
    };
    v.sort_by(|a, b| match (finite(a), finite(b)) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        (None, Some(_)) => missing_first,
        (Some(_), None) => missing_first.reverse(),
        (None, None) => Ordering::Equal,
    });
    v.get(v.len() / 2).and_then(finite)
}

/// The seed question answered in numbers: verdict and median test accuracy per (init, act). A
/// diverged run has no final figures: it ranks worst in the medians, a median that falls on one
/// reads `diverged`, and so does the verdict column when the first seed diverged.
fn answer(data: &initscope::report::ReportData) -> String {
    let mut lines = vec![format!(
        "{:<16} {:<8} {:<10} {:<9} {:>9} {:>10}  widths at the end",
        "init", "act", "verdict", "learning", "test acc", "test loss"
    )];
    let diverged = |o: &initscope::report::RunRecord| o.summary.status == Status::Diverged;
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
        let any_diverged = group.iter().any(|o| diverged(o));
        let missing = if any_diverged { "diverged" } else { "-" };
        let classification = group.iter().any(|o| o.summary.test_acc.is_some());
        let acc = if classification {
            median_worst_missing(group.iter().map(|o| final_acc(&o.summary)).collect(), true)
        } else {
            None
        };
        let loss = median_worst_missing(
            group
                .iter()
                .map(|o| (!diverged(o)).then_some(o.summary.test_loss))
                .collect(),
            false,
        );
        let v = &r.summary.verdict;
        let hidden = v.layers.len().saturating_sub(1);
        let widths = v.layers[..hidden]
            .iter()
            .map(|l| format!("{}/{}", l.width_end_tol, l.fan_out))
            .collect::<Vec<_>>()
            .join(" ");
        lines.push(format!(
            "{:<16} {:<8} {:<10} {:<9} {:>9} {:>10}  {widths}",
            key.0,
            key.1,
            if diverged(r) {
                "diverged"
            } else {
                v.verdict.name()
            },
            r.summary.learning().name(),
            match acc {
                Some(a) => format!("{:.1}%", 100.0 * a),
                None if classification => missing.into(),
                None => "-".into(),
            },
            loss.map_or_else(|| missing.into(), |l| format!("{l:.4}")),
        ));
        seen.push(key);
    }
    let baseline = data.runs[0].summary.verdict.loss_constant_baseline;
    let mut note = format!("(best constant predictor: test loss about {baseline:.4}; verdict, learning and widths of the first seed, accuracy and loss median over seeds");
    let n_diverged = data.runs.iter().filter(|o| diverged(o)).count();
    if n_diverged > 0 {
        note += &format!(
            "; {n_diverged} of {} runs diverged: they rank worst",
            data.runs.len()
        );
    }
    lines.push(note + ")");
    lines.join("\n")
}

pub fn run_study(a: StudyArgs) -> anyhow::Result<ExitCode> {
    let grid_text = study_grid(&a.data, a.quick, a.data_dir.as_deref());
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
    let report = run_as(
        FolderKind::Study,
        &grid,
        &runs,
        &a.out,
        jobs.max(1),
        None,
        &|e| {
            if let SweepEvent::Failed { error, .. } = e {
                failed.fetch_add(1, Ordering::Relaxed);
                bar.suspend(|| eprintln!("run failed: {error}"));
            }
            bar.inc(1);
        },
    )?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use initscope::report::{ReportData, RunRecord};
    use initscope::RawConfig;

    /// A run on moons with ReLU: lr 0.1 learns, lr 1e30 diverges within a few steps.
    fn run(init: &str, seed: &str, lr: f64) -> RunRecord {
        let raw = RawConfig {
            data: Some("moons:n=64".into()),
            hidden: Some("8,8".into()),
            act: Some("relu".into()),
            lr: Some(lr),
            steps: Some(30),
            diagnostics: Some("off".into()),
            ..Default::default()
        };
        let (cfg, data) = initscope::config::validate(&raw).unwrap();
        let out = initscope::train(&cfg, &data, &mut |_| {}).unwrap();
        assert_eq!(out.summary.status == Status::Diverged, lr > 1.0);
        RunRecord {
            run_id: out.summary.run_id.clone(),
            axes: [("init", init), ("act", "relu"), ("seed", seed)]
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .to_vec(),
            config: cfg,
            summary: out.summary,
            metrics: out.metrics,
            histograms: Vec::new(),
            first_layer: None,
        }
    }

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
            let text = study_grid("mnist1d", quick, None);
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

    #[test]
    fn the_study_answer_ranks_diverged_runs_worst() {
        let (ok0, ok1, div) = (run("a", "0", 0.1), run("a", "1", 0.1), run("a", "2", 1e30));
        let worst_ok_loss = ok0.summary.test_loss.max(ok1.summary.test_loss);
        let worst_ok_acc = ok0
            .summary
            .test_acc
            .unwrap()
            .min(ok1.summary.test_acc.unwrap());
        let mut b_div = run("b", "0", 1e30);
        b_div.axes[0].1 = "b".into();
        let mut b_div1 = div.clone();
        b_div1.axes[0].1 = "b".into();
        let mut b_ok = ok0.clone();
        b_ok.axes[0].1 = "b".into();
        let data = ReportData {
            title: String::new(),
            axes: vec!["init".into(), "act".into(), "seed".into()],
            runs: vec![ok0, ok1, div, b_div, b_div1, b_ok],
            answer: None,
        };
        let text = answer(&data);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        // Group a: one of three seeds diverged; the medians are the worse of the two others.
        let a: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(a[3], "learned", "{text}");
        assert_eq!(a[4], format!("{:.1}%", 100.0 * worst_ok_acc), "{text}");
        assert_eq!(a[5], format!("{worst_ok_loss:.4}"), "{text}");
        // Group b: two of three diverged, the first among them.
        let b: Vec<&str> = lines[2].split_whitespace().collect();
        assert_eq!(
            b[..6],
            ["b", "relu", "diverged", "diverged", "diverged", "diverged"],
            "{text}"
        );
        assert!(lines[3].contains("3 of 6 runs diverged"), "{text}");
    }

    /// The loss curves have enough points to show their shape: at least 16 evaluations in the
    /// quick study's 400 steps (it had 4).
    #[test]
    fn the_study_records_the_loss_often_enough() {
        for quick in [true, false] {
            let text = study_grid("mnist1d", quick, None);
            let grid =
                initscope::sweep::Grid::parse(&text, std::path::Path::new("grid.toml")).unwrap();
            let steps = grid.fixed["steps"].as_integer().unwrap();
            let every = grid.fixed["eval_every"].as_integer().unwrap();
            assert!(steps / every >= 16, "{steps} steps, eval every {every}");
        }
    }

    /// A study-sized runs table folds away behind the answer; a small one stays open.
    #[test]
    fn a_long_runs_table_is_folded() {
        let one = run("a", "0", 0.1);
        let data = |n: usize| ReportData {
            title: String::new(),
            axes: vec!["init".into(), "act".into(), "seed".into()],
            runs: vec![one.clone(); n],
            answer: None,
        };
        let folded = initscope::report::render(&data(25)).unwrap();
        assert!(folded.contains("<details><summary>All 25 runs"), "25 runs");
        let open = initscope::report::render(&data(3)).unwrap();
        assert!(!open.contains("<details>"), "3 runs");
    }

    #[test]
    fn medians_of_figures_rank_missing_ones_worst() {
        let nan = Some(-f64::NAN);
        assert_eq!(
            median_worst_missing(vec![Some(0.9), None, Some(0.5)], true),
            Some(0.5)
        );
        assert_eq!(median_worst_missing(vec![Some(0.9), None, nan], true), None);
        assert_eq!(
            median_worst_missing(vec![Some(0.2), nan, Some(0.1)], false),
            Some(0.2)
        );
        assert_eq!(median_worst_missing(vec![], false), None);
    }
}
