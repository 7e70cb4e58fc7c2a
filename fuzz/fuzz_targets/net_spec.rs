//! The `--net` spec parser must return Ok or a one-line error for any text, and whatever it
//! accepts must print a canonical spec that parses back to the same network and prints the same.
#![no_main]
use libfuzzer_sys::fuzz_target;

use initscope::nn::spec::NetSpec;

fuzz_target!(|input: &[u8]| {
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    match NetSpec::parse(text) {
        Ok(net) => {
            let canonical = net.canonical();
            let again = NetSpec::parse(&canonical)
                .unwrap_or_else(|e| panic!("canonical {canonical:?} of {text:?} refused: {e}"));
            assert_eq!(again, net, "{text:?} -> {canonical:?}");
            assert_eq!(again.canonical(), canonical);
        }
        Err(e) => assert!(!e.to_string().contains('\n'), "a multi-line error: {e}"),
    }
});
