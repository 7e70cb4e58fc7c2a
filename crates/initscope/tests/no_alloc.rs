//! A training step allocates nothing once the workspace exists (DESIGN.md: preallocated buffers).
//! This binary counts every heap allocation with a wrapping global allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use initscope::batch::{BatchTargets, Prepared};
use initscope::config::{validate, RawConfig};
use initscope::init::Init;
use initscope::loss::{Loss, Targets};
use initscope::matrix::Matrix;
use initscope::nn::build::{build_net, BuildOptions};
use initscope::nn::spec::NetSpec;
use initscope::nn::{Net, Pass, Workspace};
use initscope::optim::{clip_grad_norm, Optimizer};
use initscope::optim::{OptimConfig, OptimKind};
use initscope::rng::{self, Stream};
use initscope::train::initial_params;
use initscope::Float;

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: forwards the caller's layout to the system allocator unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn steps_allocate<T: Float>(toml_text: &str) -> usize {
    let raw: RawConfig = toml::from_str(toml_text).unwrap();
    let (cfg, data) = validate(&raw).unwrap();
    let outputs = *cfg.arch.last().unwrap();
    let train = Prepared::<T>::new(&data.train, cfg.loss, outputs);
    let bs = cfg.batch_size(train.len());
    let params = initial_params(&cfg, &data).unwrap().params;
    let mut net = Net::<T>::plain(&params, cfg.act, cfg.dropout);
    let mut ws = Workspace::<T>::new(&net, bs);
    let mut bt = BatchTargets::<T>::new(bs, outputs);
    let mut opt = Optimizer::new(cfg.optim.clone(), &net);
    let mut order: Vec<usize> = (0..train.len()).collect();
    let mut shuffle = rng::stream(0, Stream::Shuffle);
    let mut dropout = rng::stream(0, Stream::Dropout);
    let mut step = || {
        rng::shuffle(&mut shuffle, &mut order);
        let before = ALLOCATIONS.load(Ordering::SeqCst);
        // A short last batch too: the buffers shrink and grow within their capacity.
        for idx in [&order[..bs], &order[..bs / 2 + 1]] {
            ws.load_rows(&train.x, idx);
            bt.load(&train, idx);
            let pass = Pass::Train(&mut dropout);
            net.loss_and_grads(&mut ws, cfg.loss, bt.targets(cfg.loss), pass);
            clip_grad_norm(&net, &mut ws.grads, 1.0);
            opt.step(&mut net, &ws.grads, cfg.optim.lr);
        }
        ALLOCATIONS.load(Ordering::SeqCst) - before
    };
    step(); // warm-up: lazily initialised kernel state may allocate once
    (0..5).map(|_| step()).sum()
}

#[test]
fn training_steps_allocate_nothing() {
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    let probe = std::hint::black_box(vec![1u8; 16]);
    assert!(
        ALLOCATIONS.load(Ordering::SeqCst) > before,
        "the counter sees allocations"
    );
    drop(probe);
    for toml_text in [
        "data = \"moons\"\nhidden = \"32,32\"\nbatch = 64\ndropout = 0.1\noptim = \"adam\"",
        "data = \"teacher\"\nhidden = \"64\"\nbatch = 100\noptim = \"nesterov\"\nact = \"gelu\"",
        "data = \"spirals\"\nhidden = \"\"\nbatch = 32\nloss = \"bce\"\nact = \"relu\"",
    ] {
        assert_eq!(steps_allocate::<f32>(toml_text), 0, "f32: {toml_text}");
        assert_eq!(steps_allocate::<f64>(toml_text), 0, "f64: {toml_text}");
    }
    // A network of every module kind (in this test: the counter is global, and a second test
    // running beside it would count its allocations here).
    assert_eq!(module_steps_allocate::<f32>(), 0, "every module kind, f32");
    assert_eq!(module_steps_allocate::<f64>(), 0, "every module kind, f64");
    assert_eq!(resmlp_steps_allocate::<f32>(), 0, "bench resmlp, f32");
    assert_eq!(resmlp_steps_allocate::<f64>(), 0, "bench resmlp, f64");
}

