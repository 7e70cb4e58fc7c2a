//! The network spec language of `--net`: a network written as a sequence of modules, like an
//! `nn.Sequential` whose input width comes from the data. This module only parses and prints it
//! ([`NetSpec::parse`], [`NetSpec::canonical`]); building a network from it is the consumer's job.
//!
//! ```text
//! net     = ws* module { ws+ module } ws* ;
//! module  = name [ "(" args ")" ]                    (* linear dropout layernorm rmsnorm
//!                                                       batchnorm gate shift, activations *)
//!         | act ":" act-args                         (* leaky_relu:0.2 = leaky_relu(0.2) *)
//!         | "res" "(" net ")" [ "*" count ] ;        (* y = x + body(x), count >= 1 blocks *)
//! args    = [ arg { "," arg } ] ;                    (* whitespace inside ( ) is ignored *)
//! arg     = value | key "=" value ;                  (* positional arguments come first *)
//! value   = atom | "[" text "]" ;                    (* brackets hold commas and parentheses *)
//! ```
//!
//! The kinds and their arguments (positional ones first; an omitted one takes its default):
//!
//! | module | arguments |
//! |---|---|
//! | `linear` | `width` (positional), `init=SPEC`, `bias=SPEC\|none`; a `linear` without a width, allowed only as the last module, maps to the data's output width |
//! | activations | the `--act` names and arguments: `relu`, `leaky_relu(0.2)`, `elu:alpha=1` |
//! | `dropout` | `p` (positional, 0 <= p < 1) |
//! | `layernorm` | `eps=1e-5`, `affine=true`, `gamma=SPEC`, `beta=SPEC` |
//! | `rmsnorm` | `eps` (default: the dtype's machine epsilon), `gamma=SPEC` |
//! | `batchnorm` | `eps=1e-5`, `momentum=0.1`, `gamma=SPEC`, `beta=SPEC` |
//! | `res(MODULES)*K` | a residual block `y = x + body(x)`, repeated K times (default 1) |
//! | `gate` | `value` (positional): a learnable scalar multiplier |
//! | `shift` | `value` (positional): a learnable scalar added to every unit |
//!
//! `SPEC` is an initializer spec ([`Init::parse`]); one with commas goes in brackets:
//! `linear(64, init=[uniform:-0.1,0.1], bias=none)`. Names and keys are case-insensitive.
//!
//! The canonical text ([`NetSpec::canonical`], also [`fmt::Display`]) spells every module one
//! way: lower-case names, defaults omitted, activations and initializers in their own canonical
//! form ([`Activation::spec`], [`Init::spec`]), numbers printed so they parse back to the same
//! value, one space between modules. So `leaky_relu(0.2)` and `leaky_relu:0.2`, or
//! `layernorm(eps=1e-5)` and `layernorm`, have the same canonical text, and parsing the canonical
//! text gives the same [`NetSpec`].
//!
//! Errors name the module by its position (1-based; `3.2` is the second module in the body of
//! the third) and its text: ``--net '...': module 3 `gate(x)`: bad number `x` for value``.
//!
//! Each kind's arguments live in the kind's own file as a type implementing [`KindSpec`] (its
//! [`Syntax`], how it is parsed from its [`Parts`] and printed), beside the module itself; the
//! `kinds!` list in this file names every kind once and generates [`ModuleSpec`], its `Display`
//! and the parser's table. Adding a module kind is its file plus one line in that list.

use std::fmt;
use std::str::FromStr;

use super::batchnorm::BatchNormSpec;
use super::build::Builder;
use super::dense::LinearSpec;
use super::dropout::DropoutSpec;
use super::gate::GateSpec;
use super::layernorm::LayerNormSpec;
use super::module::Module;
use super::res::ResSpec;
use super::rmsnorm::RmsNormSpec;
use super::shift::ShiftSpec;
use super::torch::Torch;
use crate::activation::Activation;
use crate::error::{Error, Result};
use crate::init::Init;
use crate::scalar::Float;
use crate::spec::{fmt_f64, parse_f64};

/// The field a spec is reported under when none is given ([`NetSpec::parse`]).
pub const NET_FIELD: &str = "--net";

/// How deep `res(...)` blocks may nest.
pub const MAX_RES_DEPTH: usize = 16;

/// The most modules a spec may have once every `res(...)*K` is expanded (a block counts as one
/// module plus its body).
pub const MAX_MODULES: usize = 10_000;

/// Longest module text quoted in an error message, in characters.
const MAX_SHOWN: usize = 60;

/// LayerNorm's and BatchNorm's default epsilon (PyTorch's).
pub const NORM_EPS: f64 = 1e-5;

/// BatchNorm's default running-statistics momentum (PyTorch's).
pub const BATCHNORM_MOMENTUM: f64 = 0.1;

/// A network: its modules in order, the first reading the data's input. Serialised as its
/// canonical text.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct NetSpec {
    /// The top-level modules, in order.
    pub modules: Vec<ModuleSpec>,
}

impl NetSpec {
    /// Parses a network spec, reporting errors under `--net`.
    pub fn parse(text: &str) -> Result<NetSpec> {
        NetSpec::parse_as(NET_FIELD, text)
    }

    /// Parses a network spec, reporting errors under `field` (`--net`, `net` in a TOML file).
    pub fn parse_as(field: &str, text: &str) -> Result<NetSpec> {
        let shown = one_line(text);
        let fail = |reason: String| Error::spec(field, &shown, one_line(&reason));
        if text.trim().is_empty() {
            return Err(fail(
                "empty network spec (write modules like `linear(64) relu linear`)".into(),
            ));
        }
        let modules = parse_seq(text, "", 0).map_err(fail)?;
        let net = NetSpec { modules };
        if expanded_len(&net.modules) > MAX_MODULES {
            return Err(fail(format!(
                "more than {MAX_MODULES} modules once res(...)*K is expanded"
            )));
        }
        Ok(net)
    }

    /// The canonical text: defaults omitted, one space between modules (same as `Display`).
    pub fn canonical(&self) -> String {
        self.to_string()
    }

    /// The same network with every `res(...)*K` written out as K blocks of `res(...)` (nested
    /// blocks too), as the top-level Sequential holds them.
    pub fn expanded(&self) -> NetSpec {
        NetSpec {
            modules: self.modules.iter().flat_map(ModuleSpec::expand).collect(),
        }
    }
}

