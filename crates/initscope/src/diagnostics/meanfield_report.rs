//! `initscope meanfield` as a library call: the command's checks and computation on a plain
//! [`MeanfieldOptions`] (one field per flag), returning the record `initscope meanfield --json`
//! prints. The command line and the Python package both call [`meanfield_report`], so they
//! give the same numbers and refuse bad input with the same one-line message.
//!
//! ```text
//! plain (default)      MeanField at (φ, σ_w², σ_b²): q*, χ_1, c*, χ_c, ξ_q, ξ_c
//!                      (+ the critical σ_w², χ_1(σ_w²) = 1, with `critical`)
//! critical alone       no σ_w²: the same quantities at σ_w² = the critical σ_w² for σ_b²
//! residual             q_l, c_l for l = 0..=L of x_{l+1} = x_l + g F(x_l) and q's growth
//! ```
//! See [`super::meanfield`] and [`super::meanfield_residual`] for the maps themselves.

use serde::Serialize;

use crate::activation::Activation;
use crate::diagnostics::meanfield::{critical_sigma_w2, mean_field, MeanField};
use crate::diagnostics::meanfield_residual::{
    residual_mean_field, ResidualConfig, ResidualMeanField, MAX_BRANCH_DEPTH, MAX_RESIDUAL_DEPTH,
};
use crate::error::{Error, Result};

/// Gauss–Hermite nodes per dimension accepted (`--nodes`).
pub const NODES_RANGE: std::ops::RangeInclusive<usize> = 8..=400;

/// The flags of `initscope meanfield`, with its defaults ([`Default`]). Errors name the flag
/// as the command line spells it (`--sigma-w2: must be > 0, got -1`).
#[derive(Clone, Debug, PartialEq)]
pub struct MeanfieldOptions {
    /// Activation spec (any of train's `--act`).
    pub act: String,
    /// σ_w² (weights N(0, σ_w²/fan_in)); needed unless `critical` (then the critical point).
    pub sigma_w2: Option<f64>,
    /// σ_b² ≥ 0.
    pub sigma_b2: f64,
    /// Also find the critical σ_w² (χ_1 = 1) for σ_b².
    pub critical: bool,
    /// Gauss–Hermite nodes per dimension, in [`NODES_RANGE`].
    pub nodes: usize,
    /// A residual network instead (Yang & Schoenholz 2017); the fields below only apply to it.
    pub residual: bool,
    /// m, linear layers per branch, 1..=[`MAX_BRANCH_DEPTH`].
    pub branch_depth: usize,
    /// g, the scalar gate on the branch (finite).
    pub gate: f64,
    /// L, blocks, 1..=[`MAX_RESIDUAL_DEPTH`].
    pub depth: usize,
    /// q_0 > 0, the input's second moment per unit.
    pub q0: f64,
    /// c_0 ∈ [-1, 1], the correlation of the two inputs tracked.
    pub c0: f64,
}

impl Default for MeanfieldOptions {
    fn default() -> Self {
        MeanfieldOptions {
            act: "tanh".into(),
            sigma_w2: None,
            sigma_b2: 0.0,
            critical: false,
            nodes: 100,
            residual: false,
            branch_depth: 2,
            gate: 1.0,
            depth: 50,
            q0: 1.0,
            c0: 0.5,
        }
    }
}

/// `critical` alone when χ_1 never crosses 1 in the scanned range: what was asked and why
/// there is no answer. Fields in the order the command line has always printed them.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NoCriticalPoint {
    pub activation: String,
    /// One note: "no critical sigma_w^2 in [0.01, 1000] for ...".
    pub notes: Vec<String>,
    pub sigma_b2: f64,
    /// Always None (JSON null).
    pub sigma_w2_critical: Option<f64>,
}

/// What `initscope meanfield --json` prints (serialized untagged: the inner record's fields).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum MeanfieldRecord {
    /// A plain network at a σ_w² (given, or the critical one when `critical` came alone).
    Plain(MeanField),
    /// `critical` alone, and no critical σ_w² exists.
    NoCriticalPoint(NoCriticalPoint),
    /// `residual`: the stream block by block.
    Residual(ResidualMeanField),
}

fn bad(flag: &str, reason: String) -> Error {
    Error::config(flag, reason)
}

/// Checks `o` as `initscope meanfield` does and computes its record. Bad input (an unknown
/// activation, σ_w² ≤ 0 or missing, σ_b² < 0, nodes out of [`NODES_RANGE`], residual options
/// out of range, `critical` with `residual`) is an [`Error`] naming the flag.
pub fn meanfield_report(o: &MeanfieldOptions) -> Result<MeanfieldRecord> {
    let act = Activation::parse("--act", &o.act)?;
    if let Some(w2) = o.sigma_w2 {
        if !(w2.is_finite() && w2 > 0.0) {
            return Err(bad("--sigma-w2", format!("must be > 0, got {w2}")));
        }
    } else if o.residual {
        return Err(bad("--sigma-w2", "required with --residual".into()));
    } else if !o.critical {
        return Err(bad(
            "--sigma-w2",
            "required unless --critical (which finds the critical sigma_w^2 for --sigma-b2)".into(),
        ));
    }
    if !(o.sigma_b2.is_finite() && o.sigma_b2 >= 0.0) {
        return Err(bad(
            "--sigma-b2",
            format!("must be >= 0, got {}", o.sigma_b2),
        ));
    }
    if !NODES_RANGE.contains(&o.nodes) {
        return Err(bad(
            "--nodes",
            format!("must be in 8..=400, got {}", o.nodes),
        ));
    }
    if o.residual {
        return residual(o, act).map(MeanfieldRecord::Residual);
    }
    Ok(match o.sigma_w2 {
        Some(w2) => MeanfieldRecord::Plain(mean_field(act, w2, o.sigma_b2, o.critical, o.nodes)),
        // The critical line alone: the quantities at the critical point.
        None => match critical_sigma_w2(act, o.sigma_b2, o.nodes) {
            Some(w2) => MeanfieldRecord::Plain(MeanField {
                sigma_w2_critical: Some(w2),
                ..mean_field(act, w2, o.sigma_b2, false, o.nodes)
            }),
            None => MeanfieldRecord::NoCriticalPoint(NoCriticalPoint {
                activation: act.spec(),
                notes: vec![format!(
                    "no critical sigma_w^2 in [0.01, 1000] for {} with sigma_b^2 = {}: chi_1 never crosses 1",
                    act.spec(),
                    o.sigma_b2
                )],
                sigma_b2: o.sigma_b2,
                sigma_w2_critical: None,
            }),
        },
    })
}

