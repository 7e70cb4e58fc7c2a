//! Datasets: built-in synthetic sets, mnist1d, Fashion-MNIST/MNIST, and the user's IDX, CSV and
//! NumPy files, behind one [`DataSpec`] (DESIGN.md's data spec) and a few [`DataOptions`].
//!
//! A dataset is train and test splits (and a validation split when asked). Features are stored
//! in f32 or f64 as the source provides them ([`Features`]); training converts them to the run's
//! precision once (and reads them in place when they are stored in it). The splits of a data set
//! are lists of rows over one shared store ([`Rows`]): holding rows out copies no features.
//! Sources without a test split (a CSV file, an `.npy` pair, an `.npz` without `x_test`) hold
//! out `test_fraction` of their rows; `val_fraction` of the training rows become the validation
//! split; both hold-outs are drawn with the fixed data stream, so they never depend on the run
//! seed.

pub mod csv;
mod estimate;
pub mod idx;
pub mod mnist1d;
pub mod npy;
mod rows;
pub mod synthetic;

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::loss::Loss;
use crate::matrix::Matrix;
use crate::rng::{self, Stream};
use crate::scalar::Float;
use crate::spec::{fmt_f64, Spec};

pub use rows::{RowSource, Rows};
pub use synthetic::Synthetic;

/// What the targets are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    /// Integer labels 0..classes.
    Classification { classes: usize },
    /// Real-valued targets with `outputs` columns.
    Regression { outputs: usize },
}

/// The kind of target a file holds, when the user says so.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskKind {
    Classification,
    Regression,
}

impl TaskKind {
    /// `classification` or `regression`, naming `field` in errors.
    pub fn parse(field: &str, text: &str) -> Result<TaskKind> {
        match text.trim().to_ascii_lowercase().as_str() {
            "classification" => Ok(TaskKind::Classification),
            "regression" => Ok(TaskKind::Regression),
            _ => Err(Error::spec(
                field,
                text,
                "must be classification or regression",
            )),
        }
    }
}

/// The targets of a split.
#[derive(Clone, Debug, PartialEq)]
pub enum Labels {
    Classes(Vec<u32>),
    Values(Matrix<f64>), // (n, outputs)
}

