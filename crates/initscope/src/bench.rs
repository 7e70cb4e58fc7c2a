//! Speed measurements of the engine itself (the `bench` command): samples or runs per second,
//! GFLOP/s counted exactly, and the fraction of the machine's GEMM rate through the same kernels.
//!
//! FLOPs of one SGD step of a dense network with batch B and layers (n_{l-1} -> n_l):
//! forward 2 B Σ n_{l-1} n_l, weight gradients 2 B Σ n_{l-1} n_l, input gradients
//! 2 B Σ_{l>1} n_{l-1} n_l (none for the first layer); elementwise work is not counted.
//! A network with other modules (`resmlp`) counts the same three GEMMs of every linear layer
//! ([`net_step_flops`]) and nothing for norms, activations and skips, so its GFLOP/s and
//! `fraction_of_ceiling` mean what they mean for `mlp`.

use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;

use crate::activation::Activation;
use crate::data::{DataOptions, DataSpec, Features, Labels};
use crate::init::Init;
use crate::lockstep::train_lockstep;
use crate::loss::{Loss, Targets};
use crate::matrix::{matmul_nt, Matrix};
use crate::nn::build::{build_net, BuildOptions};
use crate::nn::spec::NetSpec;
use crate::nn::{init_params, LayerInits, Net, Pass, Workspace};
use crate::rng::{self, Stream};

/// One measured figure.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BenchResult {
    pub workload: String,
    /// What `value` counts: "samples/s", "runs/s" or "GFLOP/s".
    pub unit: String,
    pub value: f64,
    pub gflops: f64,
    /// gflops / the GEMM ceiling measured in the same process.
    pub fraction_of_ceiling: Option<f64>,
    pub threads: usize,
    pub seconds: f64,
}

/// FLOPs of one training step (see the module docs).
pub fn step_flops(dims: &[usize], batch: usize) -> f64 {
    let b = batch as f64;
    dims.windows(2)
        .enumerate()
        .map(|(i, d)| {
            let mk = (d[0] * d[1]) as f64;
            2.0 * b * mk * if i == 0 { 2.0 } else { 3.0 }
        })
        .sum()
}

/// FLOPs of one training step of `net` (see the module docs): the forward, weight-gradient and
/// input-gradient GEMMs of every linear layer, the first one (which reads the data) without its
/// input gradient; norms, activations and skips count nothing.
pub fn net_step_flops<T: crate::scalar::Float>(net: &Net<T>, batch: usize) -> f64 {
    let b = batch as f64;
    net.layers()
        .enumerate()
        .map(|(i, l)| {
            let mk = (l.fan_in() * l.fan_out()) as f64;
            2.0 * b * mk * if i == 0 { 2.0 } else { 3.0 }
        })
        .sum()
}

/// f32 GEMM rate of `out (m, n) = a (m, k) b (n, k)^T`, best of `reps`.
pub fn gemm_gflops(m: usize, k: usize, n: usize, reps: usize) -> f64 {
    let mut r = rng::stream(0, Stream::Data);
    let a = Matrix::<f32>::from_vec(
        m,
        k,
        (0..m * k).map(|_| rng::uniform01(&mut r) as f32).collect(),
    );
    let b = Matrix::<f32>::from_vec(
        n,
        k,
        (0..n * k).map(|_| rng::uniform01(&mut r) as f32).collect(),
    );
    let mut out = Matrix::<f32>::zeros(m, n);
    matmul_nt(&mut out, &a, &b, false);
    let mut best = f64::INFINITY;
    for _ in 0..reps.max(1) {
        let t = Instant::now();
        matmul_nt(&mut out, &a, &b, false);
        best = best.min(t.elapsed().as_secs_f64());
    }
    2.0 * (m * n * k) as f64 / best / 1e9
}

/// The SGD learning rate of every workload.
const LR: f64 = 0.1;

