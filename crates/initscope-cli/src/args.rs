//! Command-line flags shared by the commands that build and train a network.

use std::path::PathBuf;

use clap::Args;
use initscope::config::{init_from_note, warnings, BatchArg, RawConfig, RunConfig};

/// Network, data and optimizer flags (as in `initscope train`). Every flag overrides the same key
/// of `--config FILE.toml`.
#[derive(Args, Debug, Clone, Default)]
pub struct RunArgs {
    /// TOML file with the same keys as these flags (underscores for dashes); flags override it.
    #[arg(long, value_name = "FILE.toml")]
    pub config: Option<PathBuf>,
    /// Dataset spec: xor, moons, circles, spirals, blobs, teacher, mnist1d, fashion-mnist, mnist,
    /// with options, e.g. `moons:n=512,noise=0.2,seed=1`, or a file: PATH.npz, PATH.csv,
    /// idx:IMAGES,LABELS, npy:X,Y, csv:PATH [default: moons].
    #[arg(long)]
    pub data: Option<String>,
    /// Full architecture, input to output, e.g. 2-16-16-2 (must match the data).
    #[arg(long)]
    pub arch: Option<String>,
    /// Hidden widths, e.g. 16,16; "" or none for no hidden layer [default: 16,16].
    #[arg(long)]
    pub hidden: Option<String>,
    /// Hidden activation: identity, tanh, sigmoid, relu, leaky_relu[:slope], elu[:alpha], selu,
    /// gelu, softplus, silu, softsign [default: tanh].
    #[arg(long)]
    pub act: Option<String>,
    /// Weight initializer spec, e.g. zeros, constant:0.1, uniform:-0.1,0.1, normal:std=0.02,
    /// pytorch [default: pytorch].
    #[arg(long)]
    pub init: Option<String>,
    /// Bias initializer spec [default: pytorch with --init pytorch, else zeros].
    #[arg(long)]
    pub bias_init: Option<String>,
    /// Per-layer weight initializer, LAYER=SPEC (layers 1..L, L the output); repeatable.
    #[arg(long, value_name = "L=SPEC")]
    pub layer_init: Vec<String>,
    /// Per-layer bias initializer, LAYER=SPEC; repeatable.
    #[arg(long, value_name = "L=SPEC")]
    pub layer_bias_init: Vec<String>,
    /// No biases anywhere.
    #[arg(long)]
    pub no_bias: bool,
    /// Loss: cross_entropy, mse, bce [default: cross_entropy for classes, mse for regression].
    #[arg(long)]
    pub loss: Option<String>,
    /// Optimizer: sgd, momentum, nesterov, adam, adamw, rmsprop [default: sgd].
    #[arg(long)]
    pub optim: Option<String>,
    /// Learning rate [default: 0.1; adam/adamw 1e-3; rmsprop 1e-2].
    #[arg(long, allow_negative_numbers = true)]
    pub lr: Option<f64>,
    /// Momentum for momentum/nesterov [default: 0.9].
    #[arg(long, allow_negative_numbers = true)]
    pub momentum: Option<f64>,
    /// Adam beta1 [default: 0.9].
    #[arg(long)]
    pub beta1: Option<f64>,
    /// Adam beta2 [default: 0.999].
    #[arg(long)]
    pub beta2: Option<f64>,
    /// Adam/RMSprop epsilon [default: 1e-8].
    #[arg(long)]
    pub eps: Option<f64>,
    /// RMSprop smoothing constant [default: 0.99].
    #[arg(long)]
    pub alpha: Option<f64>,
    /// Weight decay (coupled; decoupled for adamw) [default: 0; adamw 0.01].
    #[arg(long, allow_negative_numbers = true)]
    pub weight_decay: Option<f64>,
    /// Learning-rate schedule: constant, step:every=N,gamma=G, cosine[:min=M].
    #[arg(long)]
    pub schedule: Option<String>,
    /// Linear warmup over this many updates.
    #[arg(long, allow_negative_numbers = true)]
    pub warmup: Option<i64>,
    /// Clip the global gradient norm to this value.
    #[arg(long, allow_negative_numbers = true)]
    pub clip_grad_norm: Option<f64>,
    /// Minibatch size or "full" [default: 64].
    #[arg(long)]
    pub batch: Option<String>,
    /// Number of updates [default: 1000].
    #[arg(long, allow_negative_numbers = true, conflicts_with = "epochs")]
    pub steps: Option<i64>,
    /// Number of epochs (passes over the training split).
    #[arg(long, allow_negative_numbers = true)]
    pub epochs: Option<i64>,
    /// Dropout probability on hidden layers (inverted dropout) [default: 0].
    #[arg(long, allow_negative_numbers = true)]
    pub dropout: Option<f64>,
    /// Run seed: initial weights, shuffling, dropout [default: 0].
    #[arg(long, allow_negative_numbers = true)]
    pub seed: Option<i64>,
    /// f32 or f64 [default: f32].
    #[arg(long)]
    pub precision: Option<String>,
    /// Evaluate every N updates [default: every epoch with --epochs, else steps/20].
    #[arg(long, allow_negative_numbers = true)]
    pub eval_every: Option<i64>,
    /// Start from these weights: a safetensors file initscope wrote (its metadata gives the
    /// architecture and activation) or a PyTorch state_dict (the Linear layers' `P.weight` and
    /// `P.bias`, in key order). Flags that contradict the file are refused.
    #[arg(long, value_name = "FILE.safetensors")]
    pub init_from: Option<PathBuf>,
    /// Add N(0, STD²) noise to every gradient entry (breaks symmetry) [default: 0].
    #[arg(long, value_name = "STD", allow_negative_numbers = true)]
    pub grad_noise: Option<f64>,
    /// Record gradient-flow, activation and spectral statistics: on or off [default: on].
    #[arg(long, value_name = "on|off")]
    pub diagnostics: Option<String>,
    /// Also record the input-output Jacobian spectrum at the end (it is always recorded at init).
    #[arg(long)]
    pub jacobian_end: bool,
    /// Relative tolerance of the symmetry partition [default: 1e-6 in f64, 1e-4 in f32].
    #[arg(long, allow_negative_numbers = true)]
    pub sym_tol: Option<f64>,
    /// Directory searched first for fashion-mnist/mnist IDX files (then $INITSCOPE_DATA, then
    /// /usr/share/datasets).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// CSV label column: 0-based index or header name [default: the last column].
    #[arg(long)]
    pub label_column: Option<String>,
    /// classification or regression for CSV/NumPy targets [default: classification when all
    /// labels are non-negative integers].
    #[arg(long)]
    pub task: Option<String>,
    /// Fraction held out as the test split for sources without one [default: 0.2].
    #[arg(long, allow_negative_numbers = true)]
    pub test_fraction: Option<f64>,
    /// Fraction of the training rows held out for validation [default: 0].
    #[arg(long, allow_negative_numbers = true)]
    pub val_fraction: Option<f64>,
    /// Standardize features with the training split's per-feature mean and std.
    #[arg(long)]
    pub standardize: bool,
    /// Memory the run may take, e.g. 4G or 512M [default: the smaller of the cgroup's limit
    /// and MemAvailable]. Data, parameters, optimizer state, workspace and diagnostics are
    /// estimated before anything is allocated; a run above the limit is refused.
    #[arg(long, value_name = "SIZE")]
    pub max_memory: Option<String>,
}