impl Labels {
    /// The loss of the best constant predictor on these labels under `loss`
    /// ([`Loss::constant_baseline_classes`], [`Loss::constant_baseline_values`]).
    pub fn constant_baseline(&self, loss: Loss, outputs: usize) -> f64 {
        match self {
            Labels::Classes(c) => loss.constant_baseline_classes(c, outputs),
            Labels::Values(v) => Loss::constant_baseline_values(v),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Labels::Classes(c) => c.len(),
            Labels::Values(v) => v.rows(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The rows `idx`, in that order.
    pub fn select(&self, idx: &[usize]) -> Labels {
        match self {
            Labels::Classes(c) => Labels::Classes(idx.iter().map(|&i| c[i]).collect()),
            Labels::Values(v) => Labels::Values(v.select_rows(idx)),
        }
    }
}

/// Features `(n, dim)` in the precision the source provides, as [`Rows`] of a store that the
/// splits of a data set share: owned (`'static`), or borrowed for `'a` from arrays the caller
/// holds (the Python package's, [`from_arrays`]).
#[derive(Clone, Debug, PartialEq)]
pub enum Features<'a> {
    F32(Rows<'a, f32>),
    F64(Rows<'a, f64>),
}

impl From<Matrix<f32>> for Features<'static> {
    fn from(m: Matrix<f32>) -> Self {
        Features::F32(m.into())
    }
}

impl From<Matrix<f64>> for Features<'static> {
    fn from(m: Matrix<f64>) -> Self {
        Features::F64(m.into())
    }
}

impl<'a> Features<'a> {
    pub fn rows(&self) -> usize {
        match self {
            Features::F32(m) => m.rows(),
            Features::F64(m) => m.rows(),
        }
    }

    pub fn cols(&self) -> usize {
        match self {
            Features::F32(m) => m.cols(),
            Features::F64(m) => m.cols(),
        }
    }

    /// Entry (i, j) as f64.
    pub fn get(&self, i: usize, j: usize) -> f64 {
        match self {
            Features::F32(m) => m.get(i, j) as f64,
            Features::F64(m) => m.get(i, j),
        }
    }

    /// The features in precision `T`: a view of the store when they are stored in it (no copy
    /// of a data set for training in its own precision), converted otherwise (one copy).
    pub fn as_rows<T: Float>(&self) -> Rows<'_, T> {
        let stored = match self {
            Features::F32(m) => m.view_as(T::from_f32_slice),
            Features::F64(m) => m.view_as(T::from_f64_slice),
        };
        stored.unwrap_or_else(|| match self {
            Features::F32(m) => m.cast(),
            Features::F64(m) => m.cast(),
        })
    }

    /// All features in precision `T` (one copy).
    pub fn to_matrix<T: Float>(&self) -> Matrix<T> {
        match self {
            Features::F32(m) => m.to_matrix().cast(),
            Features::F64(m) => m.to_matrix().cast(),
        }
    }

    /// The rows `idx` in f64.
    pub fn select_f64(&self, idx: &[usize]) -> Matrix<f64> {
        match self {
            Features::F32(m) => m.select_rows(idx).cast(),
            Features::F64(m) => m.select_rows(idx),
        }
    }

    /// The rows `idx`, keeping the precision and sharing the store (no copy of values).
    pub fn select(&self, idx: &[usize]) -> Features<'a> {
        match self {
            Features::F32(m) => Features::F32(m.select(idx)),
            Features::F64(m) => Features::F64(m.select(idx)),
        }
    }

    /// The first `n` rows in f64.
    pub fn head_f64(&self, n: usize) -> Matrix<f64> {
        let idx: Vec<usize> = (0..n.min(self.rows())).collect();
        self.select_f64(&idx)
    }

    /// Per-column (min, max, mean, std), accumulated in f64.
    pub fn column_stats(&self) -> Vec<(f64, f64, f64, f64)> {
        let (n, d) = (self.rows(), self.cols());
        let mut acc = vec![(f64::INFINITY, f64::NEG_INFINITY, 0.0, 0.0); d];
        for i in 0..n {
            for (j, a) in acc.iter_mut().enumerate() {
                let v = self.get(i, j);
                a.0 = a.0.min(v);
                a.1 = a.1.max(v);
                a.2 += v;
                a.3 += v * v;
            }
        }
        acc.into_iter()
            .map(|(lo, hi, s, s2)| {
                let mean = s / n.max(1) as f64;
                (
                    lo,
                    hi,
                    mean,
                    (s2 / n.max(1) as f64 - mean * mean).max(0.0).sqrt(),
                )
            })
            .collect()
    }

    /// Applies `x -> (x - mean_j) / std_j` per column (std 0 columns are only centred): in place
    /// when the split owns its store alone, else into a store of its own (one copy).
    pub fn standardize(&mut self, stats: &[(f64, f64)]) {
        fn apply<T: Float>(m: &mut Rows<'_, T>, stats: &[(f64, f64)]) {
            m.map_values(|v, j| {
                let (mean, std) = stats[j];
                let s = if std > 0.0 { std } else { 1.0 };
                T::from_f64((v.to_f64() - mean) / s)
            });
        }
        match self {
            Features::F32(m) => apply(m, stats),
            Features::F64(m) => apply(m, stats),
        }
    }
}

/// One split: features `(n, dim)` and their targets.
#[derive(Clone, Debug, PartialEq)]
pub struct Split<'a> {
    pub x: Features<'a>,
    pub y: Labels,
}

impl<'a> Split<'a> {
    pub fn len(&self) -> usize {
        self.x.rows()
    }