impl ModuleSpec {
    /// This module as the modules it stands for: K independent blocks (`repeat` 1) for a
    /// `res(...)*K`, their bodies expanded too; any other module is itself.
    pub fn expand(&self) -> Vec<ModuleSpec> {
        match self {
            ModuleSpec::Res(ResSpec { body, repeat }) => {
                let block = ModuleSpec::Res(ResSpec {
                    body: body.iter().flat_map(ModuleSpec::expand).collect(),
                    repeat: 1,
                });
                vec![block; *repeat]
            }
            other => vec![other.clone()],
        }
    }
}

impl From<NetSpec> for String {
    fn from(n: NetSpec) -> String {
        n.canonical()
    }
}

impl TryFrom<String> for NetSpec {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        NetSpec::parse(&s)
    }
}

impl FromStr for NetSpec {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        NetSpec::parse(s)
    }
}

impl fmt::Display for NetSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_seq(f, &self.modules)
    }
}

/// Writes `modules` separated by single spaces (a net, or a block's body).
pub(crate) fn write_seq(f: &mut fmt::Formatter<'_>, modules: &[ModuleSpec]) -> fmt::Result {
    for (i, m) in modules.iter().enumerate() {
        if i > 0 {
            f.write_str(" ")?;
        }
        write!(f, "{m}")?;
    }
    Ok(())
}

/// Writes `name` and, when there are any, its arguments in parentheses: `gate(0)`, `layernorm`.
pub fn write_call(f: &mut fmt::Formatter<'_>, name: &str, args: &[String]) -> fmt::Result {
    f.write_str(name)?;
    if !args.is_empty() {
        write!(f, "({})", args.join(", "))?;
    }
    Ok(())
}

/// Pushes `key=SPEC` when an initializer is set.
pub fn push_init(args: &mut Vec<String>, key: &str, init: &Option<Init>) {
    if let Some(i) = init {
        args.push(format!("{key}={}", init_value(i)));
    }
}

/// Pushes `key=x` when `x` differs from the kind's default.
pub fn push_number(args: &mut Vec<String>, key: &str, x: f64, default: f64) {
    if x != default {
        args.push(format!("{key}={}", fmt_f64(x)));
    }
}

/// An initializer as an argument value: its canonical spec, in brackets when it holds a comma,
/// a parenthesis, a bracket or whitespace.
pub fn init_value(init: &Init) -> String {
    let s = init.spec();
    if s.contains(|c: char| matches!(c, ',' | '(' | ')' | '[' | ']') || c.is_whitespace()) {
        format!("[{s}]")
    } else {
        s
    }
}

/// How a kind's parentheses read.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Form {
    /// Comma-separated arguments bound to the kind's keys.
    Args,
    /// An activation: its arguments, in parentheses or after a colon, go to [`Activation::parse`].
    Act,
    /// A body of modules, and an optional `*K` after the closing parenthesis.
    Body,
}

/// How a kind is written.
#[derive(Debug)]
pub struct Syntax {
    /// Its names; the first is the one printed (activations print their own canonical name).
    pub names: &'static [&'static str],
    /// Argument keys, in positional order.
    pub keys: &'static [&'static str],
    /// How many leading keys may be given without `key=`.
    pub positional: usize,
    pub form: Form,
}

/// The spec half of a module kind, implemented in the kind's file: how it is written, parsed
/// from its [`Parts`] and printed canonically (defaults omitted).
pub trait KindSpec: Sized {
    const SYNTAX: Syntax;

    /// The kind's name in messages and tables: its first name unless it says otherwise.
    const KIND: &'static str = Self::SYNTAX.names[0];

    /// The kind's arguments from its taken-apart text; the error is the reason, with the
    /// module named ([`Parts::err`]).
    fn parse(p: &Parts<'_>) -> std::result::Result<Self, String>;

    /// The canonical arguments, defaults omitted, in order.
    fn args(&self) -> Vec<String>;

    /// The canonical text: the first name, then the arguments in parentheses when there are any.
    fn write(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_call(f, Self::SYNTAX.names[0], &self.args())
    }

    /// The PyTorch expression of this module reading width `width` (`nn.Linear(64, 32)`,
    /// `Gate(0.0)`), with the model's classes of [`super::torch`].
    fn torch(&self, width: usize, t: &Torch) -> String;

    /// The module, reading width `width`, its tensors' starting values drawn through `b`
    /// ([`Builder::draw`]); the error is the reason (the builder names the module).
    fn build<T: Float>(
        &self,
        width: usize,
        b: &mut Builder<'_>,
    ) -> std::result::Result<Box<dyn Module<T>>, String>;
}

/// One module kind as the parser sees it: its syntax and how it is built.
struct Kind {
    syntax: Syntax,
    build: fn(&Parts<'_>) -> std::result::Result<ModuleSpec, String>,
}

/// Declares [`ModuleSpec`] (one variant per kind, holding the kind's [`KindSpec`] type), its
/// `Display` and the parser's `KINDS` table, from one list.
macro_rules! kinds {
    ($($(#[$doc:meta])* $variant:ident($ty:ty),)*) => {
        /// One module of a [`NetSpec`], holding its kind's arguments (`None` in an `Option`
        /// field means "the default"; for a linear layer's `init` and `bias`, the run's `--init`
        /// and `--bias-init`).
        #[derive(Clone, Debug, PartialEq)]
        pub enum ModuleSpec {
            $($(#[$doc])* $variant($ty),)*
        }

        /// Every module kind; the parser dispatches through this table.
        const KINDS: &[Kind] = &[
            $(Kind {
                syntax: <$ty as KindSpec>::SYNTAX,
                build: |p| <$ty as KindSpec>::parse(p).map(ModuleSpec::$variant),
            },)*
        ];

        impl fmt::Display for ModuleSpec {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $(ModuleSpec::$variant(m) => m.write(f),)*
                }
            }
        }

        impl ModuleSpec {
            /// The kind's name ([`KindSpec::KIND`]).
            pub fn kind(&self) -> &'static str {
                match self {
                    $(ModuleSpec::$variant(_) => <$ty as KindSpec>::KIND,)*
                }
            }

            /// The PyTorch expression ([`KindSpec::torch`]).
            pub fn torch(&self, width: usize, t: &Torch) -> String {
                match self {
                    $(ModuleSpec::$variant(m) => m.torch(width, t),)*
                }
            }

            /// The module ([`KindSpec::build`]).
            pub fn build<T: Float>(
                &self,
                width: usize,
                b: &mut Builder<'_>,
            ) -> std::result::Result<Box<dyn Module<T>>, String> {
                match self {
                    $(ModuleSpec::$variant(m) => m.build(width, b),)*
                }
            }
        }
    };
}
// Every module kind: its variant of `ModuleSpec` and the type that holds its arguments (in the
// kind's own file, with how it is parsed and printed: `KindSpec`). The parser dispatches through
// this list, so a new kind is its file plus one line here.
kinds! {
    /// `linear(N, init=SPEC, bias=SPEC|none)`.
    Linear(LinearSpec),
    /// A pointwise activation, by its `--act` name.
    Act(Activation),
    /// `dropout(p)`.
    Dropout(DropoutSpec),
    /// `layernorm(eps, affine, gamma, beta)`.
    LayerNorm(LayerNormSpec),
    /// `rmsnorm(eps, gamma)`.
    RmsNorm(RmsNormSpec),
    /// `batchnorm(eps, momentum, gamma, beta)`.
    BatchNorm(BatchNormSpec),
    /// `res(MODULES)*K`.
    Res(ResSpec),
    /// `gate(v)`.
    Gate(GateSpec),
    /// `shift(v)`.
    Shift(ShiftSpec),
}

/// A module's text taken apart, for its kind's [`KindSpec::parse`].
pub struct Parts<'a> {
    /// `module 3 `gate(x)``: how errors name it.
    label: String,
    /// Its position as a prefix for its body's modules (`3.`).
    child_prefix: String,
    /// How many `res` blocks enclose it.
    depth: usize,
    /// Lower-cased name.
    name: String,
    kind: &'a Syntax,
    /// The text inside its parentheses, if it has them.
    inner: Option<&'a str>,
    /// The text after `name:`, if written that way.
    colon: Option<&'a str>,
    /// The text after `)*`, if any.
    repeat: Option<&'a str>,
    /// Argument values by key (brackets removed), for [`Form::Args`] kinds.
    values: Vec<Option<&'a str>>,
}

impl Parts<'_> {
    /// `reason` with the module named: ``module 3 `gate(x)`: reason``.
    pub fn err(&self, reason: impl fmt::Display) -> String {
        format!("{}: {reason}", self.label)
    }

