//! The study: the canonical comparison behind `initscope study`. The initializers people argue
//! about ([`INITS`]) crossed with tanh, relu and sigmoid ([`ACTS`]) and a few seeds, plain SGD on
//! one data set, run as a sweep ([`grid_text`] is its `grid.toml`); then the answer to the seed
//! question per configuration ([`answer`], drawn as text by [`Answer::text`]) and the report with
//! that answer at the top ([`write_report`]).

use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::output::write_file_atomically;
use crate::records::verdict::{Learning, VerdictKind};
use crate::records::Status;
use crate::report::{end_widths, final_acc, load, render, ReportData, RunRecord};

/// The initializers compared, in grid order (the order of the answer's rows).
pub const INITS: [&str; 8] = [
    "zeros",
    "constant:0.1",
    "pytorch",
    "xavier_uniform",
    "kaiming_normal",
    "orthogonal",
    "lsuv",
    "zero_hadamard",
];

/// The activations each initializer is crossed with.
pub const ACTS: [&str; 3] = ["tanh", "relu", "sigmoid"];

/// Training steps and seeds of the full study.
pub const FULL: (usize, &[u64]) = (1500, &[0, 1, 2]);

/// Training steps and seeds of the quick study (`--quick`).
pub const QUICK: (usize, &[u64]) = (400, &[0]);

/// The study's grid file (`grid.toml`): [`INITS`] x [`ACTS`] x seeds on `data`, hidden layers
/// 64,64, SGD with lr 0.1, batches of 100, an evaluation every 25 steps; [`QUICK`]'s steps and
/// seeds when `quick`, else [`FULL`]'s. `data_dir` is where fashion-mnist and mnist are looked
/// for first.
pub fn grid_text(data: &str, quick: bool, data_dir: Option<&Path>) -> String {
    let (steps, seeds) = if quick { QUICK } else { FULL };
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
init = {INITS:?}
act = {ACTS:?}
seed = {seeds:?}
"#
    )
}

/// The title of the study's report.
pub fn title(data: &str, quick: bool) -> String {
    format!(
        "initscope study: {data} (initializer x activation{})",
        if quick { ", quick" } else { " x seed" }
    )
}

/// One row of the answer: one configuration (initializer, activation) over its seeds.
#[derive(Clone, Debug, PartialEq)]
pub struct AnswerRow {
    pub init: String,
    pub act: String,
    /// The first seed's verdict; `None` when that run diverged.
    pub verdict: Option<VerdictKind>,
    /// The first seed's learning judgement.
    pub learning: Learning,
    /// Whether any seed has a test accuracy (classification data).
    pub classification: bool,
    /// Median final test accuracy over seeds, diverged runs ranked worst; `None` for regression
    /// or when the median falls on a diverged run.
    pub test_acc: Option<f64>,
    /// Median final test loss over seeds, diverged runs ranked worst; `None` when the median falls
    /// on a diverged run.
    pub test_loss: Option<f64>,
    /// Whether any seed diverged (a missing median then reads `diverged`).
    pub any_diverged: bool,
    /// The first seed's hidden widths at the end, as [`end_widths`] writes them.
    pub widths: String,
}

/// The seed question answered in numbers: one row per (init, act) in order of first appearance,
/// and what the footnote says.
#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    pub rows: Vec<AnswerRow>,
    /// The first run's best constant predictor loss.
    pub loss_constant_baseline: f64,
    /// Runs in the study.
    pub runs: usize,
    /// Runs that diverged.
    pub diverged: usize,
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

/// A run's configuration: its initializer and activation.
fn key(r: &RunRecord) -> (&str, &str) {
    (
        r.axis("init").unwrap_or_default(),
        r.axis("act").unwrap_or_default(),
    )
}

fn diverged(r: &RunRecord) -> bool {
    r.summary.status == Status::Diverged
}

/// The answer of the study's runs: per (init, act), the first seed's verdict, learning judgement
/// and widths, and the median test accuracy and loss over seeds. A diverged run has no final
/// figures: it ranks worst in the medians.
pub fn answer(data: &ReportData) -> Answer {
    let mut rows: Vec<AnswerRow> = Vec::new();
    for r in &data.runs {
        let k = key(r);
        if rows
            .iter()
            .any(|row| (row.init.as_str(), row.act.as_str()) == k)
        {
            continue;
        }
        let group: Vec<&RunRecord> = data.runs.iter().filter(|o| key(o) == k).collect();
        let classification = group.iter().any(|o| o.summary.test_acc.is_some());
        let test_acc = if classification {
            median_worst_missing(group.iter().map(|o| final_acc(&o.summary)).collect(), true)
        } else {
            None
        };
        let test_loss = median_worst_missing(
            group
                .iter()
                .map(|o| (!diverged(o)).then_some(o.summary.test_loss))
                .collect(),
            false,
        );
        rows.push(AnswerRow {
            verdict: (!diverged(r)).then_some(r.summary.verdict.verdict),
            learning: r.summary.learning(),
            classification,
            test_acc,
            test_loss,
            any_diverged: group.iter().any(|o| diverged(o)),
            widths: end_widths(&r.summary.verdict),
            init: k.0.to_string(),
            act: k.1.to_string(),
        });
    }
    Answer {
        rows,
        loss_constant_baseline: data
            .runs
            .first()
            .map_or(f64::NAN, |r| r.summary.verdict.loss_constant_baseline),
        runs: data.runs.len(),
        diverged: data.runs.iter().filter(|r| diverged(r)).count(),
    }
}

