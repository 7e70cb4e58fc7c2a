//! NumPy `.npy` arrays and `.npz` archives (arrays `x`, `y`, optional `x_test`, `y_test`),
//! read and written.
//!
//! ```text
//! \x93NUMPY, major, minor, header length (u16 LE in v1, u32 LE in v2/v3), then a Python dict
//! {'descr': '<f8', 'fortran_order': False, 'shape': (n, d), } padded with spaces and '\n',
//! then the data, C order.
//! ```
//! Supported dtypes: f4, f8, i1, i2, i4, i8, u1, u2, u4, u8, b1, either byte order. Fortran
//! order is refused. As for IDX, the header is never trusted for an allocation.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::Path;

use crate::data::Features;
use crate::error::{Error, Result};
use crate::matrix::Matrix;

/// Largest data size accepted (16 GiB).
pub const MAX_BYTES: u64 = 1 << 34;

/// Element kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Float,
    Int,
    Uint,
    Bool,
}

/// A parsed array: shape, element kind/size/byte order, raw bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct NpyArray {
    pub shape: Vec<usize>,
    pub kind: Kind,
    pub size: usize,
    pub big_endian: bool,
    pub bytes: Vec<u8>,
}

impl NpyArray {
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Element `i` as f64.
    pub fn value(&self, i: usize) -> f64 {
        let b = &self.bytes[i * self.size..(i + 1) * self.size];
        let mut buf = [0u8; 8];
        buf[..self.size].copy_from_slice(b);
        if self.big_endian {
            buf[..self.size].reverse();
        }
        match (self.kind, self.size) {
            (Kind::Float, 4) => f32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as f64,
            (Kind::Float, _) => f64::from_le_bytes(buf),
            (Kind::Int, 1) => buf[0] as i8 as f64,
            (Kind::Int, 2) => i16::from_le_bytes([buf[0], buf[1]]) as f64,
            (Kind::Int, 4) => i32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as f64,
            (Kind::Int, _) => i64::from_le_bytes(buf) as f64,
            (Kind::Uint | Kind::Bool, _) => u64::from_le_bytes(buf) as f64,
        }
    }

    /// (rows, cols): 1-D arrays are one column, N-D arrays flatten all but the first axis.
    pub fn matrix_shape(&self) -> (usize, usize) {
        match self.shape.len() {
            0 => (1, 1),
            1 => (self.shape[0], 1),
            _ => (self.shape[0], self.shape[1..].iter().product()),
        }
    }
}

fn err(path: &Path, pos: usize, msg: impl std::fmt::Display) -> Error {
    Error::file(path, format!("byte {pos}: {msg}"))
}

/// The value after `'key':` in the header dict.
fn dict_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let k = header
        .find(&format!("'{key}'"))
        .or_else(|| header.find(&format!("\"{key}\"")))?;
    let rest = &header[k + key.len() + 2..];
    let colon = rest.find(':')?;
    Some(rest[colon + 1..].trim_start())
}

