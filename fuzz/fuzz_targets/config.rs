//! Fuzz target `config`: see `dnsentry::fuzzing::config` (shared with the regression test).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dnsentry::fuzzing::config(data));
