//! Writing a run directory: `config.json`, `metrics.csv`, `weights.safetensors`, `summary.json`
//! and a TensorBoard event file.
//!
//! The directory is written under a temporary sibling name and renamed into place when complete,
//! so an interrupted or failed write never leaves a half-written run directory behind.

pub mod json;
pub mod safetensors;
pub mod tensorboard;

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::train::{MetricRecord, RunOutput};

/// The TensorBoard event file of a run directory (`tensorboard --logdir` finds it by the
/// `tfevents` in its name).
pub const EVENT_FILE: &str = "events.out.tfevents.initscope";

/// Refuses `dir` when it exists and is not an empty directory, unless `force`.
pub fn check_out_dir(dir: &Path, force: bool) -> Result<()> {
    if !dir.exists() || force {
        return Ok(());
    }
    let empty = fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .next()
        .is_none();
    if empty {
        Ok(())
    } else {
        Err(Error::file(
            dir,
            "output directory exists and is not empty (use --force to replace it)",
        ))
    }
}

/// `metrics.csv` in long format: `run_id,step,metric,layer,value` (layer empty for whole-network
/// metrics; non-finite values written as NaN/inf as Rust formats them).
pub fn metrics_csv(run_id: &str, metrics: &[MetricRecord]) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let csv_err = |e: csv::Error| Error::file("metrics.csv", e.to_string());
    w.write_record(["run_id", "step", "metric", "layer", "value"])
        .map_err(csv_err)?;
    for m in metrics {
        let layer = m.layer.map(|l| l.to_string()).unwrap_or_default();
        w.write_record([
            run_id,
            &m.step.to_string(),
            &m.metric,
            &layer,
            &format!("{}", m.value),
        ])
        .map_err(csv_err)?;
    }
    w.into_inner()
        .map_err(|e| Error::file("metrics.csv", e.to_string()))
}

/// Writes the run directory `dir` atomically (temporary name, then rename). With `force`, an
/// existing `dir` is replaced.
pub fn write_run_dir(dir: &Path, out: &RunOutput, force: bool) -> Result<()> {
    check_out_dir(dir, force)?;
    let files: Vec<(&str, Vec<u8>)> = vec![
        (
            "config.json",
            serde_json::to_vec_pretty(&out.config).expect("config serialises"),
        ),
        (
            "metrics.csv",
            metrics_csv(&out.summary.run_id, &out.metrics)?,
        ),
        (
            "weights.safetensors",
            safetensors::to_bytes(&out.params, &out.config)?,
        ),
        (
            "summary.json",
            serde_json::to_vec_pretty(&out.summary).expect("summary serialises"),
        ),
        (
            "histograms.json",
            serde_json::to_vec(&out.histograms).expect("histograms serialise"),
        ),
        (
            EVENT_FILE,
            tensorboard::event_file(&out.metrics, &out.histograms, out.started_at),
        ),
    ];
    write_dir_atomically(dir, &files)
}

/// Writes `files` into a fresh temporary sibling of `dir`, then renames it to `dir` (removing an
/// existing empty or forced `dir` first). On any failure the temporary directory is removed.
pub fn write_dir_atomically(dir: &Path, files: &[(&str, Vec<u8>)]) -> Result<()> {
    let tmp = temp_sibling(dir);
    let result = (|| {
        fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
        for (i, (name, bytes)) in files.iter().enumerate() {
            let path = tmp.join(name);
            fs::write(&path, bytes).map_err(|e| Error::io(&path, e))?;
            if i == 0 {
                test_hook_stall();
            }
        }
        if dir.exists() {
            fs::remove_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        fs::rename(&tmp, dir).map_err(|e| Error::io(dir, e))
    })();
    if result.is_err() {
        let _ = fs::remove_dir_all(&tmp);
    }
    result
}

/// Writes one file atomically: a temporary sibling, then a rename.
pub fn write_file_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_sibling(path);
    let result = fs::write(&tmp, bytes)
        .map_err(|e| Error::io(&tmp, e))
        .and_then(|_| fs::rename(&tmp, path).map_err(|e| Error::io(path, e)));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Test hook: with `INITSCOPE_TEST_STALL_WRITE_MS` set, a run directory's writer pauses after its
/// first file, so a test can kill the process in the middle of writing a run and check that the
/// sweep recovers. Unset (always, outside tests) it does nothing.
fn test_hook_stall() {
    if let Some(ms) = std::env::var_os("INITSCOPE_TEST_STALL_WRITE_MS")
        .and_then(|v| v.to_str()?.parse::<u64>().ok())
    {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
}

fn temp_sibling(dir: &Path) -> PathBuf {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "run".to_string());
    let tmp_name = format!(".{name}.tmp-{}", std::process::id());
    match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.join(tmp_name),
        _ => PathBuf::from(tmp_name),
    }
}
