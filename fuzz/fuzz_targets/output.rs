#![no_main]
// See guildd::fuzzing::output for what this exercises.
libfuzzer_sys::fuzz_target!(|data: &[u8]| guildd::fuzzing::output(data));
