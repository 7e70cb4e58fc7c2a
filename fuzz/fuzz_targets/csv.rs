//! The CSV parser must return Ok or a clean error for any bytes and any label column, and the
//! streaming parser must accept or refuse the same files however the stream is cut into reads
//! (which error is met first may depend on how far ahead the stream was read: a NUL byte is
//! refused where the reads find it).
#![no_main]
use std::io::Read;

use libfuzzer_sys::fuzz_target;

use initscope::data::csv;

/// Hands out `data` in reads of at most `chunk` bytes (exercises the NUL / line-length guard
/// and the CSV reader across read boundaries).
struct Chunked<'a> {
    data: &'a [u8],
    chunk: usize,
}

impl Read for Chunked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.chunk.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fuzz_target!(|input: &[u8]| {
    let path = std::path::Path::new("fuzz.csv");
    // The first byte picks the label column and the read size for the streaming parse; the
    // rest is the file. (One label per input: building the CSV reader dominates each run under
    // coverage instrumentation, so fewer parses per input means more inputs per second.)
    let Some((&pick, data)) = input.split_first() else {
        return;
    };
    let label = [None, Some("0"), Some("label"), Some("1")][(pick & 3) as usize];
    let chunk = (pick >> 2) as usize % 17 + 1;
    let whole = csv::parse(data, path, label);
    let streamed = csv::parse_reader(Chunked { data, chunk }, path, label);
    match (&whole, &streamed) {
        (Ok(a), Ok(b)) => assert_eq!(a, b),
        (Err(_), Err(_)) => {}
        _ => panic!("parse and parse_reader disagree: {whole:?} vs {streamed:?}"),
    }
    if let Ok((x, y)) = &whole {
        assert_eq!(x.rows(), y.rows());
        assert_eq!(y.cols(), 1);
    }
});
