//! Fuzz target `dns_view`: see `dnsentry::fuzzing::dns_view` (shared with the regression test).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dnsentry::fuzzing::dns_view(data));