/// An f32 network trained with plain SGD on fixed data: the engine's hot path, nothing else.
struct Trainer {
    net: Net<f32>,
    ws: Workspace<f32>,
    loss: Loss,
    x: Matrix<f32>,
    labels: Vec<u32>,
    dense: Matrix<f32>,
    batch_labels: Vec<u32>,
    idx: Vec<usize>,
    /// The dropout stream of the training passes (networks without dropout draw nothing).
    masks: crate::rng::Rng,
}

impl Trainer {
    fn new(
        dims: &[usize],
        act: Activation,
        loss: Loss,
        x: Matrix<f32>,
        labels: Vec<u32>,
        batch: usize,
        seed: u64,
    ) -> Self {
        let inits = vec![
            LayerInits {
                weight: Init::Pytorch,
                bias: Init::Pytorch
            };
            dims.len() - 1
        ];
        let net = Net::<f32>::from_params(&init_params(dims, &inits, true, seed, act), act);
        Trainer::with_net(net, loss, x, labels, batch)
    }

    /// A trainer of a network already built.
    fn with_net(net: Net<f32>, loss: Loss, x: Matrix<f32>, labels: Vec<u32>, batch: usize) -> Self {
        let outputs = *net.dims().last().expect("dims");
        Trainer {
            ws: Workspace::new(&net, batch),
            net,
            loss,
            x,
            labels,
            dense: Matrix::zeros(batch, outputs),
            batch_labels: vec![0; batch],
            idx: (0..batch).collect(),
            masks: crate::rng::stream(0, crate::rng::Stream::Dropout),
        }
    }

    /// `warmup` steps, then `steps` timed ones: the seconds they took.
    fn time(&mut self, warmup: usize, steps: usize) -> f64 {
        for s in 0..warmup {
            self.step(s);
        }
        let start = Instant::now();
        for s in warmup..warmup + steps {
            self.step(s);
        }
        start.elapsed().as_secs_f64()
    }

    /// One SGD step on the `s`-th consecutive batch (wrapping around the data).
    fn step(&mut self, s: usize) {
        let (n, b) = (self.x.rows(), self.idx.len());
        for (j, i) in self.idx.iter_mut().enumerate() {
            *i = (s * b + j) % n;
        }
        self.ws.load_rows(&self.x, &self.idx);
        for (j, &i) in self.idx.iter().enumerate() {
            self.batch_labels[j] = self.labels[i];
            if self.loss != Loss::CrossEntropy {
                self.dense.set(j, 0, self.labels[i] as f32);
            }
        }
        let targets = if self.loss == Loss::CrossEntropy {
            Targets::Classes(&self.batch_labels)
        } else {
            Targets::Dense(&self.dense)
        };
        // The training loop's own fast path for plain SGD once nothing reads the gradients.
        self.net.loss_and_sgd_step(
            &mut self.ws,
            self.loss,
            targets,
            Pass::Train(&mut self.masks),
            LR,
        );
        // As a training step does: batchnorm folds the batch statistics in.
        self.net.update_buffers(&self.ws);
    }
}

/// Fashion-MNIST-shaped inputs: the real training images when installed, else seeded U[0, 1).
fn image_inputs(rows: usize) -> (Matrix<f32>, Vec<u32>, bool) {
    if let Ok(d) = DataSpec::parse("--data", "fashion-mnist")
        .and_then(|s| s.load(&DataOptions::default(), None))
    {
        if let (Features::F32(x), Labels::Classes(y)) = (&d.train.x, &d.train.y) {
            let idx: Vec<usize> = (0..rows.min(x.rows())).collect();
            return (
                x.select_rows(&idx),
                idx.iter().map(|&i| y[i]).collect(),
                true,
            );
        }
    }
    let mut r = rng::stream(0, Stream::Data);
    let x = Matrix::from_vec(
        rows,
        784,
        (0..rows * 784)
            .map(|_| rng::uniform01(&mut r) as f32)
            .collect(),
    );
    (x, (0..rows).map(|i| (i % 10) as u32).collect(), false)
}