    pub fn is_empty(&self) -> bool {
        self.x.rows() == 0
    }

    /// The rows `idx` (the features share the store).
    pub fn select(&self, idx: &[usize]) -> Split<'a> {
        Split {
            x: self.x.select(idx),
            y: self.y.select(idx),
        }
    }
}

/// A loaded dataset: owned (`Dataset<'static>`, every loader's), or borrowing the features of
/// arrays the caller holds for `'a` ([`from_arrays`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset<'a> {
    /// The canonical spec it was made from.
    pub name: String,
    pub task: Task,
    pub train: Split<'a>,
    pub val: Option<Split<'a>>,
    pub test: Split<'a>,
}

impl Dataset<'_> {
    pub fn input_dim(&self) -> usize {
        self.train.x.cols()
    }
}

/// The image sets read from IDX files found on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageSet {
    FashionMnist,
    Mnist,
}

impl ImageSet {
    pub fn name(self) -> &'static str {
        match self {
            ImageSet::FashionMnist => "fashion-mnist",
            ImageSet::Mnist => "mnist",
        }
    }
}

/// Where the data comes from (DESIGN.md: a built-in name, a file whose extension decides the
/// format, or an explicit `idx:`, `npy:`, `csv:`, `npz:` prefix). `Arrays` are arrays handed
/// over in memory (initscope's Python package, [`from_arrays`]): there is no file to read, so
/// the spec names them by a digest of their contents (`arrays:DIGEST`, 16 hex digits of SHA-256)
/// and the run id follows the data; such a spec cannot be loaded, the arrays come with it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum DataSpec {
    Synthetic(Synthetic),
    Mnist1d(mnist1d::Mnist1d),
    Images(ImageSet),
    Idx { images: String, labels: String },
    Csv { path: String },
    Npy { x: String, y: String },
    Npz { path: String },
    Arrays { digest: String },
}

/// Built-in dataset names (synthetic ones take options, e.g. `moons:n=512,noise=0.2`).
pub const BUILTIN_NAMES: &[&str] = &[
    "xor",
    "moons",
    "circles",
    "spirals",
    "blobs",
    "teacher",
    "mnist1d",
    "fashion-mnist",
    "mnist",
];

/// Options that shape how a source becomes a dataset (part of the run config).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DataOptions {
    /// CSV: the label column, a 0-based index or a header name (default: the last column).
    pub label_column: Option<String>,
    /// CSV/NumPy: classification or regression (default: classification when every label is a
    /// non-negative integer, regression otherwise).
    pub task: Option<TaskKind>,
    /// Fraction of rows held out as the test split for sources without one.
    pub test_fraction: f64,
    /// Fraction of training rows held out as a validation split.
    pub val_fraction: f64,
    /// Standardize every feature with the training split's mean and std.
    pub standardize: bool,
}

impl Default for DataOptions {
    fn default() -> Self {
        DataOptions {
            label_column: None,
            task: None,
            test_fraction: 0.2,
            val_fraction: 0.0,
            standardize: false,
        }
    }
}

/// Opens a data file for reading, refusing a directory by name (`PATH: is a directory, not
/// WHAT`) rather than failing later with the OS's less helpful read or seek error. Returns the
/// file and its length in bytes.
pub(crate) fn open_file(path: &Path, what: &str) -> Result<(std::fs::File, u64)> {
    let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let meta = f.metadata().map_err(|e| Error::io(path, e))?;
    if meta.is_dir() {
        return Err(Error::file(path, format!("is a directory, not {what}")));
    }
    Ok((f, meta.len()))
}

/// Where named image sets are searched: `--data-dir`, then `$INITSCOPE_DATA`, then
/// `/usr/share/datasets` (each with the set's name appended, or the directory itself).
pub fn search_dirs(data_dir: Option<&Path>) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(d) = data_dir {
        dirs.push(d.to_path_buf());
    }
    if let Some(d) = std::env::var_os("INITSCOPE_DATA") {
        dirs.push(PathBuf::from(d));
    }
    dirs.push(PathBuf::from("/usr/share/datasets"));
    dirs
}

