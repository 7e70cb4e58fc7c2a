//! Reports: a run or sweep directory as one self-contained HTML file with inline SVG plots
//! (plotters) laid out by a minijinja template. No network access, no JavaScript needed to read
//! it (a small inline script only makes the runs table sortable).
//!
//! Loading turns run directories into plain [`RunRecord`]s; [`render`] draws them. For a sweep the
//! runs are grouped by every axis except `seed` (and a panel axis `act` when it is one): a few
//! sentences and a per-panel table summarize the groups; loss curves show the median over seeds
//! with a min-max band; gradient norms and activation distributions per layer are drawn, and
//! effective widths tabulated by step, for the first seed of each group; a heat map shows the
//! median of a final figure over the first two axes; small first layers are shown as weight maps.

pub mod plots;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use serde::Serialize;

use crate::config::RunConfig;
use crate::error::{Error, Result};
use crate::matrix::Matrix;
use crate::records::verdict::Verdict;
use crate::records::{HistogramRecord, MetricRecord, Status, Summary};
use crate::sweep::SweepRecord;
use crate::weights::load_params;
use plots::{heatmap, line_chart, matrix_map, spans_decades, Series};

/// Largest weight matrix drawn as a heat map (rows and columns).
pub const WEIGHT_MAP_MAX: usize = 64;
/// At most this many groups get small-multiple plots.
pub const MAX_GROUPS: usize = 24;
/// A histogram bin holding at least this fraction of the values is drawn as a marked spike.
pub const POINT_MASS: f64 = 0.5;

/// One run as the report sees it.
#[derive(Clone, Debug)]
pub struct RunRecord {
    pub run_id: String,
    /// Axis values (empty for a single run).
    pub axes: Vec<(String, String)>,
    pub config: RunConfig,
    pub summary: Summary,
    pub metrics: Vec<MetricRecord>,
    pub histograms: Vec<HistogramRecord>,
    /// Final weights of layer 1 when small enough to draw.
    pub first_layer: Option<Matrix<f64>>,
}

