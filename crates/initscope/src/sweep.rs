//! Sweeps: a grid of runs, expanded in a fixed order to stable run ids, run in parallel (one
//! thread per run), resumable, and shardable across a Slurm job array.
//!
//! A grid file has a `[fixed]` table and an `[axes]` table of lists, keyed by `train`'s long flag
//! names with underscores, values as on the command line:
//! ```toml
//! [fixed]
//! data = "moons"
//! steps = 500
//! [axes]
//! init = ["zeros", "constant:0.1", "pytorch"]
//! act = ["tanh", "relu"]
//! seed = [0, 1, 2]
//! ```
//! Runs are numbered in grid order: axes in file order, the last axis fastest. Run k belongs to
//! shard k mod n. Each run is written as `DIR/<run_id>/` (temporary name, then a rename), so a
//! run directory that exists is complete; a restarted sweep skips those. `DIR/sweep.json` records
//! the planned runs (so `merge` knows what is missing); `DIR/runs.csv` is written, atomically,
//! only by an unsharded sweep or by `merge`, from the run directories alone, so an interrupted
//! and resumed sweep ends with the same bytes as an uninterrupted one.
//!
//! Runs of one small network on the same data ([`crate::train::share_a_pack`]: a plain MLP or a
//! `--net` of linear layers, activations, residual blocks, gates and shifts, up to 32 wide,
//! plain SGD, no dropout, norm, gradient noise or clipping) train side by side, up to
//! [`LANES`] to a thread ([`crate::train::lanes`]); every other run trains alone. A run's files
//! are the same bytes either way, timing fields aside.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::config::{validate_cached, DataCache, RawConfig, RunConfig};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::lockstep::LANES;
use crate::memory::{MemoryEstimate, MemoryLimit};
use crate::output::folder::{
    commit_group, open_sweep_dir, remove_stale_in, stage_dir_in_cleared, Flush, Staged,
};
use crate::output::{check_out_dir, run_files, write_file_atomically, FolderKind};
use crate::records::{RunOutput, Status, Summary};
use crate::train::{initial_params, share_a_pack, train, train_together};

/// A parsed grid file.
#[derive(Clone, Debug, PartialEq)]
pub struct Grid {
    pub fixed: toml::Table,
    /// Axes in file order, each with its values.
    pub axes: Vec<(String, Vec<toml::Value>)>,
}

/// A value as written on the command line, for runs.csv; a named variant (an inline table of
/// flags) by its `label`.
pub fn value_text(v: &toml::Value) -> String {
    match v {
        toml::Value::Table(t) => t
            .get("label")
            .and_then(toml::Value::as_str)
            .unwrap_or_default()
            .to_string(),
        toml::Value::String(s) => s.clone(),
        toml::Value::Array(a) => a.iter().map(value_text).collect::<Vec<_>>().join(" "),
        other => other.to_string(),
    }
}

/// Whether `key = value` alone is a valid [`RawConfig`]: the key is a run flag that takes a
/// value of this TOML type.
fn takes(key: &str, value: toml::Value) -> bool {
    toml::Table::from_iter([(key.to_string(), value)])
        .try_into::<RawConfig>()
        .is_ok()
}

/// A grid value as on the command line: a number or boolean for a text-only flag (`hidden = 16`,
/// `act = ...`) becomes its text; a string for a flag that takes no text (`seed = "1"`) becomes
/// the number it spells, if any. The flag's type is [`RawConfig`]'s, so `batch` (a number or a
/// name) keeps either.
fn normalise(key: &str, v: &toml::Value) -> toml::Value {
    let text = takes(key, toml::Value::String(String::new()));
    match v {
        toml::Value::Integer(_) | toml::Value::Float(_) | toml::Value::Boolean(_)
            if text && !takes(key, toml::Value::Integer(0)) =>
        {
            toml::Value::String(value_text(v))
        }
        toml::Value::String(s) if !text => {
            if let Ok(i) = s.trim().parse::<i64>() {
                toml::Value::Integer(i)
            } else if let Ok(f) = s.trim().parse::<f64>() {
                toml::Value::Float(f)
            } else {
                v.clone()
            }
        }
        _ => v.clone(),
    }
}

/// Checks an axis of named variants: every value an inline table with a distinct, non-empty
/// `label` (what runs.csv and the report show) and at least one flag.
fn variant_axis(key: &str, values: &[toml::Value], path: &Path) -> Result<()> {
    let mut labels = HashSet::new();
    for v in values {
        let Some(t) = v.as_table() else {
            return Err(Error::file(
                path,
                format!("[axes] {key} mixes named variants (tables) with plain values"),
            ));
        };
        let label = t
            .get("label")
            .and_then(toml::Value::as_str)
            .unwrap_or_default();
        if label.is_empty() {
            return Err(Error::file(
                path,
                format!("[axes] {key}: every variant needs a label = \"...\""),
            ));
        }
        if !labels.insert(label.to_string()) {
            return Err(Error::file(
                path,
                format!("[axes] {key}: the label '{label}' names two variants"),
            ));
        }
        if t.len() < 2 {
            return Err(Error::file(
                path,
                format!("[axes] {key}: variant '{label}' sets no flag"),
            ));
        }
    }
    Ok(())
}