impl DataSpec {
    pub fn parse(field: &str, text: &str) -> Result<DataSpec> {
        let t = text.trim();
        if t.is_empty() {
            return Err(Error::spec(field, text, "empty data spec"));
        }
        let (prefix, rest) = t.split_once(':').unwrap_or((t, ""));
        let pair = |what: &str| -> Result<(String, String)> {
            match rest.split_once(',') {
                Some((a, b)) if !a.trim().is_empty() && !b.trim().is_empty() => {
                    Ok((a.trim().to_string(), b.trim().to_string()))
                }
                _ => Err(Error::spec(
                    field,
                    text,
                    format!("{what} needs two paths: {what}:FIRST,SECOND"),
                )),
            }
        };
        let one = || -> Result<String> {
            if rest.trim().is_empty() {
                Err(Error::spec(field, text, "a path is needed after the ':'"))
            } else {
                Ok(rest.trim().to_string())
            }
        };
        match prefix.to_ascii_lowercase().as_str() {
            "idx" => {
                let (images, labels) = pair("idx")?;
                return Ok(DataSpec::Idx { images, labels });
            }
            "npy" => {
                let (x, y) = pair("npy")?;
                return Ok(DataSpec::Npy { x, y });
            }
            "csv" => return Ok(DataSpec::Csv { path: one()? }),
            "npz" => return Ok(DataSpec::Npz { path: one()? }),
            "arrays" => {
                let digest = rest.trim();
                if digest.len() != 16 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(Error::spec(
                        field,
                        text,
                        "arrays:DIGEST names arrays passed in memory by 16 hex digits",
                    ));
                }
                return Ok(DataSpec::Arrays {
                    digest: digest.to_ascii_lowercase(),
                });
            }
            _ => {}
        }
        let lower = t.to_ascii_lowercase();
        if lower.ends_with(".npz") {
            return Ok(DataSpec::Npz {
                path: t.to_string(),
            });
        }
        if lower.ends_with(".csv") {
            return Ok(DataSpec::Csv {
                path: t.to_string(),
            });
        }
        let spec = Spec::parse(field, t)?;
        match spec.name.as_str() {
            "fashion-mnist" | "fashion_mnist" | "fmnist" => {
                spec.bind(&[])?;
                Ok(DataSpec::Images(ImageSet::FashionMnist))
            }
            "mnist" => {
                spec.bind(&[])?;
                Ok(DataSpec::Images(ImageSet::Mnist))
            }
            "mnist1d" => Ok(DataSpec::Mnist1d(mnist1d::Mnist1d::from_spec(&spec)?)),
            name if synthetic::SYNTHETIC_NAMES.contains(&name) => Ok(DataSpec::Synthetic(Synthetic::from_spec(&spec)?)),
            other => Err(spec.error(format!(
                "unknown dataset '{other}' (built-in: {}; or a file: PATH.npz, PATH.csv, idx:IMAGES,LABELS, npy:X,Y, csv:PATH)",
                BUILTIN_NAMES.join(", ")
            ))),
        }
    }

    /// The canonical spec string.
    pub fn spec(&self) -> String {
        match self {
            DataSpec::Synthetic(s) => s.spec(),
            DataSpec::Mnist1d(m) => m.spec(),
            DataSpec::Images(set) => set.name().to_string(),
            DataSpec::Idx { images, labels } => format!("idx:{images},{labels}"),
            DataSpec::Csv { path } => format!("csv:{path}"),
            DataSpec::Npy { x, y } => format!("npy:{x},{y}"),
            DataSpec::Npz { path } => format!("npz:{path}"),
            DataSpec::Arrays { digest } => format!("arrays:{digest}"),
        }
    }

    /// Reads or generates the dataset and applies the options.
    pub fn load(&self, options: &DataOptions, data_dir: Option<&Path>) -> Result<Dataset<'static>> {
        let (task, train, test) = match self {
            DataSpec::Synthetic(s) => {
                let d = s.generate();
                (d.task, d.train, Some(d.test))
            }
            DataSpec::Mnist1d(m) => {
                let (train, test) = m.generate();
                (Task::Classification { classes: 10 }, train, Some(test))
            }
            DataSpec::Images(set) => {
                let (train, test) = idx::load_image_set(*set, &search_dirs(data_dir))?;
                (Task::Classification { classes: 10 }, train, Some(test))
            }
            DataSpec::Idx { images, labels } => {
                let split = idx::load_pair(Path::new(images), Path::new(labels))?;
                let classes = classes_of(&split.y, Path::new(labels))?;
                (Task::Classification { classes }, split, None)
            }
            DataSpec::Csv { path } => {
                let (x, y) = csv::load(Path::new(path), options.label_column.as_deref())?;
                let (task, y) = targets(y, options.task, Path::new(path))?;
                (
                    task,
                    Split {
                        x: Features::from(x),
                        y,
                    },
                    None,
                )
            }
            DataSpec::Npy { x, y } => {
                let (xs, ys) = npy::read_pair(Path::new(x), Path::new(y))?;
                let (task, labels) = targets(ys, options.task, Path::new(y))?;
                (task, Split { x: xs, y: labels }, None)
            }
            DataSpec::Npz { path } => {
                let arrays = npy::read_npz(Path::new(path))?;
                let (task, labels) = targets(arrays.y, options.task, Path::new(path))?;
                let test = match (arrays.x_test, arrays.y_test) {
                    (Some(xt), Some(yt)) => {
                        let (_, yt) = targets(yt, Some(task_kind(task)), Path::new(path))?;
                        Some(Split { x: xt, y: yt })
                    }
                    (None, None) => None,
                    _ => {
                        return Err(Error::file(
                            path,
                            "has only one of x_test and y_test; give both or neither",
                        ))
                    }
                };
                (
                    task,
                    Split {
                        x: arrays.x,
                        y: labels,
                    },
                    test,
                )
            }
            DataSpec::Arrays { .. } => {
                return Err(Error::spec(
                    "--data",
                    &self.spec(),
                    "names arrays that were passed in memory (the Python package's data=(X, y)); a spec cannot load them",
                ))
            }
        };
        finish(self.spec(), task, train, test, options)
    }
}