impl RunRecord {
    /// The run's value of axis `key`; `None` for a single run or an axis the sweep does not have.
    pub fn axis(&self, key: &str) -> Option<&str> {
        self.axes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The effective widths (tolerance) of the hidden layers at the end of a run over their widths,
/// `classes/width` per layer separated by spaces (`1/64 64/64`), as the runs table and the
/// study's answer write them.
pub fn end_widths(v: &Verdict) -> String {
    let hidden = v.layers.len().saturating_sub(1);
    v.layers[..hidden]
        .iter()
        .map(|l| match l.width_end_tol {
            Some(w) => format!("{w}/{}", l.fan_out),
            None => format!("?/{}", l.fan_out),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The most layers a per-layer chart draws: a deeper network (residual nets of hundreds of
/// blocks) shows this many, evenly spaced from the first to the last.
pub const MAX_LAYERS_SHOWN: usize = 12;

/// The layers (1-based) a per-layer chart of `n` layers draws: all of them up to
/// [`MAX_LAYERS_SHOWN`], else that many evenly spaced, the first and the last included.
pub fn shown_layers(n: usize) -> Vec<usize> {
    if n <= MAX_LAYERS_SHOWN {
        return (1..=n).collect();
    }
    let k = MAX_LAYERS_SHOWN;
    let mut out: Vec<usize> = (0..k).map(|j| 1 + j * (n - 1) / (k - 1)).collect();
    out.dedup();
    out
}

/// What a report is drawn from.
#[derive(Clone, Debug)]
pub struct ReportData {
    pub title: String,
    pub axes: Vec<String>,
    pub runs: Vec<RunRecord>,
    /// An optional plain-text answer shown at the top (the study's summary).
    pub answer: Option<String>,
    /// Sections a study adds before the generic ones (the residual study's gradient norm
    /// against depth).
    pub extra: Vec<ExtraSection>,
}

/// A section a study adds to its report: a title, a note, a table (its header and rows of
/// text; none when the header is empty) and SVG charts (drawn with [`plots`]).
#[derive(Clone, Debug, Default)]
pub struct ExtraSection {
    pub title: String,
    pub note: String,
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
    pub svgs: Vec<String>,
}

fn read_json<T: serde::de::DeserializeOwned>(p: &Path) -> Result<T> {
    serde_json::from_slice(&fs::read(p).map_err(|e| Error::io(p, e))?)
        .map_err(|e| Error::file(p, e.to_string()))
}

/// The header `metrics.csv` starts with.
const METRICS_HEADER: [&str; 5] = ["run_id", "step", "metric", "layer", "value"];

/// The header of a network with tensors outside its linear layers: a `module` column before
/// `value` ([`crate::output::metrics_csv`]).
const METRICS_HEADER_MODULES: [&str; 6] = ["run_id", "step", "metric", "layer", "module", "value"];

/// Reads `metrics.csv` (see [`crate::output::metrics_csv`]). Every record must be whole: five
/// fields, a step number, a metric name, an empty or numeric layer and a value that parses as an
/// f64 (`NaN`, `inf` and `-inf` included), and the file must end with a line end (the writer ends
/// every record with one). A file cut mid-record is refused as
/// `PATH: line N is incomplete (...)`, never read as a shorter run.
fn read_metrics(p: &Path) -> Result<Vec<MetricRecord>> {
    let bytes = fs::read(p).map_err(|e| Error::io(p, e))?;
    let incomplete =
        |line: u64, why: String| Error::file(p, format!("line {line} is incomplete ({why})"));
    if !bytes.is_empty() && !bytes.ends_with(b"\n") {
        let line = bytes.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
        return Err(incomplete(
            line,
            "it has no line end: the file was cut short".into(),
        ));
    }
    let mut r = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(false)
        .from_reader(bytes.as_slice());
    let mut out = Vec::new();
    let mut header = false;
    // Fields per record: 5, or 6 with the module column.
    let mut fields = METRICS_HEADER.len();
    for rec in r.records() {
        let rec = rec.map_err(|e| Error::file(p, e.to_string()))?;
        let line = rec.position().map_or(0, |pos| pos.line());
        if !header {
            header = true;
            if rec.iter().eq(METRICS_HEADER_MODULES) {
                fields = METRICS_HEADER_MODULES.len();
            } else if rec.iter().ne(METRICS_HEADER) {
                return Err(Error::file(
                    p,
                    format!(
                        "line {line} is not the header {} (or {})",
                        METRICS_HEADER.join(","),
                        METRICS_HEADER_MODULES.join(",")
                    ),
                ));
            }
            continue;
        }
        if rec.len() != fields {
            return Err(incomplete(
                line,
                format!("{} of {fields} fields", rec.len()),
            ));
        }
        let step = rec[1]
            .parse()
            .map_err(|_| incomplete(line, format!("step '{}' is not a step number", &rec[1])))?;
        if rec[2].is_empty() {
            return Err(incomplete(line, "no metric name".into()));
        }
        let layer = match &rec[3] {
            "" => None,
            l => Some(
                l.parse()
                    .map_err(|_| incomplete(line, format!("layer '{l}' is not a layer number")))?,
            ),
        };
        let v = &rec[fields - 1];
        let value = v
            .parse()
            .map_err(|_| incomplete(line, format!("value '{v}' is not a number")))?;
        let module = (fields == METRICS_HEADER_MODULES.len() && !rec[4].is_empty())
            .then(|| rec[4].to_string());
        out.push(MetricRecord {
            step,
            metric: rec[2].to_string(),
            layer,
            value,
            module,
        });
    }
    if !header {
        return Err(Error::file(
            p,
            format!("is empty (no header {})", METRICS_HEADER.join(",")),
        ));
    }
    Ok(out)
}

/// Reads one run directory.
pub fn load_run(dir: &Path, axes: Vec<(String, String)>) -> Result<RunRecord> {
    let config_path = dir.join("config.json");
    let config = RunConfig::from_config_json(
        &fs::read(&config_path).map_err(|e| Error::io(&config_path, e))?,
    )
    .map_err(|e| Error::file(&config_path, e))?;
    let summary: Summary = read_json(&dir.join("summary.json"))?;
    let metrics = read_metrics(&dir.join("metrics.csv"))?;
    let hist_path = dir.join("histograms.json");
    let histograms = if hist_path.is_file() {
        read_json(&hist_path)?
    } else {
        Vec::new()
    };
    let first_layer = if config.arch.len() > 1
        && config.arch[0] <= WEIGHT_MAP_MAX
        && config.arch[1] <= WEIGHT_MAP_MAX
    {
        load_params(&dir.join("weights.safetensors"), &config.arch, config.bias)
            .ok()
            .map(|p| p[0].weight.clone())
    } else {
        None
    };
    Ok(RunRecord {
        run_id: summary.run_id.clone(),
        axes,
        config,
        summary,
        metrics,
        histograms,
        first_layer,
    })
}

/// Reads a sweep directory (its complete runs in grid order) or a single run directory.
pub fn load(dir: &Path) -> Result<ReportData> {
    let sweep = dir.join("sweep.json");
    if sweep.is_file() {
        let rec: SweepRecord = read_json(&sweep)?;
        let mut runs = Vec::new();
        for e in &rec.runs {
            let d = dir.join(&e.run_id);
            if d.join("summary.json").is_file() {
                runs.push(load_run(
                    &d,
                    rec.axes
                        .iter()
                        .cloned()
                        .zip(e.values.iter().cloned())
                        .collect(),
                )?);
            }
        }
        if runs.is_empty() {
            return Err(Error::file(dir, "holds no complete run yet"));
        }
        Ok(ReportData {
            title: format!("initscope sweep: {}", dir.display()),
            axes: rec.axes,
            runs,
            answer: None,
            extra: Vec::new(),
        })
    } else if dir.join("summary.json").is_file() {
        Ok(ReportData {
            title: format!("initscope run: {}", dir.display()),
            axes: Vec::new(),
            runs: vec![load_run(dir, Vec::new())?],
            answer: None,
            extra: Vec::new(),
        })
    } else {
        Err(Error::file(
            dir,
            "is neither a run directory (summary.json) nor a sweep directory (sweep.json)",
        ))
    }
}

#[derive(Serialize)]
struct Cell {
    text: String,
    class: String,
}

#[derive(Serialize)]
struct Row {
    cells: Vec<Cell>,
}

#[derive(Serialize)]
struct Plot {
    id: String,
    svg: String,
    /// A line chart that may stretch to its grid column.
    wide: bool,
}

#[derive(Serialize)]
struct Section {
    title: String,
    note: String,
    plots: Vec<Plot>,
    /// A compact table drawn instead of (or before) plots.
    table: Option<Table>,
    /// Small plots, several to a row (the weight maps).
    small: bool,
}

#[derive(Serialize)]
struct Table {
    header: Vec<String>,
    rows: Vec<Row>,
}

fn fmt(x: f64) -> String {
    if !x.is_finite() {
        "-".into()
    } else if x == 0.0 || (1e-3..1e4).contains(&x.abs()) {
        format!("{x:.4}")
    } else {
        format!("{x:.3e}")
    }
}

/// Values of `metric` (layer) against step.
fn curve(run: &RunRecord, metric: &str, layer: Option<usize>) -> Vec<(f64, f64)> {
    run.metrics
        .iter()
        .filter(|m| m.metric == metric && m.layer == layer)
        .map(|m| (m.step as f64, m.value))
        .collect()
}

/// The median of losses, a non-finite loss (a diverged run) ranked worst, as +inf: the median is
/// infinite, and its point is not drawn, when at least half of the values are not finite.
fn median(v: Vec<f64>) -> f64 {
    let mut v: Vec<f64> = v
        .into_iter()
        .map(|x| if x.is_finite() { x } else { f64::INFINITY })
        .collect();
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The final test accuracy, None for regression and for a diverged run (the accuracy of a network
/// with NaN outputs is no figure).
pub fn final_acc(s: &Summary) -> Option<f64> {
    match s.status {
        Status::Ok => s.test_acc.filter(|a| a.is_finite()),
        Status::Diverged => None,
    }
}

/// The label of a run's group: every axis except `seed` and the panel axis.
fn group_label(run: &RunRecord, panel: Option<&str>) -> String {
    let parts: Vec<String> = run
        .axes
        .iter()
        .filter(|(k, _)| k != "seed" && Some(k.as_str()) != panel)
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if parts.is_empty() {
        run.config.init_label()
    } else {
        parts.join(", ")
    }
}

/// The last step of the leading run of consecutive recorded steps, when the recording gets sparser
/// after it (the diagnostics cadence: every step at first, then fewer).
fn cadence_change(series: &[Series]) -> Option<usize> {
    let steps: Vec<usize> = series
        .first()?
        .points
        .iter()
        .map(|p| p.0 as usize)
        .collect();
    let k = steps.windows(2).position(|w| w[1] > w[0] + 1)?;
    (k > 0).then(|| steps[k])
}

/// The effective widths of every group at a few recorded steps (all when at most 8, else 8
/// spread evenly with the first and the last), one row per group.
fn width_table(groups: &[(String, &RunRecord, Vec<Series>)]) -> Option<Table> {
    let mut steps: Vec<usize> = groups
        .iter()
        .flat_map(|(_, _, w)| w.iter().flat_map(|s| s.points.iter().map(|p| p.0 as usize)))
        .collect();
    steps.sort_unstable();
    steps.dedup();
    if steps.is_empty() {
        return None;
    }
    let shown: Vec<usize> = if steps.len() <= 8 {
        steps.clone()
    } else {
        let mut v: Vec<usize> = (0..8).map(|k| steps[k * (steps.len() - 1) / 7]).collect();
        v.dedup();
        v
    };
    let mut header = vec!["group".to_string()];
    header.extend(shown.iter().map(|s| format!("step {s}")));
    let rows = groups
        .iter()
        .map(|(label, r, w)| {
            let mut cells = vec![Cell {
                text: label.clone(),
                class: "label".into(),
            }];
            for &step in &shown {
                let at: Vec<Option<f64>> = w
                    .iter()
                    .map(|s| {
                        s.points
                            .iter()
                            .rev()
                            .find(|p| p.0 as usize <= step)
                            .map(|p| p.1)
                    })
                    .collect();
                let fan: Vec<f64> = (1..=w.len())
                    .map(|l| r.config.arch.get(l).copied().unwrap_or(0) as f64)
                    .collect();
                let class = if at.contains(&Some(1.0)) {
                    "dead"
                } else if at.iter().zip(&fan).all(|(v, f)| *v == Some(*f)) {
                    "full"
                } else {
                    ""
                };
                cells.push(Cell {
                    text: at
                        .iter()
                        .map(|v| v.map_or_else(|| "-".into(), |v| format!("{v:.0}")))
                        .collect::<Vec<_>>()
                        .join(" "),
                    class: class.into(),
                });
            }
            Row { cells }
        })
        .collect();
    Some(Table { header, rows })
}

/// What the results say, in a few sentences with numbers, and the per-panel (activation)
/// summary table: per group, the first seed's verdict and learning judgement and the median
/// final test accuracy (test loss for regression) over seeds.
fn summarize(runs: &[RunRecord], panel_axis: Option<&str>) -> (Vec<String>, Option<Table>) {
    struct G<'a> {
        panel: String,
        label: String,
        first: &'a RunRecord,
        figure: Option<f64>,
    }
    let classification = runs.iter().all(|r| r.summary.test_acc.is_some());
    let mut groups: Vec<(String, String, Vec<&RunRecord>)> = Vec::new();
    for r in runs {
        let p = panel_axis.and_then(|a| r.axis(a)).unwrap_or("").to_string();
        let g = group_label(r, panel_axis);
        match groups.iter_mut().find(|(pp, gg, _)| *pp == p && *gg == g) {
            Some((_, _, v)) => v.push(r),
            None => groups.push((p, g, vec![r])),
        }
    }
    if groups.len() < 2 {
        return (Vec::new(), None);
    }
    let gs: Vec<G> = groups
        .iter()
        .map(|(p, g, members)| {
            let figure = if classification {
                let v: Vec<f64> = members
                    .iter()
                    .filter_map(|r| final_acc(&r.summary))
                    .collect();
                (!v.is_empty()).then(|| {
                    let mut v = v;
                    v.sort_by(|a, b| a.total_cmp(b));
                    v[v.len() / 2]
                })
            } else {
                let m = median(members.iter().map(|r| r.summary.test_loss).collect());
                m.is_finite().then_some(m)
            };
            G {
                panel: p.clone(),
                label: g.strip_prefix("init=").unwrap_or(g).to_string(),
                first: members[0],
                figure,
            }
        })
        .collect();
    let show = |f: Option<f64>| match f {
        Some(v) if classification => format!("{:.1}%", 100.0 * v),
        Some(v) => format!("test loss {v:.4}"),
        None => "no figure".into(),
    };
    let better = |a: f64, b: f64| if classification { a > b } else { a < b };
    let learning = |g: &G| {
        if g.first.summary.status == Status::Diverged {
            "diverged"
        } else {
            g.first.summary.learning().name()
        }
    };
    let count = |panel: Option<&str>, name: &str| {
        gs.iter()
            .filter(|g| panel.is_none_or(|p| g.panel == p) && learning(g) == name)
            .count()
    };
    let what = if classification {
        "median test accuracy"
    } else {
        "median test loss"
    };
    let mut prose = vec![format!(
        "Of {} configurations, {} learned, {} stalled (their final loss is that of the best constant predictor, {}) and {} diverged; figures are the {what} over seeds, verdicts and judgements those of the first seed.",
        gs.len(),
        count(None, "learned"),
        count(None, "stalled"),
        fmt(runs[0].summary.verdict.loss_constant_baseline),
        count(None, "diverged"),
    )];
    let mut panels: Vec<&str> = Vec::new();
    for g in &gs {
        if !panels.contains(&g.panel.as_str()) {
            panels.push(&g.panel);
        }
    }
    let mut rows = Vec::new();
    for p in &panels {
        let in_p: Vec<&G> = gs.iter().filter(|g| g.panel == *p).collect();
        let learned: Vec<&&G> = in_p.iter().filter(|g| learning(g) == "learned").collect();
        let best =
            learned
                .iter()
                .filter(|g| g.figure.is_some())
                .fold(None::<&&&G>, |b, g| match b {
                    Some(b)
                        if !better(g.figure.unwrap_or(f64::NAN), b.figure.unwrap_or(f64::NAN)) =>
                    {
                        Some(b)
                    }
                    _ => Some(g),
                });
        let worst_learned =
            learned
                .iter()
                .filter(|g| g.figure.is_some())
                .fold(None::<&&&G>, |b, g| match b {
                    Some(b)
                        if !better(b.figure.unwrap_or(f64::NAN), g.figure.unwrap_or(f64::NAN)) =>
                    {
                        Some(b)
                    }
                    _ => Some(g),
                });
        let not_learned: Vec<String> = in_p
            .iter()
            .filter(|g| learning(g) != "learned")
            .map(|g| {
                format!(
                    "{} ({}, {}, {})",
                    g.label,
                    learning(g),
                    g.first.summary.verdict.verdict.name(),
                    show(g.figure)
                )
            })
            .collect();
        let symmetric: Vec<String> = in_p
            .iter()
            .filter(|g| {
                matches!(
                    g.first.summary.verdict.verdict.name(),
                    "dead" | "deadlock" | "symmetric"
                )
            })
            .map(|g| format!("{} ({})", g.label, g.first.summary.verdict.verdict.name()))
            .collect();
        let head = if p.is_empty() {
            String::new()
        } else {
            format!("With {p}: ")
        };
        let mut sentence = format!("{head}{} of {} learned", learned.len(), in_p.len());
        if let (Some(b), Some(w)) = (best, worst_learned) {
            sentence += &format!(
                ", from {} ({}) to {} ({})",
                b.label,
                show(b.figure),
                w.label,
                show(w.figure)
            );
        }
        sentence += ".";
        if !not_learned.is_empty() {
            sentence += &format!(" Did not learn: {}.", not_learned.join("; "));
        }
        if !symmetric.is_empty() {
            sentence += &format!(
                " Hidden units never became distinct (verdict dead, deadlock or symmetric): {}.",
                symmetric.join(", ")
            );
        }
        prose.push(sentence);
        let plain = |t: String, c: &str| Cell {
            text: t,
            class: c.into(),
        };
        rows.push(Row {
            cells: vec![
                plain(
                    if p.is_empty() {
                        "all".into()
                    } else {
                        p.to_string()
                    },
                    "label",
                ),
                plain(format!("{}/{}", learned.len(), in_p.len()), ""),
                plain(
                    best.map(|b| format!("{} ({})", b.label, show(b.figure)))
                        .unwrap_or_else(|| "-".into()),
                    "label",
                ),
                plain(
                    in_p.iter()
                        .filter(|g| learning(g) == "stalled")
                        .map(|g| {
                            format!("{} ({})", g.label, g.first.summary.verdict.verdict.name())
                        })
                        .collect::<Vec<_>>()
                        .join(", "),
                    "label",
                ),
                plain(symmetric.join(", "), "label"),
                plain(
                    in_p.iter()
                        .filter(|g| learning(g) == "diverged")
                        .map(|g| g.label.clone())
                        .collect::<Vec<_>>()
                        .join(", "),
                    "label",
                ),
            ],
        });
    }
    let header = vec![
        panel_axis.unwrap_or("").to_string(),
        "learned".into(),
        format!("best ({what})"),
        "stalled (verdict)".into(),
        "units never distinct (verdict)".into(),
        "diverged".into(),
    ];
    (prose, Some(Table { header, rows }))
}

/// Renders the report as one HTML document.
pub fn render(data: &ReportData) -> Result<String> {
    let runs = &data.runs;
    let panel_axis = data.axes.iter().find(|a| *a == "act").map(String::as_str);
    // Runs table.
    let mut header: Vec<String> = vec!["run".into()];
    header.extend(data.axes.iter().cloned());
    header.extend(
        [
            "status",
            "verdict",
            "learning",
            "loss start",
            "train loss",
            "test loss",
            "test acc",
            "constant baseline",
            "width (tol) end",
        ]
        .map(String::from),
    );
    let rows: Vec<Row> = runs
        .iter()
        .map(|r| {
            let s = &r.summary;
            let v = &s.verdict;
            let mut cells = vec![Cell {
                text: r.run_id.clone(),
                class: String::new(),
            }];
            cells.extend(r.axes.iter().map(|(_, v)| Cell {
                text: v.clone(),
                class: String::new(),
            }));
            let plain = |t: String| Cell {
                text: t,
                class: String::new(),
            };
            cells.push(plain(match s.status {
                Status::Ok if s.nonfinite_diagnostics > 0 => format!(
                    "ok ({} diagnostic values not finite)",
                    s.nonfinite_diagnostics
                ),
                Status::Ok => "ok".into(),
                Status::Diverged => {
                    format!("diverged at step {}", s.diverged_at_step.unwrap_or(s.steps))
                }
            }));
            cells.push(Cell {
                text: v.verdict.name().into(),
                class: v.verdict.name().into(),
            });
            cells.push(plain(s.learning().name().into()));
            cells.push(plain(fmt(s.loss_start)));
            cells.push(plain(fmt(s.train_loss)));
            cells.push(plain(fmt(s.test_loss)));
            // The accuracy of a diverged (NaN) network is no figure.
            cells.push(plain(
                final_acc(s)
                    .map(|a| format!("{:.2}%", 100.0 * a))
                    .unwrap_or_else(|| "-".into()),
            ));
            cells.push(plain(fmt(v.loss_constant_baseline)));
            cells.push(plain(end_widths(v)));
            Row { cells }
        })
        .collect();

    // Groups, in order of first appearance.
    let mut panels: Vec<String> = Vec::new();
    for r in runs {
        let p = panel_axis.and_then(|a| r.axis(a)).unwrap_or("").to_string();
        if !panels.contains(&p) {
            panels.push(p);
        }
    }
    let mut sections: Vec<Section> = data
        .extra
        .iter()
        .enumerate()
        .map(|(k, e)| Section {
            title: e.title.clone(),
            note: e.note.clone(),
            plots: e
                .svgs
                .iter()
                .enumerate()
                .map(|(j, svg)| Plot {
                    id: format!("extra-{k}-{j}"),
                    svg: svg.clone(),
                    wide: true,
                })
                .collect(),
            table: (!e.header.is_empty()).then(|| Table {
                header: e.header.clone(),
                rows: e
                    .rows
                    .iter()
                    .map(|r| Row {
                        cells: r
                            .iter()
                            .map(|t| Cell {
                                text: t.clone(),
                                class: String::new(),
                            })
                            .collect(),
                    })
                    .collect(),
            }),
            small: false,
        })
        .collect();

    // Loss curves: median over seeds with a min-max band, per group, one chart per panel.
    let mut loss_plots = Vec::new();
    for (pi, p) in panels.iter().enumerate() {
        let mut groups: Vec<(String, Vec<&RunRecord>)> = Vec::new();
        for r in runs
            .iter()
            .filter(|r| panel_axis.and_then(|a| r.axis(a)).unwrap_or("") == p)
        {
            let g = group_label(r, panel_axis);
            match groups.iter_mut().find(|(k, _)| *k == g) {
                Some((_, v)) => v.push(r),
                None => groups.push((g, vec![r])),
            }
        }
        let series: Vec<Series> = groups
            .iter()
            .map(|(name, members)| {
                let mut by_step: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
                for r in members {
                    for m in r
                        .metrics
                        .iter()
                        .filter(|m| m.metric == "train_loss" && m.layer.is_none())
                    {
                        by_step.entry(m.step).or_default().push(m.value);
                    }
                }
                let points = by_step
                    .iter()
                    .map(|(&s, v)| (s as f64, median(v.clone())))
                    .collect();
                let band = if members.len() > 1 {
                    by_step
                        .iter()
                        .map(|(&s, v)| {
                            (
                                s as f64,
                                v.iter().copied().fold(f64::INFINITY, f64::min),
                                v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                            )
                        })
                        .collect()
                } else {
                    Vec::new()
                };
                Series {
                    name: name.clone(),
                    points,
                    band,
                    spikes: Vec::new(),
                }
            })
            .collect();
        let log = spans_decades(series.iter().flat_map(|s| s.points.iter().map(|p| p.1)));
        let title = if p.is_empty() {
            "training loss".to_string()
        } else {
            format!("training loss, act={p}")
        };
        loss_plots.push(Plot {
            wide: true,
            id: format!("loss-{pi}"),
            svg: line_chart(
                &title,
                "step",
                if log { "loss (log)" } else { "loss" },
                &series,
                log,
            ),
        });
    }
    let diverged = runs
        .iter()
        .filter(|r| r.summary.status == Status::Diverged)
        .count();
    let mut loss_note = "Full training-set loss against step (step 0 is the initialization); median over seeds, band from min to max.".to_string();
    if diverged > 0 {
        loss_note += &format!(
            " {diverged} of {} runs diverged (the loss became NaN or infinite): their curves end at the last finite loss, and a median ranks a diverged loss worst (not drawn once half of a group has diverged).",
            runs.len()
        );
    }
    sections.push(Section {
        title: "Loss curves".into(),
        note: loss_note,
        plots: loss_plots,
        table: None,
        small: false,
    });

    // Per-group small multiples (first seed of each group).
    let mut reps: Vec<(String, &RunRecord)> = Vec::new();
    for r in runs {
        let label = match panel_axis.and_then(|a| r.axis(a)) {
            Some(p) => format!("{}, act={p}", group_label(r, panel_axis)),
            None => group_label(r, panel_axis),
        };
        if !reps.iter().any(|(l, _)| *l == label) {
            reps.push((label, r));
        }
    }
    reps.truncate(MAX_GROUPS);
    let layers_of = |r: &RunRecord| r.config.arch.len() - 1;
    let per_layer = |r: &RunRecord, metric: &str, hidden_only: bool| -> Vec<Series> {
        let n = layers_of(r) - usize::from(hidden_only);
        shown_layers(n)
            .into_iter()
            .map(|l| Series::line(format!("layer {l}"), curve(r, metric, Some(l))))
            .filter(|s| !s.points.is_empty())
            .collect()
    };
    let mut grad = Vec::new();
    let mut width = Vec::new();
    let mut acts = Vec::new();
    let mut weights = Vec::new();
    for (i, (label, r)) in reps.iter().enumerate() {
        let g = per_layer(r, "grad_norm", false);
        if !g.is_empty() {
            let log = spans_decades(g.iter().flat_map(|s| s.points.iter().map(|p| p.1)));
            grad.push(Plot {
                wide: true,
                id: format!("grad-{i}"),
                svg: plots::line_chart_marked(
                    label,
                    "step",
                    if log { "||dW||_F (log)" } else { "||dW||_F" },
                    &g,
                    log,
                    &cadence_change(&g)
                        .map(|s| vec![(s as f64, format!(" sparser after step {s}"))])
                        .unwrap_or_default(),
                ),
            });
        }
        let w = per_layer(r, "width_tol", true);
        if !w.is_empty() {
            width.push((label.clone(), *r, w));
        }
        let last_step = r
            .histograms
            .iter()
            .filter(|h| h.name == "activations")
            .map(|h| h.step)
            .max();
        // Init and end in one chart: half as many panels.
        let mut series: Vec<Series> = Vec::new();
        let mut shown_steps: Vec<String> = Vec::new();
        for (when, step) in [("init", Some(0)), ("end", last_step)] {
            let Some(step) = step else { continue };
            let before = series.len();
            series.extend(
                r.histograms
                    .iter()
                    .filter(|h| {
                        h.name == "activations"
                            && h.step == step
                            && shown_layers(layers_of(r)).contains(&h.layer)
                    })
                    .map(|h| {
                        let width = if h.bucket.is_empty() {
                            1.0
                        } else {
                            (h.max - h.min) / h.bucket.len() as f64
                        };
                        let points: Vec<(f64, f64)> = h
                            .bucket
                            .iter()
                            .enumerate()
                            .map(|(k, c)| (h.min + width * (k as f64 + 0.5), c / h.num.max(1.0)))
                            .collect();
                        // A point mass (every unit at 0 after a zero init) is one tall bin that a
                        // line hides at the chart's edge: draw it as a marked spike and name it.
                        let peak = points
                            .iter()
                            .copied()
                            .filter(|p| p.1.is_finite())
                            .max_by(|a, b| a.1.total_cmp(&b.1));
                        match peak {
                            Some((x, f)) if f >= POINT_MASS => Series {
                                name: if width > 0.0 {
                                    format!(
                                        "{when}, layer {}: {:.0}% in [{}, {}]",
                                        h.layer,
                                        100.0 * f,
                                        plots::tick(x - width / 2.0, width * 1e-6),
                                        plots::tick(x + width / 2.0, width * 1e-6)
                                    )
                                } else {
                                    format!(
                                        "{when}, layer {}: {:.0}% at {}",
                                        h.layer,
                                        100.0 * f,
                                        plots::tick(x, 0.0)
                                    )
                                },
                                points,
                                band: Vec::new(),
                                spikes: vec![(x, f)],
                            },
                            _ => Series::line(format!("{when}, layer {}", h.layer), points),
                        }
                    }),
            );
            if series.len() > before {
                shown_steps.push(format!("{when} = step {step}"));
            }
        }
        if !series.is_empty() {
            acts.push(Plot {
                wide: true,
                id: format!("act-{i}"),
                svg: line_chart(
                    &format!("{label} ({})", shown_steps.join(", ")),
                    "activation value",
                    "fraction of batch x units",
                    &series,
                    false,
                ),
            });
        }
        if let Some(w) = &r.first_layer {
            weights.push(Plot {
                wide: false,
                id: format!("weights-{i}"),
                svg: matrix_map(label, w),
            });
        }
    }
    let cadence = reps
        .iter()
        .find_map(|(_, r)| cadence_change(&per_layer(r, "grad_norm", false)));
    let deep = reps.iter().any(|(_, r)| layers_of(r) > MAX_LAYERS_SHOWN);
    let subsample = if deep {
        format!(" A network of more than {MAX_LAYERS_SHOWN} layers shows {MAX_LAYERS_SHOWN} of them, evenly spaced from the first to the last.")
    } else {
        String::new()
    };
    let grad_note = format!(
        "Frobenius norm of each layer's weight gradient against step (the Glorot 2010 view: does the signal vanish toward the input?). First seed of each group.{subsample}{}",
        match cadence {
            Some(s) => format!(" Recorded at every step up to step {s} (the dashed line), then at fewer steps up to the last one: after the line, points are farther apart and joined by straight segments."),
            None => String::new(),
        }
    );
    sections.push(Section {
        title: "Gradient norm per layer".into(),
        note: grad_note,
        plots: grad,
        table: None,
        small: false,
    });
    let width_table = width_table(&width);
    sections.push(Section { title: "Effective width per layer".into(), note: "Number of symmetry classes (equitable partition within tolerance) of each hidden layer at the recorded steps, first seed of each group, layers in order and separated by a space: 1 means every unit of the layer is a copy, the layer's width means all units differ. Red: a layer at 1; green: every layer at its width.".into(), plots: Vec::new(), table: width_table, small: false });
    sections.push(Section { title: "Activation distributions".into(), note: format!("Histogram of each hidden layer's activations on a training batch at the initialization and at the end, both in one chart per group (fraction of batch x units per bin). A bin holding at least {:.0}% of the values is drawn as a marked spike and named in the legend: a point mass such as every unit at 0.{subsample}", 100.0 * POINT_MASS), plots: acts, table: None, small: false });

    // Heat map of a final figure over the first two axes with more than one value.
    let varying: Vec<&String> = data
        .axes
        .iter()
        .filter(|a| a.as_str() != "seed")
        .filter(|a| {
            let mut vals: Vec<&str> = runs.iter().filter_map(|r| r.axis(a)).collect();
            vals.dedup();
            vals.len() > 1
        })
        .collect();
    if varying.len() >= 2 {
        let (xa, ya) = (varying[1].as_str(), varying[0].as_str());
        let classification = runs.iter().all(|r| r.summary.test_acc.is_some());
        let figure = if classification {
            "test accuracy"
        } else {
            "test loss"
        };
        let value = |r: &RunRecord| {
            if r.summary.status == Status::Diverged {
                f64::NAN
            } else if classification {
                r.summary.test_acc.unwrap_or(f64::NAN)
            } else {
                r.summary.test_loss
            }
        };
        let uniq = |key: &str| {
            let mut v: Vec<String> = Vec::new();
            for r in runs {
                if let Some(x) = r.axis(key) {
                    if !v.iter().any(|y| y == x) {
                        v.push(x.to_string());
                    }
                }
            }
            v
        };
        let (xs, ys) = (uniq(xa), uniq(ya));
        let values: Vec<Vec<Option<f64>>> = ys
            .iter()
            .map(|y| {
                xs.iter()
                    .map(|x| {
                        let v: Vec<f64> = runs
                            .iter()
                            .filter(|r| r.axis(xa) == Some(x) && r.axis(ya) == Some(y))
                            .map(value)
                            .filter(|v| v.is_finite())
                            .collect();
                        (!v.is_empty()).then(|| median(v))
                    })
                    .collect()
            })
            .collect();
        sections.push(Section {
            title: {
                let mut t = format!("{figure} over {ya} x {xa}");
                t[..1].make_ascii_uppercase();
                t
            },
            note: format!(
                "Each cell: the median {figure}{} over seeds (and any remaining axes), the figure of the tables.{}",
                if classification { " in %" } else { "" },
                if runs.iter().any(|r| r.summary.status == Status::Diverged) {
                    " Diverged runs are left out (- where every run of a cell diverged)."
                } else {
                    ""
                }
            ),
            table: None,
            small: false,
            plots: vec![Plot {
                wide: false,
                id: "heatmap".into(),
                svg: heatmap(
                    &format!(
                        "final {figure}{}, median over seeds",
                        if classification { " (%)" } else { "" }
                    ),
                    xa,
                    ya,
                    &xs,
                    &ys,
                    &values,
                    &|v| {
                        if classification {
                            format!("{:.1}%", 100.0 * v)
                        } else {
                            format!("{v:.4}")
                        }
                    },
                ),
            }],
        });
    }
    let weight_note = format!("W_1 at the end of training (rows = units, columns = inputs), first seed of every group whose first layer is at most {WEIGHT_MAP_MAX} x {WEIGHT_MAP_MAX}: identical rows are units that are copies of each other. Blue is negative, red positive, white 0, each map scaled by its own max |w|; a matrix that is exactly zero is drawn as white cells with grey outlines and says so.");
    sections.push(Section {
        title: "First-layer weights".into(),
        note: weight_note,
        plots: weights,
        table: None,
        small: true,
    });
    sections.retain(|s| !s.plots.is_empty() || s.table.is_some());

    let (prose, summary) = summarize(runs, panel_axis);
    let mut env = minijinja::Environment::new();
    env.add_template("report", include_str!("template.html"))
        .map_err(|e| Error::file("report template", e.to_string()))?;
    let subtitle = format!(
        "{} run{} on {}; axes: {}",
        runs.len(),
        if runs.len() == 1 { "" } else { "s" },
        runs[0].config.data,
        if data.axes.is_empty() {
            "none".into()
        } else {
            data.axes.join(", ")
        }
    );
    env.get_template("report")
        .and_then(|t| {
            t.render(minijinja::context! {
                title => data.title,
                subtitle => subtitle,
                answer => data.answer,
                prose => prose,
                summary => summary,
                table_header => header,
                table_rows => rows,
                unassessed => runs.iter().any(|r| {
                    r.summary.verdict.verdict == crate::records::verdict::VerdictKind::Unassessed
                }),
                sections => sections,
                version => env!("CARGO_PKG_VERSION"),
            })
        })
        .map_err(|e| Error::file("report template", e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_networks_show_at_most_twelve_layers_first_and_last_included() {
        assert_eq!(shown_layers(3), vec![1, 2, 3]);
        assert_eq!(shown_layers(12), (1..=12).collect::<Vec<_>>());
        let deep = shown_layers(257);
        assert_eq!(deep.len(), 12);
        assert_eq!((deep[0], deep[11]), (1, 257));
        assert!(deep.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(shown_layers(13).len(), 12);
    }

    use super::{cadence_change, median, Series};

    #[test]
    fn the_cadence_change_is_the_last_step_recorded_every_step() {
        let at = |steps: &[usize]| {
            cadence_change(&[Series::line(
                "layer 1",
                steps.iter().map(|&s| (s as f64, 1.0)).collect(),
            )])
        };
        assert_eq!(at(&[0, 1, 2, 3, 100, 128, 160, 400]), Some(3));
        assert_eq!(at(&[0, 1, 2, 3, 4]), None, "every step: no change");
        assert_eq!(at(&[0, 100, 200]), None, "even cadence from the start");
        assert_eq!(cadence_change(&[]), None);
    }

    #[test]
    fn medians_rank_a_diverged_loss_worst() {
        // A NaN with its sign bit set (what inf - inf gives on x86) sorted first under total_cmp
        // and made a diverged run the best of its group.
        let neg_nan = -f64::NAN;
        assert_eq!(median(vec![neg_nan, 0.1, 0.3]), 0.3);
        assert_eq!(median(vec![0.3, f64::NAN, 0.1]), 0.3);
        assert_eq!(median(vec![0.2, f64::INFINITY, 0.1]), 0.2);
        assert_eq!(median(vec![0.1, neg_nan]), f64::INFINITY);
        assert_eq!(median(vec![f64::NAN]), f64::INFINITY);
        assert_eq!(median(vec![0.1, 0.3]), 0.2);
    }
}