/// `residual`: its own checks (with the command line's flag names), then the stream.
fn residual(o: &MeanfieldOptions, act: Activation) -> Result<ResidualMeanField> {
    if o.critical {
        return Err(bad(
            "--critical",
            "not with --residual (a residual stream has no fixed point to be critical about)"
                .into(),
        ));
    }
    if !(1..=MAX_BRANCH_DEPTH).contains(&o.branch_depth) {
        return Err(bad(
            "--branch-depth",
            format!("must be in 1..={MAX_BRANCH_DEPTH}, got {}", o.branch_depth),
        ));
    }
    if !o.gate.is_finite() {
        return Err(bad(
            "--gate",
            format!("must be a finite number, got {}", o.gate),
        ));
    }
    if !(1..=MAX_RESIDUAL_DEPTH).contains(&o.depth) {
        return Err(bad(
            "--depth",
            format!("must be in 1..={MAX_RESIDUAL_DEPTH}, got {}", o.depth),
        ));
    }
    if !(o.q0.is_finite() && o.q0 > 0.0) {
        return Err(bad("--q0", format!("must be > 0, got {}", o.q0)));
    }
    if !(-1.0..=1.0).contains(&o.c0) {
        return Err(bad("--c0", format!("must be in [-1, 1], got {}", o.c0)));
    }
    let sigma_w2 = o
        .sigma_w2
        .ok_or_else(|| bad("--sigma-w2", "required with --residual".into()))?;
    residual_mean_field(&ResidualConfig {
        act,
        sigma_w2,
        sigma_b2: o.sigma_b2,
        branch_depth: o.branch_depth,
        gate: o.gate,
        depth: o.depth,
        q0: o.q0,
        c0: o.c0,
        nodes: o.nodes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(f: impl FnOnce(&mut MeanfieldOptions)) -> MeanfieldOptions {
        let mut o = MeanfieldOptions::default();
        f(&mut o);
        o
    }

    #[test]
    fn refusals_name_the_flag_as_the_command_line_spells_it() {
        let cases: [(MeanfieldOptions, &str); 6] = [
            (
                opts(|_| {}),
                "--sigma-w2: required unless --critical (which finds the critical sigma_w^2 for --sigma-b2)",
            ),
            (
                opts(|o| o.sigma_w2 = Some(-1.0)),
                "--sigma-w2: must be > 0, got -1",
            ),
            (
                opts(|o| {
                    o.sigma_w2 = Some(1.0);
                    o.nodes = 4
                }),
                "--nodes: must be in 8..=400, got 4",
            ),
            (
                opts(|o| o.residual = true),
                "--sigma-w2: required with --residual",
            ),
            (
                opts(|o| {
                    o.residual = true;
                    o.sigma_w2 = Some(1.0);
                    o.c0 = f64::NAN
                }),
                "--c0: must be in [-1, 1], got NaN",
            ),
            (
                opts(|o| {
                    o.residual = true;
                    o.sigma_w2 = Some(1.0);
                    o.critical = true
                }),
                "--critical: not with --residual (a residual stream has no fixed point to be critical about)",
            ),
        ];
        for (o, want) in cases {
            let got = meanfield_report(&o).map(|_| ()).unwrap_err().to_string();
            assert_eq!(got, want);
        }
    }

    #[test]
    fn critical_alone_reports_the_critical_point_and_its_absence() {
        let MeanfieldRecord::Plain(mf) = meanfield_report(&opts(|o| {
            o.critical = true;
            o.sigma_b2 = 0.05
        }))
        .unwrap() else {
            panic!("a plain record")
        };
        assert_eq!(mf.sigma_w2_critical, Some(mf.sigma_w2));
        assert!((mf.chi_1.unwrap() - 1.0).abs() < 1e-6);
        // The identity's χ_1 = σ_w² crosses 1; a huge σ_b² with tanh keeps χ_1 < 1 throughout.
        let r = meanfield_report(&opts(|o| {
            o.critical = true;
            o.sigma_b2 = 1e6
        }))
        .unwrap();
        let json = serde_json::to_string(&r).unwrap();
        assert!(
            json.starts_with("{\"activation\":\"tanh\",\"notes\":[\"no critical sigma_w^2"),
            "{json}"
        );
        assert!(json.ends_with("\"sigma_b2\":1000000.0,\"sigma_w2_critical\":null}"));
    }
}
