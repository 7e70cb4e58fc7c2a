//! The studies: the canonical comparisons behind `initscope study` ([`Kind`]).
//!
//! - `mlp` (the default): the initializers people argue about ([`INITS`]) crossed with tanh,
//!   relu and sigmoid ([`ACTS`]) and a few seeds, plain SGD on one data set.
//! - `residual`: named variants of one residual MLP ([`RESIDUAL_VARIANTS`]: each an explicit
//!   (net, init) pair) crossed with depth ([`DEPTHS`] blocks) and seeds.
//!
//! Each runs as a sweep ([`grid_text`] is its `grid.toml`); then the answer to the seed question
//! per configuration ([`answer`], drawn as text by [`Answer::text`]) and the report with that
//! answer at the top ([`write_report`]).

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

/// Which study.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Initializer x activation on a plain MLP.
    Mlp,
    /// Variants of a residual MLP x depth.
    Residual,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Mlp => "mlp",
            Kind::Residual => "residual",
        }
    }
}

/// The residual study's body: width 64, two linear layers per block with relu between them.
pub const BODY_WIDTH: usize = 64;

/// The residual study's depths (blocks).
pub const DEPTHS: [usize; 3] = [8, 32, 128];

/// The residual study's variants: name, what it is, and its flags for `D` blocks (a `--net` spec
/// and its initializer or preset), in the order of the answer's rows.
pub const RESIDUAL_VARIANTS: [(&str, &str); 7] = [
    ("he", "branches He-initialised (kaiming_normal), no norm"),
    ("pytorch", "PyTorch's default init, no norm"),
    ("fixup", "--preset fixup: each branch's last linear and the output layer at 0, the other branch linears He-initialised and scaled by L^(-1/2)"),
    ("rezero", "a gate at 0 at the end of each branch, He-initialised"),
    ("layernorm-he", "pre-norm branches (layernorm first), He-initialised"),
    ("batchnorm-zero-gamma", "branches ending in batchnorm with gamma 0 (--preset zero_init_residual), He-initialised"),
    ("zeros", "every weight 0 (biases PyTorch's default)"),
];

/// Training steps and seeds of the full residual study (release build, 2 cores: 241 s
/// measured).
pub const RESIDUAL_FULL: (usize, &[u64]) = (500, &[0, 1, 2]);

/// Training steps and seeds of the quick residual study (`--quick`; 45 s measured).
pub const RESIDUAL_QUICK: (usize, &[u64]) = (150, &[0]);

/// The flags of residual variant `name` at `depth` blocks, as an inline TOML table labelled
/// `name/depth`.
fn residual_variant(name: &str, depth: usize) -> String {
    let w = BODY_WIDTH;
    let net = |body: &str| format!("linear({w}) relu res({body})*{depth} linear");
    let plain = net(&format!("linear({w}) relu linear({w})"));
    let (net, rest) = match name {
        "he" => (plain, "init = \"kaiming_normal\""),
        "pytorch" => (plain, "init = \"pytorch\""),
        "fixup" => (plain, "preset = \"fixup\""),
        "rezero" => (
            net(&format!("linear({w}) relu linear({w}) gate(0)")),
            "init = \"kaiming_normal\"",
        ),
        "layernorm-he" => (
            net(&format!("layernorm linear({w}) relu linear({w})")),
            "init = \"kaiming_normal\"",
        ),
        "batchnorm-zero-gamma" => (
            net(&format!("linear({w}) relu linear({w}) batchnorm")),
            "init = \"kaiming_normal\", preset = \"zero_init_residual\"",
        ),
        "zeros" => (plain, "init = \"zeros\""),
        other => unreachable!("unknown residual variant {other}"),
    };
    format!("{{ label = \"{name}/{depth}\", net = \"{net}\", {rest} }}")
}

