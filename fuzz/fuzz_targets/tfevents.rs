#![no_main]
// See guildd::fuzzing::tfevents for what this exercises.
libfuzzer_sys::fuzz_target!(|data: &[u8]| guildd::fuzzing::tfevents(data));
