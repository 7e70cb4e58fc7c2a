//! `initscope._core`: the compiled half of initscope's Python package (the other half, in
//! `python/initscope/`, holds the API people call, with its docstrings and types).
//!
//! Everything here is a thin shell over the library, like the `initscope` binary: the run flags
//! are the library's [`RawConfig`] (passed as JSON text, one key per flag), validation is
//! [`initscope::config::validate`] (or [`validate_arrays`] for NumPy arrays), training is the
//! library's loop taken a few steps at a time ([`Live`]) with the GIL released and Ctrl-C checked
//! between pieces, and the run directory is [`write_run_dir`]. Bad input comes back as
//! `ValueError` with the message the command line prints after `initscope: error: ` (`OSError`
//! for a file that could not be read or written); nothing here panics on input.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use numpy::ndarray::{ArrayD, IxDyn};
use numpy::{
    Element, IntoPyArray, PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn, PyUntypedArray,
    PyUntypedArrayMethods,
};
use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use initscope::config::{
    validate, validate_arrays, warnings, with_weights, Precision, RawConfig, RunConfig,
};
use initscope::data::{Dataset, Features, Rows};
use initscope::explain::{explain_from, Explanation, Format};
use initscope::init::{Fans, FillContext, Init, Role};
use initscope::memory::{MemoryEstimate, MemoryLimit};
use initscope::output::write_run_dir;
use initscope::records::RunOutput;
use initscope::rng::{self, Stream};
use initscope::train::{initial_params, params_from, InitialState, Live};
use initscope::weights::NamedTensors;
use initscope::{Activation, Float, Matrix};

/// A library error as a Python exception: `OSError` for a file that could not be read or
/// written, `ValueError` for everything else (bad flags, bad data, a refused `--out` folder).
/// The message is the command line's, without its `initscope: error: ` prefix.
fn py_err(e: initscope::Error) -> PyErr {
    match e {
        initscope::Error::Io { .. } => PyOSError::new_err(e.to_string()),
        e => PyValueError::new_err(e.to_string()),
    }
}

/// What can stop a run: the library's refusal or a Python exception (KeyboardInterrupt).
enum Failure {
    Lib(initscope::Error),
    Py(PyErr),
}

impl From<initscope::Error> for Failure {
    fn from(e: initscope::Error) -> Self {
        Failure::Lib(e)
    }
}

impl From<PyErr> for Failure {
    fn from(e: PyErr) -> Self {
        Failure::Py(e)
    }
}

impl From<Failure> for PyErr {
    fn from(f: Failure) -> Self {
        match f {
            Failure::Lib(e) => py_err(e),
            Failure::Py(e) => e,
        }
    }
}