impl Grid {
    pub fn from_file(path: &Path) -> Result<Grid> {
        let text = fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Grid::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Grid> {
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            Error::file(
                path,
                e.to_string()
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" "),
            )
        })?;
        let mut fixed = toml::Table::new();
        let mut axes = Vec::new();
        for (k, v) in &table {
            match (k.as_str(), v) {
                ("fixed", toml::Value::Table(t)) => {
                    fixed = t.iter().map(|(k, v)| (k.clone(), normalise(k, v))).collect();
                }
                ("axes", toml::Value::Table(t)) => {
                    for (key, values) in t {
                        let values: Vec<toml::Value> = match values {
                            toml::Value::Array(a) if !a.is_empty() => a.iter().map(|v| normalise(key, v)).collect(),
                            _ => return Err(Error::file(path, format!("[axes] {key} must be a non-empty list of values"))),
                        };
                        let variants = values.iter().filter(|v| v.is_table()).count();
                        if variants > 0 {
                            variant_axis(key, &values, path)?;
                        }
                        axes.push((key.clone(), values));
                    }
                }
                (other, _) => {
                    return Err(Error::file(path, format!("unexpected top-level entry '{other}' (a grid has a [fixed] and an [axes] table)")))
                }
            }
        }
        if axes.is_empty() {
            return Err(Error::file(
                path,
                "has no axes; a sweep needs at least one [axes] list (use `initscope train` for one run)",
            ));
        }
        for (key, values) in &axes {
            if fixed.contains_key(key) {
                return Err(Error::file(
                    path,
                    format!("'{key}' is both fixed and an axis"),
                ));
            }
            // A named variant's flags: none fixed, an axis of their own, or set by another axis's
            // variants.
            let elsewhere = |flag: &str| {
                axes.iter().any(|(other, vs)| {
                    other != key
                        && vs
                            .iter()
                            .filter_map(toml::Value::as_table)
                            .any(|t| t.contains_key(flag))
                })
            };
            for t in values.iter().filter_map(toml::Value::as_table) {
                for flag in t.keys().filter(|k| *k != "label") {
                    if fixed.contains_key(flag)
                        || axes.iter().any(|(a, _)| a == flag)
                        || elsewhere(flag)
                    {
                        return Err(Error::file(
                            path,
                            format!("[axes] {key}: variant '{}' sets '{flag}', which is also fixed, an axis or set by another axis's variants", value_text(&toml::Value::Table(t.clone()))),
                        ));
                    }
                }
            }
        }
        let grid = Grid { fixed, axes };
        // Every key must be a train flag and every value of its type: check [fixed] alone, then
        // each axis value with it, so that an error names the one value at fault.
        grid.raw_config(&[], path)?;
        for (key, values) in &grid.axes {
            for v in values {
                grid.raw_config(&[(key.clone(), v.clone())], path)?;
            }
        }
        Ok(grid)
    }

    /// Number of runs (saturating: an absurd grid counts as `usize::MAX`, never wraps).
    pub fn len(&self) -> usize {
        self.axes
            .iter()
            .fold(1usize, |n, (_, v)| n.saturating_mul(v.len()))
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The axis values of run `k` (last axis fastest).
    pub fn point(&self, mut k: usize) -> Vec<(String, toml::Value)> {
        let mut out = vec![(String::new(), toml::Value::Boolean(false)); self.axes.len()];
        for (i, (key, values)) in self.axes.iter().enumerate().rev() {
            out[i] = (key.clone(), values[k % values.len()].clone());
            k /= values.len();
        }
        out
    }

    fn raw_config(&self, point: &[(String, toml::Value)], path: &Path) -> Result<RawConfig> {
        let mut t = self.fixed.clone();
        for (k, v) in point {
            match v {
                // A named variant sets its flags together.
                toml::Value::Table(flags) => {
                    for (flag, value) in flags.iter().filter(|(f, _)| *f != "label") {
                        t.insert(flag.clone(), normalise(flag, value));
                    }
                }
                _ => {
                    t.insert(k.clone(), v.clone());
                }
            }
        }
        toml::Value::Table(t).try_into::<RawConfig>().map_err(|e| {
            // toml's messages run over several lines ("...\nin `seed`"): one line here.
            let reason = e
                .to_string()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            let at = if point.is_empty() {
                "[fixed]".to_string()
            } else {
                let values: Vec<String> = point.iter().map(|(k, v)| format!("{k} = {v}")).collect();
                format!("[axes] {}", values.join(", "))
            };
            let hint = if reason.contains("unknown field") {
                " (keys are train's flag names with underscores)"
            } else {
                ""
            };
            Error::file(path, format!("{at}: {reason}{hint}"))
        })
    }
}

/// One planned run.
#[derive(Clone, Debug)]
pub struct PlannedRun {
    pub index: usize,
    pub run_id: String,
    pub axes: Vec<(String, String)>,
    pub config: RunConfig,
    pub data: std::sync::Arc<Dataset<'static>>,
}

/// `DIR/sweep.json`: what the sweep is made of.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepRecord {
    pub axes: Vec<String>,
    pub runs: Vec<SweepEntry>,
    /// Shard count when run as shards (for `merge`'s resubmission hint).
    pub shards: Option<usize>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepEntry {
    pub index: usize,
    pub run_id: String,
    pub values: Vec<String>,
}

/// The most runs a grid may have. Every run is validated, recorded in `sweep.json` and listed
/// in `runs.csv` before or after it trains, so a grid is refused before expansion beyond this
/// (split a larger study into several sweeps).
pub const MAX_RUNS: usize = 100_000;

/// Expands and validates every run of the grid (datasets loaded once per distinct source). A
/// grid of more than [`MAX_RUNS`] runs is refused before anything is expanded.
pub fn plan(grid: &Grid, path: &Path) -> Result<Vec<PlannedRun>> {
    plan_within(grid, path, None)
}

