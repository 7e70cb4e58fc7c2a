//! Same seed, same bytes; initial weights depend only on (seed, layer, weight|bias).

use initscope::output::safetensors::to_bytes;
use initscope::train::train;

use crate::support::{config, params};

#[test]
fn same_command_twice_gives_identical_metrics_and_weight_bytes() {
    for toml in [
        "data = \"moons\"\nepochs = 5\ndropout = 0.1",
        "data = \"teacher\"\nsteps = 100\noptim = \"adam\"\nprecision = \"f64\"",
    ] {
        let (cfg, data) = config(toml);
        let a = train(&cfg, &data, &mut |_| {}).unwrap();
        let b = train(&cfg, &data, &mut |_| {}).unwrap();
        assert_eq!(a.metrics, b.metrics);
        assert_eq!(
            to_bytes(&a.params, &cfg).unwrap(),
            to_bytes(&b.params, &cfg).unwrap()
        );
    }
}

#[test]
fn different_seeds_give_different_weights() {
    let (a, _) = config("seed = 1");
    let (b, _) = config("seed = 2");
    assert_ne!(params(&a), params(&b));
}

#[test]
fn initial_weights_depend_only_on_seed_layer_and_kind() {
    let (base, _) = config("hidden = \"8,8\"\nseed = 5");
    let p0 = params(&base);
    // Another layer's initializer, the optimizer, the learning rate and the precision do not move
    // layers 1-2.
    let (other, _) = config("hidden = \"8,8\"\nseed = 5\nlayer_init = [\"3=zeros\"]\noptim = \"adam\"\nlr = 0.5\nprecision = \"f64\"");
    let p1 = params(&other);
    assert_eq!(p0[..2], p1[..2]);
    assert_ne!(p0[2].weight, p1[2].weight);
    assert_eq!(
        p0[2].bias, p1[2].bias,
        "the bias of layer 3 has its own stream"
    );
    // Changing only the bias initializer leaves every weight alone.
    let (bias, _) = config("hidden = \"8,8\"\nseed = 5\nbias_init = \"zeros\"");
    let p2 = params(&bias);
    for (a, b) in p0.iter().zip(&p2) {
        assert_eq!(a.weight, b.weight);
    }
}
