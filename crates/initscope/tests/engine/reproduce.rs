//! The fast reproductions pass (the slower ones run in `initscope reproduce all`).

use initscope::reproduce::{reproduce, REPRODUCTIONS};

#[test]
fn fast_reproductions_pass() {
    for name in [
        "seed",
        "saxe2014",
        "mnist1d",
        "glorot2010",
        "pennington2017",
        "zero2022",
        "layernorm_const",
        "meanfield_res2017",
        "zero_gamma2017",
    ] {
        let r = reproduce(name).expect("runs");
        let failed: Vec<String> = r
            .rows
            .iter()
            .filter(|x| !x.ok)
            .map(|x| format!("{}: {} (reference {})", x.quantity, x.measured, x.reference))
            .collect();
        assert!(r.pass, "{name} failed: {failed:?}");
        assert!(!r.rows.is_empty() && !r.measured.is_null());
    }
}

#[test]
fn unknown_reproduction_is_refused_with_the_list() {
    let err = reproduce("glorot").unwrap_err().to_string();
    for (name, _, _) in REPRODUCTIONS {
        assert!(err.contains(name), "{err}");
    }
}