fn task_kind(task: Task) -> TaskKind {
    match task {
        Task::Classification { .. } => TaskKind::Classification,
        Task::Regression { .. } => TaskKind::Regression,
    }
}

/// Largest class count accepted (a label beyond it is almost certainly not a class index).
pub const MAX_CLASSES: usize = 100_000;

fn classes_of(y: &Labels, path: &Path) -> Result<usize> {
    match y {
        Labels::Classes(c) => {
            let k = c.iter().copied().max().map_or(0, |m| m as usize + 1);
            if k > MAX_CLASSES {
                return Err(Error::file(
                    path,
                    format!(
                        "label {} is out of range (at most {MAX_CLASSES} classes)",
                        k - 1
                    ),
                ));
            }
            Ok(k.max(2))
        }
        Labels::Values(_) => Err(Error::file(path, "expected class labels")),
    }
}

/// Turns raw target values (n, k) into labels: classification needs one column of non-negative
/// integers; regression takes any finite values.
fn targets(y: Matrix<f64>, kind: Option<TaskKind>, path: &Path) -> Result<(Task, Labels)> {
    let integral = y.cols() == 1 && y.as_slice().iter().all(|&v| v >= 0.0 && v.fract() == 0.0);
    let kind = kind.unwrap_or(if integral {
        TaskKind::Classification
    } else {
        TaskKind::Regression
    });
    match kind {
        TaskKind::Regression => Ok((Task::Regression { outputs: y.cols() }, Labels::Values(y))),
        TaskKind::Classification => {
            if y.cols() != 1 {
                return Err(Error::file(
                    path,
                    format!("classification needs one label column, found {}", y.cols()),
                ));
            }
            let mut labels = Vec::with_capacity(y.rows());
            for (row, &v) in y.as_slice().iter().enumerate() {
                if v < 0.0 || v.fract() != 0.0 {
                    return Err(Error::file(
                        path,
                        format!("row {row}: label {v} is not a non-negative integer class index"),
                    ));
                }
                if v >= MAX_CLASSES as f64 {
                    return Err(Error::file(
                        path,
                        format!(
                            "row {row}: label {v} is out of range (at most {MAX_CLASSES} classes)"
                        ),
                    ));
                }
                labels.push(v as u32);
            }
            let y = Labels::Classes(labels);
            let classes = classes_of(&y, path)?;
            Ok((Task::Classification { classes }, y))
        }
    }
}

