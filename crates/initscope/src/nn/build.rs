//! A network from its spec ([`NetSpec`]): every module built with its initial values, named by
//! its `state_dict` key.
//!
//! Names: each module written in the spec is one entry of the top-level `nn.Sequential`,
//! activations and dropout included, and `res(...)*K` is K consecutive entries; a block holds
//! its body as a Sequential named `body` (`2.body.0.weight`). A linear layer followed by an
//! activation is built as one fused module ([`Dense`], its tensors under the linear's index),
//! the activation's entry holding no tensors, exactly as in a plain MLP.
//!
//! Initial values: linear layer l (1-based, forward order, inside blocks too) draws its weight
//! from stream (seed, l, weight) and its bias from (seed, l, bias), as a plain MLP does, so a
//! spec written like an `--arch` net draws the same weights; its initializer is the spec's
//! `init=`, else `--layer-init l=...`, else `--init`; its bias the spec's `bias=`, else
//! `--layer-bias-init`, else `--bias-init` (none under `--no-bias`); `gain=auto` sees the
//! activation fused into it (identity otherwise).
//! Every other tensor draws from the stream keyed by its name ([`Stream::tensor`]): norm gains
//! `gamma=` (default 1) and biases `beta=` (default 0); gates and shifts start at their value.

use super::dense::{BiasSpec, Dense};
use super::module::Module;
use super::net::Net;
use super::res::Res;
use super::spec::{ModuleSpec, NetSpec, NET_FIELD};
use std::collections::BTreeMap;

use crate::activation::Activation;
use crate::error::{Error, Result};
use crate::init::{Fans, FillContext, Init, Role};
use crate::matrix::Matrix;
use crate::rng::{self, Stream};
use crate::scalar::Float;

/// An initialization preset for networks with residual blocks (`--preset`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Preset {
    /// Fixup (Zhang, Dauphin & Ma 2019): the last linear layer of every residual branch and the
    /// output layer start at 0; the branches' other linear layers are He-initialised
    /// (`kaiming_normal:nonlinearity=relu`) and scaled by L^(-1/(2m-2)) for L blocks of m linear
    /// layers each; linear layers outside the branches He-initialised; linear biases 0; gates
    /// start at 1 and shifts at 0. Every branch needs m >= 2.
    Fixup,
    /// torchvision's `zero_init_residual` (Goyal et al. 2017): the gain of the norm that ends
    /// every residual branch starts at 0, so every block is the identity at initialization;
    /// everything else as `--init` says. Every branch must end with a norm that has a gain.
    ZeroInitResidual,
}

