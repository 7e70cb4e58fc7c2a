//! Progress bars on stderr, one style per thing counted. A bar is drawn only when it is wanted
//! (not `--quiet`) and stderr is a terminal; otherwise it is hidden and draws nothing.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// What a bar counts.
#[derive(Clone, Copy, Debug)]
pub enum Unit {
    /// Training steps of one run, with their rate.
    Steps,
    /// Runs of a sweep or study, with a message (failures, divergences).
    Runs,
}

/// A bar of `len` units on stderr, hidden unless `show` and stderr is a terminal.
pub fn bar(len: u64, unit: Unit, show: bool) -> ProgressBar {
    if !(show && std::io::stderr().is_terminal()) {
        return ProgressBar::hidden();
    }
    let template = match unit {
        Unit::Steps => "{bar:40} {pos}/{len} steps  {per_sec}  eta {eta}",
        Unit::Runs => "{bar:40} {pos}/{len} runs  {msg}  eta {eta}",
    };
    let pb = ProgressBar::new(len);
    pb.set_style(ProgressStyle::with_template(template).expect("static template"));
    pb
}