/// [`plan`] with every run (and the data sets together) held to `limit` instead of the machine's
/// memory (a sweep's `--max-memory`), checked before each data set is loaded.
pub fn plan_within(
    grid: &Grid,
    path: &Path,
    limit: Option<MemoryLimit>,
) -> Result<Vec<PlannedRun>> {
    if grid.len() > MAX_RUNS {
        let sizes = grid
            .axes
            .iter()
            .map(|(k, v)| format!("{k} {}", v.len()))
            .collect::<Vec<_>>()
            .join(" x ");
        let count = if grid.len() == usize::MAX {
            "more than 2^64".to_string()
        } else {
            grid.len().to_string()
        };
        return Err(Error::file(
            path,
            format!("the grid has {count} runs ({sizes}); a sweep holds at most {MAX_RUNS} (split it into several grids)"),
        ));
    }
    let mut cache = limit.map_or_else(DataCache::default, DataCache::with_limit);
    let mut seen = HashSet::new();
    (0..grid.len())
        .map(|k| {
            let point = grid.point(k);
            let raw = grid.raw_config(&point, path)?;
            let (config, data) = validate_cached(&raw, &mut cache).map_err(|e| {
                let at = point.iter().map(|(k, v)| format!("{k}={}", value_text(v))).collect::<Vec<_>>().join(", ");
                Error::file(path, format!("run {k} ({at}): {e}"))
            })?;
            let run_id = config.run_id();
            if !seen.insert(run_id.clone()) {
                return Err(Error::file(path, format!("run {k} repeats an earlier run exactly (same validated config, id {run_id})")));
            }
            Ok(PlannedRun {
                index: k,
                run_id,
                axes: point.iter().map(|(k, v)| (k.clone(), value_text(v))).collect(),
                config,
                data,
            })
        })
        .collect()
}

/// How a sweep process divides the work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// Parses `i/n`.
    pub fn parse(text: &str) -> Result<Shard> {
        let bad = || Error::spec("--shard", text, "expected i/n with 0 <= i < n, or auto");
        let (i, n) = text.split_once('/').ok_or_else(bad)?;
        let (index, count) = (
            i.trim().parse::<usize>().map_err(|_| bad())?,
            n.trim().parse::<usize>().map_err(|_| bad())?,
        );
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }

    /// `--shard auto --shards N`: the index from SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX.
    pub fn auto(count: usize) -> Result<Shard> {
        let var = ["SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX"]
            .iter()
            .find_map(|v| std::env::var(v).ok().map(|x| (*v, x)))
            .ok_or_else(|| {
                Error::config(
                    "--shard",
                    "auto needs SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX in the environment",
                )
            })?;
        let index = var.1.trim().parse::<usize>().map_err(|_| {
            Error::config("--shard", format!("{}='{}' is not an index", var.0, var.1))
        })?;
        if count == 0 || index >= count {
            return Err(Error::config(
                "--shard",
                format!("{}={index} is not below --shards {count}", var.0),
            ));
        }
        Ok(Shard { index, count })
    }

    pub fn owns(self, k: usize) -> bool {
        k % self.count == self.index
    }
}

/// How many threads train runs at once, and what decided it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parallelism {
    /// Threads; each trains one run, or up to [`LANES`] side by side.
    pub jobs: usize,
    /// Why fewer than requested: "runs", "cores" or "memory".
    pub capped_by: Option<&'static str>,
}

/// At most `requested` threads, and no more than there are runs, cores, or room in `limit` for
/// the largest run's estimate ([`RunConfig::memory_estimate`]) times the runs they hold: one
/// each, or [`LANES`] each when any run can train side by side with others. Refuses a run that
/// does not fit the limit alone.
pub fn parallelism(
    runs: &[&PlannedRun],
    requested: usize,
    limit: MemoryLimit,
) -> Result<Parallelism> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let estimates: Vec<MemoryEstimate> = runs
        .iter()
        .map(|r| r.config.memory_estimate(&r.data))
        .collect();
    let Some((run, largest)) = runs.iter().zip(&estimates).max_by_key(|(_, e)| e.total()) else {
        return Ok(Parallelism {
            jobs: 1,
            capped_by: Some("runs"),
        });
    };
    largest.check(
        "memory",
        &format!("run {} ({})", run.index, run.run_id),
        limit,
    )?;
    // The data sets are loaded once and shared by the runs: count each once, then the rest of
    // the largest run for every parallel run.
    let mut seen: Vec<*const Dataset<'static>> = Vec::new();
    let mut shared = 0u64;
    for r in runs {
        if !seen.contains(&std::sync::Arc::as_ptr(&r.data)) {
            seen.push(std::sync::Arc::as_ptr(&r.data));
            shared = shared.saturating_add(r.data.bytes());
        }
    }
    let per_run = runs
        .iter()
        .zip(&estimates)
        .map(|(r, e)| e.total().saturating_sub(r.data.bytes()))
        .max()
        .unwrap_or(0)
        .max(1);
    if shared.saturating_add(per_run) > limit.bytes {
        let mut e = MemoryEstimate::default();
        e.add("data sets", shared);
        e.add("one run", per_run);
        e.check("memory", "the sweep's data sets and one run", limit)?;
    }
    let fits = usize::try_from(limit.bytes.saturating_sub(shared) / per_run).unwrap_or(usize::MAX);
    // A thread training a pack holds its runs at once.
    let per_thread = if runs.iter().any(|r| r.config.lockstep(r.data.train.len())) {
        LANES
    } else {
        1
    };
    let fits = fits / per_thread;
    let mut p = Parallelism {
        jobs: requested.max(1),
        capped_by: None,
    };
    for (cap, why) in [(runs.len(), "runs"), (cores, "cores"), (fits, "memory")] {
        if cap.max(1) < p.jobs {
            p = Parallelism {
                jobs: cap.max(1),
                capped_by: Some(why),
            };
        }
    }
    Ok(p)
}