/// The run flags' names: the keys of [`RawConfig`] (the command line's long flags with
/// underscores), sorted.
fn flag_names() -> Vec<String> {
    match serde_json::to_value(RawConfig::default()) {
        Ok(serde_json::Value::Object(map)) => map.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

/// Reads the flags (a JSON object of flag name -> value, as the Python layer writes it) into a
/// [`RawConfig`]. Each flag is read on its own first, so a value of the wrong type is refused
/// naming its flag (`--steps: invalid type: string "x", expected i64`).
fn raw_config(flags: &str) -> PyResult<RawConfig> {
    let map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(flags).map_err(|e| PyValueError::new_err(format!("flags: {e}")))?;
    for (key, value) in &map {
        let one = serde_json::Value::Object([(key.clone(), value.clone())].into_iter().collect());
        if let Err(e) = serde_json::from_value::<RawConfig>(one) {
            return Err(PyValueError::new_err(format!(
                "--{}: {e}",
                key.replace('_', "-")
            )));
        }
    }
    serde_json::from_value(serde_json::Value::Object(map))
        .map_err(|e| PyValueError::new_err(format!("flags: {e}")))
}

/// (rows, columns) of an array's shape as NumPy files are read: 1-D is one column, N-D
/// flattens every axis after the first; a 0-d array is refused.
fn matrix_shape(name: &str, shape: &[usize]) -> PyResult<(usize, usize)> {
    match shape.len() {
        0 => Err(PyValueError::new_err(format!(
            "{name}: is a scalar, not an array of rows"
        ))),
        1 => Ok((shape[0], 1)),
        _ => {
            let cols = shape[1..]
                .iter()
                .try_fold(1usize, |acc, &d| acc.checked_mul(d))
                .ok_or_else(|| {
                    PyValueError::new_err(format!("{name}: shape {shape:?} overflows"))
                })?;
            Ok((shape[0], cols))
        }
    }
}

/// The values of `array` (any layout: C or Fortran order, strided views) in row-major order,
/// converted once to `T`. `Ok(None)` when its element type is not `E`.
fn values_as<E, T>(
    array: &Bound<'_, PyAny>,
    name: &str,
    to_f64: fn(E) -> f64,
) -> PyResult<Option<Vec<T>>>
where
    E: Element + Copy,
    T: Float,
{
    let Ok(typed) = array.cast::<PyArrayDyn<E>>() else {
        return Ok(None);
    };
    let view = typed
        .try_readonly()
        .map_err(|e| PyValueError::new_err(format!("{name}: {e}")))?;
    let a = view.as_array();
    let convert = |&v: &E| T::from_f64(to_f64(v));
    Ok(Some(match a.as_slice() {
        Some(s) => s.iter().map(convert).collect(),
        None => a.iter().map(convert).collect(),
    }))
}

/// Every real element type NumPy has (but float16, which the Python layer widens first), read
/// into a row-major `Vec<T>`.
fn array_values<T: Float>(array: &Bound<'_, PyAny>, name: &str) -> PyResult<Vec<T>> {
    macro_rules! try_types {
        ($($ty:ty => $conv:expr),* $(,)?) => {
            $(if let Some(v) = values_as::<$ty, T>(array, name, $conv)? {
                return Ok(v);
            })*
        };
    }
    try_types!(
        f32 => |v: f32| v as f64,
        f64 => |v: f64| v,
        u8 => |v: u8| v as f64,
        i8 => |v: i8| v as f64,
        u16 => |v: u16| v as f64,
        i16 => |v: i16| v as f64,
        u32 => |v: u32| v as f64,
        i32 => |v: i32| v as f64,
        u64 => |v: u64| v as f64,
        i64 => |v: i64| v as f64,
        bool => |v: bool| u8::from(v) as f64,
    );
    let dtype = array
        .getattr("dtype")
        .and_then(|d| d.str().map(|s| s.to_string()))
        .unwrap_or_else(|_| "?".into());
    Err(PyValueError::new_err(format!(
        "{name}: dtype {dtype} is not supported (give real numbers: float, int, uint or bool)"
    )))
}

/// An ndarray as a row-major matrix of `T` (the shape rule of [`matrix_shape`]).
fn matrix_of<T: Float>(array: &Bound<'_, PyAny>, name: &str) -> PyResult<Matrix<T>> {
    let untyped = array
        .cast::<PyUntypedArray>()
        .map_err(|_| PyValueError::new_err(format!("{name}: expected a NumPy array")))?;
    let (rows, cols) = matrix_shape(name, untyped.shape())?;
    let values = array_values::<T>(array, name)?;
    Ok(Matrix::from_vec(rows, cols, values))
}

/// X as the data set reads it, held by the caller for as long as the data set is in use: a
/// read-only borrow of the caller's array when it is C-contiguous (and aligned) in the training
/// precision, so the data is not copied (like `torch.from_numpy`, the array must not change
/// during the call); else its values converted once to that precision (any dtype or layout).
enum HeldX<'py> {
    F32(PyReadonlyArrayDyn<'py, f32>, (usize, usize)),
    F64(PyReadonlyArrayDyn<'py, f64>, (usize, usize)),
    Converted(Features<'static>),
}

impl HeldX<'_> {
    /// The features `(rows, cols)`: a view of the borrowed array, or of the converted copy
    /// (shared, not copied again).
    fn features(&self) -> PyResult<Features<'_>> {
        fn view<'a, T: Element + Float>(
            a: &'a PyReadonlyArrayDyn<'_, T>,
            (rows, cols): (usize, usize),
        ) -> PyResult<Rows<'a, T>> {
            a.as_slice()
                .ok()
                .and_then(|s| Rows::borrowed(rows, cols, s))
                .ok_or_else(|| PyValueError::new_err("X: its buffer does not match its shape"))
        }
        Ok(match self {
            HeldX::F32(a, shape) => Features::F32(view(a, *shape)?),
            HeldX::F64(a, shape) => Features::F64(view(a, *shape)?),
            HeldX::Converted(f) => f.clone(),
        })
    }
}

