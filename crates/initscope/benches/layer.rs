//! criterion micro-benchmarks: forward and backward of one dense layer (f32), of a LayerNorm and
//! of one `resmlp` residual block, and one lockstep pack step, at the shapes of the `bench`
//! workloads.
//!
//!     cargo bench -p initscope --bench layer
//!
//! Throughput is reported in elements, one element per FLOP: "Gelem/s" reads as GFLOP/s. The
//! exceptions: LayerNorm counts one element per matrix entry (its FLOPs are not counted by
//! `bench`), and the residual block counts its linear layers' GEMMs only, as `bench` does.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use initscope::activation::Activation;
use initscope::bench::step_flops;
use initscope::bench::RESMLP_SPEC;
use initscope::init::Init;
use initscope::lockstep::{train_lockstep, LANES};
use initscope::loss::{Loss, Targets};
use initscope::matrix::Matrix;
use initscope::nn::build::{build_net, BuildOptions};
use initscope::nn::spec::NetSpec;
use initscope::nn::{init_params, LayerInits, Net};
use initscope::nn::{Dense, Module, Pass};
use std::hint::black_box;

fn filled(rows: usize, cols: usize, seed: u32) -> Matrix<f32> {
    let mut s = seed;
    Matrix::from_vec(
        rows,
        cols,
        (0..rows * cols)
            .map(|_| {
                s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (s >> 8) as f32 / (1 << 24) as f32 - 0.5
            })
            .collect(),
    )
}

fn layer(c: &mut Criterion) {
    // (batch, fan_in, fan_out, activation): mlp's layers, glorot's hidden layer, tiny-moons'.
    let shapes = [
        (128, 784, 256, Activation::Relu),
        (128, 256, 256, Activation::Relu),
        (128, 1000, 1000, Activation::Tanh),
        (256, 16, 16, Activation::Tanh),
    ];
    let mut g = c.benchmark_group("dense");
    for (batch, fan_in, fan_out, act) in shapes {
        let id = format!("{batch}x{fan_in}x{fan_out} {act}");
        let flops = 2 * batch * fan_in * fan_out;
        let dense = Dense {
            weight: filled(fan_out, fan_in, 1),
            bias: vec![0.01; fan_out],
            has_bias: true,
            activation: act,
            dropout: 0.0,
        };
        let x = filled(batch, fan_in, 2);
        let mut cache = dense.cache(batch);
        g.throughput(Throughput::Elements(flops as u64));
        g.bench_with_input(BenchmarkId::new("forward", &id), &x, |b, x| {
            b.iter(|| dense.forward(black_box(x), &mut cache, &mut Pass::Eval))
        });
        dense.forward(&x, &mut cache, &mut Pass::Eval);
        let mut grads = [Matrix::zeros(fan_out, fan_in), Matrix::zeros(1, fan_out)];
        let mut dx = Matrix::zeros(batch, fan_in);
        let d = filled(batch, fan_out, 3);
        let mut d_out = d.clone();
        g.throughput(Throughput::Elements(2 * flops as u64));
        g.bench_with_input(BenchmarkId::new("backward", &id), &x, |b, x| {
            b.iter(|| {
                d_out.as_mut_slice().copy_from_slice(d.as_slice());
                dense.backward(
                    black_box(x),
                    &mut cache,
                    &mut d_out,
                    &mut grads,
                    Some(&mut dx),
                )
            })
        });
    }
    g.finish();
}

/// The first module of `spec` built at width `width` (input and output), PyTorch's default
/// initialization, seed 0.
fn first_module(spec: &str, width: usize) -> Box<dyn Module<f32>> {
    let net: Net<f32> = build_net(
        &NetSpec::parse(spec).expect("spec parses"),
        &BuildOptions::new(width, width, Init::Pytorch, Some(Init::Pytorch), 0),
    )
    .expect("spec builds");
    net.modules()[0].clone()
}

/// Fresh gradient buffers for `m`'s tensors.
fn grads_for(m: &dyn Module<f32>) -> Vec<Matrix<f32>> {
    m.tensors()
        .iter()
        .map(|t| match t.dims[..] {
            [rows, cols] => Matrix::zeros(rows, cols),
            _ => Matrix::zeros(1, t.dims.iter().product()),
        })
        .collect()
}

