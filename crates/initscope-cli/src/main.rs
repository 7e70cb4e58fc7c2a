//! `initscope`: the command line. A thin shell over the library: parse flags, call, print.
//!
//! Exit codes: 0 success (a diverged run is a result), 1 a check that failed (gradcheck),
//! 2 bad input (one line on stderr naming what and where).

/// `println!` that returns an error instead of panicking when stdout is closed (e.g. `| head`).
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)?
    }};
}

mod args;
mod bench_cmd;
mod data_cmd;
mod explain_cmd;
mod gradcheck_cmd;
mod init_cmd;
mod meanfield_cmd;
mod net_cmd;
mod progress;
mod report_cmd;
mod reproduce_cmd;
mod serve;
mod sweep_cmd;
mod train_cmd;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

/// Why an initialization works or fails: train, explain and compare MLP initializations.
#[derive(Parser, Debug)]
#[command(name = "initscope", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train one network and report (and optionally write) its metrics, summary and weights.
    Train(train_cmd::TrainArgs),
    /// Measure the engine's speed (samples/s, runs/s, GFLOP/s) against the GEMM ceiling.
    Bench(bench_cmd::BenchArgs),
    /// List, inspect and export datasets.
    Data(data_cmd::DataArgs),
    /// Inspect a network spec (--net): every tensor, its initializer and the memory it takes.
    Net(net_cmd::NetArgs),
    /// Explain the backward pass at step 0 with the actual numbers, then the verdict after K
    /// steps: dead gradients, symmetry, or full use of the width.
    ///
    /// Takes train's flags, with two defaults of its own: --steps 200 and --diagnostics off.
    Explain(explain_cmd::ExplainArgs),
    /// Check backprop against central finite differences in f64, layer by layer.
    Gradcheck(gradcheck_cmd::GradcheckArgs),
    /// Mean-field signal propagation: q*, chi_1, c*, depth scales, the critical sigma_w^2.
    Meanfield(meanfield_cmd::MeanfieldArgs),
    /// The canonical comparison (initializers x activations x seeds on mnist1d) with its report:
    /// the main job.
    Study(report_cmd::StudyArgs),
    /// Reproduce published initialization results (Glorot 2010, He 2015, Saxe 2014, ...):
    /// measured against reported, PASS/FAIL each; exit code 1 when any fails.
    Reproduce(reproduce_cmd::ReproduceArgs),
    /// Write a self-contained HTML report (inline SVG plots) for a run or sweep directory.
    Report(report_cmd::ReportArgs),
    /// Run a grid of training runs in parallel, resumably, optionally as one shard of many.
    ///
    /// Runs that can train side by side do, up to 16 to a thread, with one SIMD instruction
    /// across them (lockstep): those of a network at most 32 wide, a plain MLP (--hidden) or a
    /// --net of linear layers, activations, residual blocks, gates and shifts (no norm, no
    /// dropout), on the same data, with the same network (widths, activation, biases, --net),
    /// loss, precision and batch size (at most 4096 rows), trained by plain SGD (no momentum,
    /// weight decay, gradient noise, clipping or dropout). With --diagnostics on, the steps that record gradient flow (every
    /// step to 100, then 10 a decade) go through each run's own engine. Any other run trains
    /// alone. A run's files are the same bytes either way, timing fields aside; --no-lockstep
    /// trains every run alone.
    Sweep(sweep_cmd::SweepArgs),
    /// Write runs.csv and layers.csv of sweep directories from their run directories; list missing runs.
    Merge(sweep_cmd::MergeArgs),
    /// Print a ready Slurm submission script (array job plus an afterany merge job).
    Slurm(sweep_cmd::SlurmArgs),
    /// List the initializers, or show the resolved distribution of one for given fans.
    Init(init_cmd::InitArgs),
    /// A live local page to watch an initialization work or fail: pick data, network and
    /// initializers, play, pause, step and rewind, and see the loss, the decision boundary, the
    /// symmetry classes of the units, the gradients and the verdict as it trains.
    Serve(serve::ServeArgs),
}

/// The subcommand path the arguments name (`initscope data export`), for the help hint.
fn command_path(args: &[std::ffi::OsString]) -> String {
    let mut cmd = Cli::command();
    let mut path = vec![cmd.get_name().to_string()];
    for a in args.iter().skip(1) {
        if !cmd.has_subcommands() {
            break;
        }
        if let Some(sub) = cmd.find_subcommand(a).cloned() {
            path.push(sub.get_name().to_string());
            cmd = sub;
        }
    }
    path.join(" ")
}

/// A usage error from clap as one line: its first line without clap's `error: `, the indented
/// notes under it (the missing arguments, possible values, tips) and where to read more.
pub(crate) fn usage_error_line(e: &clap::Error, args: &[std::ffi::OsString]) -> String {
    let text = e.to_string();
    let mut lines = text.lines();
    let first = lines.next().unwrap_or_default();
    let first = first.strip_prefix("error: ").unwrap_or(first).trim();
    let notes: Vec<&str> = lines
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .filter(|l| l.starts_with(char::is_whitespace) && !l.trim().is_empty())
        .map(|l| {
            let l = l.trim();
            l.strip_prefix('[')
                .and_then(|l| l.strip_suffix(']'))
                .unwrap_or(l)
        })
        .collect();
    let see = format!("see '{} --help'", command_path(args));
    if first.ends_with(':') {
        // "the following required arguments were not provided:" lists them below.
        format!("initscope: error: {first} {} ({see})", notes.join(", "))
    } else if notes.is_empty() {
        format!("initscope: error: {first} ({see})")
    } else {
        format!("initscope: error: {first} ({}; {see})", notes.join("; "))
    }
}

fn run() -> anyhow::Result<ExitCode> {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => match e.kind() {
            clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                e.exit()
            }
            // `initscope` or `initscope data` alone: the help, as asked for with --help.
            clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                outln!("{}", e.to_string().trim_end());
                return Ok(ExitCode::SUCCESS);
            }
            _ => {
                eprintln!("{}", usage_error_line(&e, &args));
                return Ok(ExitCode::from(2));
            }
        },
    };
    match cli.command {
        Command::Train(a) => train_cmd::run(a),
        Command::Bench(a) => bench_cmd::run(a),
        Command::Data(a) => data_cmd::run(a),
        Command::Explain(a) => explain_cmd::run(a),
        Command::Gradcheck(a) => gradcheck_cmd::run(a),
        Command::Init(a) => init_cmd::run(a),
        Command::Net(a) => net_cmd::run(a),
        Command::Meanfield(a) => meanfield_cmd::run(a),
        Command::Sweep(a) => sweep_cmd::run_sweep(a),
        Command::Study(a) => report_cmd::run_study(a),
        Command::Report(a) => report_cmd::run_report(a),
        Command::Reproduce(a) => reproduce_cmd::run(a),
        Command::Merge(a) => sweep_cmd::run_merge(a),
        Command::Slurm(a) => sweep_cmd::run_slurm(a),
        Command::Serve(a) => serve::run(a),
    }
}

/// Whether the error is a closed stdout (a reader such as `head` went away): not a failure.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("initscope: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