    /// The value given for key `i` (of [`Syntax::keys`]), brackets removed.
    pub fn value(&self, i: usize) -> Option<&str> {
        self.values[i]
    }

    /// The value of key `i`, which must be given.
    pub fn required(&self, i: usize) -> Result<&str, String> {
        self.value(i).ok_or_else(|| {
            let key = self.kind.keys[i];
            self.err(format!("missing {key}: {}({key})", self.name))
        })
    }

    /// `v`, the value of key `i`, as a number.
    pub fn number(&self, i: usize, v: &str) -> Result<f64, String> {
        parse_f64(v).ok_or_else(|| self.err(format!("bad number `{v}` for {}", self.kind.keys[i])))
    }

    /// The number given for key `i`, or `default`.
    pub fn number_or(&self, i: usize, default: f64) -> Result<f64, String> {
        self.value(i).map_or(Ok(default), |v| self.number(i, v))
    }

    /// The number given for key `i` (which must be > 0), or `default`.
    pub fn positive_or(&self, i: usize, default: f64) -> Result<f64, String> {
        let x = self.number_or(i, default)?;
        if x > 0.0 {
            Ok(x)
        } else {
            Err(self.err(format!(
                "{} must be > 0, got {}",
                self.kind.keys[i],
                fmt_f64(x)
            )))
        }
    }

    /// `true` or `false` given for key `i`, or `default`.
    pub fn bool_or(&self, i: usize, default: bool) -> Result<bool, String> {
        match self.value(i).map(str::to_ascii_lowercase).as_deref() {
            None => Ok(default),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(_) => Err(self.err(format!(
                "bad value `{}` for {} (true or false)",
                self.value(i).unwrap_or_default(),
                self.kind.keys[i]
            ))),
        }
    }

    /// The initializer spec given for key `i`, if any.
    pub fn init(&self, i: usize) -> Result<Option<Init>, String> {
        self.value(i)
            .map(|v| Init::parse(self.kind.keys[i], v).map_err(|e| self.err(e)))
            .transpose()
    }
}

impl Parts<'_> {
    /// A `res(...)*K` block's body and repeat count (K defaults to 1).
    pub fn body(&self) -> std::result::Result<(Vec<ModuleSpec>, usize), String> {
        let inner = match self.inner {
            None => return Err(self.err("res needs a body: res(MODULES)")),
            Some(s) if s.trim().is_empty() => return Err(self.err("empty res()")),
            Some(s) => s,
        };
        if self.depth >= MAX_RES_DEPTH {
            return Err(self.err(format!(
                "res(...) blocks nest more than {MAX_RES_DEPTH} deep"
            )));
        }
        let repeat = match self.repeat {
            None => 1,
            Some(k) => match k.parse::<usize>() {
                Ok(0) => return Err(self.err("`*0`: a res block repeats at least once")),
                Ok(n) => n,
                Err(_) => {
                    return Err(self.err(format!("bad repeat count `*{k}` (a whole number >= 1)")))
                }
            },
        };
        Ok((
            parse_seq(inner, &self.child_prefix, self.depth + 1)?,
            repeat,
        ))
    }

    /// An activation's text as `--act` writes it: `name` or `name:args`, whether the spec wrote
    /// its arguments in parentheses or after a colon.
    pub fn act_text(&self) -> String {
        match (self.inner, self.colon) {
            (Some(a), _) if a.trim().is_empty() => self.name.clone(),
            (Some(a), _) | (None, Some(a)) => format!("{}:{a}", self.name),
            (None, None) => self.name.clone(),
        }
    }

    /// Whether the module was written with empty parentheses: `linear()`.
    pub fn empty_parens(&self) -> bool {
        self.inner.is_some_and(|s| s.trim().is_empty())
    }
}

/// Parses a whitespace-separated sequence of modules (the whole net, or a res body). `prefix` is
/// the position prefix of its modules (`""` at the top, `"3."` in the body of module 3).
fn parse_seq(text: &str, prefix: &str, depth: usize) -> Result<Vec<ModuleSpec>, String> {
    let tokens = split_modules(text, prefix)?;
    let mut modules = Vec::with_capacity(tokens.len());
    for (i, tok) in tokens.iter().enumerate() {
        let pos = format!("{prefix}{}", i + 1);
        let label = format!("module {pos} `{}`", shown(tok));
        let m = parse_module(tok, label.clone(), format!("{pos}."), depth)?;
        if matches!(m, ModuleSpec::Linear(LinearSpec { width: None, .. })) {
            let bare = tok.eq_ignore_ascii_case("linear");
            if depth > 0 {
                return Err(format!(
                    "{label}: missing width (a linear inside res(...) needs one)"
                ));
            }
            if i + 1 != tokens.len() {
                return Err(if bare {
                    format!("{label}: a bare `linear` (no width) must be the last module; it maps to the output")
                } else {
                    format!("{label}: missing width (only the last linear may leave it out)")
                });
            }
        }
        modules.push(m);
    }
    Ok(modules)
}