/// A LayerNorm (affine, PyTorch's defaults) and one `resmlp` residual block
/// (`res(layernorm linear(256) relu linear(256))`) at batch 128, width 256: forward, backward
/// with dx, and (the block) the fused SGD backward the `resmlp` workload runs.
fn norm_and_block(c: &mut Criterion) {
    let (batch, width) = (128, 256);
    let x = filled(batch, width, 6);
    let d = filled(batch, width, 7);
    // The block of RESMLP_SPEC.
    let block = "res(layernorm linear(256) relu linear(256))";
    assert!(RESMLP_SPEC.contains(&block[..block.len() - 1]));
    for (group, spec, elements) in [
        ("layernorm", "layernorm", batch * width),
        // Two 256x256 linear layers: forward 2 B n^2 each.
        ("res", block, 2 * 2 * batch * width * width),
    ] {
        let mut g = c.benchmark_group(group);
        let id = format!("{batch}x{width}");
        let mut m = first_module(spec, width);
        let mut cache = m.cache(batch);
        g.throughput(Throughput::Elements(elements as u64));
        g.bench_with_input(BenchmarkId::new("forward", &id), &x, |b, x| {
            b.iter(|| m.forward(black_box(x), &mut cache, &mut Pass::Eval))
        });
        m.forward(&x, &mut cache, &mut Pass::Eval);
        let mut grads = grads_for(m.as_ref());
        let mut dx = Matrix::zeros(batch, width);
        let mut dy = d.clone();
        // The norm's backward reads every entry a few times; the block's backward runs twice
        // the forward GEMMs.
        let backward = if group == "res" {
            2 * elements
        } else {
            elements
        };
        g.throughput(Throughput::Elements(backward as u64));
        g.bench_with_input(BenchmarkId::new("backward", &id), &x, |b, x| {
            b.iter(|| {
                dy.as_mut_slice().copy_from_slice(d.as_slice());
                m.backward(black_box(x), &mut cache, &mut dy, &mut grads, Some(&mut dx))
            })
        });
        if group == "res" {
            // A tiny rate keeps the weights where they are over criterion's many iterations.
            g.bench_with_input(BenchmarkId::new("backward_sgd", &id), &x, |b, x| {
                b.iter(|| {
                    dy.as_mut_slice().copy_from_slice(d.as_slice());
                    m.backward_sgd(
                        black_box(x),
                        &mut cache,
                        &mut dy,
                        1e-9,
                        &mut grads,
                        Some(&mut dx),
                    )
                })
            });
        }
        g.finish();
    }
}

/// One pack of `LANES` 2-16-16-1 tanh runs, 10 full-batch steps on 256 (tiny-moons) and 4
/// (tiny) points; FLOPs counted as `initscope bench` counts them ([`step_flops`]).
fn lockstep(c: &mut Criterion) {
    let dims = [2, 16, 16, 1];
    let inits = vec![
        LayerInits {
            weight: Init::Pytorch,
            bias: Init::Pytorch,
        };
        3
    ];
    let starts: Vec<_> = (0..LANES as u64)
        .map(|seed| init_params(&dims, &inits, true, seed, Activation::Tanh))
        .collect();
    let steps = 10;
    let mut g = c.benchmark_group("lockstep");
    for points in [256, 4] {
        let x = filled(points, 2, 4);
        let y = filled(points, 1, 5);
        let flops = step_flops(&dims, points) * (steps * LANES) as f64;
        g.throughput(Throughput::Elements(flops as u64));
        g.bench_function(BenchmarkId::new("2-16-16-1 tanh, 10 steps", points), |b| {
            b.iter(|| {
                train_lockstep(
                    black_box(&starts),
                    Activation::Tanh,
                    Loss::Mse,
                    &x,
                    Targets::Dense(&y),
                    0.1,
                    steps,
                )
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = layer, norm_and_block, lockstep
}
criterion_main!(benches);
