//! `initscope net show SPEC`: a network spec's tensors before anything trains.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use initscope::config::{validate, RawConfig};
use initscope::memory::human;
use initscope::nn::build::build_net_described;
use initscope::nn::Net;

#[derive(Args, Debug)]
pub struct NetArgs {
    #[command(subcommand)]
    pub command: NetCommand,
}

#[derive(Subcommand, Debug)]
pub enum NetCommand {
    /// Every tensor of a network spec: its state_dict name, shape, initializer, linear layer
    /// number and parameter count, the buffers, and the memory a training run would take.
    Show {
        /// The network spec, as --net takes it, e.g. 'linear(64) relu res(layernorm linear(64)
        /// relu linear(64) gate(0))*2 linear'.
        spec: String,
        /// The data (its widths are the network's input and output) [default: moons].
        #[arg(long)]
        data: Option<String>,
        /// Linear weights' initializer [default: pytorch].
        #[arg(long)]
        init: Option<String>,
        /// Linear biases' initializer [default: as --init's framework, else zeros].
        #[arg(long)]
        bias_init: Option<String>,
        /// Linear layers without biases (unless the spec says bias=...).
        #[arg(long)]
        no_bias: bool,
        /// Initialization preset: fixup or zero_init_residual.
        #[arg(long)]
        preset: Option<String>,
        /// f32 or f64, for the memory estimate [default: f32].
        #[arg(long)]
        precision: Option<String>,
        /// Training batch size or full, for the memory estimate [default: 64].
        #[arg(long)]
        batch: Option<String>,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(a: NetArgs) -> anyhow::Result<ExitCode> {
    let NetCommand::Show {
        spec,
        data,
        init,
        bias_init,
        no_bias,
        preset,
        precision,
        batch,
        json,
    } = a.command;
    let raw = RawConfig {
        net: Some(spec),
        data,
        init,
        bias_init,
        no_bias: no_bias.then_some(true),
        preset,
        precision,
        batch: batch.map(initscope::config::BatchArg::Name),
        ..RawConfig::default()
    };
    let (cfg, data) = validate(&raw)?;
    let spec = cfg.net.as_ref().expect("a --net config");
    let (net, inits): (Net<f32>, _) = build_net_described(spec, &cfg.build_options())?;
    let estimate = cfg.memory_estimate(&data);
    let params: usize = net.num_params();
    let buffers = net.buffers();
    if json {
        let tensors: Vec<_> = net
            .param_infos()
            .iter()
            .map(|p| {
                serde_json::json!({
                    "name": p.name,
                    "shape": p.dims,
                    "init": inits.get(&p.name),
                    "linear": p.layer,
                    "params": p.len(),
                })
            })
            .collect();
        let bufs: Vec<_> = buffers
            .iter()
            .map(|b| serde_json::json!({"name": b.key, "shape": b.dims}))
            .collect();
        outln!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "net": spec.canonical(),
                "inputs": cfg.arch[0],
                "outputs": cfg.arch.last(),
                "tensors": tensors,
                "buffers": bufs,
                "params": params,
                "memory_bytes": estimate.total(),
            }))?
        );
        return Ok(ExitCode::SUCCESS);
    }
    outln!("network: {}", spec.canonical());
    outln!(
        "data: {} ({} inputs, {} outputs)",
        cfg.data,
        cfg.arch[0],
        cfg.arch.last().expect("validated arch")
    );
    let shape = |d: &[usize]| d.iter().map(usize::to_string).collect::<Vec<_>>().join("x");
    let name_w = net
        .param_infos()
        .iter()
        .map(|p| p.name.len())
        .chain(buffers.iter().map(|b| b.key.len()))
        .max()
        .unwrap_or(4)
        .max(4);
    outln!(
        "{:<name_w$}  {:>10}  {:>6}  {:>9}  init",
        "name",
        "shape",
        "linear",
        "params"
    );
    for p in net.param_infos() {
        outln!(
            "{:<name_w$}  {:>10}  {:>6}  {:>9}  {}",
            p.name,
            shape(&p.dims),
            p.layer.map_or("-".to_string(), |l| l.to_string()),
            p.len(),
            inits.get(&p.name).map_or("?", String::as_str)
        );
    }
    for b in &buffers {
        outln!(
            "{:<name_w$}  {:>10}  {:>6}  {:>9}  buffer (not trained)",
            b.key,
            if b.dims.is_empty() {
                "scalar".to_string()
            } else {
                shape(&b.dims)
            },
            "-",
            "-"
        );
    }
    outln!(
        "{params} parameters in {} tensors ({} linear layers), {} buffers; a training run ({}, batch {}) takes about {}",
        net.param_infos().len(),
        net.num_layers(),
        buffers.len(),
        cfg.precision.name(),
        cfg.batch_size(data.train.len()),
        human(estimate.total())
    );
    Ok(ExitCode::SUCCESS)
}
