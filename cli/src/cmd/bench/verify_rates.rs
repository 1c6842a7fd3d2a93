//! The bare ECDSA P-384 verify rate of each library on this machine: the ceiling a node's
//! GetAppKey rate is compared with. Same key, same 0x2A0-byte message (a report's signed
//! part), every core busy, each library in the form it verifies fastest (aws-lc-rs with its
//! key parsed once, as the node keeps it in its cached verified VCEK; ring has no parsed form).

use p384::ecdsa::signature::{Signer, Verifier};
use serde::Serialize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// A library that verifies P-384 signatures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Library {
    AwsLcRs,
    Ring,
    RustCrypto,
}

impl Library {
    pub const ALL: [Library; 3] = [Library::AwsLcRs, Library::Ring, Library::RustCrypto];
    /// What the node verifies report signatures with (snpkms_verifier::verify_report_signature).
    pub const NODE: Library = Library::AwsLcRs;

    pub fn name(self) -> &'static str {
        match self {
            Library::AwsLcRs => "aws-lc-rs",
            Library::Ring => "ring",
            Library::RustCrypto => "RustCrypto p384",
        }
    }
}

/// One library's measured rate.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Rate {
    pub library: Library,
    /// Verifications per second on all the threads.
    pub per_sec: f64,
    /// Mean time of one verification on one core, ms.
    pub ms_each: f64,
}

/// A signed message and its key in every library's form.
struct Fixture {
    message: Vec<u8>,
    fixed_sig: [u8; 96],
    rustcrypto_sig: p384::ecdsa::Signature,
    rustcrypto_key: p384::ecdsa::VerifyingKey,
    point: Vec<u8>,
    aws_key: aws_lc_rs::signature::ParsedPublicKey,
}

impl Fixture {
    fn new() -> Fixture {
        let key = p384::ecdsa::SigningKey::from_slice(&[7u8; 48]).expect("fixed key");
        let message = vec![0x5au8; 0x2A0];
        let sig: p384::ecdsa::Signature = key.sign(&message);
        let fixed_sig: [u8; 96] = sig.to_bytes()[..].try_into().expect("96 bytes");
        let point = key
            .verifying_key()
            .to_encoded_point(false)
            .as_bytes()
            .to_vec();
        let aws_key = aws_lc_rs::signature::ParsedPublicKey::new(
            &aws_lc_rs::signature::ECDSA_P384_SHA384_FIXED,
            &point,
        )
        .expect("a valid P-384 point");
        Fixture {
            message,
            fixed_sig,
            rustcrypto_sig: sig,
            rustcrypto_key: *key.verifying_key(),
            point,
            aws_key,
        }
    }

    /// One verification; panics if it fails (the fixture is valid, so a failure is a bug).
    fn verify(&self, library: Library) {
        let ok = match library {
            Library::AwsLcRs => self
                .aws_key
                .verify_sig(&self.message, &self.fixed_sig)
                .is_ok(),
            Library::Ring => ring::signature::UnparsedPublicKey::new(
                &ring::signature::ECDSA_P384_SHA384_FIXED,
                &self.point,
            )
            .verify(&self.message, &self.fixed_sig)
            .is_ok(),
            Library::RustCrypto => self
                .rustcrypto_key
                .verify(&self.message, &self.rustcrypto_sig)
                .is_ok(),
        };
        assert!(ok, "{} refused a valid signature", library.name());
    }
}

/// `library`'s verifications per second on `threads` threads for `secs` seconds.
pub fn measure(library: Library, threads: usize, secs: f64) -> Rate {
    let fixture = Arc::new(Fixture::new());
    let count = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (count, fixture) = (count.clone(), fixture.clone());
            std::thread::spawn(move || {
                while start.elapsed().as_secs_f64() < secs {
                    fixture.verify(library);
                    count.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for h in handles {
        let _ = h.join();
    }
    let n = count.load(Ordering::Relaxed).max(1) as f64;
    let elapsed = start.elapsed().as_secs_f64();
    Rate {
        library,
        per_sec: n / elapsed,
        ms_each: elapsed * threads as f64 / n * 1000.0,
    }
}

/// Every library, `secs` seconds each.
pub fn measure_all(threads: usize, secs: f64) -> Vec<Rate> {
    Library::ALL
        .into_iter()
        .map(|library| measure(library, threads, secs))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_library_verifies_the_fixture_and_refuses_a_changed_message() {
        let mut f = Fixture::new();
        for library in Library::ALL {
            f.verify(library);
        }
        f.message[0] ^= 1;
        for library in Library::ALL {
            let refused =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f.verify(library)));
            assert!(
                refused.is_err(),
                "{} accepted a changed message",
                library.name()
            );
        }
    }
}

/// The rates measured before and after the load, averaged per library (a shared VM's speed
/// drifts by a few percent within a run).
#[derive(Debug, Clone, Serialize)]
pub struct VerifyRates {
    pub before_load: Vec<Rate>,
    pub after_load: Vec<Rate>,
    pub mean: Vec<Rate>,
}

impl VerifyRates {
    pub fn new(before: &[Rate], after: &[Rate]) -> VerifyRates {
        let mean = (before.iter().zip(after))
            .map(|(b, a)| Rate {
                library: b.library,
                per_sec: (b.per_sec + a.per_sec) / 2.0,
                ms_each: (b.ms_each + a.ms_each) / 2.0,
            })
            .collect();
        VerifyRates {
            before_load: before.to_vec(),
            after_load: after.to_vec(),
            mean,
        }
    }

    /// `library`'s mean rate.
    pub fn of(&self, library: Library) -> Rate {
        *self
            .mean
            .iter()
            .find(|r| r.library == library)
            .expect("every library is measured")
    }

    /// The fastest library's mean rate.
    pub fn fastest(&self) -> Rate {
        *self
            .mean
            .iter()
            .max_by(|a, b| a.per_sec.total_cmp(&b.per_sec))
            .expect("every library is measured")
    }
}