/// A dataset from arrays already in memory (initscope's Python package): features `(n, d)` in
/// the precision they are stored and trained in, targets `(n, k)` as values. The checks and the
/// rules are those of an `npy:X,Y` pair: at least one row and one feature, as many targets as
/// rows, every value finite; one column of non-negative integers is class labels unless
/// `options.task` says otherwise; `test_fraction` of the rows are held out as the test split
/// (and `val_fraction` of the rest for validation) by the same fixed shuffle, so the same
/// arrays in `.npy` files split into the same rows. Errors name the array: `X: ...`, `y: ...`.
/// Returns the dataset's spec (`arrays:DIGEST`, [`DataSpec::Arrays`]) with the dataset.
///
/// The features are not copied: the splits are row lists over `x`'s store (borrowed ones stay
/// borrowed for `'a`); only `options.standardize` makes one standardized copy.
pub fn from_arrays<'a>(
    x: Features<'a>,
    y: Matrix<f64>,
    options: &DataOptions,
) -> Result<(DataSpec, Dataset<'a>)> {
    let (rows, cols) = (x.rows(), x.cols());
    if rows == 0 {
        return Err(Error::file("X", "holds 0 rows"));
    }
    if cols == 0 {
        return Err(Error::file(
            "X",
            format!("has no features (shape ({rows}, 0))"),
        ));
    }
    if y.cols() == 0 {
        return Err(Error::file(
            "y",
            format!("has no target columns (shape ({}, 0))", y.rows()),
        ));
    }
    if y.rows() != rows {
        return Err(Error::file(
            "y",
            format!("{} targets for {rows} feature rows", y.rows()),
        ));
    }
    fn first_nonfinite<'v, T: Float>(
        mut values: impl Iterator<Item = &'v T>,
        cols: usize,
    ) -> Option<(usize, usize, f64)> {
        let i = values.position(|v| !v.to_f64().is_finite())?;
        Some((i / cols, i % cols, f64::NAN))
    }
    let bad = |name: &str, (i, j, v): (usize, usize, f64)| {
        Error::file(
            name,
            format!("element ({i}, {j}) is {v} (NaN and Inf are not data)"),
        )
    };
    let nonfinite = match &x {
        Features::F32(m) => first_nonfinite(m.contiguous().iter(), cols),
        Features::F64(m) => first_nonfinite(m.contiguous().iter(), cols),
    };
    if let Some((i, j, _)) = nonfinite {
        return Err(bad("X", (i, j, x.get(i, j))));
    }
    if let Some((i, j, _)) = first_nonfinite(y.as_slice().iter(), y.cols()) {
        return Err(bad("y", (i, j, y.get(i, j))));
    }
    let spec = DataSpec::Arrays {
        digest: arrays_digest(&x, &y),
    };
    let (task, labels) = targets(y, options.task, Path::new("y"))?;
    let data = finish(spec.spec(), task, Split { x, y: labels }, None, options)?;
    Ok((spec, data))
}