/// A read-only borrow of `x` when it is an aligned C-contiguous array of `T` (its flat buffer is
/// then the row-major matrix); None otherwise.
fn borrowable<'py, T: Element>(
    x: &Bound<'py, PyAny>,
) -> PyResult<Option<PyReadonlyArrayDyn<'py, T>>> {
    let Ok(typed) = x.cast::<PyArrayDyn<T>>() else {
        return Ok(None);
    };
    if !typed.is_c_contiguous() {
        return Ok(None);
    }
    let guard = typed
        .try_readonly()
        .map_err(|e| PyValueError::new_err(format!("X: {e}")))?;
    Ok(guard.as_slice().is_ok().then_some(guard))
}

/// X in the training precision: borrowed when it is a C-contiguous array in that precision,
/// else converted once (whatever the input's type and layout).
fn features<'py>(x: &Bound<'py, PyAny>, precision: Precision) -> PyResult<HeldX<'py>> {
    let untyped = x
        .cast::<PyUntypedArray>()
        .map_err(|_| PyValueError::new_err("X: expected a NumPy array"))?;
    let shape = matrix_shape("X", untyped.shape())?;
    Ok(match precision {
        Precision::F32 => match borrowable::<f32>(x)? {
            Some(a) => HeldX::F32(a, shape),
            None => HeldX::Converted(Features::from(matrix_of::<f32>(x, "X")?)),
        },
        Precision::F64 => match borrowable::<f64>(x)? {
            Some(a) => HeldX::F64(a, shape),
            None => HeldX::Converted(Features::from(matrix_of::<f64>(x, "X")?)),
        },
    })
}

/// Reads X (`x`) while the GIL is held, for [`prepare`]: None for a data spec. The caller keeps
/// the result alive while the data set made from it is in use.
fn hold_x<'py>(raw: &RawConfig, x: Option<&Bound<'py, PyAny>>) -> PyResult<Option<HeldX<'py>>> {
    x.map(|x| {
        let precision =
            Precision::parse(raw.precision.as_deref().unwrap_or("f32")).map_err(py_err)?;
        features(x, precision)
    })
    .transpose()
}

/// Validates the flags and builds the dataset: a spec (`raw.data`) or the arrays X (held by the
/// caller, [`hold_x`]) and `y`. `y` is read while the GIL is held; validation (which may
/// generate or read data) runs without it. The data set borrows X's buffer when [`HeldX`] does.
/// Returns the config, the data and the warnings the command line would print.
fn prepare<'d>(
    py: Python<'_>,
    raw: RawConfig,
    x: Option<&'d HeldX<'_>>,
    y: Option<&Bound<'_, PyAny>>,
) -> PyResult<(RunConfig, Dataset<'d>, Vec<String>)> {
    let (cfg, data) = match (x, y) {
        (Some(x), Some(y)) => {
            let xs = x.features()?;
            let ys = matrix_of::<f64>(y, "y")?;
            py.detach(|| validate_arrays(&raw, xs, ys))
                .map_err(py_err)?
        }
        (None, None) => py.detach(|| validate(&raw)).map_err(py_err)?,
        _ => {
            return Err(PyValueError::new_err(
                "data: give both X and y, or a data spec",
            ))
        }
    };
    let named = RawConfig {
        data: Some(cfg.data.spec()),
        ..raw
    };
    Ok((cfg, data, warnings(&named)))
}

