//! The page's settings: a JSON object whose keys are `initscope train`'s flags (underscores for
//! dashes), turned into command-line arguments and parsed and validated exactly as the CLI does,
//! so a bad value gets the CLI's one-line message. On top, the page's limits: only built-in
//! data sets (or files given to `serve --data`), bounded widths, depth, data size, steps and
//! memory.

use clap::Parser;
use initscope::config::{validate, RawConfig, RunConfig};
use initscope::data::Task;
use initscope::{DataSpec, Dataset};
use serde_json::{json, Map, Value};

/// The flags the page may set, in the order the command line lists them.
pub const KEYS: [&str; 26] = [
    "data",
    "hidden",
    "act",
    "net",
    "preset",
    "init",
    "bias_init",
    "layer_init",
    "layer_bias_init",
    "no_bias",
    "loss",
    "optim",
    "lr",
    "momentum",
    "weight_decay",
    "schedule",
    "warmup",
    "clip_grad_norm",
    "batch",
    "steps",
    "eval_every",
    "dropout",
    "grad_noise",
    "seed",
    "precision",
    "standardize",
];

/// The built-in data sets the page offers (any of them with options, e.g. `moons:noise=0.2`).
pub const DATASETS: [&str; 6] = ["moons", "circles", "xor", "spirals", "blobs", "mnist1d"];

/// What one session may ask for.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_width: usize,
    pub max_layers: usize,
    pub max_steps: usize,
    /// Training plus test rows.
    pub max_points: usize,
    /// The memory estimate of one session's run (`--max-memory`).
    pub max_memory_mib: usize,
    /// Floating-point operations one step, one evaluation or one update of the page may take
    /// ([`work`]): a session answers commands between them.
    pub max_work: f64,
}

impl Limits {
    pub fn json(&self) -> Value {
        json!({
            "max_width": self.max_width,
            "max_layers": self.max_layers,
            "max_steps": self.max_steps,
            "max_points": self.max_points,
            "max_memory_mib": self.max_memory_mib,
            "max_work": self.max_work,
        })
    }
}

/// The settings a page starts from.
pub fn defaults() -> Map<String, Value> {
    let mut m = Map::new();
    for (k, v) in [
        ("data", json!("moons")),
        ("hidden", json!("16,16")),
        ("act", json!("tanh")),
        ("init", json!("pytorch")),
        ("optim", json!("sgd")),
        ("lr", json!(0.3)),
        ("batch", json!("full")),
        ("steps", json!(3000)),
        ("eval_every", json!(10)),
        ("seed", json!(0)),
        ("precision", json!("f32")),
    ] {
        m.insert(k.into(), v);
    }
    m
}

/// Named networks the page offers as one click (each a set of settings laid over the current).
pub fn presets() -> Value {
    json!([
        {"name": "mlp", "label": "MLP 16-16 tanh",
         "settings": {"net": null, "preset": null, "hidden": "16,16", "act": "tanh", "init": "pytorch"}},
        {"name": "zeros", "label": "W = 0 (tanh)",
         "settings": {"net": null, "preset": null, "hidden": "16,16", "act": "tanh", "init": "zeros"}},
        {"name": "rezero", "label": "ReZero residual",
         "settings": {"net": "linear(16) relu res(linear(16) relu linear(16) gate(0))*4 linear",
                      "preset": null, "init": "kaiming_normal", "lr": 0.05}},
        {"name": "fixup", "label": "Fixup residual",
         "settings": {"net": "linear(16) relu res(linear(16) relu linear(16))*4 linear",
                      "preset": "fixup", "init": null, "lr": 0.05}},
        {"name": "layernorm", "label": "Pre-norm residual",
         "settings": {"net": "linear(16) relu res(layernorm linear(16) relu linear(16))*4 linear",
                      "preset": null, "init": "kaiming_normal", "lr": 0.05}},
    ])
}

