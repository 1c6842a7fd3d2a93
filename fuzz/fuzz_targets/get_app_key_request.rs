#![no_main]
//! Fuzz target `get_app_key_request`; the body lives in `fuzz/harness/get_app_key_request.rs`, which the regression tests
//! replay committed inputs through.

#[path = "../harness/get_app_key_request.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // Rejections are the expected outcome for almost every input; only panics are findings.
    let _ = harness::run(data);
});
