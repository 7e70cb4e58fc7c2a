//! Command-line flags shared by the commands that build and train a network.

use std::path::PathBuf;

use clap::Args;
use initscope::config::{init_from_note, warnings, RawConfig, RunConfig};

/// Network, data and optimizer flags (as in `initscope train`): the library's [`RawConfig`]
/// (one field per flag) and a TOML file of the same keys under them.
#[derive(Args, Debug, Clone, Default)]
pub struct RunArgs {
    /// TOML file with the same keys as these flags (underscores for dashes); flags override it.
    #[arg(long, value_name = "FILE.toml")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub flags: RawConfig,
}

impl RunArgs {
    /// The configuration as written: the TOML file, if any, overridden by the flags.
    pub fn raw(&self) -> initscope::Result<RawConfig> {
        match &self.config {
            Some(path) => Ok(RawConfig::from_toml_file(path)?.merged_with(self.flags.clone())),
            None => Ok(self.flags.clone()),
        }
    }
}

/// Prints one `initscope: warning: ...` line on stderr per option that does nothing for this
/// configuration (the run goes on).
pub fn warn_unused(raw: &RawConfig) {
    for w in warnings(raw) {
        eprintln!("initscope: warning: {w}");
    }
}

/// Prints one `initscope: note: ...` line on stderr saying what `--init-from` read from its file
/// (architecture, activation, biases, the keys used), when it is given.
pub fn note_init_from(raw: &RawConfig, cfg: &RunConfig) -> initscope::Result<()> {
    if let Some(note) = init_from_note(raw, cfg)? {
        eprintln!("initscope: note: {note}");
    }
    Ok(())
}
