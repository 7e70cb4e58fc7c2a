//! `initscope sweep`, `initscope merge` and `initscope slurm`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};

use clap::Args;
use initscope::memory::MemoryLimit;
use initscope::output::{check_out_dir, FolderKind};
use initscope::records::Status;
use initscope::sweep::{
    array_indices, merge, parallelism, plan, plan_within, run, Grid, Packing, PlannedRun, Shard,
    SweepEvent, SweepRecord,
};

use crate::progress::{self, Unit};

#[derive(Args, Debug)]
pub struct SweepArgs {
    /// The grid file ([fixed] and [axes] tables keyed by train's flag names).
    pub grid: PathBuf,
    /// The sweep directory: created when missing, used when empty, resumed when it holds this
    /// sweep; a folder holding anything else (a run, other files) is refused.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Runs in parallel, one thread each [default: all cores].
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Run only shard i of n, shards numbered from 0 (0 <= i < n; run k belongs to shard k mod n),
    /// or `auto` with --shards.
    #[arg(long, value_name = "i/n|auto")]
    pub shard: Option<String>,
    /// Shard count for --shard auto (the index comes from SLURM_ARRAY_TASK_ID or
    /// JOB_COMPLETION_INDEX).
    #[arg(long)]
    pub shards: Option<usize>,
    /// No progress bar or summary lines on stderr.
    #[arg(long, short)]
    pub quiet: bool,
    /// Memory all parallel runs together may take, e.g. 8G [default: the smaller of the
    /// cgroup's limit and MemAvailable]; fewer runs go in parallel when they would not fit.
    #[arg(long, value_name = "SIZE")]
    pub max_memory: Option<String>,
    /// Train every run alone, even runs that could train side by side in lockstep (the same
    /// files, timing fields aside; slower).
    #[arg(long)]
    pub no_lockstep: bool,
}

