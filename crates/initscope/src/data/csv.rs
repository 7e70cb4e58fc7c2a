//! CSV files: one row per example, numeric columns, one of them the label.
//!
//! The first row is a header when it has a non-empty field that is not a number. The label
//! column is given by 0-based index or header name (`--label-column`), the last column by
//! default. Every error names the file, and a problem with a cell names its line in the file
//! (1-based, the header and comment lines counted) and its column (1-based, the header name
//! beside it when there is one).
//!
//! The file is read as a stream, each row converted as it arrives (only the numbers are kept).
//! A NUL byte anywhere means the file is not text and is refused where it is found; so is a
//! physical line longer than [`MAX_LINE_BYTES`] (16 MiB), so a file without newlines never
//! grows one record without bound.

use std::cell::Cell;
use std::io::Read;
use std::path::Path;
use std::rc::Rc;

use crate::error::{Error, Result};
use crate::matrix::Matrix;

/// Longest physical line accepted, in bytes (16 MiB: over a million numbers).
pub const MAX_LINE_BYTES: usize = 16 << 20;

/// A field as messages quote it: escaped to one line and cut after 40 characters.
fn shown(s: &str) -> String {
    let mut out: String = s.chars().take(40).flat_map(char::escape_debug).collect();
    if s.chars().nth(40).is_some() {
        out.push_str("...");
    }
    out
}

fn number(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok()
}

/// Why [`Guard`] stopped the stream.
#[derive(Clone, Copy, Debug)]
enum Refusal {
    Nul { line: u64, byte: u64 },
    LongLine { line: u64 },
}

/// Passes bytes through, counting lines, and fails the read at the first NUL byte or at a line
/// longer than [`MAX_LINE_BYTES`] (the reason is left in `refusal`).
struct Guard<R> {
    inner: R,
    line: u64,
    line_len: usize,
    offset: u64,
    refusal: Rc<Cell<Option<Refusal>>>,
}

impl<R: Read> Read for Guard<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.refusal.get().is_some() {
            return Err(std::io::Error::other("refused"));
        }
        let n = self.inner.read(buf)?;
        for (i, &b) in buf[..n].iter().enumerate() {
            let refusal = match b {
                b'\n' => {
                    self.line += 1;
                    self.line_len = 0;
                    continue;
                }
                b'\r' => {
                    self.line_len = 0;
                    continue;
                }
                0 => Refusal::Nul {
                    line: self.line,
                    byte: self.offset + i as u64,
                },
                _ if self.line_len >= MAX_LINE_BYTES => Refusal::LongLine { line: self.line },
                _ => {
                    self.line_len += 1;
                    continue;
                }
            };
            self.refusal.set(Some(refusal));
            return Err(std::io::Error::other("refused"));
        }
        self.offset += n as u64;
        Ok(n)
    }
}

/// Reads features (n, columns - 1) and the label column (n, 1).
pub fn load(path: &Path, label_column: Option<&str>) -> Result<(Matrix<f64>, Matrix<f64>)> {
    let (f, _) = super::open_file(path, "a CSV file")?;
    parse_reader(f, path, label_column)
}

/// Parses CSV bytes (see the module docs); `path` is for messages.
pub fn parse(
    bytes: &[u8],
    path: &Path,
    label_column: Option<&str>,
) -> Result<(Matrix<f64>, Matrix<f64>)> {
    parse_reader(bytes, path, label_column)
}

/// The line of field `j` of `rec`: the record's first line plus the newlines inside the
/// (quoted) fields before it.
fn field_line(rec: &csv::StringRecord, j: usize) -> u64 {
    let start = rec.position().map_or(1, |p| p.line());
    start
        + rec
            .iter()
            .take(j)
            .map(|f| f.bytes().filter(|&b| b == b'\n').count() as u64)
            .sum::<u64>()
}

/// Parses CSV from a stream (see the module docs); `path` is for messages.
pub fn parse_reader(
    r: impl Read,
    path: &Path,
    label_column: Option<&str>,
) -> Result<(Matrix<f64>, Matrix<f64>)> {
    let refusal = Rc::new(Cell::new(None));
    let guard = Guard {
        inner: r,
        line: 1,
        line_len: 0,
        offset: 0,
        refusal: refusal.clone(),
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .comment(Some(b'#'))
        .from_reader(guard);
    let mut records = reader.records().filter(|r| {
        // Blank lines (a single empty field) are skipped.
        !matches!(r, Ok(rec) if rec.len() == 1 && rec[0].trim().is_empty())
    });
    let mut next = || -> Result<Option<csv::StringRecord>> {
        match records.next() {
            None => Ok(None),
            Some(Ok(rec)) => Ok(Some(rec)),
            Some(Err(e)) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                let msg = match (refusal.get(), e.kind()) {
                    (Some(Refusal::Nul { line, byte }), _) => {
                        format!("not a text CSV file (NUL byte at line {line}, byte {byte})")
                    }
                    (Some(Refusal::LongLine { line }), _) => format!(
                        "line {line} is longer than {} MiB (not a CSV file of numbers?)",
                        MAX_LINE_BYTES >> 20
                    ),
                    (None, csv::ErrorKind::Utf8 { .. }) => format!("line {line}: not valid UTF-8"),
                    (None, csv::ErrorKind::Io(io)) => format!("read error ({io})"),
                    _ => format!("line {line}: {e}"),
                };
                Err(Error::file(path, msg))
            }
        }
    };
    let first = next()?.ok_or_else(|| Error::file(path, "empty file (no rows)"))?;
    let header: Option<Vec<String>> = first
        .iter()
        .any(|f| !f.trim().is_empty() && number(f).is_none())
        .then(|| first.iter().map(|f| f.trim().to_string()).collect());
    let cols = first.len();
    let mut pending = if header.is_some() {
        next()?
    } else {
        Some(first)
    };
    if pending.is_none() {
        return Err(Error::file(path, "has a header but no data rows"));
    }
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
                            h.iter().map(|n| shown(n)).collect::<Vec<_>>().join(", ")
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
    let mut x = Vec::new();
    let mut y = Vec::new();
    while let Some(rec) = pending {
        if rec.len() != cols {
            let line = rec.position().map_or(0, |p| p.line());
            return Err(Error::file(
                path,
                format!(
                    "line {line}: {} fields, but earlier rows have {cols} (ragged rows)",
                    rec.len()
                ),
            ));
        }
        for (j, field) in rec.iter().enumerate() {
            let cell = || {
                let name = header
                    .as_ref()
                    .map(|h| format!(" ('{}')", shown(&h[j])))
                    .unwrap_or_default();
                format!("line {}, column {}{name}", field_line(&rec, j), j + 1)
            };
            let field = field.trim();
            let v = match number(field) {
                Some(v) => v,
                None if field.is_empty() => {
                    return Err(Error::file(path, format!("{}: empty cell", cell())))
                }
                None => {
                    return Err(Error::file(
                        path,
                        format!("{}: '{}' is not a number", cell(), shown(field)),
                    ))
                }
            };
            if !v.is_finite() {
                return Err(Error::file(path, format!("{}: {v} is not finite", cell())));
            }
            if j == label {
                y.push(v);
            } else {
                x.push(v);
            }
        }
        pending = next()?;
    }
    let n = y.len();
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
