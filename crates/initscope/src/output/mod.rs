//! Writing a run directory: `config.json`, `metrics.csv`, `weights.safetensors`, `summary.json`
//! and a TensorBoard event file.
//!
//! The directory is written under a temporary sibling name, flushed, and renamed into place when
//! complete, so an interrupted or failed write never leaves a half-written run directory behind;
//! [`folder`] holds the `--out` rule every command follows.

pub mod folder;
pub mod safetensors;
pub mod tensorboard;
pub mod wide;

use std::path::Path;

pub use folder::{
    check_out_dir, write_dir_atomically, write_file_atomically, Existing, FolderKind,
};

use crate::error::{Error, Result};
use crate::records::{MetricRecord, RunOutput};

/// The TensorBoard event file of a run directory (`tensorboard --logdir` finds it by the
/// `tfevents` in its name).
pub const EVENT_FILE: &str = "events.out.tfevents.initscope";

/// `metrics.csv` in long format: `run_id,step,metric,layer,value` (layer empty for whole-network
/// metrics; non-finite values written as NaN/inf as Rust formats them). A network with tensors
/// outside its linear layers (`--net`: norms, gates, shifts) records metrics of those tensors,
/// and its file has a `module` column before `value`: the tensor's `state_dict` path, empty for
/// the other metrics.
pub fn metrics_csv(run_id: &str, metrics: &[MetricRecord]) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let csv_err = |e: csv::Error| Error::file("metrics.csv", e.to_string());
    let modules = metrics.iter().any(|m| m.module.is_some());
    if modules {
        w.write_record(["run_id", "step", "metric", "layer", "module", "value"])
    } else {
        w.write_record(["run_id", "step", "metric", "layer", "value"])
    }
    .map_err(csv_err)?;
    for m in metrics {
        let layer = m.layer.map(|l| l.to_string()).unwrap_or_default();
        let (step, value) = (m.step.to_string(), format!("{}", m.value));
        if modules {
            let module = m.module.as_deref().unwrap_or_default();
            w.write_record([run_id, &step, &m.metric, &layer, module, &value])
        } else {
            w.write_record([run_id, &step, &m.metric, &layer, &value])
        }
        .map_err(csv_err)?;
    }
    w.into_inner()
        .map_err(|e| Error::file("metrics.csv", e.to_string()))
}

/// Writes the run directory `dir` atomically and durably (see [`folder`]). With `force`, an
/// existing initscope run folder is replaced once the new one is complete; anything else that
/// exists is refused by the `--out` rule. Returns the names of the files written, in order,
/// the folder's marker ([`folder::MARKER`]) last.
pub fn write_run_dir(dir: &Path, out: &RunOutput, force: bool) -> Result<Vec<String>> {
    check_out_dir(dir, FolderKind::Run, force)?;
    let files = run_files(out)?;
    write_dir_atomically(dir, FolderKind::Run, &files, force)?;
    let mut names: Vec<String> = files.iter().map(|(n, _)| n.to_string()).collect();
    names.push(folder::MARKER.to_string());
    Ok(names)
}

/// The files of a run directory, named, in the order they are written.
pub fn run_files(out: &RunOutput) -> Result<Vec<(&'static str, Vec<u8>)>> {
    Ok(vec![
        ("config.json", out.config.to_config_json()),
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
            tensorboard::event_file(
                &out.metrics,
                &out.histograms,
                out.started_at,
                Some(tensorboard::session_start_value(
                    &out.config,
                    &out.summary.run_id,
                    out.started_at,
                )),
            ),
        ),
    ])
}
