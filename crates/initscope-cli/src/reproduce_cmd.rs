//! `initscope reproduce NAME|all [--json]`: published initialization results, measured.

use std::process::ExitCode;

use clap::Args;
use initscope::reproduce::{reproduce, Reproduction, Row, REPRODUCTIONS};

#[derive(Args, Debug)]
pub struct ReproduceArgs {
    /// A reproduction (seed, glorot2010, he2015, saxe2014, schoenholz2017, pennington2017,
    /// lsuv2016, zero2022, mnist1d), `all`, or
    /// `list` to show them.
    pub name: String,
    /// Print the measured quantities as JSON (one array of reproductions).
    #[arg(long)]
    pub json: bool,
}

fn print(r: &Reproduction) -> anyhow::Result<()> {
    outln!("== {}: {} ({:.1} s)", r.name, r.source, r.seconds);
    // Column widths: the longest entry, at least the header's 8.
    let width = |f: fn(&Row) -> &str| r.rows.iter().map(|x| f(x).len()).fold(8, usize::max);
    let (w, m) = (width(|x| &x.quantity), width(|x| &x.measured));
    outln!("   {:<w$}  {:<m$}  reference", "quantity", "measured");
    for row in &r.rows {
        let mark = if row.ok { " " } else { "x" };
        outln!(
            " {mark} {:<w$}  {:<m$}  {}",
            row.quantity,
            row.measured,
            row.reference
        );
    }
    outln!("   criterion: {}", r.criterion);
    outln!("   deviations: {}", r.deviations);
    outln!("   {}\n", if r.pass { "PASS" } else { "FAIL" });
    Ok(())
}

pub fn run(a: ReproduceArgs) -> anyhow::Result<ExitCode> {
    if a.name == "list" {
        for (name, what, _) in REPRODUCTIONS {
            outln!("{name:<16} {what}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let names: Vec<&str> = if a.name == "all" {
        REPRODUCTIONS.iter().map(|r| r.0).collect()
    } else {
        vec![a.name.as_str()]
    };
    let mut results = Vec::new();
    for name in names {
        let r = reproduce(name)?;
        if !a.json {
            print(&r)?;
        }
        results.push(r);
    }
    let failed: Vec<&str> = results
        .iter()
        .filter(|r| !r.pass)
        .map(|r| r.name.as_str())
        .collect();
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&results)?);
    } else if results.len() > 1 {
        outln!(
            "{} of {} reproductions pass{}",
            results.len() - failed.len(),
            results.len(),
            if failed.is_empty() {
                String::new()
            } else {
                format!("; failed: {}", failed.join(", "))
            }
        );
    }
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
