//! IDX files (the MNIST format), gzipped or not.
//!
//! ```text
//! bytes 0-1  0x00 0x00
//! byte  2    dtype: 0x08 u8, 0x09 i8, 0x0B i16, 0x0C i32, 0x0D f32, 0x0E f64 (big-endian)
//! byte  3    number of dimensions d
//! then       d big-endian u32 sizes, then the data, row-major
//! ```
//! The parser never trusts the header for an allocation: the size the header claims is checked
//! for overflow, then (for an uncompressed file) against the file's length before any data is
//! read, and the data is read as it arrives, so a lying header costs at most the bytes actually
//! present. Every error names the file, the byte position and the problem.

use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

use crate::data::{Features, ImageSet, Labels, Split};
use crate::error::{Error, Result};
use crate::matrix::Matrix;

/// Largest number of data bytes accepted (16 GiB): beyond that a header is assumed to lie.
pub const MAX_BYTES: u64 = 1 << 34;

/// The element type of an IDX file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdxType {
    U8,
    I8,
    I16,
    I32,
    F32,
    F64,
}

impl IdxType {
    fn from_code(code: u8) -> Option<IdxType> {
        Some(match code {
            0x08 => IdxType::U8,
            0x09 => IdxType::I8,
            0x0B => IdxType::I16,
            0x0C => IdxType::I32,
            0x0D => IdxType::F32,
            0x0E => IdxType::F64,
            _ => return None,
        })
    }

    pub fn size(self) -> usize {
        match self {
            IdxType::U8 | IdxType::I8 => 1,
            IdxType::I16 => 2,
            IdxType::I32 | IdxType::F32 => 4,
            IdxType::F64 => 8,
        }
    }
}

/// A parsed IDX array: its shape, element type and the raw big-endian data bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct IdxArray {
    pub dims: Vec<usize>,
    pub dtype: IdxType,
    pub bytes: Vec<u8>,
}

impl IdxArray {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.dims.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Element `i` as f64.
    pub fn value(&self, i: usize) -> f64 {
        let b = &self.bytes[i * self.dtype.size()..(i + 1) * self.dtype.size()];
        match self.dtype {
            IdxType::U8 => b[0] as f64,
            IdxType::I8 => b[0] as i8 as f64,
            IdxType::I16 => i16::from_be_bytes([b[0], b[1]]) as f64,
            IdxType::I32 => i32::from_be_bytes([b[0], b[1], b[2], b[3]]) as f64,
            IdxType::F32 => f32::from_be_bytes([b[0], b[1], b[2], b[3]]) as f64,
            IdxType::F64 => f64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
        }
    }
}

fn read_exact_at(
    r: &mut impl Read,
    buf: &mut [u8],
    pos: usize,
    path: &Path,
    what: &str,
) -> Result<()> {
    r.read_exact(buf).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => {
            Error::file(path, format!("byte {pos}: file ends inside the {what}"))
        }
        _ => Error::file(path, format!("byte {pos}: {} ({e})", read_problem(&e))),
    })
}

fn read_problem(e: &std::io::Error) -> &'static str {
    match e.kind() {
        std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData => "corrupt gzip stream",
        std::io::ErrorKind::UnexpectedEof => "truncated gzip stream",
        _ => "read error",
    }
}

/// What an IDX header says: element type, dimensions, data bytes (at most [`MAX_BYTES`]).
#[derive(Clone, Debug, PartialEq)]
pub struct IdxHeader {
    pub dtype: IdxType,
    pub dims: Vec<usize>,
    /// Header length in bytes (where the data starts).
    pub len: usize,
    /// Data bytes the dimensions need.
    pub data_bytes: u64,
}