/// Progress of a sweep, for the caller's progress bar.
#[derive(Clone, Debug)]
pub enum SweepEvent {
    /// A run finished (or was already complete) with this status; `None` means it failed.
    Done {
        index: usize,
        run_id: String,
        status: Option<Status>,
        skipped: bool,
    },
    /// A run could not be completed.
    Failed {
        index: usize,
        run_id: String,
        error: String,
    },
}

/// What a sweep process did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SweepReport {
    pub planned: usize,
    pub ran: usize,
    pub skipped: usize,
    /// Runs trained side by side with others (in packs of two or more) and written.
    pub lockstep: usize,
    pub failed: Vec<(usize, String)>,
    pub diverged: usize,
    pub runs_csv: Option<PathBuf>,
}

/// Whether `DIR/<run_id>` holds a complete run.
pub fn is_complete(dir: &Path, run_id: &str) -> bool {
    dir.join(run_id).join("summary.json").is_file()
}

/// Records the sweep in `DIR/sweep.json`, refusing a DIR that holds a different sweep.
fn record(dir: &Path, grid: &Grid, runs: &[PlannedRun], shards: Option<usize>) -> Result<()> {
    let rec = SweepRecord {
        axes: grid.axes.iter().map(|(k, _)| k.clone()).collect(),
        runs: runs
            .iter()
            .map(|r| SweepEntry {
                index: r.index,
                run_id: r.run_id.clone(),
                values: r.axes.iter().map(|(_, v)| v.clone()).collect(),
            })
            .collect(),
        shards,
    };
    let path = dir.join("sweep.json");
    if path.is_file() {
        let old: SweepRecord =
            serde_json::from_slice(&fs::read(&path).map_err(|e| Error::io(&path, e))?)
                .map_err(|e| Error::file(&path, format!("not a sweep record: {e}")))?;
        if old.runs != rec.runs {
            return Err(Error::file(
                dir,
                "holds a different sweep (its sweep.json lists other runs); use a new --out",
            ));
        }
        if old.shards == rec.shards {
            return Ok(());
        }
    }
    write_file_atomically(
        &path,
        &serde_json::to_vec_pretty(&rec).expect("record serialises"),
    )
}

/// Checks that `dir` may take (or resume) this sweep before anything is written there: the
/// `--out` rule, and a `sweep.json` that lists the same runs.
pub fn check_resumable(dir: &Path, kind: FolderKind, runs: &[PlannedRun]) -> Result<()> {
    check_out_dir(dir, kind, false)?;
    let path = dir.join("sweep.json");
    if path.is_file() {
        let old: SweepRecord =
            serde_json::from_slice(&fs::read(&path).map_err(|e| Error::io(&path, e))?)
                .map_err(|e| Error::file(&path, format!("not a sweep record: {e}")))?;
        let same = old.runs.len() == runs.len()
            && old
                .runs
                .iter()
                .zip(runs)
                .all(|(o, r)| o.index == r.index && o.run_id == r.run_id);
        if !same {
            return Err(Error::file(
                dir,
                "holds a different sweep (its sweep.json lists other runs); use a new --out",
            ));
        }
    }
    Ok(())
}

/// How a sweep trains the runs that could share a pack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Packing {
    /// Runs that can train side by side do, up to [`LANES`] to a thread (the default).
    Lockstep,
    /// Every run trains alone (the same bytes, slower; for comparisons).
    Alone,
}

/// A thread's share of a sweep: a run alone, or runs trained side by side.
enum Unit<'a> {
    Alone(&'a PlannedRun),
    Pack(Vec<&'a PlannedRun>),
}

/// Groups `runs` into units for `jobs` threads: under [`Packing::Lockstep`], runs that share
/// their data (the same loaded set) and can share a pack go together, in grid order, at most
/// [`LANES`] and no more than keeps every thread busy (`runs / jobs`, rounded up); the rest
/// train alone.
fn units<'a>(runs: &[&'a PlannedRun], packing: Packing, jobs: usize) -> Vec<Unit<'a>> {
    let size = runs.len().div_ceil(jobs.max(1)).clamp(1, LANES);
    let mut units = Vec::with_capacity(runs.len());
    let mut open: Vec<Vec<&PlannedRun>> = Vec::new();
    for &r in runs {
        let n = r.data.train.len();
        if packing == Packing::Alone || !r.config.lockstep(n) {
            units.push(Unit::Alone(r));
            continue;
        }
        let fits = |p: &Vec<&PlannedRun>| {
            std::sync::Arc::ptr_eq(&p[0].data, &r.data) && share_a_pack(&p[0].config, &r.config, n)
        };
        match open.iter().position(fits) {
            _ if size == 1 => units.push(Unit::Alone(r)),
            Some(k) => {
                open[k].push(r);
                if open[k].len() == size {
                    units.push(Unit::Pack(open.swap_remove(k)));
                }
            }
            None => open.push(vec![r]),
        }
    }
    units.extend(open.into_iter().map(|mut p| {
        if p.len() == 1 {
            Unit::Alone(p.remove(0))
        } else {
            Unit::Pack(p)
        }
    }));
    units
}

