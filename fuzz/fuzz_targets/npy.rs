//! The NPY parser must return Ok or a clean error for any bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::path::Path::new("fuzz.npy");
    if let Ok(a) = initscope::data::npy::parse(data, path) {
        if !a.shape.is_empty() {
            let _ = initscope::data::npy::to_features(&a);
        }
        let _ = initscope::data::npy::to_targets(&a);
    }
});
