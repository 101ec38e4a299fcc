//! Fuzz target `reputation_list`: see `dnsentry::fuzzing::reputation_list` (shared with the
//! regression test).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dnsentry::fuzzing::reputation_list(data));