/// Allocations in five fused SGD steps (after a warm-up) of `initscope bench`'s `resmlp`
/// network with cross-entropy, as the benchmark trains it (its widths, a smaller batch).
fn resmlp_steps_allocate<T: Float>() -> usize {
    let spec = NetSpec::parse(initscope::bench::RESMLP_SPEC).unwrap();
    let mut net: Net<T> = build_net(
        &spec,
        &BuildOptions::new(784, 10, Init::Pytorch, Some(Init::Pytorch), 0),
    )
    .unwrap();
    let (bs, n) = (16, 40);
    let x = Matrix::<T>::from_vec(
        n,
        784,
        (0..n * 784)
            .map(|i| T::from_f64((i as f64 * 0.013).sin()))
            .collect(),
    );
    let labels: Vec<u32> = (0..bs as u32).map(|i| i % 10).collect();
    let mut ws = Workspace::new(&net, bs);
    let idx: Vec<usize> = (0..bs).collect();
    let mut step = || {
        let before = ALLOCATIONS.load(Ordering::SeqCst);
        ws.load_rows(&x, &idx);
        let loss = net.loss_and_sgd_step(
            &mut ws,
            Loss::CrossEntropy,
            Targets::Classes(&labels),
            Pass::Eval,
            0.1,
        );
        assert!(loss.is_finite());
        ALLOCATIONS.load(Ordering::SeqCst) - before
    };
    step();
    (0..5).map(|_| step()).sum()
}

/// Allocations in five training steps (after a warm-up) of a network with every module kind,
/// the fused SGD step and the unfused Adam step both.
fn module_steps_allocate<T: Float>() -> usize {
    let spec = NetSpec::parse(
        "linear(16) relu dropout(0.1) res(layernorm linear(16) tanh linear(16) gate(0))*2 \
         batchnorm rmsnorm shift(0.1) res(gelu linear(16) layernorm(affine=false)) sigmoid linear",
    )
    .unwrap();
    let mut net: Net<T> = build_net(
        &spec,
        &BuildOptions::new(5, 3, Init::Pytorch, Some(Init::Pytorch), 0),
    )
    .unwrap();
    let (bs, n) = (16, 40);
    let x = Matrix::<T>::from_vec(
        n,
        5,
        (0..n * 5)
            .map(|i| T::from_f64((i as f64 * 0.37).sin()))
            .collect(),
    );
    let y = Matrix::<T>::from_vec(
        bs,
        3,
        (0..bs * 3)
            .map(|i| T::from_f64((i % 4) as f64 * 0.25))
            .collect(),
    );
    let mut ws = Workspace::new(&net, bs);
    let mut opt = Optimizer::new(OptimConfig::new(OptimKind::Adam), &net);
    let mut order: Vec<usize> = (0..n).collect();
    let (mut shuffle, mut dropout) = (
        rng::stream(0, Stream::Shuffle),
        rng::stream(0, Stream::Dropout),
    );
    let mut t = y.clone();
    let mut step = || {
        rng::shuffle(&mut shuffle, &mut order);
        let before = ALLOCATIONS.load(Ordering::SeqCst);
        for idx in [&order[..bs], &order[..bs / 2 + 1]] {
            ws.load_rows(&x, idx);
            t.set_rows(idx.len());
            let targets = Targets::Dense(&t);
            net.loss_and_grads(&mut ws, Loss::Mse, targets, Pass::Train(&mut dropout));
            net.update_buffers(&ws);
            clip_grad_norm(&net, &mut ws.grads, 1.0);
            opt.step(&mut net, &ws.grads, 0.01);
            net.loss_and_sgd_step(
                &mut ws,
                Loss::Mse,
                Targets::Dense(&t),
                Pass::Train(&mut dropout),
                0.01,
            );
            net.update_buffers(&ws);
            t.set_rows(bs);
        }
        ALLOCATIONS.load(Ordering::SeqCst) - before
    };
    step();
    (0..5).map(|_| step()).sum()
}