fn result(
    workload: &str,
    unit: &str,
    value: f64,
    gflops: f64,
    ceiling: Option<f64>,
    threads: usize,
    seconds: f64,
) -> BenchResult {
    BenchResult {
        workload: workload.into(),
        unit: unit.into(),
        value,
        gflops,
        fraction_of_ceiling: ceiling.map(|c| gflops / c),
        threads,
        seconds,
    }
}

/// `mlp` (784-256-256-10 ReLU, batch 128) or `glorot` (784-1000x5-10 tanh): samples/s on one
/// thread after warm-up.
pub fn bench_mlp(glorot: bool, ceiling: Option<f64>) -> BenchResult {
    let (dims, act, warmup, steps): (Vec<usize>, Activation, usize, usize) = if glorot {
        (
            vec![784, 1000, 1000, 1000, 1000, 1000, 10],
            Activation::Tanh,
            5,
            40,
        )
    } else {
        (vec![784, 256, 256, 10], Activation::Relu, 20, 200)
    };
    let batch = 128;
    let (x, y, _) = image_inputs(batch * 64);
    let mut t = Trainer::new(&dims, act, Loss::CrossEntropy, x, y, batch, 0);
    let secs = t.time(warmup, steps);
    let samples = (steps * batch) as f64 / secs;
    let gflops = step_flops(&dims, batch) * steps as f64 / secs / 1e9;
    result(
        if glorot { "glorot" } else { "mlp" },
        "samples/s",
        samples,
        gflops,
        ceiling,
        1,
        secs,
    )
}

/// The `resmlp` network: a 784-256 ReLU stem, four pre-norm residual blocks of width 256 and a
/// 256-10 head.
pub const RESMLP_SPEC: &str =
    "linear(256) relu res(layernorm linear(256) relu linear(256))*4 linear(10)";

/// `resmlp` ([`RESMLP_SPEC`] on Fashion-MNIST-shaped inputs, batch 128, cross-entropy, PyTorch
/// default initialization, seed 0): samples/s of plain SGD on one thread after warm-up. FLOPs
/// are the linear layers' GEMMs ([`net_step_flops`]).
pub fn bench_resmlp(ceiling: Option<f64>) -> BenchResult {
    let spec = NetSpec::parse(RESMLP_SPEC).expect("the resmlp spec parses");
    bench_net(&spec, ceiling, "resmlp").expect("the resmlp spec builds")
}

/// The `resmlp` measurement for any network spec (`initscope bench --net SPEC`, reported as
/// workload `name`): Fashion-MNIST-shaped inputs (784 columns, 10 classes), batch 128,
/// cross-entropy, plain SGD on one thread. Errors when the spec does not fit 784 -> 10.
pub fn bench_net(
    spec: &NetSpec,
    ceiling: Option<f64>,
    name: &str,
) -> crate::error::Result<BenchResult> {
    let (warmup, steps, batch) = (10, 100, 128);
    let net = build_net::<f32>(
        spec,
        &BuildOptions::new(784, 10, Init::Pytorch, Some(Init::Pytorch), 0),
    )?;
    let flops = net_step_flops(&net, batch);
    let (x, y, _) = image_inputs(batch * 64);
    let mut t = Trainer::with_net(net, Loss::CrossEntropy, x, y, batch);
    let secs = t.time(warmup, steps);
    let samples = (steps * batch) as f64 / secs;
    let gflops = flops * steps as f64 / secs / 1e9;
    Ok(result(name, "samples/s", samples, gflops, ceiling, 1, secs))
}