/// Parses an IDX header from `r` (already decompressed), leaving `r` at the first data byte.
/// `available`, when known (an uncompressed file's length), is the stream's total length: a
/// header promising more data than that is refused before anything more is read.
pub fn parse_header(mut r: impl Read, path: &Path, available: Option<u64>) -> Result<IdxHeader> {
    let mut magic = [0u8; 4];
    read_exact_at(&mut r, &mut magic, 0, path, "4-byte magic number")?;
    if magic[0] != 0 || magic[1] != 0 {
        return Err(Error::file(
            path,
            format!(
                "byte 0: bad magic {:02x} {:02x} (an IDX file starts with 00 00)",
                magic[0], magic[1]
            ),
        ));
    }
    let dtype = IdxType::from_code(magic[2]).ok_or_else(|| {
        Error::file(path, format!("byte 2: unknown IDX dtype 0x{:02x} (known: 08 u8, 09 i8, 0B i16, 0C i32, 0D f32, 0E f64)", magic[2]))
    })?;
    let ndim = magic[3] as usize;
    if ndim == 0 {
        return Err(Error::file(path, "byte 3: zero dimensions"));
    }
    let mut dims = Vec::with_capacity(ndim);
    let mut total: u64 = dtype.size() as u64;
    // The same product with every 0 taken as 1 (a zero-row file whose other dimensions
    // multiply past the limit is as absurd as a huge one).
    let mut nonzero: u64 = total;
    for d in 0..ndim {
        let mut b = [0u8; 4];
        let pos = 4 + 4 * d;
        read_exact_at(&mut r, &mut b, pos, path, "dimension sizes")?;
        let n = u32::from_be_bytes(b) as u64;
        let overflow = || {
            Error::file(
                path,
                format!(
                    "byte {pos}: dimensions {:?} x {n} overflow the {MAX_BYTES}-byte limit",
                    dims
                ),
            )
        };
        total = total
            .checked_mul(n)
            .filter(|&t| t <= MAX_BYTES)
            .ok_or_else(overflow)?;
        nonzero = nonzero
            .checked_mul(n.max(1))
            .filter(|&t| t <= MAX_BYTES)
            .ok_or_else(overflow)?;
        dims.push(n as usize);
    }
    let header = 4 + 4 * ndim;
    if let Some(available) = available {
        let found = available.saturating_sub(header as u64);
        if found < total {
            return Err(Error::file(
                path,
                format!("byte {}: truncated: the header promises {total} data bytes for shape {dims:?}, but only {found} follow the header", header as u64 + found),
            ));
        }
    }
    Ok(IdxHeader {
        dtype,
        dims,
        len: header,
        data_bytes: total,
    })
}

/// Reads the data `h` describes from `r` (positioned at the first data byte).
fn parse_data(mut r: impl Read, h: IdxHeader, path: &Path) -> Result<IdxArray> {
    let IdxHeader {
        dtype,
        dims,
        len: header,
        data_bytes: total,
    } = h;
    let mut bytes = Vec::new();
    (&mut r).take(total).read_to_end(&mut bytes).map_err(|e| {
        Error::file(
            path,
            format!("byte {}: {} ({e})", header + bytes.len(), read_problem(&e)),
        )
    })?;
    if (bytes.len() as u64) < total {
        return Err(Error::file(
            path,
            format!("byte {}: truncated: the header promises {total} data bytes for shape {dims:?}, found {}", header + bytes.len(), bytes.len()),
        ));
    }
    let mut extra = [0u8; 1];
    match r.read(&mut extra) {
        Ok(0) => {}
        Ok(_) => {
            return Err(Error::file(
                path,
                format!(
                    "byte {}: trailing data after the {total} bytes of shape {dims:?}",
                    header + total as usize
                ),
            ))
        }
        Err(e) => {
            return Err(Error::file(
                path,
                format!(
                    "byte {}: {} ({e})",
                    header + total as usize,
                    read_problem(&e)
                ),
            ))
        }
    }
    let array = IdxArray { dims, dtype, bytes };
    if matches!(dtype, IdxType::F32 | IdxType::F64) {
        if let Some(i) = (0..array.len()).find(|&i| !array.value(i).is_finite()) {
            return Err(Error::file(
                path,
                format!(
                    "element {i} (byte {}): {} is not finite",
                    header + i * dtype.size(),
                    array.value(i)
                ),
            ));
        }
    }
    Ok(array)
}

/// Parses IDX bytes from `r` (already decompressed); `path` is for messages.
pub fn parse(mut r: impl Read, path: &Path) -> Result<IdxArray> {
    let h = parse_header(&mut r, path, None)?;
    parse_data(r, h, path)
}

/// Opens an IDX file, gunzipping when it starts with the gzip magic, and parses its header
/// (checked against the file's length when it is not gzipped).
fn open(path: &Path) -> Result<(Box<dyn Read>, IdxHeader)> {
    let (f, len) = super::open_file(path, "an IDX file")?;
    let mut file = BufReader::new(f);
    let mut head = [0u8; 2];
    let n = file.read(&mut head).map_err(|e| Error::io(path, e))?;
    if n == 0 {
        return Err(Error::file(path, "byte 0: empty file"));
    }
    let start = std::io::Cursor::new(head[..n].to_vec()).chain(file);
    let (mut r, available): (Box<dyn Read>, _) = if n == 2 && head == [0x1f, 0x8b] {
        (Box::new(MultiGzDecoder::new(start)), None)
    } else {
        (Box::new(start), Some(len))
    };
    let h = parse_header(&mut r, path, available)?;
    Ok((r, h))
}

/// Reads only the header of an IDX file.
pub fn read_header(path: &Path) -> Result<IdxHeader> {
    open(path).map(|(_, h)| h)
}

