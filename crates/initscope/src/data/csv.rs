//! CSV files: one row per example, numeric columns, one of them the label.
//!
//! A header is detected when the first row has a field that is not a number and the second row
//! is all numbers. The label column is given by 0-based index or header name (`--label-column`),
//! the last column by default. Every error names the file, the line and the column.

use std::path::Path;

use crate::error::{Error, Result};
use crate::matrix::Matrix;

fn number(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok()
}

/// Reads features (n, columns - 1) and the label column (n, 1).
pub fn load(path: &Path, label_column: Option<&str>) -> Result<(Matrix<f64>, Matrix<f64>)> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse(&bytes, path, label_column)
}

/// Parses CSV bytes (see the module docs); `path` is for messages.
pub fn parse(
    bytes: &[u8],
    path: &Path,
    label_column: Option<&str>,
) -> Result<(Matrix<f64>, Matrix<f64>)> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(false)
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .from_reader(bytes);
    let mut records = Vec::new();
    for r in reader.records() {
        match r {
            Ok(rec) => records.push(rec),
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                let msg = match e.kind() {
                    csv::ErrorKind::UnequalLengths {
                        expected_len, len, ..
                    } => {
                        format!("line {line}: {len} fields, but earlier rows have {expected_len} (ragged rows)")
                    }
                    csv::ErrorKind::Utf8 { .. } => format!("line {line}: not valid UTF-8"),
                    _ => format!("line {line}: {e}"),
                };
                return Err(Error::file(path, msg));
            }
        }
    }
    // Drop blank lines (a single empty field).
    records.retain(|r| !(r.len() == 1 && r[0].is_empty()));
    if records.is_empty() {
        return Err(Error::file(path, "empty file (no rows)"));
    }
    let first_numeric = records[0].iter().all(|f| number(f).is_some());
    let header: Option<Vec<String>> = if first_numeric {
        None
    } else if records.len() == 1 {
        return Err(Error::file(path, "has a header but no data rows"));
    } else if records.len() > 1 && records[1].iter().all(|f| number(f).is_some()) {
        Some(records[0].iter().map(str::to_string).collect())
    } else {
        let (col, field) = records[0]
            .iter()
            .enumerate()
            .find(|(_, f)| number(f).is_none())
            .expect("a non-number exists");
        let line = records[0].position().map_or(1, |p| p.line());
        return Err(Error::file(
            path,
            format!("line {line}, column {}: '{field}' is not a number", col + 1),
        ));
    };
    let body = &records[header.is_some() as usize..];
    if body.is_empty() {
        return Err(Error::file(path, "has a header but no data rows"));
    }
    let cols = records[0].len();
    if cols < 2 {
        return Err(Error::file(
            path,
            "needs at least two columns (features and a label)",
        ));
    }
    let label = match label_column {
        None => cols - 1,
        Some(spec) => match spec.trim().parse::<usize>() {
            Ok(i) if i < cols => i,
            Ok(i) => {
                return Err(Error::file(
                    path,
                    format!(
                        "--label-column {i} is out of range (columns 0..{})",
                        cols - 1
                    ),
                ))
            }
            Err(_) => match &header {
                Some(h) => h.iter().position(|n| n == spec.trim()).ok_or_else(|| {
                    Error::file(
                        path,
                        format!(
                            "--label-column '{spec}' is not a header name (header: {})",
                            h.join(", ")
                        ),
                    )
                })?,
                None => {
                    return Err(Error::file(
                        path,
                        format!(
                            "--label-column '{spec}' names a column, but the file has no header"
                        ),
                    ))
                }
            },
        },
    };
    let n = body.len();
    let mut x = Vec::with_capacity(n * (cols - 1));
    let mut y = Vec::with_capacity(n);
    for rec in body {
        let line = rec.position().map_or(0, |p| p.line());
        for (j, field) in rec.iter().enumerate() {
            let col_name = header
                .as_ref()
                .map(|h| format!(" ('{}')", h[j]))
                .unwrap_or_default();
            let v = number(field).ok_or_else(|| {
                Error::file(
                    path,
                    format!(
                        "line {line}, column {}{col_name}: '{field}' is not a number",
                        j + 1
                    ),
                )
            })?;
            if !v.is_finite() {
                return Err(Error::file(
                    path,
                    format!("line {line}, column {}{col_name}: {v} is not finite", j + 1),
                ));
            }
            if j == label {
                y.push(v);
            } else {
                x.push(v);
            }
        }
    }
    Ok((Matrix::from_vec(n, cols - 1, x), Matrix::from_vec(n, 1, y)))
}

/// Writes features and labels as CSV with a header `x0,...,x{d-1},y`.
pub fn to_csv_bytes(x: &[Vec<f64>], y: &[f64]) -> Vec<u8> {
    let d = x.first().map_or(0, Vec::len);
    let mut out = String::new();
    let names: Vec<String> = (0..d)
        .map(|j| format!("x{j}"))
        .chain(["y".to_string()])
        .collect();
    out += &names.join(",");
    out.push('\n');
    for (row, label) in x.iter().zip(y) {
        let fields: Vec<String> = row
            .iter()
            .map(|v| format!("{v}"))
            .chain([format!("{label}")])
            .collect();
        out += &fields.join(",");
        out.push('\n');
    }
    out.into_bytes()
}
