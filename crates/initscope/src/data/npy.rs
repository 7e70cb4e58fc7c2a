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
        matrix_shape(&self.shape)
    }
}

fn err(path: &Path, pos: impl std::fmt::Display, msg: impl std::fmt::Display) -> Error {
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

/// What an `.npy` header says: the shape and element type, where the data starts and how many
/// data bytes the shape needs.
#[derive(Clone, Debug, PartialEq)]
pub struct NpyHeader {
    pub shape: Vec<usize>,
    pub kind: Kind,
    pub size: usize,
    pub big_endian: bool,
    /// Offset of the first data byte in the file.
    pub data_start: usize,
    /// Data bytes the shape needs (checked against [`MAX_BYTES`] and the bytes available).
    pub data_bytes: u64,
}

impl NpyHeader {
    /// (rows, cols) as [`NpyArray::matrix_shape`] gives them.
    pub fn matrix_shape(&self) -> (usize, usize) {
        matrix_shape(&self.shape)
    }
}

fn matrix_shape(shape: &[usize]) -> (usize, usize) {
    match shape.len() {
        0 => (1, 1),
        1 => (shape[0], 1),
        _ => (shape[0], shape[1..].iter().product()),
    }
}

/// Parses an `.npy` header from `r`, leaving `r` at the first data byte. `available`, when
/// known (a file's length, a zip entry's uncompressed size), is the stream's total length: a
/// header promising more data than that is refused here, before anything is read or allocated.
pub fn parse_header(mut r: impl Read, path: &Path, available: Option<u64>) -> Result<NpyHeader> {
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
    // The byte size, and the same product with every 0 taken as 1: a zero-row array whose
    // other axes multiply past the limit (shape (0, 2^40, 2^40)) is as absurd as a huge one,
    // and its column count would overflow.
    let bounded = |zero_as_one: bool| {
        shape
            .iter()
            .try_fold(size as u64, |acc, &d| {
                acc.checked_mul(if zero_as_one { d.max(1) } else { d } as u64)
            })
            .filter(|&t| t <= MAX_BYTES)
    };
    let total = bounded(true).and(bounded(false)).ok_or_else(|| {
        err(
            path,
            start,
            format!(
                "shape {shape:?} overflows the {} GiB limit ({MAX_BYTES} bytes)",
                MAX_BYTES >> 30
            ),
        )
    })?;
    let data_start = start + header_len;
    if let Some(available) = available {
        let found = available.saturating_sub(data_start as u64);
        if found < total {
            return Err(err(
                path,
                data_start as u64 + found,
                format!(
                    "truncated: shape {shape:?} needs {total} data bytes, but only {found} follow the header"
                ),
            ));
        }
    }
    Ok(NpyHeader {
        shape,
        kind,
        size,
        big_endian: order == '>',
        data_start,
        data_bytes: total,
    })
}

/// Reads the data `h` describes from `r` (positioned at the first data byte). `checked`: the
/// header was checked against a length known to be true (a file's), so the data buffer is
/// allocated once at its full size rather than grown.
fn parse_data(mut r: impl Read, h: NpyHeader, path: &Path, checked: bool) -> Result<NpyArray> {
    let total = h.data_bytes;
    let mut bytes = if checked {
        Vec::with_capacity(total as usize)
    } else {
        Vec::new()
    };
    (&mut r)
        .take(total)
        .read_to_end(&mut bytes)
        .map_err(|e| err(path, h.data_start, e))?;
    if (bytes.len() as u64) < total {
        return Err(err(
            path,
            h.data_start + bytes.len(),
            format!(
                "truncated: shape {:?} needs {total} data bytes, found {}",
                h.shape,
                bytes.len()
            ),
        ));
    }
    let a = NpyArray {
        shape: h.shape,
        kind: h.kind,
        size: h.size,
        big_endian: h.big_endian,
        bytes,
    };
    if a.kind == Kind::Float {
        if let Some(i) = (0..a.len()).find(|&i| !a.value(i).is_finite()) {
            return Err(err(
                path,
                h.data_start + i * a.size,
                format!("element {i} is {} (NaN and Inf are not data)", a.value(i)),
            ));
        }
    }
    Ok(a)
}

/// Parses an `.npy` stream; `path` is for messages.
pub fn parse(mut r: impl Read, path: &Path) -> Result<NpyArray> {
    let h = parse_header(&mut r, path, None)?;
    parse_data(r, h, path, false)
}

/// Opens an `.npy` file and parses its header, checking it against the file's length.
fn open(path: &Path) -> Result<(BufReader<File>, NpyHeader)> {
    let (f, len) = super::open_file(path, "an .npy file")?;
    if len == 0 {
        return Err(err(path, 0, "empty file"));
    }
    let mut r = BufReader::new(f);
    let h = parse_header(&mut r, path, Some(len))?;
    Ok((r, h))
}

/// Reads only the header of an `.npy` file (checked against the file's length).
pub fn read_header(path: &Path) -> Result<NpyHeader> {
    open(path).map(|(_, h)| h)
}

/// Reads one `.npy` file; a header promising more data than the file holds is refused before
/// any data is read.
pub fn read(path: &Path) -> Result<NpyArray> {
    let (r, h) = open(path)?;
    parse_data(r, h, path, true)
}

/// Features from an array: f4 stays f32, everything else becomes f64.
pub fn to_features(a: &NpyArray) -> Features<'static> {
    let (rows, cols) = a.matrix_shape();
    if a.kind == Kind::Float && a.size == 4 {
        Features::from(Matrix::<f32>::from_vec(
            rows,
            cols,
            (0..a.len()).map(|i| a.value(i) as f32).collect(),
        ))
    } else {
        Features::from(Matrix::<f64>::from_vec(
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

/// Checks a feature array's header: not a scalar, at least one row, at least one feature.
/// `what` prefixes the message (`""` for a file, `"array 'x' "` inside an archive).
fn check_features(h: &NpyHeader, path: &Path, what: &str) -> Result<()> {
    if h.shape.is_empty() {
        return Err(Error::file(
            path,
            format!("{what}is a scalar, not a feature matrix"),
        ));
    }
    let (rows, cols) = h.matrix_shape();
    if rows == 0 {
        return Err(Error::file(path, format!("{what}holds 0 rows")));
    }
    if cols == 0 {
        return Err(Error::file(
            path,
            format!("{what}has no features (shape {:?})", h.shape),
        ));
    }
    Ok(())
}

/// Features from an `.npy` file (refused when it holds 0 rows or no features).
pub fn read_features(path: &Path) -> Result<Features<'static>> {
    let (r, h) = open(path)?;
    check_features(&h, path, "")?;
    Ok(to_features(&parse_data(r, h, path, true)?))
}

fn check_targets(h: &NpyHeader, rows: usize, path: &Path) -> Result<()> {
    let (n, cols) = h.matrix_shape();
    if cols == 0 {
        return Err(Error::file(
            path,
            format!("has no target columns (shape {:?})", h.shape),
        ));
    }
    if n != rows {
        return Err(Error::file(
            path,
            format!("{n} targets for {rows} feature rows"),
        ));
    }
    Ok(())
}

/// Targets with exactly `rows` rows (the count is checked on the header, before any data is
/// read).
pub fn read_targets(path: &Path, rows: usize) -> Result<Matrix<f64>> {
    let (r, h) = open(path)?;
    check_targets(&h, rows, path)?;
    Ok(to_targets(&parse_data(r, h, path, true)?))
}

/// An `npy:X,Y` pair: both headers are read and checked (rows, features, matching counts)
/// before either file's data is loaded.
pub fn read_pair(x: &Path, y: &Path) -> Result<(Features<'static>, Matrix<f64>)> {
    let hx = read_header(x)?;
    check_features(&hx, x, "")?;
    let hy = read_header(y)?;
    let rows = hx.matrix_shape().0;
    check_targets(&hy, rows, y)?;
    Ok((read_features(x)?, read_targets(y, rows)?))
}

/// The arrays of an `.npz` dataset archive.
pub struct NpzArrays {
    pub x: Features<'static>,
    pub y: Matrix<f64>,
    pub x_test: Option<Features<'static>>,
    pub y_test: Option<Matrix<f64>>,
}

const NPZ_ARRAYS: [&str; 4] = ["x", "y", "x_test", "y_test"];

/// Reads `x`, `y` and optionally `x_test`, `y_test` from an `.npz` (zip) archive. Every
/// array's header is read and checked first (each against its entry's size, the row counts
/// against each other), so a mismatch or a lying header is refused before any data is loaded.
pub fn read_npz(path: &Path) -> Result<NpzArrays> {
    let (f, _) = super::open_file(path, "an .npz file")?;
    let mut zip = zip::ZipArchive::new(BufReader::new(f))
        .map_err(|e| Error::file(path, format!("not a valid .npz (zip) archive: {e}")))?;
    // The header of `name`, or None when the archive has no such array.
    let mut header = |name: &str| -> Result<Option<NpyHeader>> {
        let entry = format!("{name}.npy");
        match zip.by_name(&entry) {
            Ok(file) => {
                let size = file.size();
                parse_header(file, &path.join(&entry), Some(size)).map(Some)
            }
            Err(zip::result::ZipError::FileNotFound) => Ok(None),
            Err(e) => Err(Error::file(path, format!("{entry}: {e}"))),
        }
    };
    let [x, y, x_test, y_test] = NPZ_ARRAYS.map(&mut header);
    let (x, y, x_test, y_test) = (x?, y?, x_test?, y_test?);
    let missing = |name: &str| {
        Error::file(
            path,
            format!("has no array '{name}' (expected x, y and optionally x_test, y_test)"),
        )
    };
    let x = x.ok_or_else(|| missing("x"))?;
    let y = y.ok_or_else(|| missing("y"))?;
    let rows = |xa: &NpyHeader, ya: &NpyHeader, what: &str| -> Result<()> {
        if ya.matrix_shape().1 == 0 {
            let y = what.split('/').nth(1).unwrap_or("y");
            return Err(Error::file(
                path,
                format!("array '{y}' has no target columns (shape {:?})", ya.shape),
            ));
        }
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
    check_features(&x, path, "array 'x' ")?;
    rows(&x, &y, "x/y")?;
    match (&x_test, &y_test) {
        (Some(xt), Some(yt)) => {
            check_features(xt, path, "array 'x_test' ")?;
            rows(xt, yt, "x_test/y_test")?;
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
        (None, None) => {}
        _ => {
            return Err(Error::file(
                path,
                "has only one of x_test and y_test; give both or neither",
            ))
        }
    }
    // The data, one array at a time, each converted before the next is read.
    let mut data = |name: &str| -> Result<NpyArray> {
        let entry = format!("{name}.npy");
        let inner = path.join(&entry);
        let mut file = zip
            .by_name(&entry)
            .map_err(|e| Error::file(path, format!("{entry}: {e}")))?;
        let size = file.size();
        let h = parse_header(&mut file, &inner, Some(size))?;
        parse_data(file, h, &inner, false)
    };
    let xs = to_features(&data("x")?);
    let ys = to_targets(&data("y")?);
    let (x_test, y_test) = if x_test.is_some() {
        (
            Some(to_features(&data("x_test")?)),
            Some(to_targets(&data("y_test")?)),
        )
    } else {
        (None, None)
    };
    Ok(NpzArrays {
        x: xs,
        y: ys,
        x_test,
        y_test,
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
