//! A fixed pool of threads for evidence verification (CPU-bound ECDSA, and RSA on a chain cache
//! miss). A fixed pool rather than `spawn_blocking`: under load tokio would grow its blocking
//! pool to one thread per in-flight request, each with its own allocator arena, and the node's
//! memory would grow with the concurrency instead of staying flat.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send>;

pub struct VerifyPool {
    jobs: mpsc::Sender<Job>,
}

impl VerifyPool {
    /// `threads` workers (at least one), named `snpkms-verify-N`.
    pub fn new(threads: usize) -> std::io::Result<VerifyPool> {
        let (jobs, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("snpkms-verify-{i}"))
                .spawn(move || loop {
                    // The lock is held only to take the next job, not to run it.
                    let job = match rx.lock() {
                        Ok(r) => r.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(),
                        Err(_) => return, // the pool was dropped
                    }
                })?;
        }
        Ok(VerifyPool { jobs })
    }

    /// Runs `f` on the pool and waits for its result without blocking the async executor.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PoolClosed> {
        let (tx, rx) = oneshot::channel();
        self.jobs
            .send(Box::new(move || {
                let _ = tx.send(f());
            }))
            .map_err(|_| PoolClosed)?;
        rx.await.map_err(|_| PoolClosed)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the verification pool is not running")]
pub struct PoolClosed;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_jobs_on_a_fixed_set_of_threads() {
        let pool = VerifyPool::new(2).unwrap();
        let mut names = std::collections::BTreeSet::new();
        for i in 0..20u32 {
            let (n, name) = pool
                .run(move || {
                    (
                        i * 2,
                        std::thread::current().name().unwrap_or("").to_string(),
                    )
                })
                .await
                .unwrap();
            assert_eq!(n, i * 2);
            names.insert(name);
        }
        assert!(names.iter().all(|n| n.starts_with("snpkms-verify-")));
        assert!(names.len() <= 2);
    }
}