/// Runs the sweep's share of `runs` into `dir` with `jobs` threads, in a folder marked as `kind`
/// (a sweep, or a study), packing runs as `packing` says. Unsharded sweeps also write
/// `runs.csv`. The folder is marked only once its sweep record is written, so a folder refused
/// for holding another sweep stays untouched.
#[allow(clippy::too_many_arguments)]
pub fn run(
    kind: FolderKind,
    grid: &Grid,
    runs: &[PlannedRun],
    dir: &Path,
    jobs: usize,
    shard: Option<Shard>,
    packing: Packing,
    progress: &(dyn Fn(&SweepEvent) + Sync),
) -> Result<SweepReport> {
    check_resumable(dir, kind, runs)?;
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    record(dir, grid, runs, shard.map(|s| s.count))?;
    open_sweep_dir(dir, kind)?;
    // Any process may clear this host's dead writers' temporaries; other hosts' are kept.
    remove_stale_in(dir);
    let mine: Vec<&PlannedRun> = runs
        .iter()
        .filter(|r| shard.is_none_or(|s| s.owns(r.index)))
        .collect();
    let (ran, skipped, diverged, lockstep) = (
        AtomicUsize::new(0),
        AtomicUsize::new(0),
        AtomicUsize::new(0),
        AtomicUsize::new(0),
    );
    let failed = std::sync::Mutex::new(Vec::new());
    let pending = Pending::default();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs.min(mine.len()).max(1))
        .build()
        .map_err(|e| Error::config("--jobs", e.to_string()))?;
    // Finished runs are skipped before the rest are grouped, so packs hold pending runs only
    // (the folders read in parallel: resuming a large sweep reads many summaries).
    let finished: Vec<Option<Option<Status>>> = pool.install(|| {
        mine.par_iter()
            .map(|r| {
                is_complete(dir, &r.run_id)
                    .then(|| read_summary(dir, &r.run_id).ok().map(|s| s.status))
            })
            .collect()
    });
    let mut pending_runs = Vec::with_capacity(mine.len());
    for (&r, finished) in mine.iter().zip(finished) {
        match finished {
            Some(status) => {
                skipped.fetch_add(1, Ordering::Relaxed);
                progress(&SweepEvent::Done {
                    index: r.index,
                    run_id: r.run_id.clone(),
                    status,
                    skipped: true,
                });
            }
            None => pending_runs.push(r),
        }
    }
    let units = units(&pending_runs, packing, pool.current_num_threads());
    // A trained run's folder staged for the next group commit, then reported.
    let done = |r: &PlannedRun, out: std::result::Result<RunOutput, String>, took, packed: bool| {
        let result = out.and_then(|out| {
            // The sweep folder was cleared of leftovers once, above.
            let staged = stage_dir_in_cleared(
                &dir.join(&r.run_id),
                FolderKind::Run,
                &run_files(&out).map_err(|e| e.to_string())?,
                Flush::Group,
                false,
            )
            .map_err(|e| e.to_string())?;
            pending.add(staged, took).map_err(|e| e.to_string())?;
            Ok(out.summary.status)
        });
        match result {
            Ok(status) => {
                ran.fetch_add(1, Ordering::Relaxed);
                if packed {
                    lockstep.fetch_add(1, Ordering::Relaxed);
                }
                if status == Status::Diverged {
                    diverged.fetch_add(1, Ordering::Relaxed);
                }
                progress(&SweepEvent::Done {
                    index: r.index,
                    run_id: r.run_id.clone(),
                    status: Some(status),
                    skipped: false,
                });
            }
            Err(error) => {
                failed
                    .lock()
                    .expect("no poisoned lock")
                    .push((r.index, error.clone()));
                progress(&SweepEvent::Failed {
                    index: r.index,
                    run_id: r.run_id.clone(),
                    error,
                });
            }
        }
    };
    pool.install(|| {
        units.par_iter().for_each(|unit| match unit {
            Unit::Alone(r) => {
                let started = std::time::Instant::now();
                let out = train(&r.config, &r.data, &mut |_| {}).map_err(|e| e.to_string());
                done(r, out, started.elapsed(), false);
            }
            Unit::Pack(rs) => {
                let started = std::time::Instant::now();
                let mut together = Vec::with_capacity(rs.len());
                let mut starts = Vec::with_capacity(rs.len());
                for &r in rs {
                    match initial_params(&r.config, &r.data) {
                        Ok(start) => {
                            together.push(r);
                            starts.push(start);
                        }
                        Err(e) => done(r, Err(e.to_string()), started.elapsed(), false),
                    }
                }
                let Some(first) = together.first() else {
                    return;
                };
                let cfgs: Vec<&RunConfig> = together.iter().map(|r| &r.config).collect();
                match train_together(&cfgs, &first.data, starts) {
                    Ok(outs) => {
                        let (took, packed) = (started.elapsed(), together.len() > 1);
                        for (r, out) in together.iter().zip(outs) {
                            done(r, Ok(out), took, packed);
                        }
                    }
                    Err(e) => {
                        for r in &together {
                            done(r, Err(e.to_string()), started.elapsed(), false);
                        }
                    }
                }
            }
        })
    });
    pending.flush()?;
    let mut failed = failed.into_inner().expect("no poisoned lock");
    failed.sort();
    let runs_csv = if shard.is_none() {
        let (csv, _) = merge(dir)?;
        Some(csv)
    } else {
        None
    };
    Ok(SweepReport {
        planned: mine.len(),
        ran: ran.into_inner(),
        skipped: skipped.into_inner(),
        lockstep: lockstep.into_inner(),
        failed,
        diverged: diverged.into_inner(),
        runs_csv,
    })
}