/// Starting weights given by the Python layer (`initscope.from_torch`): a label for messages and
/// `config.json` (`torch:Sequential`) and a dict of initscope tensor name -> array (any real
/// dtype, read in f64).
fn given_weights(label: &str, tensors: &Bound<'_, PyDict>) -> PyResult<NamedTensors> {
    let mut map = std::collections::BTreeMap::new();
    for (name, array) in tensors.iter() {
        let name: String = name.extract()?;
        let untyped = array.cast::<PyUntypedArray>().map_err(|_| {
            PyValueError::new_err(format!("{label}: tensor '{name}' is not a NumPy array"))
        })?;
        let shape = untyped.shape().to_vec();
        let values = array_values::<f64>(&array, &format!("{label}: tensor '{name}'"))?;
        map.insert(name, (shape, values));
    }
    NamedTensors::in_memory(label, map).map_err(py_err)
}

/// The config and starting point of a run: `given` weights when there are some (the config then
/// names them, so the run id follows them), else the config's initializers. Called without
/// the GIL.
fn starting(
    raw: &RawConfig,
    cfg: RunConfig,
    data: &Dataset,
    given: Option<&NamedTensors>,
) -> Result<(RunConfig, InitialState), initscope::Error> {
    match given {
        Some(tensors) => {
            let cfg = with_weights(raw, cfg, tensors)?;
            let start = params_from(&cfg, tensors)?;
            Ok((cfg, start))
        }
        None => {
            let start = initial_params(&cfg, data)?;
            Ok((cfg, start))
        }
    }
}

/// How long one piece of training runs before Ctrl-C is checked.
const PIECE: Duration = Duration::from_millis(20);

/// Trains as [`initscope::train::train_from`] does (the same [`Live`] loop, so the same bits),
/// a piece at a time: between pieces the GIL is taken back for an instant to run Python's
/// signal handlers, so Ctrl-C stops the run with KeyboardInterrupt. Called without the GIL.
fn train_pieces<T: Float>(
    cfg: &RunConfig,
    data: &Dataset,
    start: InitialState,
) -> Result<RunOutput, Failure> {
    let mut live = Live::<T>::new(cfg, data, start);
    let mut piece = 1usize;
    loop {
        let began = Instant::now();
        live.advance(piece, &mut |_| {});
        if live.ended() {
            break;
        }
        Python::attach(|py| py.check_signals())?;
        // Pieces of about PIECE: fast steps go many at a time, slow ones one at a time.
        let took = began.elapsed();
        if took < PIECE / 2 {
            piece = piece.saturating_mul(2).min(1 << 24);
        } else if took > PIECE * 2 && piece > 1 {
            piece /= 2;
        }
    }
    Ok(live.finish(&mut |_| {}))
}

/// [`train_pieces`] in the config's precision.
fn run_from(cfg: &RunConfig, data: &Dataset, start: InitialState) -> Result<RunOutput, Failure> {
    match cfg.precision {
        Precision::F32 => train_pieces::<f32>(cfg, data, start),
        Precision::F64 => train_pieces::<f64>(cfg, data, start),
    }
}

/// A finished training run (wrapped by `initscope.Run`).
#[pyclass(frozen, module = "initscope._core", name = "RunCore")]
struct RunCore {
    out: RunOutput,
}

#[pymethods]
impl RunCore {
    /// The run id (16 hex digits of the config's hash).
    #[getter]
    fn run_id(&self) -> String {
        self.out.summary.run_id.clone()
    }

    /// `summary.json`, as the run directory holds it.
    fn summary_json(&self) -> PyResult<String> {
        serde_json::to_string_pretty(&self.out.summary)
            .map_err(|e| PyValueError::new_err(e.to_string()))
    }

