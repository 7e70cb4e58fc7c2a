//! `initscope meanfield`: mean-field signal propagation (q*, χ_1, c*, depth scales, critical σ_w²).

use std::process::ExitCode;

use clap::Args;
use initscope::activation::Activation;
use initscope::diagnostics::meanfield::{critical_sigma_w2, mean_field, MeanField};

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
}

fn opt(x: Option<f64>) -> String {
    match x {
        None => "-".into(),
        Some(v) if v.is_infinite() => "inf".into(),
        Some(v) => format!("{v:.6}"),
    }
}

pub fn run(a: MeanfieldArgs) -> anyhow::Result<ExitCode> {
    let act = Activation::parse("--act", &a.act)?;
    if let Some(w2) = a.sigma_w2 {
        if !(w2.is_finite() && w2 > 0.0) {
            anyhow::bail!("--sigma-w2: must be > 0, got {w2}");
        }
    } else if !a.critical {
        anyhow::bail!(
            "--sigma-w2: required unless --critical (which finds the critical sigma_w^2 for --sigma-b2)"
        );
    }
    if !(a.sigma_b2.is_finite() && a.sigma_b2 >= 0.0) {
        anyhow::bail!("--sigma-b2: must be >= 0, got {}", a.sigma_b2);
    }
    if !(8..=400).contains(&a.nodes) {
        anyhow::bail!("--nodes: must be in 8..=400, got {}", a.nodes);
    }
    let mf = match a.sigma_w2 {
        Some(w2) => mean_field(act, w2, a.sigma_b2, a.critical, a.nodes),
        // The critical line alone: the quantities at the critical point.
        None => match critical_sigma_w2(act, a.sigma_b2, a.nodes) {
            Some(w2) => MeanField {
                sigma_w2_critical: Some(w2),
                ..mean_field(act, w2, a.sigma_b2, false, a.nodes)
            },
            None => {
                let note = format!(
                    "no critical sigma_w^2 in [0.01, 1000] for {} with sigma_b^2 = {}: chi_1 never crosses 1",
                    act.spec(),
                    a.sigma_b2
                );
                if a.json {
                    let doc = serde_json::json!({
                        "activation": act.spec(),
                        "sigma_b2": a.sigma_b2,
                        "sigma_w2_critical": null,
                        "notes": [note],
                    });
                    outln!("{}", serde_json::to_string_pretty(&doc)?);
                } else {
                    outln!("{note}");
                }
                return Ok(ExitCode::SUCCESS);
            }
        },
    };
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&mf)?);
        return Ok(ExitCode::SUCCESS);
    }
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
