#![no_main]
//! Fuzz target `threshold_answer`; the body lives in `fuzz/harness/threshold_answer.rs`, which the
//! regression tests replay committed inputs through.

#[path = "../harness/threshold_answer.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // Rejections are the expected outcome for almost every input; only panics are findings.
    let _ = harness::run(data);
});