/// One page's settings, validated: the run configuration, its data and the settings as given
/// (defaults filled in).
pub struct Setup {
    pub cfg: RunConfig,
    pub data: Dataset<'static>,
    pub settings: Map<String, Value>,
    /// `initscope train ...` for the same run.
    pub command: String,
    /// The command's arguments.
    args: Vec<String>,
}

impl Setup {
    /// `initscope train ...` for the same run stopped after `steps` updates.
    pub fn command_with_steps(&self, steps: usize) -> String {
        let mut args = Vec::with_capacity(self.args.len() + 2);
        let mut it = self.args.iter();
        while let Some(a) = it.next() {
            if a == "--steps" {
                it.next();
            } else {
                args.push(a.clone());
            }
        }
        args.push("--steps".into());
        args.push(steps.to_string());
        command_line(&args)
    }
}

/// `initscope train` with `args`, quoted for a POSIX shell.
fn command_line(args: &[String]) -> String {
    std::iter::once("initscope train".to_string())
        .chain(args.iter().map(|a| shell_word(a)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The flags of `initscope train`, for parsing the page's settings with clap.
#[derive(Parser, Debug)]
#[command(name = "initscope")]
struct PageFlags {
    #[command(flatten)]
    flags: RawConfig,
}

/// A settings value as command-line text (None: the flag is left out).
fn text(key: &str, v: &Value) -> Result<Vec<String>, String> {
    let one = |v: &Value| -> Result<Option<String>, String> {
        Ok(match v {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(_) | Value::Array(_) | Value::Object(_) => {
                return Err(format!(
                    "initscope: error: setting '{key}' must be text or a number, not {v}"
                ))
            }
        })
    };
    match v {
        Value::Array(items) => {
            let mut out = Vec::new();
            for i in items {
                out.extend(one(i)?);
            }
            Ok(out)
        }
        _ => Ok(one(v)?.into_iter().collect()),
    }
}

/// The settings as `initscope train` flags, in [`KEYS`] order: each flag with its value (None
/// for a switch); unknown keys are refused.
fn arguments(settings: &Map<String, Value>) -> Result<Vec<(String, Option<String>)>, String> {
    if let Some(k) = settings.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(format!(
            "initscope: error: unknown setting '{k}' (the page may set: {})",
            KEYS.join(", ")
        ));
    }
    let mut args = Vec::new();
    for key in KEYS {
        let Some(v) = settings.get(key) else {
            continue;
        };
        let flag = format!("--{}", key.replace('_', "-"));
        if SWITCHES.contains(&key) {
            // A value would be a further argument on the command line (`--no-bias
            // --init-from=FILE` reads a file): a switch is a JSON boolean and nothing else.
            match v {
                Value::Bool(true) => args.push((flag, None)),
                Value::Bool(false) | Value::Null => {}
                _ => {
                    return Err(format!(
                        "initscope: error: setting '{key}' must be true or false, not {v}"
                    ))
                }
            }
            continue;
        }
        for t in text(key, v)? {
            args.push((flag.clone(), Some(t)));
        }
    }
    Ok(args)
}

/// The flags that take no value: a setting of one is `true` or `false` (or left out).
const SWITCHES: [&str; 2] = ["no_bias", "standardize"];

/// A shell word: quoted when it holds anything but safe characters.
fn shell_word(s: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "-_.,:=/+@%".contains(c);
    if !s.is_empty() && s.chars().all(safe) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Whether the data spec names a built-in set (any options) or one of the files given at start.
/// The spec is read as `--data` reads it (`moons:a.csv` names a file, not moons); a built-in
/// name whose options do not parse passes here, and validation then refuses it with the CLI's
/// message (parsing reads no file).
fn allowed_data(spec: &str, files: &[String]) -> bool {
    if files.iter().any(|f| f == spec) {
        return true;
    }
    let builtin = DATASETS.contains(&spec.trim().split(':').next().unwrap_or_default());
    match DataSpec::parse("--data", spec) {
        Ok(DataSpec::Synthetic(_) | DataSpec::Mnist1d(_)) | Err(_) => builtin,
        Ok(_) => false,
    }
}

/// Validates the page's settings (laid over [`defaults`]) as `initscope train` would, then the
/// page's limits. `files`: the data specs given to `serve --data`. Errors are the one line the
/// CLI prints.
pub fn validate_settings(
    given: &Map<String, Value>,
    limits: &Limits,
    files: &[String],
) -> Result<Setup, String> {
    let mut settings = defaults();
    for (k, v) in given {
        if v.is_null() {
            settings.remove(k);
        } else {
            settings.insert(k.clone(), v.clone());
        }
    }
    // A module spec replaces hidden/act (train refuses both at once).
    if settings.get("net").is_some_and(|v| !v.is_null()) {
        for k in ["hidden", "act"] {
            if !given.contains_key(k) {
                settings.remove(k);
            }
        }
    }
    let flags = arguments(&settings)?;
    // The command a person would type: each flag, then its value.
    let args: Vec<String> = flags
        .iter()
        .flat_map(|(f, v)| std::iter::once(f.clone()).chain(v.clone()))
        .collect();
    let data = settings
        .get("data")
        .and_then(Value::as_str)
        .unwrap_or("moons");
    if !allowed_data(data, files) {
        return Err(format!(
            "initscope: error: --data '{data}': the page may use the built-in data sets ({}) and the files given to 'initscope serve --data'",
            DATASETS.join(", ")
        ));
    }
    let mut argv = vec!["initscope".to_string()];
    // What clap reads: each value joined to its flag (`--lr=0.3`), so no value, whatever it
    // starts with, is read as another flag.
    argv.extend(flags.iter().map(|(f, v)| match v {
        Some(v) => format!("{f}={v}"),
        None => f.clone(),
    }));
    let flags = PageFlags::try_parse_from(&argv).map_err(|e| {
        let os: Vec<std::ffi::OsString> = ["initscope", "train"].iter().map(Into::into).collect();
        crate::usage_error_line(&e, &os)
    })?;
    let mut raw = flags.flags;
    // Before validation, whose memory estimate would refuse a long run less clearly.
    if let Some(steps) = raw.steps.filter(|&s| s > limits.max_steps as i64) {
        return Err(format!(
            "initscope: error: --steps {steps} is more than the page allows ({} at most)",
            limits.max_steps
        ));
    }
    raw.max_memory = Some(format!("{}M", limits.max_memory_mib));
    let (cfg, data) = validate(&raw).map_err(|e| format!("initscope: error: {e}"))?;
    check_limits(&cfg, &data, limits)?;
    Ok(Setup {
        cfg,
        data,
        settings,
        command: command_line(&args),
        args,
    })
}

/// The page's limits on a validated configuration.
fn check_limits(cfg: &RunConfig, data: &Dataset, limits: &Limits) -> Result<(), String> {
    let err = |what: String| Err(format!("initscope: error: {what}"));
    if let Some(&w) = cfg.arch.iter().max().filter(|&&w| w > limits.max_width) {
        return err(format!(
            "a layer of {w} units is wider than the page allows ({} at most)",
            limits.max_width
        ));
    }
    let layers = cfg.arch.len() - 1;
    if layers > limits.max_layers {
        return err(format!(
            "{layers} linear layers are more than the page allows ({} at most)",
            limits.max_layers
        ));
    }
    if cfg.steps > limits.max_steps {
        return err(format!(
            "--steps {} is more than the page allows ({} at most)",
            cfg.steps, limits.max_steps
        ));
    }
    let points = data.train.len() + data.test.len() + data.val.as_ref().map_or(0, |v| v.len());
    if points > limits.max_points {
        return err(format!(
            "the data has {points} rows, more than the page allows ({} at most)",
            limits.max_points
        ));
    }
    let (what, flop) = work(cfg, data);
    if flop > limits.max_work {
        return err(format!(
            "{what} takes about {flop:.1e} floating-point operations, more than the page allows ({:.0e}, so that a page stays responsive); use a smaller batch, less data or narrower layers, or 'initscope train' for this run",
            limits.max_work
        ));
    }
    Ok(())
}

/// The largest piece of work a session does without looking at its commands, and its size in
/// floating-point operations, counting the linear layers' products (W = sum of fan_in x
/// fan_out): a training step, 6 x batch rows x W (forward 2, backward 4); an evaluation of
/// every split, 2 x rows x W; an update of the page, the probe's gradient on up to 256 rows
/// (6 x rows x W) and for 2-D data the prediction on the 48 x 48 grid (2 x 2304 x W).
pub fn work(cfg: &RunConfig, data: &Dataset) -> (&'static str, f64) {
    use initscope::diagnostics::probe::{GRID_RES, PROBE_ROWS};
    let w: f64 = cfg.arch.windows(2).map(|p| (p[0] * p[1]) as f64).sum();
    let n = data.train.len();
    let rows = (n + data.test.len() + data.val.as_ref().map_or(0, |v| v.len())) as f64;
    let grid = if data.input_dim() == 2 {
        (GRID_RES * GRID_RES) as f64
    } else {
        0.0
    };
    [
        ("one training step", 6.0 * cfg.batch_size(n) as f64 * w),
        ("one evaluation of the data", 2.0 * rows * w),
        (
            "one update of the page",
            6.0 * n.min(PROBE_ROWS) as f64 * w + 2.0 * grid * w,
        ),
    ]
    .into_iter()
    .fold(("", 0.0), |m, x| if x.1 > m.1 { x } else { m })
}

/// What the page needs to build its controls.
pub fn options(limits: &Limits) -> Value {
    let inits: Vec<Value> = initscope::init::INITIALIZERS
        .iter()
        .map(|i| {
            json!({"name": i.name, "args": i.args, "doc": format!("{} ({})", i.formula, i.source)})
        })
        .collect();
    json!({
        "datasets": DATASETS,
        "activations": ["tanh", "relu", "relu:grad0=1", "leaky_relu", "sigmoid", "elu", "selu", "gelu", "softplus", "silu", "softsign", "identity"],
        "inits": inits,
        "losses": ["cross_entropy", "mse", "bce"],
        "optims": ["sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop"],
        "presets": presets(),
        "limits": limits.json(),
        "defaults": defaults(),
        "keys": KEYS,
    })
}

/// The task as the page names it, with the number of classes (0 for regression).
pub fn task(data: &Dataset) -> (&'static str, usize) {
    match data.task {
        Task::Classification { classes } => ("classification", classes),
        Task::Regression { .. } => ("regression", 0),
    }
}

/// `serve`'s limits and data files, checked at start: a limit must be a positive number, and each
/// file must be a data set a page could train on within the limits (read now, with the page's
/// own validation), so a bad one stops the server rather than failing in a page.
pub fn check_start(limits: &Limits, files: &[String]) -> anyhow::Result<()> {
    for (flag, v) in [
        ("--max-width", limits.max_width),
        ("--max-layers", limits.max_layers),
        ("--max-steps", limits.max_steps),
        ("--max-points", limits.max_points),
        ("--session-memory", limits.max_memory_mib),
    ] {
        if v == 0 {
            anyhow::bail!("{flag}: must be at least 1");
        }
    }
    if !(limits.max_work.is_finite() && limits.max_work > 0.0) {
        anyhow::bail!(
            "--max-work: must be a finite number > 0, got {}",
            limits.max_work
        );
    }
    for f in files {
        DataSpec::parse("data", f)?;
        let mut given = Map::new();
        given.insert("data".into(), Value::String(f.clone()));
        if let Err(e) = validate_settings(&given, limits, files) {
            let e = e
                .strip_prefix("initscope: error: ")
                .unwrap_or(&e)
                .to_string();
            anyhow::bail!("--data '{f}': {e}");
        }
    }
    Ok(())
}
