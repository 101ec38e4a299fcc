//! Fuzz target `capture_reader`: see `dnsentry::fuzzing::capture_reader` (shared with the regression test).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dnsentry::fuzzing::capture_reader(data));
