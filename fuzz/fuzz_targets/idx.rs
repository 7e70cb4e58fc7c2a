//! The IDX parser must return Ok or a clean error for any bytes: no panic, no hang, no huge
//! allocation from a lying header. The header parser, given the stream's true length, must
//! agree with the full parser.
#![no_main]
use libfuzzer_sys::fuzz_target;

use initscope::data::idx;

fuzz_target!(|data: &[u8]| {
    let path = std::path::Path::new("fuzz.idx");
    // Header only, with the length unknown and known (an uncompressed file's).
    let unchecked = idx::parse_header(data, path, None);
    let checked = idx::parse_header(data, path, Some(data.len() as u64));
    if let Ok(h) = &checked {
        // A header checked against the length never promises more than the bytes present.
        assert!(h.len as u64 + h.data_bytes <= data.len() as u64);
        assert_eq!(unchecked.as_ref().ok(), Some(h));
    }
    if let Ok(a) = idx::parse(data, path) {
        // A full parse implies the header also passes the length check, with the same shape.
        let h = checked
            .as_ref()
            .expect("parse succeeded but the checked header failed");
        assert_eq!(h.dims, a.dims);
        assert_eq!(h.dtype, a.dtype);
        assert_eq!(h.data_bytes, a.bytes.len() as u64);
        assert_eq!(h.len as u64 + h.data_bytes, data.len() as u64);
        if !a.dims.is_empty() {
            let _ = idx::features(&a);
        }
        let _ = idx::labels(&a, path);
    }
});