/// The first 16 hex digits of SHA-256 of the arrays: each one's element type, shape and
/// little-endian values.
fn arrays_digest(x: &Features, y: &Matrix<f64>) -> String {
    use sha2::{Digest, Sha256};
    fn feed<T: Float>(h: &mut Sha256, tag: &[u8], m: Rows<'_, T>, put: fn(T, &mut Vec<u8>)) {
        h.update(tag);
        h.update((m.rows() as u64).to_le_bytes());
        h.update((m.cols() as u64).to_le_bytes());
        let mut buf = Vec::with_capacity(1 << 16);
        let values = m.contiguous();
        for chunk in values.chunks(4096) {
            buf.clear();
            for &v in chunk {
                put(v, &mut buf);
            }
            h.update(&buf);
        }
    }
    let mut h = Sha256::new();
    h.update(b"initscope arrays 1\0");
    match x {
        Features::F32(m) => feed(&mut h, b"f32", m.view(), |v, b| {
            b.extend_from_slice(&v.to_le_bytes())
        }),
        Features::F64(m) => feed(&mut h, b"f64", m.view(), |v, b| {
            b.extend_from_slice(&v.to_le_bytes())
        }),
    }
    let y = Rows::borrowed(y.rows(), y.cols(), y.as_slice()).expect("a matrix's own shape");
    feed(&mut h, b"f64", y, |v, b| {
        b.extend_from_slice(&v.to_le_bytes())
    });
    h.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Hold-outs, standardization and final checks.
fn finish<'a>(
    name: String,
    task: Task,
    train: Split<'a>,
    test: Option<Split<'a>>,
    o: &DataOptions,
) -> Result<Dataset<'a>> {
    let fraction = |field: &str, f: f64| {
        if (0.0..1.0).contains(&f) {
            Ok(())
        } else {
            Err(Error::config(field, format!("must be in [0, 1), got {f}")))
        }
    };
    fraction("--test-fraction", o.test_fraction)?;
    fraction("--val-fraction", o.val_fraction)?;
    let (mut train, mut test) = match test {
        Some(t) => (train, t),
        None => {
            let (rest, held) = hold_out(&train, o.test_fraction, 0);
            if held.is_empty() {
                return Err(Error::config(
                    "--test-fraction",
                    format!(
                        "leaves no test rows out of {} (use a larger fraction)",
                        train.len()
                    ),
                ));
            }
            (rest, held)
        }
    };
    let mut val = None;
    if o.val_fraction > 0.0 {
        let (rest, held) = hold_out(&train, o.val_fraction, 1);
        if held.is_empty() {
            return Err(Error::config(
                "--val-fraction",
                format!("leaves no validation rows out of {}", train.len()),
            ));
        }
        train = rest;
        val = Some(held);
    }
    if train.is_empty() {
        return Err(Error::config(
            "--data",
            format!("'{name}' has no training rows"),
        ));
    }
    if train.x.cols() != test.x.cols() {
        return Err(Error::config(
            "--data",
            format!(
                "train has {} features but test has {}",
                train.x.cols(),
                test.x.cols()
            ),
        ));
    }
    if let Task::Classification { classes } = task {
        for (what, s) in [
            ("train", Some(&train)),
            ("test", Some(&test)),
            ("validation", val.as_ref()),
        ] {
            if let Some(Split {
                y: Labels::Classes(c),
                ..
            }) = s
            {
                if let Some(bad) = c.iter().find(|&&l| l as usize >= classes) {
                    return Err(Error::config(
                        "--data",
                        format!("{what} label {bad} is out of range for {classes} classes"),
                    ));
                }
            }
        }
    }
    if o.standardize {
        let stats: Vec<(f64, f64)> = train
            .x
            .column_stats()
            .into_iter()
            .map(|(_, _, m, s)| (m, s))
            .collect();
        train.x.standardize(&stats);
        test.x.standardize(&stats);
        if let Some(v) = val.as_mut() {
            v.x.standardize(&stats);
        }
    }
    let mut name = name;
    if o.standardize || o.val_fraction > 0.0 {
        name = format!(
            "{name} (val {}, standardized {})",
            fmt_f64(o.val_fraction),
            o.standardize
        );
    }
    Ok(Dataset {
        name,
        task,
        train,
        val,
        test,
    })
}

