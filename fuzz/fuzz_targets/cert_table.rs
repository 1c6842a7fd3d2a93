#![no_main]
//! Fuzz target `cert_table`; the body lives in `fuzz/harness/cert_table.rs`, which the regression tests
//! replay committed inputs through.

#[path = "../harness/cert_table.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // Rejections are the expected outcome for almost every input; only panics are findings.
    let _ = harness::run(data);
});
