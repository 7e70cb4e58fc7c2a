//! The CSV parser must return Ok or a clean error for any bytes and any label column.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::path::Path::new("fuzz.csv");
    let _ = initscope::data::csv::parse(data, path, None);
    let _ = initscope::data::csv::parse(data, path, Some("0"));
    let _ = initscope::data::csv::parse(data, path, Some("label"));
});