/// Run folders written but not yet in place, committed in groups: one `syncfs` per group
/// instead of a few fsyncs per run (on tiny nets the fsyncs cost ~35 ms a run, 100x the
/// training). A group is committed when it holds [`Pending::GROUP`] runs, when its oldest has
/// waited [`Pending::WAIT`] by the time another run finishes, or at once when the run just added
/// took longer than `WAIT` to train: a kill loses at most about `2 WAIT` of finished work, never
/// a half-written run.
#[derive(Default)]
struct Pending {
    group: std::sync::Mutex<(Vec<Staged>, Option<std::time::Instant>)>,
}

impl Pending {
    const GROUP: usize = 64;
    const WAIT: std::time::Duration = std::time::Duration::from_secs(2);

    fn add(&self, staged: Staged, took: std::time::Duration) -> Result<()> {
        let mut g = self.group.lock().expect("no poisoned lock");
        g.0.push(staged);
        let since = *g.1.get_or_insert_with(std::time::Instant::now);
        if g.0.len() >= Self::GROUP || since.elapsed() >= Self::WAIT || took >= Self::WAIT {
            let group = std::mem::take(&mut g.0);
            g.1 = None;
            commit_group(group)?;
        }
        Ok(())
    }

    fn flush(&self) -> Result<()> {
        let mut g = self.group.lock().expect("no poisoned lock");
        g.1 = None;
        commit_group(std::mem::take(&mut g.0))
    }
}

fn read_summary(dir: &Path, run_id: &str) -> Result<Summary> {
    let p = dir.join(run_id).join("summary.json");
    serde_json::from_slice(&fs::read(&p).map_err(|e| Error::io(&p, e))?)
        .map_err(|e| Error::file(&p, e.to_string()))
}

fn read_config(dir: &Path, run_id: &str) -> Result<RunConfig> {
    let p = dir.join(run_id).join("config.json");
    RunConfig::from_config_json(&fs::read(&p).map_err(|e| Error::io(&p, e))?)
        .map_err(|e| Error::file(&p, e))
}

fn num(x: f64) -> String {
    if x.is_finite() {
        format!("{x}")
    } else {
        String::new()
    }
}

fn opt(x: Option<f64>) -> String {
    x.map(num).unwrap_or_default()
}

/// The format of runs.csv and layers.csv, written in their first column `format_version` (so
/// pandas reads it without options). 1: runs.csv without the column, per-layer figures joined
/// with `;` in runs.csv; 2: one row per run in runs.csv, one row per run and layer in layers.csv,
/// with the learning judgement and the gradient states.
pub const TABLE_FORMAT: u32 = 2;

/// The columns of layers.csv, one row per run and layer (1 = first hidden, L = output). Cells
/// that do not apply are empty: `wake_step` of a layer whose weight gradient was never nonzero,
/// `grad_state` and `grad_norm_end` of runs written before they existed. The output layer's
/// widths are its units (output units are singleton classes).
pub const LAYERS_COLUMNS: &[&str] = &[
    "format_version",
    "run_id",
    "layer",
    "units",
    "wake_step",
    "width_exact_init",
    "width_exact_end",
    "width_tol_init",
    "width_tol_end",
    "grad_state",
    "grad_norm_step0",
    "grad_norm_end",
    "weights_unchanged",
];

/// The columns of runs.csv after the axis columns. Figures that are not finite are empty cells, and
/// so are the final figures (train_loss to val_acc) of a run whose status is `diverged`. The first
/// columns are `format_version`, `run`, `run_id`, `path`, then the axes.
pub const RUNS_COLUMNS: &[&str] = &[
    "data",
    "arch",
    "act",
    "init",
    "bias_init",
    "optim",
    "lr",
    "batch",
    "steps",
    "seed",
    "precision",
    "status",
    "steps_done",
    "loss_start",
    "train_loss",
    "train_acc",
    "test_loss",
    "test_acc",
    "val_loss",
    "val_acc",
    "verdict",
    "learning",
    "symmetry_broken",
    "loss_constant_baseline",
];

/// Refuses runs whose summaries were written with different verdict formats (a sweep resumed by
/// a newer initscope), naming the formats, their counts and one run of each.
fn check_one_format(dir: &Path, versions: &[(u32, String)]) -> Result<()> {
    let mut seen: Vec<(u32, usize, &str)> = Vec::new();
    for (v, id) in versions {
        match seen.iter_mut().find(|(x, _, _)| x == v) {
            Some(e) => e.1 += 1,
            None => seen.push((*v, 1, id)),
        }
    }
    if seen.len() <= 1 {
        return Ok(());
    }
    seen.sort();
    let list = seen
        .iter()
        .map(|(v, n, id)| format!("verdict format {v}: {n} run(s), e.g. {id}"))
        .collect::<Vec<_>>()
        .join("; ");
    Err(Error::file(
        dir,
        format!(
            "holds runs written by different initscope versions ({list}); runs.csv and layers.csv would mix formats: delete the older run folders and resume the sweep to rerun them"
        ),
    ))
}