impl Answer {
    /// The answer as a plain-text table with its footnote, the text `initscope study` prints and
    /// the report shows: a median that falls on a diverged run reads `diverged`, and so does the
    /// verdict column when the first seed diverged.
    pub fn text(&self) -> String {
        let mut lines = vec![format!(
            "{:<16} {:<8} {:<10} {:<9} {:>9} {:>10}  widths at the end",
            "init", "act", "verdict", "learning", "test acc", "test loss"
        )];
        for r in &self.rows {
            let missing = if r.any_diverged { "diverged" } else { "-" };
            lines.push(format!(
                "{:<16} {:<8} {:<10} {:<9} {:>9} {:>10}  {}",
                r.init,
                r.act,
                r.verdict.map_or("diverged", VerdictKind::name),
                r.learning.name(),
                match r.test_acc {
                    Some(a) => format!("{:.1}%", 100.0 * a),
                    None if r.classification => missing.into(),
                    None => "-".into(),
                },
                r.test_loss
                    .map_or_else(|| missing.into(), |l| format!("{l:.4}")),
                r.widths,
            ));
        }
        let mut note = format!(
            "(best constant predictor: test loss about {:.4}; verdict, learning and widths of the first seed, accuracy and loss median over seeds",
            self.loss_constant_baseline
        );
        if self.diverged > 0 {
            note += &format!(
                "; {} of {} runs diverged: they rank worst",
                self.diverged, self.runs
            );
        }
        lines.push(note + ")");
        lines.join("\n")
    }
}

/// Loads the study's runs from `dir`, writes its report to `dir/report.html` with the answer at
/// the top, and returns the answer and the report's path. `data` and `quick` name the study in
/// the report's title.
pub fn write_report(dir: &Path, data: &str, quick: bool) -> Result<(Answer, PathBuf)> {
    let mut report = load(dir)?;
    report.title = title(data, quick);
    let answer = answer(&report);
    report.answer = Some(answer.text());
    let html = render(&report)?;
    let path = dir.join("report.html");
    write_file_atomically(&path, html.as_bytes())?;
    Ok((answer, path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{validate, RawConfig};
    use crate::sweep::Grid;

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
        let (cfg, data) = validate(&raw).unwrap();
        let out = crate::train::train(&cfg, &data, &mut |_| {}).unwrap();
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

    fn grid(quick: bool) -> Grid {
        Grid::parse(&grid_text("mnist1d", quick, None), Path::new("grid.toml")).unwrap()
    }

    #[test]
    fn the_grid_crosses_the_initializers_activations_and_seeds() {
        for (quick, (steps, seeds)) in [(true, QUICK), (false, FULL)] {
            let g = grid(quick);
            let runs: usize = g.axes.iter().map(|(_, v)| v.len()).product();
            assert_eq!(runs, INITS.len() * ACTS.len() * seeds.len());
            assert_eq!(g.fixed["steps"].as_integer(), Some(steps as i64));
        }
        let with_dir = grid_text("fashion-mnist", true, Some(Path::new("/data")));
        assert!(
            with_dir.contains("data_dir = \"/data\"\nhidden"),
            "{with_dir}"
        );
    }

    #[test]
    fn the_answer_ranks_diverged_runs_worst() {
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
        let answer = answer(&data);
        assert_eq!(answer.rows.len(), 2);
        assert_eq!(answer.rows[0].test_acc, Some(worst_ok_acc));
        assert_eq!(answer.rows[1].verdict, None);
        assert_eq!(answer.diverged, 3);
        let text = answer.text();
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
            let g = grid(quick);
            let steps = g.fixed["steps"].as_integer().unwrap();
            let every = g.fixed["eval_every"].as_integer().unwrap();
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
        let folded = render(&data(25)).unwrap();
        assert!(folded.contains("<details><summary>All 25 runs"), "25 runs");
        let open = render(&data(3)).unwrap();
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
