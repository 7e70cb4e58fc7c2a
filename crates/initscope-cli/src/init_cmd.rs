//! `initscope init list` and `initscope init show`.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use initscope::activation::Activation;
use initscope::init::{Fans, FillContext, Init, Moments, Role, INITIALIZERS};
use initscope::spec::Spec;

#[derive(Args, Debug)]
pub struct InitArgs {
    #[command(subcommand)]
    pub command: InitCommand,
}

#[derive(Subcommand, Debug)]
pub enum InitCommand {
    /// Every initializer: name, aliases, arguments, formula, source.
    List {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The resolved distribution (mean, std, bounds) of an initializer spec for given fans.
    Show {
        /// Initializer spec, e.g. kaiming_normal:mode=fan_out or xavier_uniform:gain=auto.
        spec: String,
        /// Inputs of the layer (columns of its weight matrix).
        #[arg(long)]
        fan_in: usize,
        /// Outputs of the layer (rows of its weight matrix).
        #[arg(long)]
        fan_out: usize,
        /// The activation after the layer (for gain=auto).
        #[arg(long, default_value = "identity")]
        act: String,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
}

fn moments_json(m: &Option<Moments>) -> serde_json::Value {
    match m {
        Some(m) => serde_json::json!({
            "mean": m.mean,
            "std": m.std,
            "variance": m.std * m.std,
            "bounds": m.bounds.map(|(a, b)| [a, b]),
        }),
        None => serde_json::Value::Null,
    }
}

fn moments_text(m: &Option<Moments>) -> String {
    match m {
        Some(m) => {
            let bounds = m
                .bounds
                .map(|(a, b)| format!(", support [{a:.6}, {b:.6}]"))
                .unwrap_or_default();
            format!(
                "mean {:.6}, std {:.6} (variance {:.6e}){bounds}",
                m.mean,
                m.std,
                m.std * m.std
            )
        }
        None => "structured (deterministic shape, see the formula)".into(),
    }
}

pub fn run(a: InitArgs) -> anyhow::Result<ExitCode> {
    match a.command {
        InitCommand::List { json } => {
            if json {
                let rows: Vec<_> = INITIALIZERS
                    .iter()
                    .map(|i| {
                        serde_json::json!({
                            "name": i.name, "aliases": i.aliases, "args": i.args,
                            "formula": i.formula, "source": i.source,
                        })
                    })
                    .collect();
                outln!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                for i in INITIALIZERS {
                    let aliases = if i.aliases.is_empty() {
                        String::new()
                    } else {
                        format!(" (also {})", i.aliases.join(", "))
                    };
                    let args = if i.args.is_empty() {
                        String::new()
                    } else {
                        format!(":{}", i.args)
                    };
                    outln!(
                        "{}{args}{aliases}\n    {}\n    source: {}",
                        i.name,
                        i.formula,
                        i.source
                    );
                }
            }
        }
        InitCommand::Show {
            spec,
            fan_in,
            fan_out,
            act,
            json,
        } => {
            if fan_in == 0 || fan_out == 0 {
                anyhow::bail!("--fan-in and --fan-out must be at least 1");
            }
            let init = Init::parse("init show", &spec)?;
            let act = Activation::parse("--act", &act)?;
            let name = Spec::parse("init show", &spec)?.name;
            let info = INITIALIZERS
                .iter()
                .find(|i| i.name == name || i.aliases.contains(&name.as_str()))
                .expect("every parsed name is listed");
            let fans = Fans { fan_in, fan_out };
            let weight = init.moments(&FillContext {
                fans,
                act,
                role: Role::Weight,
            });
            let bias = (!init.needs_matrix()).then(|| {
                init.moments(&FillContext {
                    fans,
                    act,
                    role: Role::Bias,
                })
            });
            if json {
                let doc = serde_json::json!({
                    "spec": init.spec(), "formula": info.formula, "source": info.source,
                    "fan_in": fan_in, "fan_out": fan_out, "act": act.spec(), "act_gain": act.gain(),
                    "weight": moments_json(&weight),
                    "bias": bias.as_ref().map(moments_json),
                });
                outln!("{}", serde_json::to_string_pretty(&doc)?);
            } else {
                outln!("{} for a ({fan_out}, {fan_in}) weight (fan_in {fan_in}, fan_out {fan_out}), followed by {act} (gain {:.6})", init.spec(), act.gain());
                outln!("  formula: {}\n  source:  {}", info.formula, info.source);
                outln!("  weight:  {}", moments_text(&weight));
                match &bias {
                    Some(b) => outln!("  as a bias ({fan_out} entries): {}", moments_text(b)),
                    None => outln!("  (needs a matrix; cannot initialise a bias)"),
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
