//! `initscope meanfield`: mean-field signal propagation (q*, χ_1, c*, depth scales, critical σ_w²),
//! and with `--residual` the stream of a residual network block by block (q_l, c_l, growth).
//! The checks and numbers are the library's [`meanfield_report`] (shared with Python); this
//! module parses the flags and prints.

use std::process::ExitCode;

use clap::Args;
use initscope::diagnostics::meanfield_report::{
    meanfield_report, MeanfieldOptions, MeanfieldRecord,
};
use initscope::diagnostics::meanfield_residual::ResidualMeanField;

#[derive(Args, Debug)]
pub struct MeanfieldArgs {
    /// Activation (any of train's --act).
    #[arg(long, default_value = "tanh")]
    pub act: String,
    /// Weight variance σ_w² (weights N(0, σ_w²/fan_in)); needed unless --critical, which
    /// without it reports the critical point itself.
    #[arg(long, allow_negative_numbers = true)]
    pub sigma_w2: Option<f64>,
    /// Bias variance σ_b².
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub sigma_b2: f64,
    /// Also find the critical σ_w² (χ_1 = 1) for this σ_b² (alone: the quantities at it).
    #[arg(long)]
    pub critical: bool,
    /// Gauss–Hermite nodes per dimension.
    #[arg(long, default_value_t = 100)]
    pub nodes: usize,
    /// Print as JSON (infinite depth scales, at criticality, are written as null).
    #[arg(long)]
    pub json: bool,
    /// A residual network instead (Yang & Schoenholz 2017): x_{l+1} = x_l + g F(x_l), F =
    /// --branch-depth linears with --act between them (`res(linear(N) act linear(N) gate(g))`);
    /// prints q_l and c_l per block and how q grows (polynomial or exponential).
    #[arg(long)]
    pub residual: bool,
    /// With --residual: linear layers per branch (1: a linear branch).
    #[arg(long, default_value_t = 2, requires = "residual")]
    pub branch_depth: usize,
    /// With --residual: the scalar gate g on the branch (ReZero/SkipInit alpha; 1: plain).
    #[arg(
        long,
        default_value_t = 1.0,
        allow_negative_numbers = true,
        requires = "residual"
    )]
    pub gate: f64,
    /// With --residual: number of blocks L.
    #[arg(long, default_value_t = 50, requires = "residual")]
    pub depth: usize,
    /// With --residual: the input's second moment per unit q_0.
    #[arg(
        long,
        default_value_t = 1.0,
        allow_negative_numbers = true,
        requires = "residual"
    )]
    pub q0: f64,
    /// With --residual: the correlation c_0 of the two inputs whose correlation is tracked.
    #[arg(
        long,
        default_value_t = 0.5,
        allow_negative_numbers = true,
        requires = "residual"
    )]
    pub c0: f64,
}

fn opt(x: Option<f64>) -> String {
    match x {
        None => "-".into(),
        Some(v) if v.is_infinite() => "inf".into(),
        Some(v) => format!("{v:.6}"),
    }
}

pub fn run(a: MeanfieldArgs) -> anyhow::Result<ExitCode> {
    let record = meanfield_report(&MeanfieldOptions {
        act: a.act.clone(),
        sigma_w2: a.sigma_w2,
        sigma_b2: a.sigma_b2,
        critical: a.critical,
        nodes: a.nodes,
        residual: a.residual,
        branch_depth: a.branch_depth,
        gate: a.gate,
        depth: a.depth,
        q0: a.q0,
        c0: a.c0,
    })?;
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&record)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mf = match record {
        MeanfieldRecord::Residual(mf) => {
            print_residual(&mf)?;
            return Ok(ExitCode::SUCCESS);
        }
        MeanfieldRecord::NoCriticalPoint(none) => {
            for n in &none.notes {
                outln!("{n}");
            }
            return Ok(ExitCode::SUCCESS);
        }
        MeanfieldRecord::Plain(mf) => mf,
    };
    outln!(
        "mean field for {} with sigma_w^2 = {}{}, sigma_b^2 = {} ({} Gauss-Hermite nodes)",
        mf.activation,
        mf.sigma_w2,
        if a.sigma_w2.is_none() {
            " (the critical value)"
        } else {
            ""
        },
        mf.sigma_b2,
        a.nodes
    );
    outln!(
        "  q*      {}   (fixed point of the length map)",
        opt(mf.q_star)
    );
    outln!("  chi_1   {}", opt(mf.chi_1));
    outln!(
        "  c*      {}   (fixed point of the correlation map)",
        opt(mf.c_star)
    );
    outln!("  chi_c   {}", opt(mf.chi_c));
    outln!("  xi_q    {}   (depth scale of the length)", opt(mf.xi_q));
    outln!("  xi_c    {}   (depth scale of correlations)", opt(mf.xi_c));
    if a.critical {
        outln!(
            "  critical sigma_w^2 for sigma_b^2 = {}: {}",
            mf.sigma_b2,
            opt(mf.sigma_w2_critical)
        );
    }
    for n in &mf.notes {
        outln!("  {n}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The depths shown: every one up to 20 blocks, else 0, powers of two and the last.
fn shown_depths(last: usize) -> Vec<usize> {
    if last <= 20 {
        return (0..=last).collect();
    }
    let mut ls: Vec<usize> = std::iter::once(0)
        .chain(std::iter::successors(Some(1usize), |l| l.checked_mul(2)).take_while(|&l| l < last))
        .collect();
    ls.push(last);
    ls
}

fn print_residual(mf: &ResidualMeanField) -> anyhow::Result<()> {
    outln!(
        "residual mean field: x_(l+1) = x_l + g F(x_l), F = {} linear layer(s) with {} between, sigma_w^2 = {}, sigma_b^2 = {}, g = {}",
        mf.branch_depth,
        mf.activation,
        mf.sigma_w2,
        mf.sigma_b2,
        mf.gate
    );
    outln!("  {:>6}  {:>14}  {:>9}", "block", "q_l", "c_l");
    for l in shown_depths(mf.q.len() - 1) {
        outln!("  {l:>6}  {:>14.6e}  {:>9.6}", mf.q[l], mf.c[l]);
    }
    let g = &mf.growth;
    match g.class {
        Some(class) => {
            let from = (mf.q.len() - 1).div_ceil(2).max(1);
            outln!(
                "  growth of q: {} (increments grow by {} per block at the end; fits over blocks {from}..{}: exponential rate {} per block, power-law exponent {})",
                class.name(),
                opt(g.increment_rate_end.map(f64::exp)),
                mf.q.len() - 1,
                opt(g.exp_rate),
                opt(g.power_exponent),
            );
        }
        None => outln!("  growth of q: not classified"),
    }
    for n in &mf.notes {
        outln!("  {n}");
    }
    Ok(())
}