    /// `config.json`, as the run directory holds it.
    fn config_json(&self) -> String {
        String::from_utf8_lossy(&self.out.config.to_config_json()).into_owned()
    }

    /// The run in one line (`initscope train`'s header).
    fn headline(&self) -> String {
        self.out.config.headline()
    }

    /// metrics.csv's columns: `step` (int64), `metric` (list of str), `layer` (float64, NaN for
    /// whole-network metrics), `module` (list of str or None; only when some metric has one),
    /// `value` (float64).
    fn history<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let m = &self.out.metrics;
        let d = PyDict::new(py);
        let steps: Vec<i64> = m.iter().map(|r| r.step as i64).collect();
        let layers: Vec<f64> = m
            .iter()
            .map(|r| r.layer.map_or(f64::NAN, |l| l as f64))
            .collect();
        let values: Vec<f64> = m.iter().map(|r| r.value).collect();
        d.set_item("step", steps.into_pyarray(py))?;
        d.set_item(
            "metric",
            PyList::new(py, m.iter().map(|r| r.metric.as_str()))?,
        )?;
        d.set_item("layer", layers.into_pyarray(py))?;
        if m.iter().any(|r| r.module.is_some()) {
            d.set_item(
                "module",
                PyList::new(py, m.iter().map(|r| r.module.as_deref()))?,
            )?;
        }
        d.set_item("value", values.into_pyarray(py))?;
        Ok(d)
    }

    /// The tensors of `weights.safetensors` (name -> array in the run's precision; batchnorm's
    /// batch count as int64), in the file's order.
    fn weights<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        fn array<'py, T: Element>(
            py: Python<'py>,
            dims: &[usize],
            values: Vec<T>,
        ) -> PyResult<Bound<'py, PyAny>> {
            let a = ArrayD::from_shape_vec(IxDyn(dims), values)
                .map_err(|e| PyValueError::new_err(e.to_string()))?;
            Ok(a.into_pyarray(py).into_any())
        }
        let precision = self.out.config.precision;
        let typed = |dims: &[usize], v: &[f64]| match precision {
            Precision::F32 => array(py, dims, v.iter().map(|&x| x as f32).collect::<Vec<_>>()),
            Precision::F64 => array(py, dims, v.to_vec()),
        };
        let d = PyDict::new(py);
        for (info, values) in self.out.params.named() {
            d.set_item(&info.name, typed(&info.dims, values)?)?;
        }
        for b in self.out.params.buffers() {
            let a = if b.key.ends_with("num_batches_tracked") {
                array(py, &b.dims, b.values.iter().map(|&v| v as i64).collect())?
            } else {
                typed(&b.dims, &b.values)?
            };
            d.set_item(&b.key, a)?;
        }
        Ok(d)
    }

    /// Writes the run directory (`initscope train --out DIR [--force]`); returns the names of
    /// the files written.
    #[pyo3(signature = (dir, force=false))]
    fn save(&self, py: Python<'_>, dir: PathBuf, force: bool) -> PyResult<Vec<String>> {
        py.detach(|| write_run_dir(&dir, &self.out, force))
            .map_err(py_err)
    }
}

/// An explanation (wrapped by `initscope.Explanation`).
#[pyclass(frozen, module = "initscope._core", name = "ExplanationCore")]
struct ExplanationCore {
    ex: Explanation,
}

#[pymethods]
impl ExplanationCore {
    /// `initscope explain --json`.
    fn json(&self) -> PyResult<String> {
        serde_json::to_string(&self.ex.json()).map_err(|e| PyValueError::new_err(e.to_string()))
    }

    /// `initscope explain` (text).
    fn text(&self) -> String {
        self.ex.render(Format::Text)
    }

    /// `initscope explain --format markdown`.
    fn markdown(&self) -> String {
        self.ex.render(Format::Markdown)
    }

    /// The training run the verdict was made from.
    fn run(&self) -> RunCore {
        RunCore {
            out: self.ex.run.clone(),
        }
    }
}