/// Splits `text` at whitespace outside parentheses and brackets, checking that they balance.
fn split_modules<'a>(text: &'a str, prefix: &str) -> Result<Vec<&'a str>, String> {
    let mut out = Vec::new();
    let mut open: Vec<char> = Vec::new();
    let mut start: Option<usize> = None;
    let label = |n: usize, t: &str| format!("module {prefix}{n} `{}`", shown(t));
    for (i, c) in text.char_indices() {
        if open.is_empty() && c.is_whitespace() {
            if let Some(s) = start.take() {
                out.push(&text[s..i]);
            }
            continue;
        }
        let s = *start.get_or_insert(i);
        match c {
            '(' | '[' => open.push(c),
            ')' | ']' => {
                let want = if c == ')' { '(' } else { '[' };
                let t = &text[s..i + 1];
                match open.pop() {
                    Some(o) if o == want => {}
                    Some(o) => {
                        return Err(format!(
                            "{}: unbalanced: `{c}` closes `{o}`",
                            label(out.len() + 1, t)
                        ))
                    }
                    None => {
                        return Err(format!(
                            "{}: unbalanced: `{c}` without a matching `{want}`",
                            label(out.len() + 1, t)
                        ))
                    }
                }
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        if let Some(o) = open.last() {
            return Err(format!(
                "{}: unbalanced: `{o}` is never closed",
                label(out.len() + 1, &text[s..])
            ));
        }
        out.push(&text[s..]);
    }
    Ok(out)
}

/// Parses one module's text (no whitespace outside its parentheses, which balance).
fn parse_module(
    tok: &str,
    label: String,
    child_prefix: String,
    depth: usize,
) -> Result<ModuleSpec, String> {
    let err = |reason: String| format!("{label}: {reason}");
    let name_end = tok
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(tok.len());
    let (raw_name, rest) = tok.split_at(name_end);
    if raw_name.is_empty() {
        let first = rest.chars().next().unwrap_or(' ');
        return Err(err(if first == '*' {
            "`*K` must follow `res(...)` with no space".into()
        } else {
            format!("expected a module name, found `{first}`")
        }));
    }
    let name = raw_name.to_ascii_lowercase();
    let (inner, colon, after) = if let Some(r) = rest.strip_prefix('(') {
        let close =
            matching_close(r).ok_or_else(|| err("unbalanced: `(` is never closed".into()))?;
        (Some(&r[..close]), None, &r[close + 1..])
    } else if let Some(r) = rest.strip_prefix(':') {
        (None, Some(r), "")
    } else {
        (None, None, rest)
    };
    let Some(kind) = KINDS
        .iter()
        .find(|k| k.syntax.names.contains(&name.as_str()))
    else {
        let known: Vec<&str> = KINDS
            .iter()
            .flat_map(|k| k.syntax.names.iter().copied())
            .collect();
        return Err(err(format!(
            "unknown module `{name}` (known: {})",
            known.join(", ")
        )));
    };
    let repeat = match after.strip_prefix('*') {
        Some(k) if kind.syntax.form == Form::Body => Some(k),
        Some(_) => return Err(err(format!("only res(...) repeats with *K, not `{name}`"))),
        None if after.is_empty() => None,
        None => {
            let before = &tok[..tok.len() - after.len()];
            return Err(err(format!(
                "unexpected `{}` after `{}`",
                shown(after),
                shown(before)
            )));
        }
    };
    if colon.is_some() && kind.syntax.form != Form::Act {
        return Err(err(format!(
            "`{name}` takes its arguments in parentheses: {name}(...)"
        )));
    }
    let values = match (kind.syntax.form, inner) {
        (Form::Args, Some(inner)) => bind(&kind.syntax, &name, inner).map_err(err)?,
        _ => vec![None; kind.syntax.keys.len()],
    };
    let parts = Parts {
        label,
        child_prefix,
        depth,
        name,
        kind: &kind.syntax,
        inner,
        colon,
        repeat,
        values,
    };
    (kind.build)(&parts)
}

/// The byte index in `s` of the `)` that closes a `(` just before `s`.
fn matching_close(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in s.char_indices() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' if depth > 0 => depth -= 1,
            ')' => return Some(i),
            _ => {}
        }
    }
    None
}

/// Binds the comma-separated arguments `inner` to `kind`'s keys (values trimmed, brackets
/// removed). The reason of an error, without the module label.
fn bind<'a>(kind: &Syntax, name: &str, inner: &'a str) -> Result<Vec<Option<&'a str>>, String> {
    let mut out: Vec<Option<&'a str>> = vec![None; kind.keys.len()];
    if inner.trim().is_empty() {
        return Ok(out);
    }
    let mut named = false;
    for (pos, item) in split_top(inner, ',').into_iter().enumerate() {
        let item = item.trim();
        if item.is_empty() {
            return Err("empty argument".into());
        }
        let (slot, value) = match split_top(item, '=').split_first() {
            Some((k, rest)) if !rest.is_empty() => {
                named = true;
                let key = k.trim().to_ascii_lowercase();
                let slot = kind
                    .keys
                    .iter()
                    .position(|&want| want == key)
                    .ok_or_else(|| {
                        if kind.keys.is_empty() {
                            format!("unknown key `{key}` ({name} takes no arguments)")
                        } else {
                            format!(
                                "unknown key `{key}` ({name} takes {})",
                                kind.keys.join(", ")
                            )
                        }
                    })?;
                // The value is everything after the first `=`.
                (slot, item[k.len() + 1..].trim())
            }
            _ => {
                if named {
                    return Err(format!(
                        "positional argument `{item}` after a key=value one (a value with commas goes in brackets: init=[...])"
                    ));
                }
                if pos >= kind.positional {
                    return Err(match kind.positional {
                        0 if kind.keys.is_empty() => format!("{name} takes no arguments"),
                        0 => format!(
                            "{name} takes key=value arguments only ({})",
                            kind.keys.join(", ")
                        ),
                        n => format!(
                            "too many positional arguments ({name} takes {n}: {})",
                            kind.keys[..n].join(", ")
                        ),
                    });
                }
                (pos, item)
            }
        };
        let key = kind.keys[slot];
        if out[slot].is_some() {
            return Err(format!("{key} given twice"));
        }
        let value = unbracket(value);
        if value.is_empty() {
            return Err(format!("{key} has no value"));
        }
        out[slot] = Some(value);
    }
    Ok(out)
}

