#![no_main]
//! Fuzz target `report_verify`; the body lives in `fuzz/harness/report_verify.rs`, which the regression tests
//! replay committed inputs through.

#[path = "../harness/report_verify.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // Rejections are the expected outcome for almost every input; only panics are findings.
    let _ = harness::run(data);
});