/// `tiny` (4-point XOR) or `tiny-moons` (256 points): `runs` independent 2-16-16-1 tanh nets,
/// MSE, 1000 full-batch GD steps at lr 0.1 each; runs/s with `threads` threads. The runs train
/// in lockstep, [`crate::lockstep::LANES`] per SIMD pack, packs spread over the threads; the
/// figure is the median of three sweeps after a warm-up one.
pub fn bench_tiny(moons: bool, runs: usize, threads: usize, ceiling: Option<f64>) -> BenchResult {
    let spec = if moons { "moons:n=256" } else { "xor" };
    let data = DataSpec::parse("--data", spec)
        .and_then(|s| s.load(&DataOptions::default(), None))
        .expect("built-in data loads");
    let x: Matrix<f32> = data.train.x.to_matrix();
    let y: Vec<u32> = match &data.train.y {
        Labels::Classes(c) => c.clone(),
        Labels::Values(_) => unreachable!("xor and moons are classification sets"),
    };
    let dims = [2, 16, 16, 1];
    let n = x.rows();
    let steps = 1000;
    let targets = Matrix::from_vec(n, 1, y.iter().map(|&c| c as f32).collect());
    let inits = vec![
        LayerInits {
            weight: Init::Pytorch,
            bias: Init::Pytorch
        };
        dims.len() - 1
    ];
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build()
        .expect("thread pool");
    // Drawing the initial parameters is part of each run, as in the peers.
    let once = || {
        let start = Instant::now();
        let trained = pool.install(|| {
            let starts: Vec<_> = (0..runs as u64)
                .into_par_iter()
                .map(|seed| init_params(&dims, &inits, true, seed, Activation::Tanh))
                .collect();
            train_lockstep(
                &starts,
                Activation::Tanh,
                Loss::Mse,
                &x,
                Targets::Dense(&targets),
                LR,
                steps,
            )
        });
        let trained = trained.expect("the tiny workload is well formed");
        debug_assert!(trained.iter().all(|r| r.losses[steps] < r.losses[0]));
        start.elapsed().as_secs_f64()
    };
    // A warm-up, then the median of three (the XOR sweep alone takes about 0.1 s).
    once();
    let mut times = [once(), once(), once()];
    times.sort_by(f64::total_cmp);
    let secs = times[1];
    let gflops = step_flops(&dims, n) * (steps * runs) as f64 / secs / 1e9;
    let name = if moons { "tiny-moons" } else { "tiny" };
    result(
        name,
        "runs/s",
        runs as f64 / secs,
        gflops,
        ceiling.map(|c| c * threads as f64),
        threads,
        secs,
    )
}

/// `sweep` (4-point XOR) or `sweep-moons` (256 points): the tiny workloads as a user runs them,
/// through [`crate::sweep`] itself: a grid of `runs` seeds of a 2-16-16-1 tanh net (the data's
/// two classes through BCE-with-logits, so one output as in `tiny`), 1000 full-batch SGD steps
/// at lr 0.1, diagnostics off, every run directory written (and synced) into a fresh folder
/// under the system's temporary directory, `jobs` threads. Runs/s of the whole sweep, planning
/// included; the median of three sweeps after a warm-up one. The folders are removed.
pub fn bench_sweep(moons: bool, runs: usize, jobs: usize) -> crate::error::Result<BenchResult> {
    use crate::output::FolderKind;
    use crate::sweep::{plan, run, Grid, Packing};
    let data = if moons { "moons:n=256" } else { "xor" };
    let seeds: Vec<String> = (0..runs).map(|s| s.to_string()).collect();
    let text = format!(
        "[fixed]\ndata = \"{data}\"\nhidden = \"16,16\"\nact = \"tanh\"\nloss = \"bce\"\n\
         batch = \"full\"\nsteps = 1000\nlr = {LR}\noptim = \"sgd\"\ndiagnostics = \"off\"\n\
         [axes]\nseed = [{}]\n",
        seeds.join(", ")
    );
    let grid_path = std::path::Path::new("bench-sweep.toml");
    let grid = Grid::parse(&text, grid_path)?;
    let root = std::env::temp_dir().join(format!(
        "initscope-bench-sweep-{}-{}",
        std::process::id(),
        if moons { "moons" } else { "xor" }
    ));
    let mut k = 0;
    let mut once = || -> crate::error::Result<f64> {
        k += 1;
        let dir = root.join(k.to_string());
        let start = Instant::now();
        let planned = plan(&grid, grid_path)?;
        let report = run(
            FolderKind::Sweep,
            &grid,
            &planned,
            &dir,
            jobs,
            None,
            Packing::Lockstep,
            &|_| {},
        )?;
        let secs = start.elapsed().as_secs_f64();
        if report.ran != runs || !report.failed.is_empty() {
            return Err(crate::error::Error::config(
                "bench",
                format!("the sweep ran {} of {runs} runs", report.ran),
            ));
        }
        Ok(secs)
    };
    let timed = (|| -> crate::error::Result<[f64; 3]> {
        once()?;
        Ok([once()?, once()?, once()?])
    })();
    let _ = std::fs::remove_dir_all(&root);
    let mut times = timed?;
    times.sort_by(f64::total_cmp);
    let secs = times[1];
    let n = if moons { 256 } else { 4 };
    let gflops = step_flops(&[2, 16, 16, 1], n) * (1000 * runs) as f64 / secs / 1e9;
    let name = if moons { "sweep-moons" } else { "sweep" };
    Ok(result(
        name,
        "runs/s",
        runs as f64 / secs,
        gflops,
        None,
        jobs,
        secs,
    ))
}