impl RunArgs {
    /// The configuration as written: the TOML file, if any, overridden by the flags.
    pub fn raw(&self) -> initscope::Result<RawConfig> {
        let base = match &self.config {
            Some(path) => RawConfig::from_toml_file(path)?,
            None => RawConfig::default(),
        };
        let vec_opt = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
        let flags = RawConfig {
            data: self.data.clone(),
            arch: self.arch.clone(),
            hidden: self.hidden.clone(),
            act: self.act.clone(),
            init: self.init.clone(),
            bias_init: self.bias_init.clone(),
            layer_init: vec_opt(&self.layer_init),
            layer_bias_init: vec_opt(&self.layer_bias_init),
            no_bias: self.no_bias.then_some(true),
            loss: self.loss.clone(),
            optim: self.optim.clone(),
            lr: self.lr,
            momentum: self.momentum,
            beta1: self.beta1,
            beta2: self.beta2,
            eps: self.eps,
            alpha: self.alpha,
            weight_decay: self.weight_decay,
            schedule: self.schedule.clone(),
            warmup: self.warmup,
            clip_grad_norm: self.clip_grad_norm,
            batch: self.batch.clone().map(BatchArg::Name),
            steps: self.steps,
            epochs: self.epochs,
            dropout: self.dropout,
            seed: self.seed,
            precision: self.precision.clone(),
            eval_every: self.eval_every,
            init_from: self.init_from.as_ref().map(|p| p.display().to_string()),
            grad_noise: self.grad_noise,
            diagnostics: self.diagnostics.clone(),
            jacobian_end: self.jacobian_end.then_some(true),
            sym_tol: self.sym_tol,
            data_dir: self.data_dir.as_ref().map(|p| p.display().to_string()),
            label_column: self.label_column.clone(),
            task: self.task.clone(),
            test_fraction: self.test_fraction,
            val_fraction: self.val_fraction,
            standardize: self.standardize.then_some(true),
            max_memory: self.max_memory.clone(),
        };
        Ok(base.merged_with(flags))
    }
}

/// Prints one `initscope: warning: ...` line on stderr per option that does nothing for this
/// configuration (the run goes on).
pub fn warn_unused(raw: &RawConfig) {
    for w in warnings(raw) {
        eprintln!("initscope: warning: {w}");
    }
}

/// Prints one `initscope: note: ...` line on stderr saying what `--init-from` read from its file
/// (architecture, activation, biases, the keys used), when it is given.
pub fn note_init_from(raw: &RawConfig, cfg: &RunConfig) -> initscope::Result<()> {
    if let Some(note) = init_from_note(raw, cfg)? {
        eprintln!("initscope: note: {note}");
    }
    Ok(())
}
