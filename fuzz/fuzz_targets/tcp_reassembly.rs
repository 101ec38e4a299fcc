//! Fuzz target `tcp_reassembly`: see `dnsentry::fuzzing::tcp_reassembly` (shared with the regression test).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dnsentry::fuzzing::tcp_reassembly(data));