/// `initscope train`: validates the flags (JSON object), builds the data (a spec, or `x`, `y`)
/// and trains, from the initializers or from `start` = (label, {name: array}), weights given in
/// memory. Returns the run and the warnings the command line would print.
#[pyfunction]
#[pyo3(signature = (flags, x=None, y=None, start=None))]
fn train(
    py: Python<'_>,
    flags: &str,
    x: Option<&Bound<'_, PyAny>>,
    y: Option<&Bound<'_, PyAny>>,
    start: Option<(String, Bound<'_, PyDict>)>,
) -> PyResult<(RunCore, Vec<String>)> {
    let raw = raw_config(flags)?;
    let given = start
        .map(|(label, tensors)| given_weights(&label, &tensors))
        .transpose()?;
    let held = hold_x(&raw, x)?;
    let (cfg, data, warned) = prepare(py, raw.clone(), held.as_ref(), y)?;
    let out = py.detach(|| -> Result<RunOutput, Failure> {
        let (cfg, start) = starting(&raw, cfg, &data, given.as_ref())?;
        run_from(&cfg, &data, start)
    })?;
    Ok((RunCore { out }, warned))
}

/// `initscope explain`: as [`train`], with explain's defaults (200 steps unless steps or epochs
/// are given, diagnostics off unless asked for).
#[pyfunction]
#[pyo3(signature = (flags, x=None, y=None, start=None))]
fn explain(
    py: Python<'_>,
    flags: &str,
    x: Option<&Bound<'_, PyAny>>,
    y: Option<&Bound<'_, PyAny>>,
    start: Option<(String, Bound<'_, PyDict>)>,
) -> PyResult<(ExplanationCore, Vec<String>)> {
    let given = start
        .map(|(label, tensors)| given_weights(&label, &tensors))
        .transpose()?;
    let mut raw = raw_config(flags)?;
    if raw.steps.is_none() && raw.epochs.is_none() {
        raw.steps = Some(200);
    }
    if raw.diagnostics.is_none() {
        raw.diagnostics = Some("off".into());
    }
    let held = hold_x(&raw, x)?;
    let (cfg, data, warned) = prepare(py, raw.clone(), held.as_ref(), y)?;
    let ex = py.detach(|| -> Result<Explanation, Failure> {
        let (cfg, start) = starting(&raw, cfg, &data, given.as_ref())?;
        explain_from(&cfg, &data, start, |start| run_from(&cfg, &data, start))
    })?;
    Ok((ExplanationCore { ex }, warned))
}

/// One tensor drawn by an initializer as `initscope train` draws layer `layer`'s: a weight
/// `(fan_out, fan_in)` from the stream of (seed, layer, weight), or a bias `(fan_out,)` from
/// (seed, layer, bias) with the layer's `fan_in`. Values in float64.
#[pyfunction]
#[pyo3(signature = (spec, shape, act="tanh", seed=0, layer=1, fan_in=None))]
fn init_tensor<'py>(
    py: Python<'py>,
    spec: &str,
    shape: Vec<i64>,
    act: &str,
    seed: i64,
    layer: i64,
    fan_in: Option<i64>,
) -> PyResult<Bound<'py, PyAny>> {
    let init = Init::parse("init_tensor", spec).map_err(py_err)?;
    let act = Activation::parse("act", act).map_err(py_err)?;
    let positive = |name: &str, v: i64| -> PyResult<usize> {
        if v >= 1 {
            usize::try_from(v)
                .map_err(|_| PyValueError::new_err(format!("{name}: {v} is too large")))
        } else {
            Err(PyValueError::new_err(format!(
                "{name}: must be at least 1, got {v}"
            )))
        }
    };
    if seed < 0 {
        return Err(PyValueError::new_err(format!(
            "seed: must be >= 0, got {seed}"
        )));
    }
    let layer = positive("layer", layer)?;
    let shape_text = format!("{shape:?}");
    let (role, fans, dims) = match shape.as_slice() {
        [o, i] => {
            let (o, i) = (positive("shape", *o)?, positive("shape", *i)?);
            if fan_in.is_some() {
                return Err(PyValueError::new_err(
                    "fan_in: a weight's shape (fan_out, fan_in) gives it; drop fan_in",
                ));
            }
            (
                Role::Weight,
                Fans {
                    fan_in: i,
                    fan_out: o,
                },
                vec![o, i],
            )
        }
        [o] => {
            let o = positive("shape", *o)?;
            let Some(i) = fan_in else {
                return Err(PyValueError::new_err(
                    "fan_in: a bias (a 1-D shape) needs its layer's fan_in",
                ));
            };
            if init.needs_matrix() {
                return Err(PyValueError::new_err(format!(
                    "init_tensor '{spec}': this initializer needs a weight matrix; it cannot initialise a bias vector"
                )));
            }
            (
                Role::Bias,
                Fans {
                    fan_in: positive("fan_in", i)?,
                    fan_out: o,
                },
                vec![o],
            )
        }
        _ => {
            return Err(PyValueError::new_err(format!(
                "shape: {shape_text} is neither a weight (fan_out, fan_in) nor a bias (fan_out,)"
            )))
        }
    };
    let count = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64));
    let mut estimate = MemoryEstimate::default();
    // The values and, for orthogonal kinds, the factorisation's work (a Gaussian matrix and its
    // Q); ZerO's tall weights are cut from a Hadamard matrix of the next power of two (built
    // from the one half its size).
    estimate.add(
        "tensor",
        count.map_or(u64::MAX, |c| c.saturating_mul(8 * 4)),
    );
    if matches!(init, Init::ZeroHadamard) && fans.fan_out > fans.fan_in {
        let p = (fans.fan_out as u64).next_power_of_two();
        estimate.add("hadamard", p.saturating_mul(p).saturating_mul(8 * 2));
    }
    estimate
        .check("shape", &shape_text, MemoryLimit::machine())
        .map_err(py_err)?;
    let n = dims.iter().product::<usize>();
    let stream = match role {
        Role::Weight => Stream::Weight(layer),
        Role::Bias => Stream::Bias(layer),
    };
    let values = py.detach(|| {
        let mut out = vec![0.0f64; n];
        init.fill(
            &mut out,
            &FillContext { fans, act, role },
            &mut rng::stream(seed as u64, stream),
        );
        out
    });
    let a = ArrayD::from_shape_vec(IxDyn(&dims), values)
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    Ok(a.into_pyarray(py).into_any())
}

