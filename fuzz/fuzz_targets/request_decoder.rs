//! Fuzz target: one request frame (the bytes after the size prefix) through the broker's whole
//! pure path, `wire::inspect::inspect_request` (header, version check, guard, body decoders,
//! Produce record-set checks). Any panic, abort, leak-sized allocation or hang is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = wire::inspect::inspect_request(bytes::Bytes::copy_from_slice(data));
});