/// `s` without one pair of enclosing brackets (`[uniform:-1,1]` -> `uniform:-1,1`), trimmed.
fn unbracket(s: &str) -> &str {
    match s.strip_prefix('[') {
        Some(r) if r.ends_with(']') && matching_bracket(r) == Some(r.len() - 1) => {
            r[..r.len() - 1].trim()
        }
        _ => s,
    }
}

/// The byte index in `s` of the `]` that closes a `[` just before `s`.
fn matching_bracket(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in s.char_indices() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' if depth > 0 => depth -= 1,
            ']' => return Some(i),
            _ => {}
        }
    }
    None
}

/// Splits `s` at `sep` outside parentheses and brackets.
fn split_top(s: &str, sep: char) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth = depth.saturating_sub(1),
            c if c == sep && depth == 0 => {
                out.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// The number of modules once every `res(...)*K` is expanded (a block is one plus its body),
/// saturating.
fn expanded_len(modules: &[ModuleSpec]) -> usize {
    modules.iter().fold(0usize, |n, m| {
        n.saturating_add(match m {
            ModuleSpec::Res(ResSpec { body, repeat }) => {
                repeat.saturating_mul(expanded_len(body).saturating_add(1))
            }
            _ => 1,
        })
    })
}

/// `s` on one line: every run of whitespace a single space, ends trimmed.
/// `s` on one line for a message: runs of whitespace (line breaks included) become one space and
/// other control characters are written escaped (`\u{0}`).
fn one_line(s: &str) -> String {
    s.split_whitespace()
        .map(|w| {
            w.chars()
                .map(|c| {
                    if c.is_control() {
                        c.escape_default().to_string()
                    } else {
                        c.to_string()
                    }
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A module's text as quoted in errors: on one line, cut to [`MAX_SHOWN`] characters.
fn shown(s: &str) -> String {
    let s = one_line(s);
    if s.chars().count() <= MAX_SHOWN {
        s
    } else {
        let cut: String = s.chars().take(MAX_SHOWN - 3).collect();
        format!("{cut}...")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activation::ACTIVATION_NAMES;
    use crate::nn::dense::BiasSpec;

    /// Found by the fuzz target: a line break and NUL bytes inside an argument gave a two-line
    /// error; every error is one line, with control characters escaped.
    #[test]
    fn errors_stay_on_one_line_whatever_the_input_holds() {
        let e = NetSpec::parse("linear(\0 x\n64) relu")
            .unwrap_err()
            .to_string();
        assert!(!e.contains('\n') && !e.contains('\0'), "{e}");
        assert!(e.contains("\\u{0}"), "{e}");
    }

    fn canon(s: &str) -> String {
        NetSpec::parse(s)
            .unwrap_or_else(|e| panic!("{s}: {e}"))
            .canonical()
    }

    fn err(s: &str) -> String {
        NetSpec::parse(s).unwrap_err().to_string()
    }

    fn one(s: &str) -> ModuleSpec {
        let mut net = NetSpec::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(net.modules.len(), 1, "{s}");
        net.modules.remove(0)
    }

    // --- one test per grammar rule ---

    #[test]
    fn linear_takes_a_width_an_init_and_a_bias() {
        assert_eq!(
            one("linear(64)"),
            ModuleSpec::Linear(LinearSpec {
                width: Some(64),
                init: None,
                bias: None
            })
        );
        assert_eq!(
            one("linear(8, init=zeros, bias=none)"),
            ModuleSpec::Linear(LinearSpec {
                width: Some(8),
                init: Some(Init::Zeros),
                bias: Some(BiasSpec::Off)
            })
        );
        assert_eq!(
            one("linear(width=8, bias=constant:0.1)"),
            ModuleSpec::Linear(LinearSpec {
                width: Some(8),
                init: None,
                bias: Some(BiasSpec::Init(Init::Constant { value: 0.1 })),
            })
        );
    }

    #[test]
    fn a_final_bare_linear_maps_to_the_output() {
        let net = NetSpec::parse("linear(4) tanh linear").unwrap();
        assert_eq!(
            net.modules[2],
            ModuleSpec::Linear(LinearSpec {
                width: None,
                init: None,
                bias: None
            })
        );
        assert_eq!(
            one("linear(init=zeros)"),
            ModuleSpec::Linear(LinearSpec {
                width: None,
                init: Some(Init::Zeros),
                bias: None
            })
        );
    }

    #[test]
    fn bracketed_values_hold_commas() {
        assert_eq!(
            one("linear(3, init=[uniform:-0.1,0.1])"),
            ModuleSpec::Linear(LinearSpec {
                width: Some(3),
                init: Some(Init::Uniform { a: -0.1, b: 0.1 }),
                bias: None,
            })
        );
        let m = one("linear(3, init=[perturbed:eps=1e-3,base=uniform:-1,1])");
        let ModuleSpec::Linear(LinearSpec {
            init: Some(Init::Perturbed { eps, .. }),
            ..
        }) = m
        else {
            panic!("{m:?}")
        };
        assert_eq!(eps, 1e-3);
        assert_eq!(
            canon("linear(3, init=[perturbed:eps=1e-3,base=uniform:-1,1])"),
            "linear(3, init=[perturbed:eps=0.001,base=uniform:-1,1])"
        );
    }

    #[test]
    fn activations_take_their_act_names_and_arguments() {
        assert_eq!(one("relu"), ModuleSpec::Act(Activation::Relu));
        assert_eq!(one("GELU"), ModuleSpec::Act(Activation::Gelu));
        assert_eq!(
            one("leaky_relu(0.2)"),
            ModuleSpec::Act(Activation::LeakyRelu { slope: 0.2 })
        );
        assert_eq!(
            one("leaky_relu:0.2"),
            ModuleSpec::Act(Activation::LeakyRelu { slope: 0.2 })
        );
        assert_eq!(
            one("elu(alpha=0.5)"),
            ModuleSpec::Act(Activation::Elu { alpha: 0.5 })
        );
        assert_eq!(
            one("leaky_relu"),
            ModuleSpec::Act(Activation::LeakyRelu { slope: 0.01 })
        );
        for name in ACTIVATION_NAMES {
            assert_eq!(
                one(name),
                ModuleSpec::Act(Activation::parse("--act", name).unwrap())
            );
        }
    }

    #[test]
    fn dropout_takes_a_probability() {
        assert_eq!(one("dropout(0.1)"), ModuleSpec::Dropout(DropoutSpec(0.1)));
        assert_eq!(one("dropout(p=0)"), ModuleSpec::Dropout(DropoutSpec(0.0)));
    }

    #[test]
    fn norms_take_eps_and_their_parameter_inits() {
        assert_eq!(
            one("layernorm"),
            ModuleSpec::LayerNorm(LayerNormSpec {
                eps: 1e-5,
                affine: true,
                gamma: None,
                beta: None
            })
        );
        assert_eq!(
            one("layernorm(eps=1e-6, affine=false)"),
            ModuleSpec::LayerNorm(LayerNormSpec {
                eps: 1e-6,
                affine: false,
                gamma: None,
                beta: None
            })
        );
        assert_eq!(
            one("layernorm(gamma=zeros, beta=constant:0.5)"),
            ModuleSpec::LayerNorm(LayerNormSpec {
                eps: 1e-5,
                affine: true,
                gamma: Some(Init::Zeros),
                beta: Some(Init::Constant { value: 0.5 }),
            })
        );
        assert_eq!(
            one("rmsnorm"),
            ModuleSpec::RmsNorm(RmsNormSpec {
                eps: None,
                gamma: None
            })
        );
        assert_eq!(
            one("rmsnorm(eps=1e-6, gamma=ones)"),
            ModuleSpec::RmsNorm(RmsNormSpec {
                eps: Some(1e-6),
                gamma: Some(Init::Ones)
            })
        );
        assert_eq!(
            one("batchnorm"),
            ModuleSpec::BatchNorm(BatchNormSpec {
                eps: 1e-5,
                momentum: 0.1,
                gamma: None,
                beta: None
            })
        );
        assert_eq!(
            one("batchnorm(eps=1e-3, momentum=0.01, beta=zeros)"),
            ModuleSpec::BatchNorm(BatchNormSpec {
                eps: 1e-3,
                momentum: 0.01,
                gamma: None,
                beta: Some(Init::Zeros)
            })
        );
    }

    #[test]
    fn res_holds_a_body_and_a_repeat_count() {
        assert_eq!(
            one("res(linear(4) relu)"),
            ModuleSpec::Res(ResSpec {
                body: vec![
                    ModuleSpec::Linear(LinearSpec {
                        width: Some(4),
                        init: None,
                        bias: None
                    }),
                    ModuleSpec::Act(Activation::Relu),
                ],
                repeat: 1,
            })
        );
        assert_eq!(
            one("res(relu)*3"),
            ModuleSpec::Res(ResSpec {
                body: vec![ModuleSpec::Act(Activation::Relu)],
                repeat: 3
            })
        );
        assert_eq!(
            one("res(res(tanh)*2)"),
            ModuleSpec::Res(ResSpec {
                body: vec![ModuleSpec::Res(ResSpec {
                    body: vec![ModuleSpec::Act(Activation::Tanh)],
                    repeat: 2
                })],
                repeat: 1,
            })
        );
    }

    #[test]
    fn expanding_writes_out_k_independent_blocks() {
        let net = NetSpec::parse("linear(4) res(relu res(tanh)*2)*3 linear").unwrap();
        let flat = net.expanded();
        assert_eq!(flat.modules.len(), 5);
        assert_eq!(
            flat.canonical(),
            "linear(4) res(relu res(tanh) res(tanh)) res(relu res(tanh) res(tanh)) \
             res(relu res(tanh) res(tanh)) linear"
        );
        assert_eq!(flat.expanded(), flat);
    }

    #[test]
    fn gate_and_shift_take_a_finite_value() {
        assert_eq!(one("gate(0)"), ModuleSpec::Gate(GateSpec(0.0)));
        assert_eq!(one("gate(value=-0.5)"), ModuleSpec::Gate(GateSpec(-0.5)));
        assert_eq!(one("shift(1e-3)"), ModuleSpec::Shift(ShiftSpec(1e-3)));
    }

    #[test]
    fn whitespace_separates_modules_and_is_ignored_inside_parentheses() {
        let a = NetSpec::parse("linear(64) relu res(layernorm linear(64)) linear").unwrap();
        let b = NetSpec::parse("  linear( 64 )\n\trelu   res(  layernorm\nlinear(\n64 ) ) linear ")
            .unwrap();
        assert_eq!(a, b);
        assert_eq!(
            canon("linear( 8 , init = [ uniform: -1 , 1 ] , bias = none )"),
            "linear(8, init=[uniform:-1,1], bias=none)"
        );
    }

    #[test]
    fn the_issue_example_parses() {
        let text = "linear(64) relu res(layernorm linear(64) relu linear(64) gate(0))*2 linear";
        let net = NetSpec::parse(text).unwrap();
        let l64 = ModuleSpec::Linear(LinearSpec {
            width: Some(64),
            init: None,
            bias: None,
        });
        assert_eq!(
            net.modules,
            vec![
                l64.clone(),
                ModuleSpec::Act(Activation::Relu),
                ModuleSpec::Res(ResSpec {
                    body: vec![
                        ModuleSpec::LayerNorm(LayerNormSpec {
                            eps: 1e-5,
                            affine: true,
                            gamma: None,
                            beta: None
                        }),
                        l64.clone(),
                        ModuleSpec::Act(Activation::Relu),
                        l64,
                        ModuleSpec::Gate(GateSpec(0.0)),
                    ],
                    repeat: 2,
                }),
                ModuleSpec::Linear(LinearSpec {
                    width: None,
                    init: None,
                    bias: None
                }),
            ]
        );
        assert_eq!(net.canonical(), text);
        assert_eq!(net.to_string(), text);
        assert_eq!(text.parse::<NetSpec>().unwrap(), net);
        assert_eq!(net.expanded().modules.len(), 5);
    }

    #[test]
    fn the_readme_examples_parse() {
        let readme = include_str!("../../../../README.md");
        let section = readme
            .split("## Network specs (--net)")
            .nth(1)
            .and_then(|s| s.split("```text").nth(2))
            .and_then(|s| s.split("```").next())
            .expect("README section with examples");
        let examples: Vec<&str> = section.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(examples.len(), 3);
        for text in examples {
            let net = NetSpec::parse(text).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(NetSpec::parse(&net.canonical()).unwrap(), net);
        }
    }

    // --- canonical text ---

    #[test]
    fn equivalent_spellings_have_one_canonical_text() {
        let groups: &[&[&str]] = &[
            &[
                "leaky_relu(0.2)",
                "leaky_relu:0.2",
                "Leaky_ReLU( slope = 0.2 )",
                "leaky_relu:slope=0.2",
            ],
            &[
                "layernorm",
                "layernorm()",
                "layernorm(eps=1e-5)",
                "layernorm(eps=0.00001, affine=true)",
                "LayerNorm(affine=TRUE)",
            ],
            &[
                "batchnorm",
                "batchnorm(eps=1e-5, momentum=0.1)",
                "batchnorm(momentum=1e-1)",
            ],
            &["rmsnorm(eps=1e-6)", "rmsnorm(eps=0.000001)"],
            &["res(relu)", "res(relu)*1", "res( relu )"],
            &[
                "linear(8) relu linear",
                "  linear(width=8)   relu\nlinear  ",
                "LINEAR(8) ReLU Linear",
            ],
            &[
                "linear(8, init=[uniform:-0.1,0.1])",
                "linear(8,init=[uniform:-0.1, 0.1])",
                "linear(init=[uniform:-1e-1,1e-1], width=8)",
            ],
            &["gate(0.5)", "gate(5e-1)", "gate(value=0.50)"],
            &["dropout(0.1)", "dropout(p=0.1)", "dropout([0.1])"],
        ];
        for group in groups {
            let first = canon(group[0]);
            for s in *group {
                assert_eq!(canon(s), first, "{s}");
            }
        }
        assert_eq!(canon("leaky_relu(0.2)"), "leaky_relu:0.2");
        assert_eq!(canon("layernorm(eps=1e-5, affine=true)"), "layernorm");
        assert_eq!(canon("res(relu)*1"), "res(relu)");
    }

    #[test]
    fn canonical_text_omits_defaults_and_keeps_the_rest() {
        assert_eq!(
            canon("layernorm(eps=1e-6, affine=false)"),
            "layernorm(eps=0.000001, affine=false)"
        );
        assert_eq!(
            canon("batchnorm(momentum=0.2, gamma=ones, beta=[normal:std=0.02])"),
            "batchnorm(momentum=0.2, gamma=ones, beta=[normal:mean=0,std=0.02])"
        );
        assert_eq!(canon("rmsnorm(gamma=zeros)"), "rmsnorm(gamma=zeros)");
        assert_eq!(
            canon("linear(init=xavier_uniform)"),
            "linear(init=xavier_uniform:gain=1)"
        );
        assert_eq!(canon("linear(4, bias=None)"), "linear(4, bias=none)");
        assert_eq!(canon("shift(-0.25) gate(1)"), "shift(-0.25) gate(1)");
    }

    #[test]
    fn canonical_text_parses_back_to_the_same_spec() {
        let specs = [
            "linear(64) relu res(layernorm linear(64) relu linear(64) gate(0))*2 linear",
            "linear(3, init=[perturbed:eps=1e-3,base=uniform:-1,1], bias=none) elu:0.5 dropout(0.25) linear",
            "linear(16, init=[kaiming_normal:mode=fan_out,nonlinearity=relu]) leaky_relu(0.2) linear(1)",
            "batchnorm(eps=1e-3, momentum=0.3, gamma=ones, beta=zeros) rmsnorm(eps=1e-8, gamma=[constant:0.1])",
            "res(res(shift(0.1) tanh)*2 gate(0.3333333333333333))*4 layernorm(affine=false)",
            "gate(1e-300) shift(123456789.125) linear(init=[normal:std=0.02], bias=[uniform:-0.1,0.1])",
        ];
        for s in specs {
            let net = NetSpec::parse(s).unwrap();
            let text = net.canonical();
            let again = NetSpec::parse(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(again, net, "{s} -> {text}");
            assert_eq!(again.canonical(), text);
        }
    }

    // --- errors, exact text ---

    #[test]
    fn errors_name_the_module_and_the_problem() {
        let cases: &[(&str, &str)] = &[
            ("", "--net '': empty network spec (write modules like `linear(64) relu linear`)"),
            ("linear(4) foo(3)", "--net 'linear(4) foo(3)': module 2 `foo(3)`: unknown module `foo` (known: linear, identity, tanh, sigmoid, relu, leaky_relu, elu, selu, gelu, softplus, silu, softsign, dropout, layernorm, rmsnorm, batchnorm, res, gate, shift)"),
            ("linear(4, size=3)", "--net 'linear(4, size=3)': module 1 `linear(4, size=3)`: unknown key `size` (linear takes width, init, bias)"),
            ("relu(x=1)", "--net 'relu(x=1)': module 1 `relu(x=1)`: activation 'relu:x=1': unknown argument 'x' (known: grad0)"),
            ("linear()", "--net 'linear()': module 1 `linear()`: missing width: linear(N), or a bare `linear` as the last module"),
            ("linear(init=zeros) relu linear", "--net 'linear(init=zeros) relu linear': module 1 `linear(init=zeros)`: missing width (only the last linear may leave it out)"),
            ("linear relu", "--net 'linear relu': module 1 `linear`: a bare `linear` (no width) must be the last module; it maps to the output"),
            ("res(linear) linear", "--net 'res(linear) linear': module 1.1 `linear`: missing width (a linear inside res(...) needs one)"),
            ("linear(4) relu gate(x)", "--net 'linear(4) relu gate(x)': module 3 `gate(x)`: bad number `x` for value"),
            ("linear(four)", "--net 'linear(four)': module 1 `linear(four)`: bad width `four` (a whole number >= 1)"),
            ("linear(0)", "--net 'linear(0)': module 1 `linear(0)`: bad width `0` (a whole number >= 1)"),
            ("gate(nan)", "--net 'gate(nan)': module 1 `gate(nan)`: bad number `nan` for value"),
            ("gate", "--net 'gate': module 1 `gate`: missing value: gate(value)"),
            ("dropout(1)", "--net 'dropout(1)': module 1 `dropout(1)`: p must be in [0, 1), got 1"),
            ("layernorm(eps=0)", "--net 'layernorm(eps=0)': module 1 `layernorm(eps=0)`: eps must be > 0, got 0"),
            ("layernorm(affine=yes)", "--net 'layernorm(affine=yes)': module 1 `layernorm(affine=yes)`: bad value `yes` for affine (true or false)"),
            ("layernorm(affine=false, gamma=ones)", "--net 'layernorm(affine=false, gamma=ones)': module 1 `layernorm(affine=false, gamma=ones)`: gamma and beta need affine=true"),
            ("layernorm(1e-5)", "--net 'layernorm(1e-5)': module 1 `layernorm(1e-5)`: layernorm takes key=value arguments only (eps, affine, gamma, beta)"),
            ("rmsnorm(beta=zeros)", "--net 'rmsnorm(beta=zeros)': module 1 `rmsnorm(beta=zeros)`: unknown key `beta` (rmsnorm takes eps, gamma)"),
            ("batchnorm(momentum=2)", "--net 'batchnorm(momentum=2)': module 1 `batchnorm(momentum=2)`: momentum must be in [0, 1], got 2"),
            ("linear(4, init=[uniform:1,0])", "--net 'linear(4, init=[uniform:1,0])': module 1 `linear(4, init=[uniform:1,0])`: init 'uniform:1,0': uniform needs a <= b, got a=1, b=0"),
            ("linear(4, init=uniform:-1,1)", "--net 'linear(4, init=uniform:-1,1)': module 1 `linear(4, init=uniform:-1,1)`: positional argument `1` after a key=value one (a value with commas goes in brackets: init=[...])"),
            ("linear(4, 5)", "--net 'linear(4, 5)': module 1 `linear(4, 5)`: too many positional arguments (linear takes 1: width)"),
            ("linear(4,,)", "--net 'linear(4,,)': module 1 `linear(4,,)`: empty argument"),
            ("linear(4, width=5)", "--net 'linear(4, width=5)': module 1 `linear(4, width=5)`: width given twice"),
            ("linear(4, init=)", "--net 'linear(4, init=)': module 1 `linear(4, init=)`: init has no value"),
            ("linear(4 relu", "--net 'linear(4 relu': module 1 `linear(4 relu`: unbalanced: `(` is never closed"),
            ("relu) linear", "--net 'relu) linear': module 1 `relu)`: unbalanced: `)` without a matching `(`"),
            ("linear(4, init=[zeros)]", "--net 'linear(4, init=[zeros)]': module 1 `linear(4, init=[zeros)`: unbalanced: `)` closes `[`"),
            ("linear(4, init=[uniform:-1,1) relu", "--net 'linear(4, init=[uniform:-1,1) relu': module 1 `linear(4, init=[uniform:-1,1)`: unbalanced: `)` closes `[`"),
            ("res()", "--net 'res()': module 1 `res()`: empty res()"),
            ("res", "--net 'res': module 1 `res`: res needs a body: res(MODULES)"),
            ("res(relu)*0", "--net 'res(relu)*0': module 1 `res(relu)*0`: `*0`: a res block repeats at least once"),
            ("res(relu)*x", "--net 'res(relu)*x': module 1 `res(relu)*x`: bad repeat count `*x` (a whole number >= 1)"),
            ("res(relu) *2", "--net 'res(relu) *2': module 2 `*2`: `*K` must follow `res(...)` with no space"),
            ("relu(2)*2", "--net 'relu(2)*2': module 1 `relu(2)*2`: only res(...) repeats with *K, not `relu`"),
            ("linear(4)x relu", "--net 'linear(4)x relu': module 1 `linear(4)x`: unexpected `x` after `linear(4)`"),
            ("linear=4", "--net 'linear=4': module 1 `linear=4`: unexpected `=4` after `linear`"),
            ("dropout:0.1", "--net 'dropout:0.1': module 1 `dropout:0.1`: `dropout` takes its arguments in parentheses: dropout(...)"),
            ("(4)", "--net '(4)': module 1 `(4)`: expected a module name, found `(`"),
            ("res(relu gate(y))", "--net 'res(relu gate(y))': module 1.2 `gate(y)`: bad number `y` for value"),
            ("linear(4)\n  relu\tfoo", "--net 'linear(4) relu foo': module 3 `foo`: unknown module `foo` (known: linear, identity, tanh, sigmoid, relu, leaky_relu, elu, selu, gelu, softplus, silu, softsign, dropout, layernorm, rmsnorm, batchnorm, res, gate, shift)"),
            ("res(relu)*100000", "--net 'res(relu)*100000': more than 10000 modules once res(...)*K is expanded"),
        ];
        for (text, want) in cases {
            let got = err(text);
            assert_eq!(&got, want, "{text}");
            assert!(!got.contains('\n'), "{got}");
        }
    }

    #[test]
    fn deep_res_nesting_is_refused() {
        let ok = format!(
            "{}relu{}",
            "res(".repeat(MAX_RES_DEPTH),
            ")".repeat(MAX_RES_DEPTH)
        );
        NetSpec::parse(&ok).unwrap();
        let deep = format!("{}relu{}", "res(".repeat(100_000), ")".repeat(100_000));
        let e = err(&deep);
        assert!(e.ends_with("res(...) blocks nest more than 16 deep"), "{e}");
        assert!(
            e.contains("module 1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1 `res(res("),
            "{e}"
        );
    }

    #[test]
    fn errors_report_under_the_field_given() {
        let e = NetSpec::parse_as("net", "relu foo")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("net 'relu foo': module 2 `foo`: unknown module"),
            "{e}"
        );
    }

    #[test]
    fn long_module_texts_are_cut_in_errors() {
        let text = format!("linear(4, init=[uniform:{}])", "1,".repeat(40));
        let e = err(&text);
        assert!(
            e.contains(
                "module 1 `linear(4, init=[uniform:1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1...`: init"
            ),
            "{e}"
        );
        let e = err("linear(4, init=foo)");
        assert!(e.starts_with("--net 'linear(4, init=foo)': module 1 `linear(4, init=foo)`: init 'foo': unknown initializer 'foo' (known: zeros,"), "{e}");
    }

    #[test]
    fn random_bytes_never_panic() {
        // A fixed-seed generator over the grammar's characters plus arbitrary bytes.
        let alphabet = b"linear()[]*=,: .-0123456789eresgatshiftdropoutnormuxz\n\t";
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let len = (next() % 48) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    let r = next();
                    if r % 8 == 0 {
                        (r >> 8) as u8
                    } else {
                        alphabet[(r >> 8) as usize % alphabet.len()]
                    }
                })
                .collect();
            let text = String::from_utf8_lossy(&bytes);
            if let Ok(net) = NetSpec::parse(&text) {
                let again = NetSpec::parse(&net.canonical()).unwrap();
                assert_eq!(again, net, "{text:?}");
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn any_string_parses_or_fails_without_panicking(s in "\\PC{0,64}") {
            let _ = NetSpec::parse(&s);
        }

        #[test]
        fn grammar_like_strings_round_trip_when_they_parse(
            s in "(linear|relu|res|gate|dropout|layernorm|leaky_relu|\\(|\\)|\\[|\\]|\\*|=|,|:|[0-9]|\\.|-| |init|zeros|uniform|eps|none|bias){0,24}"
        ) {
            if let Ok(net) = NetSpec::parse(&s) {
                let text = net.canonical();
                let again = NetSpec::parse(&text).unwrap();
                proptest::prop_assert_eq!(&again, &net);
                proptest::prop_assert_eq!(again.canonical(), text);
            }
        }
    }
}