/// Writes `DIR/runs.csv` and `DIR/layers.csv` (atomically, format [`TABLE_FORMAT`]) from the
/// complete run directories, in grid order, and returns the path of runs.csv and the planned runs
/// that are still missing. Refuses runs whose summaries have different verdict formats.
pub fn merge(dir: &Path) -> Result<(PathBuf, Vec<SweepEntry>)> {
    let rec_path = dir.join("sweep.json");
    let rec: SweepRecord =
        serde_json::from_slice(&fs::read(&rec_path).map_err(|e| Error::io(&rec_path, e))?)
            .map_err(|e| Error::file(&rec_path, format!("not a sweep record: {e}")))?;
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<String> = vec![
        "format_version".into(),
        "run".into(),
        "run_id".into(),
        "path".into(),
    ];
    header.extend(rec.axes.iter().cloned());
    // Config columns that are also axes appear once, as written in the grid.
    let shown: Vec<bool> = RUNS_COLUMNS
        .iter()
        .map(|c| !rec.axes.iter().any(|a| a == c))
        .collect();
    header.extend(
        RUNS_COLUMNS
            .iter()
            .zip(&shown)
            .filter(|(_, s)| **s)
            .map(|(c, _)| c.to_string()),
    );
    let fail = |e: csv::Error| Error::file("runs.csv", e.to_string());
    let fail_layers = |e: csv::Error| Error::file("layers.csv", e.to_string());
    w.write_record(&header).map_err(fail)?;
    let mut lw = csv::Writer::from_writer(Vec::new());
    lw.write_record(LAYERS_COLUMNS).map_err(fail_layers)?;
    let format = TABLE_FORMAT.to_string();
    let mut missing = Vec::new();
    let mut complete = Vec::new();
    for entry in &rec.runs {
        if !is_complete(dir, &entry.run_id) {
            missing.push(entry.clone());
            continue;
        }
        complete.push((
            entry,
            read_summary(dir, &entry.run_id)?,
            read_config(dir, &entry.run_id)?,
        ));
    }
    check_one_format(
        dir,
        &complete
            .iter()
            .map(|(e, s, _)| (s.verdict.verdict_version, e.run_id.clone()))
            .collect::<Vec<_>>(),
    )?;
    for (entry, s, c) in &complete {
        let v = &s.verdict;
        for l in &v.layers {
            lw.write_record([
                format.clone(),
                entry.run_id.clone(),
                l.layer.to_string(),
                l.fan_out.to_string(),
                l.wake_step.map(|w| w.to_string()).unwrap_or_default(),
                opt_count(l.width_init),
                opt_count(l.width_end),
                opt_count(l.width_init_tol),
                opt_count(l.width_end_tol),
                l.grad_state
                    .map(|g| g.name().to_string())
                    .unwrap_or_default(),
                num(l.grad_w_norm_step0),
                opt(l.grad_w_norm_end),
                l.weights_unchanged.to_string(),
            ])
            .map_err(fail_layers)?;
        }
        let (status, fin) = match s.status {
            Status::Ok => ("ok", true),
            Status::Diverged => ("diverged", false),
        };
        // A diverged run's final figures describe a network with NaN or infinite outputs (its
        // "accuracy" is an artefact of argmax over NaN): they are left empty.
        let last = |x: Option<f64>| opt(x.filter(|_| fin));
        let mut row: Vec<String> = vec![
            format.clone(),
            entry.index.to_string(),
            entry.run_id.clone(),
            format!("{}/", entry.run_id),
        ];
        row.extend(entry.values.iter().cloned());
        let columns = [
            c.data.spec(),
            c.arch_text(),
            c.act_label(),
            c.init_label(),
            c.bias_init_label(),
            c.optim.kind.name().to_string(),
            num(c.optim.lr),
            match c.batch {
                crate::config::Batch::Full => "full".into(),
                crate::config::Batch::Size(b) => b.to_string(),
            },
            c.steps.to_string(),
            c.seed.to_string(),
            c.precision.name().to_string(),
            status.to_string(),
            s.steps.to_string(),
            num(s.loss_start),
            last(Some(s.train_loss)),
            last(s.train_acc),
            last(Some(s.test_loss)),
            last(s.test_acc),
            last(s.val_loss),
            last(s.val_acc),
            v.verdict.name().to_string(),
            s.learning().name().to_string(),
            v.symmetry_broken.to_string(),
            num(v.loss_constant_baseline),
        ];
        row.extend(
            columns
                .into_iter()
                .zip(&shown)
                .filter(|(_, s)| **s)
                .map(|(v, _)| v),
        );
        w.write_record(&row).map_err(fail)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| Error::file("runs.csv", e.to_string()))?;
    let layers = lw
        .into_inner()
        .map_err(|e| Error::file("layers.csv", e.to_string()))?;
    write_file_atomically(&dir.join("layers.csv"), &layers)?;
    let path = dir.join("runs.csv");
    write_file_atomically(&path, &bytes)?;
    Ok((path, missing))
}

