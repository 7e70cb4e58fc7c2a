//! `initscope bench`: the engine's speed against this machine's GEMM ceiling.

use std::process::ExitCode;

use clap::Args;
use initscope::bench::{
    bench_gemm, bench_mlp, bench_net, bench_resmlp, bench_sweep, bench_tiny, BenchResult,
};
use initscope::nn::spec::NetSpec;

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// gemm, mlp, glorot, resmlp, tiny, tiny-moons, sweep, or all. `sweep` times the tiny
    /// workloads through `initscope sweep` itself (200 seeds each, XOR and moons, every run
    /// directory written, diagnostics off).
    #[arg(long, default_value = "all")]
    pub workload: String,
    /// Threads for the sweep workloads (tiny, tiny-moons, sweep) [default: all cores]; a single
    /// run always uses one thread.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Time this network spec instead, as resmlp is timed: 784 inputs, 10 classes, batch 128,
    /// plain SGD, one thread (e.g. 'linear(256) relu res(rmsnorm linear(256) relu linear(256)
    /// gate(0))*4 linear').
    #[arg(long, value_name = "SPEC")]
    pub net: Option<String>,
    /// Print the results as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: BenchArgs) -> anyhow::Result<ExitCode> {
    const KNOWN: [&str; 8] = [
        "all",
        "gemm",
        "mlp",
        "glorot",
        "resmlp",
        "tiny",
        "tiny-moons",
        "sweep",
    ];
    if !KNOWN.contains(&a.workload.as_str()) {
        anyhow::bail!(
            "--workload '{}': unknown (known: {})",
            a.workload,
            KNOWN.join(", ")
        );
    }
    let threads = a
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if threads == 0 {
        anyhow::bail!("--threads: must be at least 1");
    }
    let spec = a.net.as_deref().map(NetSpec::parse).transpose()?;
    let want = |w: &str| spec.is_none() && (a.workload == "all" || a.workload == w);
    let gemm = bench_gemm();
    let ceiling = gemm.iter().map(|g| g.value).reduce(f64::max);
    let mut results: Vec<BenchResult> = Vec::new();
    if let Some(spec) = &spec {
        results.push(bench_net(spec, ceiling, &format!("net {spec}"))?);
    }
    if want("gemm") {
        results.extend(gemm);
    }
    if want("mlp") {
        results.push(bench_mlp(false, ceiling));
    }
    if want("glorot") {
        results.push(bench_mlp(true, ceiling));
    }
    if want("resmlp") {
        results.push(bench_resmlp(ceiling));
    }
    for (name, moons) in [("tiny", false), ("tiny-moons", true)] {
        if want(name) {
            results.push(bench_tiny(moons, 200, 1, ceiling));
            if threads > 1 {
                results.push(bench_tiny(moons, 200, threads, ceiling));
            }
        }
    }
    if want("sweep") {
        for moons in [false, true] {
            results.push(bench_sweep(moons, 200, threads)?);
        }
    }
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&results)?);
    } else {
        for r in &results {
            let frac = r
                .fraction_of_ceiling
                .map(|f| format!("{:.0}% of the GEMM ceiling", 100.0 * f))
                .unwrap_or_default();
            outln!(
                "{:<22} {:>12.1} {:<10} {:>7.1} GFLOP/s  {:>2} thread(s)  {frac}",
                r.workload,
                r.value,
                r.unit,
                r.gflops,
                r.threads
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
