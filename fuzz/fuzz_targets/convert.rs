#![no_main]

include!("../sources_harness.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    fuzz_convert(data);
});