/// Parses an `.npy` stream; `path` is for messages.
pub fn parse(mut r: impl Read, path: &Path) -> Result<NpyArray> {
    let mut pre = [0u8; 8];
    r.read_exact(&mut pre)
        .map_err(|_| err(path, 0, "file too short for the .npy magic"))?;
    if &pre[..6] != b"\x93NUMPY" {
        return Err(err(
            path,
            0,
            "not a .npy file (bad magic; expected \\x93NUMPY)",
        ));
    }
    let (major, header_len, start) = match pre[6] {
        1 => {
            let mut b = [0u8; 2];
            r.read_exact(&mut b)
                .map_err(|_| err(path, 8, "file ends inside the header length"))?;
            (1, u16::from_le_bytes(b) as usize, 10)
        }
        2 | 3 => {
            let mut b = [0u8; 4];
            r.read_exact(&mut b)
                .map_err(|_| err(path, 8, "file ends inside the header length"))?;
            (pre[6], u32::from_le_bytes(b) as usize, 12)
        }
        v => {
            return Err(err(
                path,
                6,
                format!("unsupported .npy version {v}.{}", pre[7]),
            ))
        }
    };
    if header_len > 1 << 20 {
        return Err(err(
            path,
            8,
            format!("header length {header_len} is implausible"),
        ));
    }
    let mut hbytes = Vec::new();
    (&mut r)
        .take(header_len as u64)
        .read_to_end(&mut hbytes)
        .map_err(|e| err(path, start, e))?;
    if hbytes.len() < header_len {
        return Err(err(
            path,
            start + hbytes.len(),
            "file ends inside the header",
        ));
    }
    let header = if major == 3 {
        String::from_utf8(hbytes).map_err(|_| err(path, start, "header is not UTF-8"))?
    } else {
        hbytes.iter().map(|&b| b as char).collect()
    };
    let descr = dict_value(&header, "descr")
        .and_then(|v| v.strip_prefix('\'').or_else(|| v.strip_prefix('"')))
        .and_then(|v| v.split(['\'', '"']).next())
        .ok_or_else(|| err(path, start, "header has no 'descr'"))?;
    let fortran = dict_value(&header, "fortran_order")
        .ok_or_else(|| err(path, start, "header has no 'fortran_order'"))?;
    if fortran.starts_with("True") {
        return Err(err(
            path,
            start,
            "Fortran-order arrays are not supported (save with np.ascontiguousarray)",
        ));
    }
    let shape_text = dict_value(&header, "shape")
        .and_then(|v| v.strip_prefix('('))
        .and_then(|v| v.split(')').next())
        .ok_or_else(|| err(path, start, "header has no 'shape' tuple"))?;
    let shape: Vec<usize> = shape_text
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| {
            t.trim_end_matches('L')
                .parse::<usize>()
                .map_err(|_| err(path, start, format!("bad shape entry '{t}'")))
        })
        .collect::<Result<_>>()?;
    let (order, code) = match descr.chars().next() {
        Some(c @ ('<' | '>' | '|' | '=')) => (c, &descr[1..]),
        _ => ('|', descr),
    };
    let (kind, size) = match code {
        "f4" => (Kind::Float, 4),
        "f8" => (Kind::Float, 8),
        "i1" => (Kind::Int, 1),
        "i2" => (Kind::Int, 2),
        "i4" => (Kind::Int, 4),
        "i8" => (Kind::Int, 8),
        "u1" => (Kind::Uint, 1),
        "u2" => (Kind::Uint, 2),
        "u4" => (Kind::Uint, 4),
        "u8" => (Kind::Uint, 8),
        "b1" | "?" => (Kind::Bool, 1),
        other => {
            return Err(err(
                path,
                start,
                format!(
                    "unsupported dtype '{descr}' ('{other}'; supported: f4, f8, i1-i8, u1-u8, b1)"
                ),
            ))
        }
    };
    let total = shape
        .iter()
        .try_fold(size as u64, |acc, &d| acc.checked_mul(d as u64))
        .filter(|&t| t <= MAX_BYTES)
        .ok_or_else(|| {
            err(
                path,
                start,
                format!("shape {shape:?} overflows the {MAX_BYTES}-byte limit"),
            )
        })?;
    let data_start = start + header_len;
    let mut bytes = Vec::new();
    (&mut r)
        .take(total)
        .read_to_end(&mut bytes)
        .map_err(|e| err(path, data_start, e))?;
    if (bytes.len() as u64) < total {
        return Err(err(
            path,
            data_start + bytes.len(),
            format!(
                "truncated: shape {shape:?} needs {total} data bytes, found {}",
                bytes.len()
            ),
        ));
    }
    let a = NpyArray {
        shape,
        kind,
        size,
        big_endian: order == '>',
        bytes,
    };
    if kind == Kind::Float {
        if let Some(i) = (0..a.len()).find(|&i| !a.value(i).is_finite()) {
            return Err(err(
                path,
                data_start + i * size,
                format!("element {i} is {} (NaN and Inf are not data)", a.value(i)),
            ));
        }
    }
    Ok(a)
}

/// Reads one `.npy` file.
pub fn read(path: &Path) -> Result<NpyArray> {
    let f = File::open(path).map_err(|e| Error::io(path, e))?;
    if f.metadata().map(|m| m.len() == 0).unwrap_or(false) {
        return Err(err(path, 0, "empty file"));
    }
    parse(BufReader::new(f), path)
}

/// Features from an array: f4 stays f32, everything else becomes f64.
pub fn to_features(a: &NpyArray) -> Features {
    let (rows, cols) = a.matrix_shape();
    if a.kind == Kind::Float && a.size == 4 {
        Features::F32(Matrix::from_vec(
            rows,
            cols,
            (0..a.len()).map(|i| a.value(i) as f32).collect(),
        ))
    } else {
        Features::F64(Matrix::from_vec(
            rows,
            cols,
            (0..a.len()).map(|i| a.value(i)).collect(),
        ))
    }
}

/// Targets as an (n, k) f64 matrix.
pub fn to_targets(a: &NpyArray) -> Matrix<f64> {
    let (rows, cols) = a.matrix_shape();
    Matrix::from_vec(rows, cols, (0..a.len()).map(|i| a.value(i)).collect())
}

