//! The IDX parser must return Ok or a clean error for any bytes: no panic, no hang, no huge
//! allocation from a lying header.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::path::Path::new("fuzz.idx");
    if let Ok(a) = initscope::data::idx::parse(data, path) {
        if !a.dims.is_empty() && a.dims[0] > 0 {
            let _ = initscope::data::idx::features(&a);
        }
        let _ = initscope::data::idx::labels(&a, path);
    }
});