/// `initscope reproduce NAME`: runs one published result's reproduction (the GIL released; it
/// runs to its end, seconds to a minute) and returns it as JSON text (`reproduce NAME --json`'s
/// record). An unknown name is a `ValueError` listing the known ones.
#[pyfunction]
fn reproduce(py: Python<'_>, name: &str) -> PyResult<String> {
    let r = py
        .detach(|| initscope::reproduce::reproduce(name))
        .map_err(py_err)?;
    serde_json::to_string(&r).map_err(|e| PyValueError::new_err(e.to_string()))
}

/// The reproductions `reproduce` knows: (name, what it reproduces), in `reproduce all`'s order.
#[pyfunction]
fn reproductions() -> Vec<(&'static str, &'static str)> {
    initscope::reproduce::REPRODUCTIONS
        .iter()
        .map(|&(name, what, _)| (name, what))
        .collect()
}

/// Metrics in wide form ([`initscope::output::wide`]): the steps (int64, ascending), the column
/// names (TensorBoard's tags: `train_loss`, `layer2/grad_norm`, `2.body.0.weight/tensor_norm`)
/// in first-appearance order, and one float64 array per column (NaN where not recorded).
#[pyfunction]
fn history_wide<'py>(
    py: Python<'py>,
    run: &RunCore,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyDict>)> {
    let wide = initscope::output::wide::wide_metrics(&run.out.metrics);
    let steps: Vec<i64> = wide.steps.iter().map(|&s| s as i64).collect();
    let d = PyDict::new(py);
    for (name, values) in wide.columns {
        d.set_item(name, values.into_pyarray(py))?;
    }
    Ok((steps.into_pyarray(py).into_any(), d))
}