impl Preset {
    pub fn name(self) -> &'static str {
        match self {
            Preset::Fixup => "fixup",
            Preset::ZeroInitResidual => "zero_init_residual",
        }
    }

    /// Parses `--preset`.
    pub fn parse(field: &str, text: &str) -> Result<Preset> {
        match text.trim().to_ascii_lowercase().as_str() {
            "fixup" => Ok(Preset::Fixup),
            "zero_init_residual" => Ok(Preset::ZeroInitResidual),
            _ => Err(Error::spec(
                field,
                text,
                "unknown preset (fixup, zero_init_residual)",
            )),
        }
    }

    /// Each linear layer's starting role under this preset, in forward order (Fixup), after
    /// checking that `spec` has the structure the preset needs; the error says what is missing,
    /// naming the block.
    pub fn plan(self, spec: &NetSpec) -> std::result::Result<Vec<LinearRole>, String> {
        // The blocks once every res(...)*K is written out, each with its label and body.
        fn walk(
            specs: &[ModuleSpec],
            label: &str,
            in_branch: bool,
            out: &mut Vec<(Option<usize>, bool)>,
            blocks: &mut Vec<(String, Vec<ModuleSpec>)>,
        ) {
            for (i, m) in specs.iter().enumerate() {
                match m {
                    ModuleSpec::Linear(_) => out.push((None, in_branch)),
                    ModuleSpec::Res(r) => {
                        for _ in 0..r.repeat {
                            let block = blocks.len();
                            blocks.push((format!("{label}{} `{m}`", i + 1), r.body.clone()));
                            let start = out.len();
                            walk(&r.body, &format!("{label}{}.", i + 1), true, out, blocks);
                            // The body's own linears (a nested block's are taken) belong to
                            // this block.
                            for slot in &mut out[start..] {
                                if slot.0.is_none() {
                                    slot.0 = Some(block);
                                }
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        let (mut linears, mut blocks) = (Vec::new(), Vec::new());
        walk(&spec.modules, "", false, &mut linears, &mut blocks);
        if blocks.is_empty() {
            return Err(format!(
                "--preset {} initialises residual blocks, and the network has none (write res(...))",
                self.name()
            ));
        }
        match self {
            Preset::ZeroInitResidual => {
                for (label, body) in &blocks {
                    let ends_with_gain = match body.last() {
                        Some(ModuleSpec::LayerNorm(n)) => n.affine,
                        Some(ModuleSpec::RmsNorm(_) | ModuleSpec::BatchNorm(_)) => true,
                        _ => false,
                    };
                    if !ends_with_gain {
                        return Err(format!(
                            "--preset zero_init_residual sets the gain of the norm that ends each residual branch to 0, and block {label} does not end with a norm that has a gain"
                        ));
                    }
                }
                Ok(vec![LinearRole::AsConfigured; linears.len()])
            }
            Preset::Fixup => {
                let l = blocks.len() as f64;
                let mut counts = vec![0usize; blocks.len()];
                for (b, _) in &linears {
                    if let Some(b) = b {
                        counts[*b] += 1;
                    }
                }
                if let Some((b, m)) = counts.iter().enumerate().find(|(_, &m)| m < 2) {
                    return Err(format!(
                        "--preset fixup needs at least 2 linear layers in every residual branch, and block {} has {m}",
                        blocks[b].0
                    ));
                }
                let last = linears.len() - 1;
                let mut seen = vec![0usize; blocks.len()];
                Ok(linears
                    .iter()
                    .enumerate()
                    .map(|(i, (b, _))| match b {
                        Some(b) => {
                            seen[*b] += 1;
                            let m = counts[*b];
                            if seen[*b] == m {
                                LinearRole::Zero
                            } else {
                                LinearRole::He(l.powf(-1.0 / (2.0 * m as f64 - 2.0)))
                            }
                        }
                        None if i == last => LinearRole::Zero,
                        None => LinearRole::He(1.0),
                    })
                    .collect())
            }
        }
    }
}

/// How a preset starts one linear layer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LinearRole {
    /// As `--init` and the spec say.
    AsConfigured,
    /// He-initialised (`kaiming_normal:nonlinearity=relu`), times this scale; bias 0.
    He(f64),
    /// Weight and bias 0.
    Zero,
}

/// What a spec leaves to the run.
#[derive(Clone, Debug)]
pub struct BuildOptions {
    /// The data's input width.
    pub inputs: usize,
    /// The data's output width (a final bare `linear` maps to it).
    pub outputs: usize,
    /// `--init`: linear weights without `init=` or a `--layer-init`.
    pub init: Init,
    /// `--bias-init`: linear biases without `bias=` or a `--layer-bias-init`; `None` under
    /// `--no-bias`.
    pub bias_init: Option<Init>,
    /// `--layer-init`: linear layer l's weight initializer (l from 1, forward order).
    pub layer_init: BTreeMap<usize, Init>,
    /// `--layer-bias-init`.
    pub layer_bias_init: BTreeMap<usize, Init>,
    pub seed: u64,
    /// `--preset`.
    pub preset: Option<Preset>,
}

impl BuildOptions {
    /// Every linear layer's weight from `init` and bias from `bias_init` (none: no biases).
    pub fn new(
        inputs: usize,
        outputs: usize,
        init: Init,
        bias_init: Option<Init>,
        seed: u64,
    ) -> Self {
        BuildOptions {
            inputs,
            outputs,
            init,
            bias_init,
            layer_init: BTreeMap::new(),
            layer_bias_init: BTreeMap::new(),
            seed,
            preset: None,
        }
    }
}

/// Builds `spec` in precision `T`. Errors name the module (`module 3.2 `linear(32)``) and what
/// is wrong: a block whose body changes the width, a network whose output width is not the
/// data's.
pub fn build_net<T: Float>(spec: &NetSpec, opts: &BuildOptions) -> Result<Net<T>> {
    build_net_described(spec, opts).map(|(net, _)| net)
}

/// [`build_net`], and every tensor's initializer as a spec (`kaiming_uniform:a=2.236`,
/// `constant:1`) by `state_dict` name: what `initscope net show` prints.
pub fn build_net_described<T: Float>(
    spec: &NetSpec,
    opts: &BuildOptions,
) -> Result<(Net<T>, BTreeMap<String, String>)> {
    let fail = |reason: String| Error::spec(NET_FIELD, &spec.canonical(), reason);
    let roles = match opts.preset {
        Some(p) => p.plan(spec).map_err(fail)?,
        None => Vec::new(),
    };
    let mut b = Builder {
        opts,
        linear: 0,
        path: String::new(),
        label: String::new(),
        inits: BTreeMap::new(),
        roles,
        ends_branch: false,
    };
    let (modules, width) = b
        .seq::<T>(&spec.modules, opts.inputs, "", "")
        .map_err(fail)?;
    if width != opts.outputs {
        return Err(fail(end_width_reason(width, opts.outputs)));
    }
    Ok((Net::new(modules), b.inits))
}

/// A spec's shape, known before anything is built ([`shape`]).
#[derive(Clone, Debug, PartialEq)]
pub struct NetShape {
    /// The linear layers' widths in forward order, input first: `[inputs, fan_out of linear 1,
    /// ..., fan_out of linear L]` (every other kind keeps the width, so each linear reads the
    /// previous one's output width).
    pub dims: Vec<usize>,
    /// The sum over every module (inside blocks too) of its output width: what a row of
    /// activations costs, for memory estimates.
    pub widths: u64,
    /// Which kinds it holds (`linear`, `batchnorm`, ...; activations as `activation`).
    pub kinds: Vec<&'static str>,
    /// Each linear layer's own `init=`, in forward order.
    pub inits: Vec<Option<Init>>,
    /// Each linear layer's `state_dict` prefix (`2.body.1`), in forward order.
    pub linear_paths: Vec<String>,
}

/// The shape of `spec` on data with `inputs` and `outputs` columns. Checks what [`build_net`]
/// checks, without building: every block keeps its width and the network ends at the data's
/// output width.
pub fn shape(spec: &NetSpec, inputs: usize, outputs: usize) -> Result<NetShape> {
    fn walk(
        specs: &[ModuleSpec],
        mut width: usize,
        outputs: usize,
        (label, path): (&str, &str),
        out: &mut NetShape,
    ) -> std::result::Result<usize, String> {
        // The index in the Sequential: `res(...)*K` takes K entries (as the builder counts).
        let mut index = 0;
        for (i, m) in specs.iter().enumerate() {
            let kind = m.kind();
            if !out.kinds.contains(&kind) {
                out.kinds.push(kind);
            }
            match m {
                ModuleSpec::Linear(l) => {
                    width = l.width.unwrap_or(outputs);
                    out.dims.push(width);
                    out.inits.push(l.init.clone());
                    out.linear_paths.push(format!("{path}{index}"));
                    index += 1;
                }
                ModuleSpec::Res(r) => {
                    for _ in 0..r.repeat {
                        let here = (format!("{label}{}.", i + 1), format!("{path}{index}.body."));
                        index += 1;
                        let w = walk(&r.body, width, outputs, (&here.0, &here.1), out)?;
                        if w != width {
                            return Err(format!(
                                "module {label}{} `{m}`: {}",
                                i + 1,
                                body_width_reason(width, w)
                            ));
                        }
                    }
                }
                _ => index += 1,
            }
            out.widths = out.widths.saturating_add(width as u64);
        }
        Ok(width)
    }
    let fail = |reason: String| Error::spec(NET_FIELD, &spec.canonical(), reason);
    let mut out = NetShape {
        dims: vec![inputs],
        widths: 0,
        kinds: Vec::new(),
        inits: Vec::new(),
        linear_paths: Vec::new(),
    };
    let width = walk(&spec.modules, inputs, outputs, ("", ""), &mut out).map_err(fail)?;
    if width != outputs {
        return Err(fail(end_width_reason(width, outputs)));
    }
    Ok(out)
}

fn body_width_reason(width: usize, got: usize) -> String {
    format!("the body changes the width from {width} to {got} (a residual block must keep it)")
}

fn end_width_reason(width: usize, outputs: usize) -> String {
    format!(
        "the network ends with width {width} but the data has {outputs} output(s) (end with a bare `linear`)"
    )
}

/// Builds the modules of a spec in order, numbering the linear layers and drawing every
/// tensor's starting values; each kind's [`super::spec::KindSpec::build`] calls back into it.
pub struct Builder<'a> {
    opts: &'a BuildOptions,
    /// Linear layers built so far.
    linear: usize,
    /// The `state_dict` prefix of the module being built (`2.body.0`).
    path: String,
    /// Its position prefix for the modules of its body in error messages (`3.`).
    label: String,
    /// Each tensor's initializer, by `state_dict` name.
    inits: BTreeMap<String, String>,
    /// Each linear layer's role under the preset (empty without one).
    roles: Vec<LinearRole>,
    /// Whether the module being built ends a residual branch.
    ends_branch: bool,
}

/// Modules with their `state_dict` prefixes.
type Built<T> = Vec<(String, Box<dyn Module<T>>)>;

impl Builder<'_> {
    /// Notes that tensor `key` of the module being built starts from `init` (a spec).
    pub fn note(&mut self, key: &str, init: String) {
        self.inits.insert(format!("{}.{key}", self.path), init);
    }

    /// A gate's starting value: `v`, or 1 under Fixup.
    pub fn gate_value(&self, v: f64) -> f64 {
        match self.opts.preset {
            Some(Preset::Fixup) => 1.0,
            _ => v,
        }
    }

    /// A shift's starting value: `v`, or 0 under Fixup.
    pub fn shift_value(&self, v: f64) -> f64 {
        match self.opts.preset {
            Some(Preset::Fixup) => 0.0,
            _ => v,
        }
    }

    /// The data's output width.
    pub fn outputs(&self) -> usize {
        self.opts.outputs
    }

    /// Builds a sequence read at width `width`; `path` prefixes the `state_dict` keys
    /// (`2.body.`), `label` the positions in error messages (`3.`). Returns the modules with
    /// their keys' prefixes and the output width.
    fn seq<T: Float>(
        &mut self,
        specs: &[ModuleSpec],
        mut width: usize,
        path: &str,
        label: &str,
    ) -> std::result::Result<(Built<T>, usize), String> {
        let mut out: Built<T> = Vec::new();
        // The index in the Sequential: `res(...)*K` takes K entries.
        let mut index = 0;
        let mut i = 0;
        while i < specs.len() {
            let m = &specs[i];
            let name = format!("module {label}{} `{m}`", i + 1);
            let (count, fused) = match (m, specs.get(i + 1)) {
                // An activation right after a linear layer is fused into it.
                (ModuleSpec::Linear(_), Some(ModuleSpec::Act(a))) => (1, Some(*a)),
                (ModuleSpec::Res(r), _) => (r.repeat, None),
                _ => (1, None),
            };
            for _ in 0..count {
                self.path = format!("{path}{index}");
                self.label = format!("{label}{}.", i + 1);
                self.ends_branch = !path.is_empty() && i + 1 == specs.len();
                let module: Box<dyn Module<T>> = match (m, fused) {
                    (ModuleSpec::Linear(l), Some(act)) => Box::new(self.linear::<T>(
                        width,
                        l.width.unwrap_or(self.opts.outputs),
                        l.init.as_ref(),
                        l.bias.as_ref(),
                        act,
                    )),
                    _ => m
                        .build::<T>(width, self)
                        .map_err(|e| format!("{name}: {e}"))?,
                };
                width = module.out_width();
                out.push((index.to_string(), module));
                index += 1;
            }
            // A fused activation's entry holds no tensors.
            let skip = usize::from(fused.is_some());
            index += skip;
            i += 1 + skip;
        }
        Ok((out, width))
    }

    /// One residual block of `body` at width `width` (the module being built), its body's keys
    /// under `{path}.body.`. The error when the body does not keep the width.
    pub fn block<T: Float>(
        &mut self,
        body: &[ModuleSpec],
        width: usize,
    ) -> std::result::Result<Res<T>, String> {
        let (path, label) = (format!("{}.body.", self.path), self.label.clone());
        let (modules, w) = self.seq::<T>(body, width, &path, &label)?;
        if w != width {
            return Err(body_width_reason(width, w));
        }
        Ok(Res::new(width, modules))
    }

    /// The next linear layer (number `self.linear + 1`) from `fan_in` to `fan_out`, followed by
    /// `act`, its weight from stream (seed, l, weight) with `init` (else `--init`), its bias from
    /// (seed, l, bias) with `bias` (else `--bias-init`; none under `--no-bias` or `bias=none`).
    pub fn linear<T: Float>(
        &mut self,
        fan_in: usize,
        fan_out: usize,
        init: Option<&Init>,
        bias: Option<&BiasSpec>,
        act: Activation,
    ) -> Dense<T> {
        self.linear += 1;
        let (l, seed) = (self.linear, self.opts.seed);
        let ctx = |role| FillContext {
            fans: Fans { fan_in, fan_out },
            act,
            role,
        };
        let role = self
            .roles
            .get(l - 1)
            .copied()
            .unwrap_or(LinearRole::AsConfigured);
        let he = Init::parse("--preset", "kaiming_normal:nonlinearity=relu").expect("a valid spec");
        let (preset_w, scale) = match role {
            LinearRole::AsConfigured => (None, 1.0),
            LinearRole::He(s) => (Some(he), s),
            LinearRole::Zero => (Some(Init::Zeros), 1.0),
        };
        let mut w = vec![0.0; fan_in * fan_out];
        // An init= in the spec beats the preset, which beats --layer-init and --init.
        let init = init
            .or(preset_w.as_ref())
            .or_else(|| self.opts.layer_init.get(&l))
            .unwrap_or(&self.opts.init);
        init.fill(
            &mut w,
            &ctx(Role::Weight),
            &mut rng::stream(seed, Stream::Weight(l)),
        );
        if scale != 1.0 && init.spec() == preset_w.as_ref().map_or(String::new(), Init::spec) {
            w.iter_mut().for_each(|x| *x *= scale);
            self.note(
                "weight",
                format!("{} x {}", init.spec(), crate::spec::fmt_f64(scale)),
            );
        } else {
            self.note("weight", init.spec());
        }
        let zero = Init::Zeros;
        let bias_init = match bias {
            Some(BiasSpec::Off) => None,
            Some(BiasSpec::Init(i)) => Some(i),
            None if role != LinearRole::AsConfigured => self.opts.bias_init.as_ref().map(|_| &zero),
            None => self
                .opts
                .bias_init
                .as_ref()
                .map(|b| self.opts.layer_bias_init.get(&l).unwrap_or(b)),
        };
        if let Some(i) = bias_init {
            self.note("bias", i.spec());
        }
        let b = bias_init.map(|i| {
            let mut b = vec![0.0; fan_out];
            i.fill(
                &mut b,
                &ctx(Role::Bias),
                &mut rng::stream(seed, Stream::Bias(l)),
            );
            b
        });
        Dense {
            weight: Matrix::from_f64(&Matrix::from_vec(fan_out, fan_in, w)),
            has_bias: b.is_some(),
            bias: b.map_or_else(
                || vec![T::ZERO; fan_out],
                |b| b.iter().map(|&x| T::from_f64(x)).collect(),
            ),
            activation: act,
            dropout: 0.0,
        }
    }

    /// The starting values of the `width`-long tensor `key` of the module being built (a vector:
    /// fans (width, width), drawn as a bias is): from `init`, else the constant `default`, drawn
    /// from the tensor's own stream
    /// ([`Stream::tensor`] of its `state_dict` name).
    pub fn draw(&mut self, key: &str, width: usize, init: Option<&Init>, default: f64) -> Vec<f64> {
        // zero_init_residual: the gain of the norm that ends a branch starts at 0.
        let zero_gain = Init::Zeros;
        let init = match init {
            None if key == "weight"
                && self.ends_branch
                && self.opts.preset == Some(Preset::ZeroInitResidual) =>
            {
                Some(&zero_gain)
            }
            other => other,
        };
        let mut v = vec![default; width];
        self.note(
            key,
            init.map_or_else(|| Init::Constant { value: default }.spec(), Init::spec),
        );
        if let Some(init) = init {
            let ctx = FillContext {
                fans: Fans {
                    fan_in: width,
                    fan_out: width,
                },
                act: Activation::Identity,
                // A vector of `width` entries, as a bias is.
                role: Role::Bias,
            };
            let name = format!("{}.{key}", self.path);
            init.fill(
                &mut v,
                &ctx,
                &mut rng::stream(self.opts.seed, Stream::tensor(&name)),
            );
        }
        v
    }
}
