//! Helpers shared by the test modules.

use initscope::config::{validate, RawConfig};
use initscope::{Dataset, RunConfig};

/// Validates a TOML snippet written with train's flag names.
pub fn config(toml_text: &str) -> (RunConfig, Dataset) {
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
