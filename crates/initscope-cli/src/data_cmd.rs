//! `initscope data list | info | export`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, Subcommand};
use initscope::config::check_data_dir;
use initscope::data::{
    export_csv, export_npz, idx, search_dirs, DataOptions, DataSpec, Dataset, ImageSet, Labels,
    Split, Task, TaskKind, BUILTIN_NAMES,
};
use initscope::memory::MemoryLimit;
use initscope::output::write_file_atomically;

#[derive(Args, Debug)]
pub struct DataArgs {
    #[command(subcommand)]
    pub command: DataCommand,
}

/// How a source is read (as in `train`).
#[derive(Args, Debug, Clone)]
pub struct LoadArgs {
    /// Directory searched first for fashion-mnist/mnist.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// CSV label column (0-based index or header name).
    #[arg(long)]
    pub label_column: Option<String>,
    /// classification or regression.
    #[arg(long)]
    pub task: Option<String>,
    /// Test hold-out for sources without a test split.
    #[arg(long, default_value_t = 0.2)]
    pub test_fraction: f64,
    /// Validation hold-out of the training split.
    #[arg(long, default_value_t = 0.0)]
    pub val_fraction: f64,
    /// Standardize with the training split's statistics.
    #[arg(long)]
    pub standardize: bool,
    /// Memory loading may take, e.g. 4G [default: the smaller of the cgroup's limit and
    /// MemAvailable]; a source estimated above it is refused before it is read.
    #[arg(long, value_name = "SIZE")]
    pub max_memory: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum DataCommand {
    /// The built-in datasets, and whether the file-backed ones are present.
    List {
        /// Directory searched first for fashion-mnist/mnist.
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Shapes, classes, counts, value ranges, load time and peak memory of a dataset.
    Info {
        /// A built-in name (with options) or a file: PATH.npz, PATH.csv, idx:IMG,LBL, npy:X,Y.
        data: String,
        #[command(flatten)]
        load: LoadArgs,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write a dataset as .npz (x, y, x_test, y_test) or .csv (train to FILE.csv, test to
    /// FILE-test.csv), so Python users look at the same numbers.
    Export {
        /// A built-in name (with options, e.g. moons:n=512) or a file: PATH.npz, PATH.csv,
        /// idx:IMG,LBL, npy:X,Y.
        data: String,
        /// The file to write: FILE.npz (arrays x, y, x_test, y_test) or FILE.csv (the training
        /// split; the test split goes to FILE-test.csv beside it). An existing file is refused
        /// without --force.
        #[arg(long, value_name = "FILE.npz|FILE.csv")]
        out: PathBuf,
        /// Replace existing files.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        load: LoadArgs,
    },
}

fn load(spec: &str, a: &LoadArgs) -> anyhow::Result<Dataset<'static>> {
    let spec = DataSpec::parse("data", spec)?;
    let task = a
        .task
        .as_deref()
        .map(|t| TaskKind::parse("--task", t))
        .transpose()?;
    let options = DataOptions {
        label_column: a.label_column.clone(),
        task,
        test_fraction: a.test_fraction,
        val_fraction: a.val_fraction,
        standardize: a.standardize,
    };
    if let Some(dir) = &a.data_dir {
        check_data_dir(&dir.display().to_string())?;
    }
    let limit = MemoryLimit::resolve(a.max_memory.as_deref())?;
    spec.estimate()?
        .check("data", &format!("'{spec}'"), limit)?;
    Ok(spec.load(&options, a.data_dir.as_deref())?)
}

/// Peak resident memory of this process in bytes (Linux /proc), if known.
fn peak_memory() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn split_json(s: &Split) -> serde_json::Value {
    let stats = s.x.column_stats();
    let min = stats.iter().map(|c| c.0).fold(f64::INFINITY, f64::min);
    let max = stats.iter().map(|c| c.1).fold(f64::NEG_INFINITY, f64::max);
    let mean = stats.iter().map(|c| c.2).sum::<f64>() / stats.len().max(1) as f64;
    let counts = match &s.y {
        Labels::Classes(c) => {
            let k = c.iter().copied().max().map_or(0, |m| m as usize + 1);
            let mut counts = vec![0usize; k];
            c.iter().for_each(|&l| counts[l as usize] += 1);
            serde_json::json!(counts)
        }
        Labels::Values(_) => serde_json::Value::Null,
    };
    serde_json::json!({"rows": s.len(), "min": min, "max": max, "mean": mean, "class_counts": counts})
}

pub fn run(a: DataArgs) -> anyhow::Result<ExitCode> {
    match a.command {
        DataCommand::List { data_dir } => {
            if let Some(dir) = &data_dir {
                check_data_dir(&dir.display().to_string())?;
            }
            let dirs = search_dirs(data_dir.as_deref());
            for name in BUILTIN_NAMES {
                let note = match *name {
                    "fashion-mnist" | "mnist" => {
                        let set = if *name == "mnist" {
                            ImageSet::Mnist
                        } else {
                            ImageSet::FashionMnist
                        };
                        match idx::find_image_set(set, &dirs) {
                            Some(files) => format!(
                                "found in {}",
                                files[0].parent().unwrap_or(Path::new(".")).display()
                            ),
                            None => "not found (see `initscope data info`)".to_string(),
                        }
                    }
                    "mnist1d" => {
                        "generated (Greydanus 2020 recipe), 4000/1000, 40 features, 10 classes"
                            .into()
                    }
                    "teacher" => "generated regression (random tanh teacher MLP)".into(),
                    _ => "generated 2-D classification".into(),
                };
                outln!("{name:<14} {note}");
            }
            outln!("files: PATH.npz (x, y[, x_test, y_test]), PATH.csv or csv:PATH, idx:IMAGES,LABELS, npy:X,Y");
        }
        DataCommand::Info {
            data,
            load: la,
            json,
        } => {
            let started = Instant::now();
            let d = load(&data, &la)?;
            let seconds = started.elapsed().as_secs_f64();
            let precision = match &d.train.x {
                initscope::data::Features::F32(_) => "f32",
                initscope::data::Features::F64(_) => "f64",
            };
            let (task, size) = match d.task {
                Task::Classification { classes } => ("classification", classes),
                Task::Regression { outputs } => ("regression", outputs),
            };
            let doc = serde_json::json!({
                "name": d.name, "task": task,
                if task == "classification" { "classes" } else { "outputs" }: size,
                "features": d.input_dim(), "dtype": precision,
                "train": split_json(&d.train), "test": split_json(&d.test),
                "val": d.val.as_ref().map(split_json),
                "load_seconds": seconds, "peak_memory_bytes": peak_memory(),
            });
            if json {
                outln!("{}", serde_json::to_string_pretty(&doc)?);
            } else {
                outln!(
                    "{}: {task}, {size} {}, {} features ({precision})",
                    d.name,
                    if task == "classification" {
                        "classes"
                    } else {
                        "outputs"
                    },
                    d.input_dim()
                );
                for (what, s) in [
                    ("train", Some(&d.train)),
                    ("val", d.val.as_ref()),
                    ("test", Some(&d.test)),
                ] {
                    if let Some(s) = s {
                        let j = split_json(s);
                        outln!(
                            "  {what:<5} {:>6} rows, values in [{:.4}, {:.4}], mean {:.4}{}",
                            s.len(),
                            j["min"].as_f64().unwrap_or(f64::NAN),
                            j["max"].as_f64().unwrap_or(f64::NAN),
                            j["mean"].as_f64().unwrap_or(f64::NAN),
                            if j["class_counts"].is_null() {
                                String::new()
                            } else {
                                format!(", class counts {}", j["class_counts"])
                            }
                        );
                    }
                }
                let mem = peak_memory()
                    .map(|b| format!("{:.1} MiB", b as f64 / (1 << 20) as f64))
                    .unwrap_or_else(|| "unknown".into());
                outln!("  loaded in {seconds:.2} s, peak memory {mem}");
            }
        }
        DataCommand::Export {
            data,
            out,
            force,
            load: la,
        } => {
            let d = load(&data, &la)?;
            let ext = out
                .extension()
                .and_then(|e| e.to_str())
                .map(str::to_ascii_lowercase);
            let files: Vec<(PathBuf, Vec<u8>)> = match ext.as_deref() {
                Some("npz") => vec![(out.clone(), export_npz(&d)?)],
                Some("csv") => {
                    let stem = out.with_extension("");
                    let test = PathBuf::from(format!("{}-test.csv", stem.display()));
                    vec![
                        (out.clone(), export_csv(&d.train)?),
                        (test, export_csv(&d.test)?),
                    ]
                }
                _ => anyhow::bail!(
                    "--out {}: the extension must be .npz or .csv",
                    out.display()
                ),
            };
            for (path, _) in &files {
                if path.exists() && !force {
                    anyhow::bail!("{}: exists (use --force to replace it)", path.display());
                }
            }
            for (path, bytes) in &files {
                write_file_atomically(path, bytes)?;
                outln!("wrote {} ({} bytes)", path.display(), bytes.len());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
