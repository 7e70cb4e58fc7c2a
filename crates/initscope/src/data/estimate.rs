//! What loading a data source will take, estimated before anything is generated or read.
//!
//! Generated sets: rows x (features + targets) x 8 bytes (f64 storage), times the copies that
//! generation, the train/test split and the hold-outs hold at once. Files: their length on disk
//! times how much a byte of that format can grow in memory (a CSV cell of two characters becomes
//! an 8-byte f64; an IDX byte becomes an f32), so a file too big for the machine is refused
//! before it is read.

use std::path::Path;

use super::synthetic::Kind;
use super::{DataSpec, Dataset, Features, Labels, Split};
use crate::error::{Error, Result};
use crate::memory::{bytes, MemoryEstimate};

/// Copies of the features a generator holds at its peak (generated, split, held out).
const GENERATED_COPIES: u64 = 3;
/// Memory per byte of file, by format: CSV text -> f64 cells (plus the parser's record), NPY
/// payload -> the array and its converted features, IDX u8 -> f32.
const CSV_GROWTH: u64 = 5;
const NPY_GROWTH: u64 = 3;
const IDX_GROWTH: u64 = 5;
/// The image sets as Debian ships them: 70 000 images of 28 x 28 bytes.
const IMAGE_SET_BYTES: u64 = 70_000 * (784 + 1);
/// mnist1d's series length.
const MNIST1D_LENGTH: u64 = 40;

impl DataSpec {
    /// Peak bytes that loading this source takes, from its options or its files' sizes.
    pub fn estimate(&self) -> Result<MemoryEstimate> {
        let mut e = MemoryEstimate::default();
        let file_len = |p: &str| -> Result<u64> {
            let path = Path::new(p);
            let meta = std::fs::metadata(path).map_err(|err| Error::io(path, err))?;
            Ok(meta.len())
        };
        let bytes_of = match self {
            DataSpec::Synthetic(s) => {
                let rows = (s.n as u64).saturating_add(s.test as u64);
                let (features, targets, extra) = match &s.kind {
                    Kind::Xor | Kind::Moons | Kind::Circles { .. } | Kind::Spirals { .. } => {
                        (2, 1, 0)
                    }
                    Kind::Blobs { classes, dim, .. } => {
                        (*dim as u64, 1, bytes(*classes as u64, *dim as u64))
                    }
                    Kind::Teacher {
                        dim,
                        hidden,
                        outputs,
                    } => {
                        let teacher = bytes(*dim as u64, *hidden as u64)
                            .saturating_add(bytes(*hidden as u64, *outputs as u64));
                        (*dim as u64, *outputs as u64, teacher)
                    }
                };
                let per_row = features.saturating_add(targets).saturating_mul(8);
                bytes(rows, per_row)
                    .saturating_mul(GENERATED_COPIES)
                    .saturating_add(extra.saturating_mul(8))
            }
            DataSpec::Mnist1d(m) => {
                bytes(m.n as u64, (MNIST1D_LENGTH + 1) * 8).saturating_mul(GENERATED_COPIES + 1)
            }
            DataSpec::Images(_) => IMAGE_SET_BYTES.saturating_mul(IDX_GROWTH),
            DataSpec::Idx { images, labels } => file_len(images)?
                .saturating_add(file_len(labels)?)
                .saturating_mul(IDX_GROWTH),
            DataSpec::Csv { path } => file_len(path)?.saturating_mul(CSV_GROWTH),
            DataSpec::Npy { x, y } => file_len(x)?
                .saturating_add(file_len(y)?)
                .saturating_mul(NPY_GROWTH),
            DataSpec::Npz { path } => npz_payload(Path::new(path))?.saturating_mul(NPY_GROWTH),
            // Already in memory; loading it is refused (the arrays come with the spec).
            DataSpec::Arrays { .. } => 0,
        };
        e.add("data", bytes_of);
        Ok(e)
    }
}

impl Split<'_> {
    /// Bytes held by the features and labels.
    pub fn bytes(&self) -> u64 {
        let (rows, cols) = (self.x.rows() as u64, self.x.cols() as u64);
        let each = match self.x {
            Features::F32(_) => 4,
            Features::F64(_) => 8,
        };
        let labels = match &self.y {
            Labels::Classes(c) => bytes(c.len() as u64, 4),
            Labels::Values(v) => bytes((v.rows() * v.cols()) as u64, 8),
        };
        bytes(rows.saturating_mul(cols), each).saturating_add(labels)
    }
}

impl Dataset<'_> {
    /// Bytes held by every split.
    pub fn bytes(&self) -> u64 {
        self.train.bytes() + self.test.bytes() + self.val.as_ref().map_or(0, Split::bytes)
    }
}

/// The uncompressed size of an `.npz` archive's members (from its central directory, without
/// inflating anything); the file's length when it is not a readable archive (the loader then
/// says why).
fn npz_payload(path: &Path) -> Result<u64> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if meta.is_dir() {
        return Err(Error::file(path, "is a directory, not an .npz file"));
    }
    let Ok(file) = std::fs::File::open(path) else {
        return Ok(meta.len());
    };
    let Ok(mut zip) = zip::ZipArchive::new(std::io::BufReader::new(file)) else {
        return Ok(meta.len());
    };
    let mut total = 0u64;
    for i in 0..zip.len() {
        if let Ok(f) = zip.by_index_raw(i) {
            total = total.saturating_add(f.size());
        }
    }
    Ok(total.max(meta.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn est(spec: &str) -> u64 {
        DataSpec::parse("--data", spec)
            .unwrap()
            .estimate()
            .unwrap()
            .total()
    }

    #[test]
    fn generated_sets_scale_with_their_options() {
        // moons: 256 + 256 rows of 2 features and a label.
        assert_eq!(est("moons"), 512 * 3 * 8 * GENERATED_COPIES);
        assert!(est("moons:n=1000000000") > 32_000_000_000);
        assert!(est("moons:n=10,test=1000000000000") > 1 << 40);
        assert!(est("blobs:classes=100000,dim=100000000") > 1 << 40);
        assert!(est("teacher:dim=1000000000") > 1 << 40);
        assert!(est("mnist1d:n=1000000000") > 1 << 40);
        // Absurd sizes saturate instead of wrapping.
        assert_eq!(est("moons:n=18446744073709551615"), u64::MAX);
    }
}