/// Splits off `fraction` of the rows (rounded down), chosen by a fixed shuffle (data stream
/// `salt`), keeping both parts in their original order. Both parts share the split's store.
fn hold_out<'a>(split: &Split<'a>, fraction: f64, salt: u64) -> (Split<'a>, Split<'a>) {
    let n = split.len();
    let k = (fraction * n as f64).floor() as usize;
    let mut order: Vec<usize> = (0..n).collect();
    rng::shuffle(&mut rng::stream(salt, Stream::Data), &mut order);
    let mut held: Vec<usize> = order[..k].to_vec();
    let mut rest: Vec<usize> = order[k..].to_vec();
    held.sort_unstable();
    rest.sort_unstable();
    (split.select(&rest), split.select(&held))
}

impl fmt::Display for DataSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.spec())
    }
}

impl From<DataSpec> for String {
    fn from(d: DataSpec) -> String {
        d.spec()
    }
}

impl TryFrom<String> for DataSpec {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        DataSpec::parse("data", &s)
    }
}

fn features_npy(x: &Features) -> Vec<u8> {
    let shape = [x.rows(), x.cols()];
    match x {
        Features::F32(m) => npy::to_npy_bytes(&npy::NpyData::F32(&m.contiguous()), &shape),
        Features::F64(m) => npy::to_npy_bytes(&npy::NpyData::F64(&m.contiguous()), &shape),
    }
}

fn labels_npy(y: &Labels) -> Vec<u8> {
    match y {
        Labels::Classes(c) => {
            let v: Vec<i64> = c.iter().map(|&l| l as i64).collect();
            npy::to_npy_bytes(&npy::NpyData::I64(&v), &[v.len()])
        }
        Labels::Values(v) => {
            npy::to_npy_bytes(&npy::NpyData::F64(v.as_slice()), &[v.rows(), v.cols()])
        }
    }
}

/// The dataset as an `.npz` archive: `x`, `y`, `x_test`, `y_test` (and `x_val`, `y_val`), so
/// `np.load(path)` sees exactly the arrays initscope trains on.
pub fn export_npz(d: &Dataset) -> Result<Vec<u8>> {
    let mut entries = vec![
        ("x", features_npy(&d.train.x)),
        ("y", labels_npy(&d.train.y)),
        ("x_test", features_npy(&d.test.x)),
        ("y_test", labels_npy(&d.test.y)),
    ];
    if let Some(v) = &d.val {
        entries.push(("x_val", features_npy(&v.x)));
        entries.push(("y_val", labels_npy(&v.y)));
    }
    npy::to_npz_bytes(&entries)
}

/// One split as CSV with a header `x0,...,y` (one label column; regression sets with several
/// outputs are refused, use `.npz`).
pub fn export_csv(s: &Split) -> Result<Vec<u8>> {
    let rows: Vec<Vec<f64>> = (0..s.len())
        .map(|i| (0..s.x.cols()).map(|j| s.x.get(i, j)).collect())
        .collect();
    let y: Vec<f64> = match &s.y {
        Labels::Classes(c) => c.iter().map(|&l| l as f64).collect(),
        Labels::Values(v) if v.cols() == 1 => v.as_slice().to_vec(),
        Labels::Values(v) => {
            return Err(Error::config(
                "--out",
                format!(
                    "CSV export holds one target column, this set has {} (use .npz)",
                    v.cols()
                ),
            ))
        }
    };
    Ok(csv::to_csv_bytes(&rows, &y))
}