/// The `--array=` list that resubmits the shards owning `missing` runs.
pub fn array_indices(missing: &[SweepEntry], shards: usize) -> String {
    let mut idx: Vec<usize> = missing.iter().map(|m| m.index % shards.max(1)).collect();
    idx.sort_unstable();
    idx.dedup();
    idx.iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// A count, or empty when it was not computed.
fn opt_count(x: Option<usize>) -> String {
    x.map(|x| x.to_string()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_err(text: &str) -> String {
        Grid::parse(text, Path::new("g.toml"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn grid_errors_are_one_line_naming_the_file_axis_and_value() {
        let e = parse_err("[fixed]\nsteps = 5\n[axes]\nseed = [0, \"a\"]\n");
        assert!(!e.contains('\n'), "{e}");
        assert!(
            e.starts_with("g.toml: [axes] seed = \"a\": invalid type: string \"a\""),
            "{e}"
        );
        let e = parse_err("[fixed]\nlearning_rate = 0.1\n[axes]\nseed = [0, 1]\n");
        assert!(!e.contains('\n'), "{e}");
        assert!(
            e.starts_with("g.toml: [fixed]: unknown field `learning_rate`")
                && e.ends_with("(keys are train's flag names with underscores)"),
            "{e}"
        );
        let e = parse_err("[axes]\nseed = [0, 1]\nsteps = [10, [1]]\n");
        assert!(!e.contains('\n') && e.contains("[axes] steps = [1]"), "{e}");
        let e = parse_err("[axes]\nseed = [0, 1\n");
        assert!(!e.contains('\n') && e.starts_with("g.toml: "), "{e}");
    }

    #[test]
    fn grid_values_take_the_type_of_their_flag() {
        let text = "[fixed]\nhidden = 16\nact = true\nlr = \"0.5\"\nno_bias = true\n\
                    [axes]\nseed = [\"1\", 2]\nbatch = [64, \"full\", \"32\"]\n\
                    layer_init = [[\"2=zeros\"]]\nmax_memory = [1024, \"4G\"]\n";
        let g = Grid::parse(text, Path::new("g.toml")).unwrap();
        let v = |s: &str| toml::Value::String(s.into());
        assert_eq!(g.fixed["hidden"], v("16"));
        assert_eq!(g.fixed["act"], v("true"));
        assert_eq!(g.fixed["lr"], toml::Value::Float(0.5));
        assert_eq!(g.fixed["no_bias"], toml::Value::Boolean(true));
        let axis = |k: &str| &g.axes.iter().find(|(key, _)| key == k).unwrap().1;
        assert_eq!(
            axis("seed"),
            &[toml::Value::Integer(1), toml::Value::Integer(2)]
        );
        assert_eq!(
            axis("batch"),
            &[toml::Value::Integer(64), v("full"), v("32")]
        );
        assert_eq!(
            axis("layer_init"),
            &[toml::Value::Array(vec![v("2=zeros")])]
        );
        assert_eq!(axis("max_memory"), &[v("1024"), v("4G")]);
        // A string on an unknown key is read as a number too, and the key refused.
        let e = parse_err("[axes]\nfoo = [\"3\"]\n");
        assert!(
            e.starts_with("g.toml: [axes] foo = 3: unknown field `foo`"),
            "{e}"
        );
    }

    /// An axis of named variants sets several flags together per run, shows its labels in
    /// runs.csv, and is refused when malformed.
    #[test]
    fn named_variants_set_their_flags_together() {
        let text = "[fixed]\ndata = \"moons:n=64\"\nsteps = 3\n[axes]\n\
                    variant = [{ label = \"wide\", hidden = 16, act = \"relu\" }, \
                               { label = \"zero\", hidden = \"4\", init = \"zeros\" }]\n\
                    seed = [0, 1]\n";
        let g = Grid::parse(text, Path::new("g.toml")).unwrap();
        assert_eq!(g.len(), 4);
        let runs = plan(&g, Path::new("g.toml")).unwrap();
        let (wide, zero) = (&runs[0], &runs[2]);
        assert_eq!(wide.axes[0], ("variant".to_string(), "wide".to_string()));
        assert_eq!(
            (wide.config.arch.clone(), wide.config.act.spec()),
            (vec![2, 16, 2], "relu".to_string())
        );
        assert_eq!(zero.axes[0].1, "zero");
        assert_eq!(zero.config.arch, vec![2, 4, 2]);
        assert_eq!(zero.config.init.to_string(), "zeros");
        let e = parse_err("[axes]\nv = [{ label = \"a\", hidden = 4 }, 3]\n");
        assert!(e.contains("mixes named variants"), "{e}");
        let e = parse_err("[axes]\nv = [{ hidden = 4 }]\n");
        assert!(e.contains("every variant needs a label"), "{e}");
        let e = parse_err(
            "[axes]\nv = [{ label = \"a\", hidden = 4 }, { label = \"a\", hidden = 8 }]\n",
        );
        assert!(e.contains("the label 'a' names two variants"), "{e}");
        let e = parse_err("[fixed]\nhidden = 4\n[axes]\nv = [{ label = \"a\", hidden = 8 }]\n");
        assert!(
            e.contains("variant 'a' sets 'hidden', which is also fixed"),
            "{e}"
        );
        let e = parse_err(
            "[axes]\nv = [{ label = \"a\", hidden = 8 }]\nw = [{ label = \"b\", hidden = 4 }]\n",
        );
        assert!(e.contains("set by another axis's variants"), "{e}");
        let e = parse_err("[axes]\nv = [{ label = \"a\", hiden = 8 }]\n");
        assert!(e.contains("unknown field `hiden`"), "{e}");
    }

    #[test]
    fn a_grid_without_axes_is_refused() {
        let want = "g.toml: has no axes; a sweep needs at least one [axes] list (use `initscope train` for one run)";
        assert_eq!(parse_err("[fixed]\nsteps = 5\n"), want);
        assert_eq!(parse_err("[fixed]\nsteps = 5\n[axes]\n"), want);
        assert_eq!(parse_err(""), want);
        let g = Grid::parse("[axes]\nseed = [0, 1]\n", Path::new("g.toml")).unwrap();
        assert_eq!(g.len(), 2);
    }
}
