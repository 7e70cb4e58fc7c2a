//! The NPY parser must return Ok or a clean error for any bytes: no panic, no hang, no huge
//! allocation from a lying header. The header parser, given the stream's true length, must
//! agree with the full parser.
#![no_main]
use libfuzzer_sys::fuzz_target;

use initscope::data::npy;

fuzz_target!(|data: &[u8]| {
    let path = std::path::Path::new("fuzz.npy");
    // Header only, with the length unknown and known (as a file's or a zip entry's).
    let unchecked = npy::parse_header(data, path, None);
    let checked = npy::parse_header(data, path, Some(data.len() as u64));
    if let Ok(h) = &checked {
        // A header checked against the length never promises more than the bytes present.
        assert!(h.data_start as u64 + h.data_bytes <= data.len() as u64);
        assert_eq!(unchecked.as_ref().ok(), Some(h));
        let _ = h.matrix_shape();
    }
    let parsed = npy::parse(data, path);
    if let Ok(a) = &parsed {
        // A full parse implies the header also passes the length check, with the same shape.
        let h = checked
            .as_ref()
            .expect("parse succeeded but the checked header failed");
        assert_eq!(h.shape, a.shape);
        assert_eq!(h.data_bytes, a.bytes.len() as u64);
        assert_eq!(h.matrix_shape(), a.matrix_shape());
        if !a.shape.is_empty() {
            let _ = npy::to_features(a);
        }
        let _ = npy::to_targets(a);
    }
});