pub fn read_features(path: &Path) -> Result<Features> {
    let a = read(path)?;
    if a.shape.is_empty() {
        return Err(Error::file(path, "a scalar is not a feature matrix"));
    }
    Ok(to_features(&a))
}

/// Targets with exactly `rows` rows.
pub fn read_targets(path: &Path, rows: usize) -> Result<Matrix<f64>> {
    let y = to_targets(&read(path)?);
    if y.rows() != rows {
        return Err(Error::file(
            path,
            format!("{} targets for {rows} feature rows", y.rows()),
        ));
    }
    Ok(y)
}

/// The arrays of an `.npz` dataset archive.
pub struct NpzArrays {
    pub x: Features,
    pub y: Matrix<f64>,
    pub x_test: Option<Features>,
    pub y_test: Option<Matrix<f64>>,
}

/// Reads `x`, `y` and optionally `x_test`, `y_test` from an `.npz` (zip) archive.
pub fn read_npz(path: &Path) -> Result<NpzArrays> {
    let f = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut zip = zip::ZipArchive::new(BufReader::new(f))
        .map_err(|e| Error::file(path, format!("not a valid .npz (zip) archive: {e}")))?;
    let mut get = |name: &str| -> Result<Option<NpyArray>> {
        let entry = format!("{name}.npy");
        match zip.by_name(&entry) {
            Ok(file) => {
                let inner = path.join(&entry);
                parse(file, &inner).map(Some)
            }
            Err(zip::result::ZipError::FileNotFound) => Ok(None),
            Err(e) => Err(Error::file(path, format!("{entry}: {e}"))),
        }
    };
    let x = get("x")?.ok_or_else(|| {
        Error::file(
            path,
            "has no array 'x' (expected x, y and optionally x_test, y_test)",
        )
    })?;
    let y = get("y")?.ok_or_else(|| {
        Error::file(
            path,
            "has no array 'y' (expected x, y and optionally x_test, y_test)",
        )
    })?;
    let x_test = get("x_test")?;
    let y_test = get("y_test")?;
    let check = |xa: &NpyArray, ya: &NpyArray, what: &str| -> Result<()> {
        if xa.matrix_shape().0 != ya.matrix_shape().0 {
            return Err(Error::file(
                path,
                format!(
                    "{what}: {} rows of x but {} of y",
                    xa.matrix_shape().0,
                    ya.matrix_shape().0
                ),
            ));
        }
        Ok(())
    };
    check(&x, &y, "x/y")?;
    if let (Some(xt), Some(yt)) = (&x_test, &y_test) {
        check(xt, yt, "x_test/y_test")?;
        if xt.matrix_shape().1 != x.matrix_shape().1 {
            return Err(Error::file(
                path,
                format!(
                    "x_test has {} features, x has {}",
                    xt.matrix_shape().1,
                    x.matrix_shape().1
                ),
            ));
        }
    }
    Ok(NpzArrays {
        x: to_features(&x),
        y: to_targets(&y),
        x_test: x_test.as_ref().map(to_features),
        y_test: y_test.as_ref().map(to_targets),
    })
}

/// An array to write: little-endian f32, f64 or i64 data with its shape.
pub enum NpyData<'a> {
    F32(&'a [f32]),
    F64(&'a [f64]),
    I64(&'a [i64]),
}

/// The bytes of a version-1.0 `.npy` file (header padded to a multiple of 64 bytes).
pub fn to_npy_bytes(data: &NpyData<'_>, shape: &[usize]) -> Vec<u8> {
    let descr = match data {
        NpyData::F32(_) => "<f4",
        NpyData::F64(_) => "<f8",
        NpyData::I64(_) => "<i8",
    };
    let shape_text = match shape {
        [n] => format!("({n},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_text}, }}");
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat(unpadded.next_multiple_of(64) - unpadded));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len());
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    match data {
        NpyData::F32(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        NpyData::F64(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        NpyData::I64(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
    }
    out
}

/// The bytes of an `.npz` archive (stored, like `np.savez`) holding `NAME.npy` entries.
pub fn to_npz_bytes(entries: &[(&str, Vec<u8>)]) -> Result<Vec<u8>> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let fail = |e: &dyn std::fmt::Display| Error::file("npz", e.to_string());
    for (name, bytes) in entries {
        zip.start_file(format!("{name}.npy"), opts)
            .map_err(|e| fail(&e))?;
        zip.write_all(bytes).map_err(|e| fail(&e))?;
    }
    Ok(zip.finish().map_err(|e| fail(&e))?.into_inner())
}