/// Reads an IDX file, gunzipping when it starts with the gzip magic.
pub fn read(path: &Path) -> Result<IdxArray> {
    let (r, h) = open(path)?;
    parse_data(r, h, path)
}

/// Images (n, ...) as f32 rows, u8 pixels scaled to [0, 1] in the same pass.
pub fn features(a: &IdxArray) -> Features<'static> {
    let n = a.dims[0];
    let cols = a.dims[1..].iter().product::<usize>();
    match a.dtype {
        IdxType::U8 => Features::from(Matrix::<f32>::from_vec(
            n,
            cols,
            a.bytes.iter().map(|&b| b as f32 / 255.0).collect(),
        )),
        IdxType::F64 => Features::from(Matrix::<f64>::from_vec(
            n,
            cols,
            (0..a.len()).map(|i| a.value(i)).collect(),
        )),
        _ => Features::from(Matrix::<f32>::from_vec(
            n,
            cols,
            (0..a.len()).map(|i| a.value(i) as f32).collect(),
        )),
    }
}

/// Labels from a 1-D integer IDX array.
pub fn labels(a: &IdxArray, path: &Path) -> Result<Vec<u32>> {
    if a.dims.len() != 1 && !(a.dims.len() == 2 && a.dims[1] == 1) {
        return Err(Error::file(
            path,
            format!("labels must be 1-dimensional, found shape {:?}", a.dims),
        ));
    }
    (0..a.len())
        .map(|i| {
            let v = a.value(i);
            if v < 0.0 || v.fract() != 0.0 || v > u32::MAX as f64 {
                Err(Error::file(
                    path,
                    format!("label {i}: {v} is not a non-negative integer class index"),
                ))
            } else {
                Ok(v as u32)
            }
        })
        .collect()
}

/// An images file and a labels file with matching counts. Both headers are read and checked
/// (rows, pixels, matching counts) before either file's data is loaded.
pub fn load_pair(images: &Path, labels_path: &Path) -> Result<Split<'static>> {
    let hi = read_header(images)?;
    let hl = read_header(labels_path)?;
    if hi.dims[0] == 0 {
        return Err(Error::file(images, "holds 0 rows"));
    }
    if hi.dims[1..].contains(&0) {
        return Err(Error::file(
            images,
            format!("images of shape {:?} have no pixels", hi.dims),
        ));
    }
    if hl.dims.len() != 1 && !(hl.dims.len() == 2 && hl.dims[1] == 1) {
        return Err(Error::file(
            labels_path,
            format!("labels must be 1-dimensional, found shape {:?}", hl.dims),
        ));
    }
    if hi.dims[0] != hl.dims[0] {
        return Err(Error::file(
            images,
            format!(
                "{} images but {} labels in {}",
                hi.dims[0],
                hl.dims[0],
                labels_path.display()
            ),
        ));
    }
    let img = read(images)?;
    let y = labels(&read(labels_path)?, labels_path)?;
    Ok(Split {
        x: features(&img),
        y: Labels::Classes(y),
    })
}

const FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// The directory holding all four files of `set` (gzipped or not), searching `dirs` in order,
/// each as `DIR/<name>` then `DIR`.
pub fn find_image_set(set: ImageSet, dirs: &[PathBuf]) -> Option<Vec<PathBuf>> {
    for dir in dirs {
        for candidate in [dir.join(set.name()), dir.clone()] {
            let found: Vec<PathBuf> = FILES
                .iter()
                .filter_map(|f| {
                    [candidate.join(format!("{f}.gz")), candidate.join(f)]
                        .into_iter()
                        .find(|p| p.is_file())
                })
                .collect();
            if found.len() == FILES.len() {
                return Some(found);
            }
        }
    }
    None
}

/// Fashion-MNIST or MNIST from the first directory that has them.
pub fn load_image_set(set: ImageSet, dirs: &[PathBuf]) -> Result<(Split<'static>, Split<'static>)> {
    let files = find_image_set(set, dirs).ok_or_else(|| {
        let searched = dirs.iter().map(|d| d.join(set.name()).display().to_string()).collect::<Vec<_>>().join(", ");
        let how = match set {
            ImageSet::FashionMnist => "install Debian's package (apt-get install dataset-fashion-mnist) or put the four IDX files in --data-dir DIR or $INITSCOPE_DATA",
            ImageSet::Mnist => "put the four IDX files (train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]) in --data-dir DIR or $INITSCOPE_DATA",
        };
        Error::Config {
            field: "--data".into(),
            reason: format!("{} not found (searched {searched} and their parents); {how}", set.name()),
        }
    })?;
    let train = load_pair(&files[0], &files[1])?;
    let test = load_pair(&files[2], &files[3])?;
    Ok((train, test))
}