/// The study's grid file (`grid.toml`): [`INITS`] x [`ACTS`] x seeds on `data`, hidden layers
/// 64,64, SGD with lr 0.1, batches of 100, an evaluation every 25 steps; [`QUICK`]'s steps and
/// seeds when `quick`, else [`FULL`]'s. `data_dir` is where fashion-mnist and mnist are looked
/// for first.
pub fn grid_text(kind: Kind, data: &str, quick: bool, data_dir: Option<&Path>) -> String {
    let dir = data_dir
        .map(|d| format!("data_dir = {:?}\n", d.display().to_string()))
        .unwrap_or_default();
    if kind == Kind::Residual {
        return residual_grid_text(data, quick, &dir);
    }
    let (steps, seeds) = if quick { QUICK } else { FULL };
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

/// The residual study's grid: [`RESIDUAL_VARIANTS`] x [`DEPTHS`] as one axis of named variants
/// (`fixup/32`), x seeds; SGD with lr 0.05 (a rate at which the He-initialised residual net
/// without norms diverges as depth grows), batches of 100.
fn residual_grid_text(data: &str, quick: bool, dir: &str) -> String {
    let (steps, seeds) = if quick { RESIDUAL_QUICK } else { RESIDUAL_FULL };
    let variants: Vec<String> = RESIDUAL_VARIANTS
        .iter()
        .flat_map(|(name, _)| DEPTHS.iter().map(move |&d| residual_variant(name, d)))
        .collect();
    format!(
        r#"# initscope study residual: may a residual net start from zero? Measured.
[fixed]
data = {data:?}
{dir}optim = "sgd"
lr = 0.05
batch = 100
steps = {steps}
eval_every = {every}

[axes]
variant = [
  {}
]
seed = {seeds:?}
"#,
        variants.join(",\n  "),
        every = (steps / 20).max(1),
    )
}

/// The title of the study's report.
pub fn title(kind: Kind, data: &str, quick: bool) -> String {
    let what = match kind {
        Kind::Mlp => "initializer x activation",
        Kind::Residual => "residual variant x depth",
    };
    format!(
        "initscope study{}: {data} ({what}{})",
        if kind == Kind::Residual {
            " residual"
        } else {
            ""
        },
        if quick { ", quick" } else { " x seed" }
    )
}

/// One row of the answer: one configuration over its seeds: (initializer, activation) in the
/// MLP study, (variant, depth) in the residual one.
#[derive(Clone, Debug, PartialEq)]
pub struct AnswerRow {
    pub first: String,
    pub second: String,
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
    /// The first seed's hidden widths at the end, as [`end_widths`] writes them (the residual
    /// study: its streams' widths, `tol/units`).
    pub widths: String,
    /// The residual study: of the first seed's tensors, how many woke when the zero pattern
    /// predicted, out of how many (`None` in the MLP study).
    pub wake_as_predicted: Option<(usize, usize)>,
}

/// The seed question answered in numbers: one row per configuration in order of first
/// appearance, and what the footnote says.
#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    /// The names of the two key columns (`init`, `act` or `variant`, `depth`).
    pub heads: [&'static str; 2],
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

/// A run's configuration: its initializer and activation, or its variant's name and depth (the
/// label `name/depth`).
fn key(kind: Kind, r: &RunRecord) -> (&str, &str) {
    match kind {
        Kind::Mlp => (
            r.axis("init").unwrap_or_default(),
            r.axis("act").unwrap_or_default(),
        ),
        Kind::Residual => r
            .axis("variant")
            .unwrap_or_default()
            .split_once('/')
            .unwrap_or_default(),
    }
}

/// A residual run's streams' widths at the end (`tol/units`, space-separated).
fn stream_widths(v: &crate::records::verdict::Verdict) -> String {
    v.streams
        .iter()
        .map(|s| match s.width_end_tol {
            Some(w) => format!("{w}/{}", s.units),
            None => format!("?/{}", s.units),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn diverged(r: &RunRecord) -> bool {
    r.summary.status == Status::Diverged
}

/// The answer of the study's runs: per (init, act), the first seed's verdict, learning judgement
/// and widths, and the median test accuracy and loss over seeds. A diverged run has no final
/// figures: it ranks worst in the medians.
pub fn answer(kind: Kind, data: &ReportData) -> Answer {
    let mut rows: Vec<AnswerRow> = Vec::new();
    for r in &data.runs {
        let k = key(kind, r);
        if rows
            .iter()
            .any(|row| (row.first.as_str(), row.second.as_str()) == k)
        {
            continue;
        }
        let group: Vec<&RunRecord> = data.runs.iter().filter(|o| key(kind, o) == k).collect();
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
            widths: match kind {
                Kind::Mlp => end_widths(&r.summary.verdict),
                Kind::Residual => stream_widths(&r.summary.verdict),
            },
            wake_as_predicted: (kind == Kind::Residual).then(|| {
                let t = &r.summary.verdict.tensors;
                (
                    t.iter()
                        .filter(|x| x.wake_predicted == x.wake_measured)
                        .count(),
                    t.len(),
                )
            }),
            first: k.0.to_string(),
            second: k.1.to_string(),
        });
    }
    Answer {
        heads: match kind {
            Kind::Mlp => ["init", "act"],
            Kind::Residual => ["variant", "depth"],
        },
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
        let residual = self.rows.iter().any(|r| r.wake_as_predicted.is_some());
        let (first, widths) = if residual {
            (20, "wake as predicted  stream widths at the end")
        } else {
            (16, "widths at the end")
        };
        let mut lines = vec![format!(
            "{:<first$} {:<8} {:<10} {:<9} {:>9} {:>10}  {widths}",
            self.heads[0], self.heads[1], "verdict", "learning", "test acc", "test loss"
        )];
        for r in &self.rows {
            let missing = if r.any_diverged { "diverged" } else { "-" };
            let wake = r.wake_as_predicted.map_or_else(String::new, |(a, n)| {
                format!("{:<17}  ", format!("{a}/{n}"))
            });
            lines.push(format!(
                "{:<first$} {:<8} {:<10} {:<9} {:>9} {:>10}  {wake}{}",
                r.first,
                r.second,
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

/// The residual study's variants written out: each name, what it is and its exact flags (the
/// net spec with D blocks and the initializer or preset), as the grid sets them.
fn variants_section() -> crate::report::ExtraSection {
    let rows = RESIDUAL_VARIANTS
        .iter()
        .map(|(name, what)| {
            // The variant's flags at 0 blocks, `*0` written `*D`.
            let flags = residual_variant(name, 0);
            let field = |key: &str| {
                flags
                    .split(&format!("{key} = \""))
                    .nth(1)
                    .and_then(|rest| rest.split('"').next())
                    .unwrap_or("")
                    .replace(")*0 ", ")*D ")
            };
            let preset = field("preset");
            let init = [
                field("init"),
                if preset.is_empty() {
                    preset
                } else {
                    format!("preset {preset}")
                },
            ]
            .into_iter()
            .filter(|f| !f.is_empty())
            .collect::<Vec<_>>()
            .join(", ");
            vec![name.to_string(), what.to_string(), field("net"), init]
        })
        .collect();
    crate::report::ExtraSection {
        title: "The variants".into(),
        note: format!(
            "Each variant is one (net, init) pair, at D = {} blocks; biases PyTorch's default unless the preset sets them.",
            DEPTHS
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        header: ["variant", "what", "net (D blocks)", "init / preset"]
            .map(String::from)
            .to_vec(),
        rows,
        svgs: Vec::new(),
    }
}

/// The residual study's training loss per variant: one chart per variant, one series per depth
/// (its first seed; a diverged run's curve ends at its last finite loss), on a log scale where the
/// losses span decades.
fn loss_section(data: &ReportData) -> crate::report::ExtraSection {
    use crate::report::plots::{line_chart, spans_decades, Series};
    let mut svgs = Vec::new();
    for (name, _) in RESIDUAL_VARIANTS {
        let series: Vec<Series> = DEPTHS
            .iter()
            .filter_map(|depth| {
                let label = format!("{name}/{depth}");
                let r = data
                    .runs
                    .iter()
                    .find(|r| r.axis("variant") == Some(label.as_str()))?;
                let points: Vec<(f64, f64)> = r
                    .metrics
                    .iter()
                    .filter(|m| m.metric == "train_loss" && m.layer.is_none())
                    .map(|m| (m.step as f64, m.value))
                    .filter(|p| p.1.is_finite() && p.1 > 0.0)
                    .collect();
                let diverged = if diverged(r) { ", diverged" } else { "" };
                Some(Series::line(format!("{depth} blocks{diverged}"), points))
            })
            .collect();
        if series.iter().any(|s| !s.points.is_empty()) {
            // Log scale only where the losses span decades (a diverging depth); a narrow range
            // reads better, with its ticks, on a linear axis.
            let log = spans_decades(series.iter().flat_map(|s| s.points.iter().map(|p| p.1)));
            let y = if log {
                "training loss (log)"
            } else {
                "training loss"
            };
            svgs.push(line_chart(name, "step", y, &series, log));
        }
    }
    crate::report::ExtraSection {
        title: "Training loss per variant".into(),
        header: Vec::new(),
        rows: Vec::new(),
        note: "Per variant, the full training-set loss against step at each depth (first seed; a log scale where the losses span decades): which starts train at 128 blocks as at 8, which diverge (their curves end at the last finite loss) and which never leave the constant predictor.".into(),
        svgs,
    }
}

/// The residual study's gradient norm across the depth: per variant one chart, one series per
/// depth (its first seed), ‖dW_l‖ at step 0 and at the end against the layer's position l / L
/// (input layer at 0, output layer at 1), log scale. A zero norm (a layer that starts asleep) is
/// left out of the log chart and counted in the legend.
fn depth_section(data: &ReportData) -> crate::report::ExtraSection {
    use crate::report::plots::{line_chart, spans_decades, Series};
    let mut svgs = Vec::new();
    for (name, _) in RESIDUAL_VARIANTS {
        let mut series = Vec::new();
        for depth in DEPTHS {
            let label = format!("{name}/{depth}");
            let Some(r) = data
                .runs
                .iter()
                .find(|r| r.axis("variant") == Some(label.as_str()))
            else {
                continue;
            };
            let layers = &r.summary.verdict.layers;
            let n = layers.len().max(2) - 1;
            for (when, norm) in [("step 0", None), ("end", Some(()))] {
                let mut zeros = 0;
                let points: Vec<(f64, f64)> = layers
                    .iter()
                    .enumerate()
                    .filter_map(|(i, l)| {
                        let v = match norm {
                            None => Some(l.grad_w_norm_step0),
                            Some(()) => l.grad_w_norm_end,
                        }?;
                        if v > 0.0 && v.is_finite() {
                            Some((i as f64 / n as f64, v))
                        } else {
                            zeros += usize::from(v == 0.0);
                            None
                        }
                    })
                    .collect();
                let zero_note = if zeros > 0 {
                    format!(", {zeros} layers at 0")
                } else {
                    String::new()
                };
                series.push(Series::line(
                    format!("{depth} blocks, {when}{zero_note}"),
                    points,
                ));
            }
        }
        if series.iter().any(|s| !s.points.is_empty()) {
            let log = spans_decades(series.iter().flat_map(|s| s.points.iter().map(|p| p.1)));
            svgs.push(line_chart(
                name,
                "layer position l / L (input 0, output 1)",
                if log {
                    "||dW_l||_F (log)"
                } else {
                    "||dW_l||_F"
                },
                &series,
                log,
            ));
        }
    }
    crate::report::ExtraSection {
        title: "Gradient norm across the depth".into(),
        header: Vec::new(),
        rows: Vec::new(),
        note: "Per variant, the Frobenius norm of every linear layer's weight gradient at step 0 and at the last step against its position in the network (first seed of each depth): does the signal reach the input at 128 blocks, and which layers start asleep (a zero-initialised layer's norm is 0 at step 0 and left out of the log chart, counted in the legend)?".into(),
        svgs,
    }
}

/// Loads the study's runs from `dir`, writes its report to `dir/report.html` with the answer at
/// the top, and returns the answer and the report's path. `kind`, `data` and `quick` name the
/// study in the report's title.
pub fn write_report(dir: &Path, kind: Kind, data: &str, quick: bool) -> Result<(Answer, PathBuf)> {
    let mut report = load(dir)?;
    report.title = title(kind, data, quick);
    let answer = answer(kind, &report);
    if kind == Kind::Residual {
        report.extra.push(variants_section());
        report.extra.push(loss_section(&report));
        report.extra.push(depth_section(&report));
    }
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
        Grid::parse(
            &grid_text(Kind::Mlp, "mnist1d", quick, None),
            Path::new("grid.toml"),
        )
        .unwrap()
    }

    #[test]
    fn the_grid_crosses_the_initializers_activations_and_seeds() {
        for (quick, (steps, seeds)) in [(true, QUICK), (false, FULL)] {
            let g = grid(quick);
            let runs: usize = g.axes.iter().map(|(_, v)| v.len()).product();
            assert_eq!(runs, INITS.len() * ACTS.len() * seeds.len());
            assert_eq!(g.fixed["steps"].as_integer(), Some(steps as i64));
        }
        let with_dir = grid_text(Kind::Mlp, "fashion-mnist", true, Some(Path::new("/data")));
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
            extra: Vec::new(),
        };
        let answer = answer(Kind::Mlp, &data);
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
            extra: Vec::new(),
        };
        let folded = render(&data(25)).unwrap();
        assert!(folded.contains("<details><summary>All 25 runs"), "25 runs");
        let open = render(&data(3)).unwrap();
        assert!(!open.contains("<details>"), "3 runs");
    }

    /// The residual study's grid: every variant at every depth, each a valid run; its answer
    /// rows split the label into variant and depth and carry the streams' widths and the wake
    /// steps that agreed with the prediction.
    #[test]
    fn the_residual_grid_names_every_variant_at_every_depth_and_each_validates() {
        for (quick, (steps, seeds)) in [(true, RESIDUAL_QUICK), (false, RESIDUAL_FULL)] {
            let g = Grid::parse(
                &grid_text(Kind::Residual, "mnist1d", quick, None),
                Path::new("grid.toml"),
            )
            .unwrap();
            assert_eq!(
                g.len(),
                RESIDUAL_VARIANTS.len() * DEPTHS.len() * seeds.len()
            );
            assert_eq!(g.fixed["steps"].as_integer(), Some(steps as i64));
            assert!(steps / g.fixed["eval_every"].as_integer().unwrap() as usize >= 16);
        }
        let g = Grid::parse(
            &grid_text(Kind::Residual, "moons:n=64", true, None),
            Path::new("grid.toml"),
        )
        .unwrap();
        let runs = crate::sweep::plan(&g, Path::new("grid.toml")).unwrap();
        let fixup = runs
            .iter()
            .find(|r| r.axes[0].1 == "fixup/32")
            .expect("fixup at 32 blocks");
        assert_eq!(fixup.config.preset.map(|p| p.name()), Some("fixup"));
        assert_eq!(
            fixup.config.arch.len(),
            2 + 1 + 2 * 32,
            "{:?}",
            fixup.config.arch
        );
    }

    #[test]
    fn the_residual_answer_splits_variant_and_depth() {
        let raw = RawConfig {
            data: Some("moons:n=64".into()),
            net: Some("linear(8) relu res(linear(8) relu linear(8) gate(0))*2 linear".into()),
            steps: Some(20),
            ..Default::default()
        };
        let (cfg, data) = validate(&raw).unwrap();
        let out = crate::train::train(&cfg, &data, &mut |_| {}).unwrap();
        let record = RunRecord {
            run_id: out.summary.run_id.clone(),
            axes: vec![
                ("variant".into(), "rezero/2".into()),
                ("seed".into(), "0".into()),
            ],
            config: cfg,
            summary: out.summary,
            metrics: out.metrics,
            histograms: Vec::new(),
            first_layer: None,
        };
        let data = ReportData {
            title: String::new(),
            axes: vec!["variant".into(), "seed".into()],
            runs: vec![record],
            answer: None,
            extra: Vec::new(),
        };
        let a = answer(Kind::Residual, &data);
        let row = &a.rows[0];
        assert_eq!((row.first.as_str(), row.second.as_str()), ("rezero", "2"));
        assert_eq!(row.widths, "8/8");
        assert_eq!(row.wake_as_predicted, Some((14, 14)));
        let text = a.text();
        assert!(
            text.starts_with("variant              depth    verdict"),
            "{text}"
        );
        assert!(text.lines().nth(1).unwrap().contains("14/14"), "{text}");
    }

    /// The report's table of variants names each one's exact net and initializer.
    #[test]
    fn the_variants_table_writes_each_net_and_init() {
        let v = variants_section();
        assert_eq!(v.rows.len(), RESIDUAL_VARIANTS.len());
        let row = |name: &str| v.rows.iter().find(|r| r[0] == name).unwrap();
        assert_eq!(row("fixup")[3], "preset fixup");
        assert_eq!(
            row("batchnorm-zero-gamma")[3],
            "kaiming_normal, preset zero_init_residual"
        );
        assert_eq!(
            row("rezero")[2],
            "linear(64) relu res(linear(64) relu linear(64) gate(0))*D linear"
        );
        assert!(v.rows.iter().all(|r| r[2].contains(")*D linear")));
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