/// A count (`--nodes`, `--depth`, `--branch-depth`) as the library's `usize`; a negative one is
/// refused as the library refuses one out of range.
fn count(flag: &str, v: Option<i64>, default: usize, range: &str) -> PyResult<usize> {
    match v {
        None => Ok(default),
        Some(v) => usize::try_from(v)
            .map_err(|_| PyValueError::new_err(format!("{flag}: must be in {range}, got {v}"))),
    }
}

/// `initscope meanfield --json`: the record as JSON text, computed by the library's
/// [`meanfield_report`] (the command's own checks and numbers) with the GIL released. The
/// residual-only options (`branch_depth`, `gate`, `depth`, `q0`, `c0`) are refused without
/// `residual`, as the command line refuses them.
#[pyfunction]
#[pyo3(signature = (act="tanh", sigma_w2=None, sigma_b2=0.0, critical=false, nodes=None,
    residual=false, branch_depth=None, gate=None, depth=None, q0=None, c0=None))]
#[allow(clippy::too_many_arguments)]
fn meanfield(
    py: Python<'_>,
    act: &str,
    sigma_w2: Option<f64>,
    sigma_b2: f64,
    critical: bool,
    nodes: Option<i64>,
    residual: bool,
    branch_depth: Option<i64>,
    gate: Option<f64>,
    depth: Option<i64>,
    q0: Option<f64>,
    c0: Option<f64>,
) -> PyResult<String> {
    use initscope::diagnostics::meanfield_report::{
        meanfield_report, MeanfieldOptions, NODES_RANGE,
    };
    use initscope::diagnostics::meanfield_residual::{MAX_BRANCH_DEPTH, MAX_RESIDUAL_DEPTH};
    let residual_only =
        branch_depth.is_some() || gate.is_some() || depth.is_some() || q0.is_some() || c0.is_some();
    if residual_only && !residual {
        // clap's words for a flag given without the flag it `requires`.
        return Err(PyValueError::new_err(
            "the following required arguments were not provided: --residual",
        ));
    }
    let d = MeanfieldOptions::default();
    let o = MeanfieldOptions {
        act: act.to_string(),
        sigma_w2,
        sigma_b2,
        critical,
        nodes: count(
            "--nodes",
            nodes,
            d.nodes,
            &format!("{}..={}", NODES_RANGE.start(), NODES_RANGE.end()),
        )?,
        residual,
        branch_depth: count(
            "--branch-depth",
            branch_depth,
            d.branch_depth,
            &format!("1..={MAX_BRANCH_DEPTH}"),
        )?,
        gate: gate.unwrap_or(d.gate),
        depth: count(
            "--depth",
            depth,
            d.depth,
            &format!("1..={MAX_RESIDUAL_DEPTH}"),
        )?,
        q0: q0.unwrap_or(d.q0),
        c0: c0.unwrap_or(d.c0),
    };
    let record = py.detach(|| meanfield_report(&o)).map_err(py_err)?;
    serde_json::to_string(&record).map_err(|e| PyValueError::new_err(e.to_string()))
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("FLAGS", flag_names())?;
    m.add_class::<RunCore>()?;
    m.add_class::<ExplanationCore>()?;
    m.add_function(wrap_pyfunction!(train, m)?)?;
    m.add_function(wrap_pyfunction!(explain, m)?)?;
    m.add_function(wrap_pyfunction!(init_tensor, m)?)?;
    m.add_function(wrap_pyfunction!(reproduce, m)?)?;
    m.add_function(wrap_pyfunction!(reproductions, m)?)?;
    m.add_function(wrap_pyfunction!(meanfield, m)?)?;
    m.add_function(wrap_pyfunction!(history_wide, m)?)?;
    Ok(())
}
