//! Helpers shared by the test modules.

use initscope::config::{validate, RawConfig};
use initscope::init::Init;
use initscope::nn::build::{build_net, BuildOptions};
use initscope::nn::spec::NetSpec;
use initscope::nn::Net;
use initscope::{Dataset, RunConfig};

/// Validates a TOML snippet written with train's flag names.
pub fn config(toml_text: &str) -> (RunConfig, Dataset<'static>) {
    let raw: RawConfig = toml::from_str(toml_text).expect("test TOML parses");
    validate(&raw).expect("test config validates")
}

/// The starting parameters of a config (its own data loaded for LSUV).
pub fn params(cfg: &RunConfig) -> initscope::Params {
    let data = cfg
        .data
        .load(&cfg.data_options, None)
        .expect("test data loads");
    initscope::train::initial_params(cfg, &data)
        .expect("initial parameters")
        .params
}

/// Tolerances of a PyTorch parity check: `|ours - torch| <= rtol * max|torch| + atol`.
pub struct Tol {
    pub rtol: f64,
    pub atol: f64,
}

/// Asserts one tensor against torch's within `tol`; returns (worst |ours - torch|, max|torch|).
pub fn check_tensor(case: &str, what: &str, ours: &[f64], torch: &[f64], tol: &Tol) -> (f64, f64) {
    assert_eq!(ours.len(), torch.len(), "{case} {what}: sizes differ");
    let scale = torch.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    let worst = ours
        .iter()
        .zip(torch)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(
        worst <= tol.rtol * scale + tol.atol,
        "{case} {what}: |ours - torch| = {worst:e} with max|torch| = {scale:e}"
    );
    (worst, scale)
}

/// A fixture's optimizer (`{"kind": "adam", "lr": ..., ...}`; absent hyper-parameters 0) as
/// initscope's configuration.
pub fn optim_config(o: &serde_json::Value) -> initscope::optim::OptimConfig {
    let h = |k: &str| o[k].as_f64().unwrap_or(0.0);
    initscope::optim::OptimConfig {
        kind: serde_json::from_value(o["kind"].clone()).expect("optimizer kind"),
        lr: h("lr"),
        momentum: h("momentum"),
        beta1: h("beta1"),
        beta2: h("beta2"),
        eps: h("eps"),
        alpha: h("alpha"),
        weight_decay: h("weight_decay"),
        no_decay: Vec::new(),
    }
}

/// The network of `spec` for `inputs` features and `outputs` outputs, weights from `init`,
/// biases PyTorch's default, drawn with `seed`.
pub fn net(spec: &str, inputs: usize, outputs: usize, init: &Init, seed: u64) -> Net<f64> {
    let spec = NetSpec::parse(spec).unwrap_or_else(|e| panic!("{e}"));
    build_net(
        &spec,
        &BuildOptions::new(inputs, outputs, init.clone(), Some(Init::Pytorch), seed),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}
