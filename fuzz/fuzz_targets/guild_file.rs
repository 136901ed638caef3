#![no_main]
// See guildd::fuzzing::guild_file for what this exercises.
libfuzzer_sys::fuzz_target!(|data: &[u8]| guildd::fuzzing::guild_file(data));