/// Runs in parallel: `--jobs` (default all cores), capped at the runs, the cores and the memory
/// limit; the line says what capped it.
pub fn parallel_runs(
    runs: &[&PlannedRun],
    jobs: Option<usize>,
    max_memory: Option<&str>,
) -> anyhow::Result<(usize, String)> {
    if jobs == Some(0) {
        anyhow::bail!("--jobs: must be at least 1");
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let limit = MemoryLimit::resolve(max_memory)?;
    let p = parallelism(runs, jobs.unwrap_or(cores), limit)?;
    let why = match p.capped_by {
        Some("memory") => format!(" (memory: {limit} holds {} at once)", p.jobs),
        Some(what) if jobs.is_some() => format!(" (--jobs capped at the {what})"),
        _ => String::new(),
    };
    Ok((p.jobs, why))
}

#[derive(Args, Debug)]
pub struct MergeArgs {
    /// Sweep directories to merge (each gets its runs.csv and layers.csv).
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
}

#[derive(Args, Debug)]
pub struct SlurmArgs {
    /// The grid file, as for `initscope sweep`.
    pub grid: PathBuf,
    /// The sweep directory every array task writes into (as `sweep --out`).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Array tasks (shards 0 to N-1).
    #[arg(long)]
    pub shards: usize,
    /// CPUs per task (= parallel runs per task).
    #[arg(long, default_value_t = 1)]
    pub cpus: usize,
    /// Time limit per task, as sbatch takes it.
    #[arg(long, default_value = "01:00:00")]
    pub time: String,
    /// Partition (omitted when not given).
    #[arg(long)]
    pub partition: Option<String>,
}

fn shard(a: &SweepArgs) -> anyhow::Result<Option<Shard>> {
    Ok(match (a.shard.as_deref(), a.shards) {
        (None, None) => None,
        (Some("auto"), Some(n)) => Some(Shard::auto(n)?),
        (Some("auto"), None) => anyhow::bail!("--shard auto needs --shards N"),
        (Some(s), None) => Some(Shard::parse(s)?),
        (Some(_), Some(_)) => anyhow::bail!("--shards goes with --shard auto only"),
        (None, Some(_)) => anyhow::bail!("--shards needs --shard auto"),
    })
}

pub fn run_sweep(a: SweepArgs) -> anyhow::Result<ExitCode> {
    let shard = shard(&a)?;
    check_out_dir(&a.out, FolderKind::Sweep, false)?;
    let grid = Grid::from_file(&a.grid)?;
    let limit = a
        .max_memory
        .as_deref()
        .map(|m| MemoryLimit::resolve(Some(m)))
        .transpose()?;
    let runs = plan_within(&grid, &a.grid, limit)?;
    let mine: Vec<&PlannedRun> = runs
        .iter()
        .filter(|r| shard.is_none_or(|s| s.owns(r.index)))
        .collect();
    let (jobs, capped) = parallel_runs(&mine, a.jobs, a.max_memory.as_deref())?;
    let mine = mine.len();
    let show = !a.quiet;
    let bar = progress::bar(mine as u64, Unit::Runs, show);
    if show {
        let which = shard
            .map(|s| format!(" (shard {}/{})", s.index, s.count))
            .unwrap_or_default();
        bar.suspend(|| {
            eprintln!(
                "initscope sweep: {} runs in the grid, {mine} here{which}, {jobs} parallel{capped}",
                runs.len()
            )
        });
    }
    let (failed, diverged) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let packing = if a.no_lockstep {
        Packing::Alone
    } else {
        Packing::Lockstep
    };
    let report = run(
        FolderKind::Sweep,
        &grid,
        &runs,
        &a.out,
        jobs,
        shard,
        packing,
        &|e| {
            match e {
                SweepEvent::Done { status, .. } => {
                    if *status == Some(Status::Diverged) {
                        diverged.fetch_add(1, Ordering::Relaxed);
                    }
                }
                SweepEvent::Failed {
                    index,
                    run_id,
                    error,
                } => {
                    failed.fetch_add(1, Ordering::Relaxed);
                    bar.suspend(|| eprintln!("run {index} ({run_id}) failed: {error}"));
                }
            }
            bar.set_message(format!(
                "{} failed, {} diverged",
                failed.load(Ordering::Relaxed),
                diverged.load(Ordering::Relaxed)
            ));
            bar.inc(1);
        },
    )?;
    bar.finish_and_clear();
    if show {
        eprintln!(
            "{} runs: {} ran ({} side by side in lockstep), {} already complete, {} diverged, {} failed",
            report.planned,
            report.ran,
            report.lockstep,
            report.skipped,
            report.diverged,
            report.failed.len()
        );
    }
    if let Some(p) = &report.runs_csv {
        outln!("wrote {}", p.display());
    } else {
        outln!(
            "shard done; run `initscope merge {}` when every shard has finished",
            a.out.display()
        );
    }
    Ok(if report.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

pub fn run_merge(a: MergeArgs) -> anyhow::Result<ExitCode> {
    let mut complete = true;
    for dir in &a.dirs {
        let (path, missing) = merge(dir)?;
        outln!("wrote {}", path.display());
        if !missing.is_empty() {
            complete = false;
            let rec: SweepRecord = serde_json::from_slice(&std::fs::read(dir.join("sweep.json"))?)?;
            outln!("{} of {} runs missing:", missing.len(), rec.runs.len());
            for m in missing.iter().take(20) {
                outln!("  run {} ({}) {}", m.index, m.run_id, m.values.join(" "));
            }
            if missing.len() > 20 {
                outln!("  ... and {} more", missing.len() - 20);
            }
            if let Some(n) = rec.shards {
                outln!(
                    "resubmit with: sbatch --array={} ...",
                    array_indices(&missing, n)
                );
            }
        }
    }
    Ok(if complete {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn absolute(p: &Path) -> anyhow::Result<PathBuf> {
    Ok(if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()?.join(p)
    })
}

pub fn run_slurm(a: SlurmArgs) -> anyhow::Result<ExitCode> {
    if a.shards == 0 || a.cpus == 0 {
        anyhow::bail!("--shards and --cpus must be at least 1");
    }
    // Validate the grid now, so a broken grid fails here and not on the cluster.
    check_out_dir(&a.out, FolderKind::Sweep, false)?;
    let grid = Grid::from_file(&a.grid)?;
    let runs = plan(&grid, &a.grid)?;
    let exe = std::env::current_exe()?;
    let (grid_path, out) = (absolute(&a.grid)?, absolute(&a.out)?);
    let partition = a
        .partition
        .as_ref()
        .map(|p| format!("#SBATCH --partition={p}\n"))
        .unwrap_or_default();
    let merge_partition = a
        .partition
        .as_ref()
        .map(|p| format!(" --partition={p}"))
        .unwrap_or_default();
    outln!(
        r#"#!/bin/bash
# initscope sweep on Slurm: {runs} runs in {shards} array tasks, then a merge job.
# Generated by `initscope slurm`; submit with `bash THIS_FILE`.
set -euo pipefail
mkdir -p '{out}'
array_id=$(sbatch --parsable <<'SBATCH'
#!/bin/bash
#SBATCH --job-name=initscope-sweep
#SBATCH --array=0-{last}
#SBATCH --cpus-per-task={cpus}
#SBATCH --time={time}
#SBATCH --output={out}/slurm-%A_%a.out
{partition}exec '{exe}' sweep '{grid}' --out '{out}' --shard auto --shards {shards} --jobs {cpus} --quiet
SBATCH
)
# afterany: merge even when a task failed, so runs.csv lists what is missing.
sbatch --parsable --job-name=initscope-merge --dependency=afterany:${{array_id}}{merge_partition} \
  --output='{out}/slurm-merge-%j.out' --wrap="'{exe}' merge '{out}'"
echo "submitted array job ${{array_id}}"
"#,
        runs = runs.len(),
        shards = a.shards,
        last = a.shards - 1,
        cpus = a.cpus,
        time = a.time,
        out = out.display(),
        grid = grid_path.display(),
        exe = exe.display(),
    );
    Ok(ExitCode::SUCCESS)
}