/// The GEMM ceiling: f32 GEMM at 1024^3 and at the mlp's 128x784x256 shape (one thread); the
/// ceiling is the larger rate, and each figure is reported as a fraction of it.
pub fn bench_gemm() -> Vec<BenchResult> {
    let rates: Vec<(String, f64)> = [(1024, 1024, 1024, 5), (128, 784, 256, 200)]
        .iter()
        .map(|&(m, k, n, reps)| (format!("gemm {m}x{k}x{n}"), gemm_gflops(m, k, n, reps)))
        .collect();
    let ceiling = rates.iter().map(|r| r.1).fold(0.0, f64::max);
    rates
        .into_iter()
        .map(|(name, g)| result(&name, "GFLOP/s", g, g, Some(ceiling), 1, 0.0))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sweep_workload_runs_every_run_through_the_sweep_and_cleans_up() {
        let r = bench_sweep(false, 6, 2).unwrap();
        assert_eq!(
            (r.workload.as_str(), r.unit.as_str(), r.threads),
            ("sweep", "runs/s", 2)
        );
        assert!(r.value > 0.0 && r.seconds > 0.0 && r.gflops > 0.0, "{r:?}");
        let left =
            std::env::temp_dir().join(format!("initscope-bench-sweep-{}-xor", std::process::id()));
        assert!(!left.exists(), "{} was left behind", left.display());
    }

    #[test]
    fn net_flops_count_every_linear_layer_and_agree_with_the_plain_count() {
        let spec = NetSpec::parse(RESMLP_SPEC).unwrap();
        let opts = BuildOptions::new(784, 10, Init::Pytorch, Some(Init::Pytorch), 0);
        let net = build_net::<f32>(&spec, &opts).unwrap();
        assert_eq!(net.num_layers(), 10);
        let b = 128.0;
        let want = 2.0 * b * (784.0 * 256.0 * 2.0 + 8.0 * 256.0 * 256.0 * 3.0 + 256.0 * 10.0 * 3.0);
        assert_eq!(net_step_flops(&net, 128), want);
        // A plain MLP's count is step_flops'.
        let mlp = build_net::<f32>(
            &NetSpec::parse("linear(256) relu linear(256) relu linear").unwrap(),
            &opts,
        )
        .unwrap();
        assert_eq!(
            net_step_flops(&mlp, 128),
            step_flops(&[784, 256, 256, 10], 128)
        );
    }
}
