//! Fuzz target `decode`: see `dnsentry::fuzzing::decode` (shared with the regression test).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dnsentry::fuzzing::decode(data));
