//! Password hashing off the async runtime: argon2id (OWASP parameters) for new
//! hashes, bcrypt accepted for accounts imported from the original system.
//!
//! Hashes run on a small pool of dedicated threads at a lower CPU priority
//! (nice ≈ 10), behind a bounded queue: a login flood queues (and past the
//! queue, gets 503) instead of taking the cores from requests that hash nothing,
//! and the pool's fixed threads keep the 19 MiB argon2 buffers from piling up
//! in per-thread allocator caches.

use std::sync::{
    Arc, Mutex,
    mpsc::{Receiver, SyncSender, TrySendError, sync_channel},
};

use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version};
use tokio::sync::oneshot;

/// Hashes waiting at most; beyond it a request is answered 503 at once.
const QUEUE: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("password hashing is busy; try again shortly")]
    Busy,
    #[error("password hashing is shut down")]
    Closed,
}

/// What a stored hash said about a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Mismatch,
    Match,
    /// Matches, but the hash is an old kind and should be replaced.
    MatchNeedsRehash,
}

type Job = Box<dyn FnOnce(&Argon2<'static>) + Send>;

#[derive(Clone)]
pub struct Hasher {
    jobs: SyncSender<Job>,
}

/// A real argon2id hash (OWASP parameters, of a password nobody knows) to verify
/// against when the account does not exist, so timing does not reveal which
/// e-mail addresses have accounts.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$ZWNhcC1kdW1teS1zYWx0$Xm2r0y1vCz7mBqXh8U0x1Yx3cQ8k0sS3z4b6N1q2R5E";

/// OWASP's argon2id recommendation: 19 MiB, 2 passes, 1 lane.
fn owasp_argon() -> Result<Argon2<'static>, HashError> {
    let params = Params::new(19 * 1024, 2, 1, None).map_err(|e| HashError::Hash(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

fn worker(jobs: Arc<Mutex<Receiver<Job>>>, argon: Argon2<'static>) {
    // SCHED_IDLE: the hashing thread runs on CPU time nothing else wants, so
    // request threads (and the rest of the machine) always come first. Failing
    // to set it (a restricted sandbox) only costs latency.
    use thread_priority::{
        NormalThreadSchedulePolicy, ThreadPriority, ThreadSchedulePolicy,
        set_thread_priority_and_policy, thread_native_id,
    };
    if let Err(e) = set_thread_priority_and_policy(
        thread_native_id(),
        ThreadPriority::Min,
        ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle),
    ) {
        tracing::debug!(error = ?e, "could not lower the hashing thread's priority");
    }
    loop {
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        match job {
            Ok(job) => job(&argon),
            Err(_) => return,
        }
    }
}

impl Hasher {
    /// Starts `threads` hashing threads (at least one).
    pub fn new(threads: usize) -> Result<Self, HashError> {
        Self::with_queue(threads, QUEUE)
    }

    /// As [`Hasher::new`], with at most `queue` hashes waiting.
    pub fn with_queue(threads: usize, queue: usize) -> Result<Self, HashError> {
        let argon = owasp_argon()?;
        let (tx, rx) = sync_channel::<Job>(queue);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            let argon = argon.clone();
            std::thread::Builder::new()
                .name(format!("ecap-hash-{i}"))
                .spawn(move || worker(rx, argon))
                .map_err(|e| HashError::Hash(format!("cannot start a hashing thread: {e}")))?;
        }
        Ok(Self { jobs: tx })
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Argon2<'static>) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |argon| {
            let _ = tx.send(work(argon));
        });
        self.jobs.try_send(job).map_err(|e| match e {
            TrySendError::Full(_) => HashError::Busy,
            TrySendError::Disconnected(_) => HashError::Closed,
        })?;
        rx.await.map_err(|_| HashError::Closed)
    }

    pub async fn hash(&self, password: &str) -> Result<String, HashError> {
        let password = password.to_owned();
        self.run(move |argon| {
            argon
                .hash_password(password.as_bytes())
                .map(|h| h.to_string())
                .map_err(|e| HashError::Hash(e.to_string()))
        })
        .await?
    }

    /// Checks a password against a stored hash (argon2 or bcrypt); `None` burns
    /// the same time against a dummy hash and answers `Mismatch`.
    pub async fn verify(&self, password: &str, stored: Option<&str>) -> Result<Verdict, HashError> {
        let known = stored.is_some();
        let stored = stored.unwrap_or(DUMMY_HASH).to_owned();
        let password = password.to_owned();
        let verdict = self
            .run(move |argon| {
                if is_bcrypt(&stored) {
                    return match bcrypt::verify(&password, &stored) {
                        Ok(true) => Verdict::MatchNeedsRehash,
                        _ => Verdict::Mismatch,
                    };
                }
                let Ok(parsed) = PasswordHash::new(&stored) else {
                    return Verdict::Mismatch;
                };
                if argon.verify_password(password.as_bytes(), &parsed).is_err() {
                    return Verdict::Mismatch;
                }
                let current = parsed.algorithm.as_str() == "argon2id"
                    && Params::try_from(&parsed.params)
                        .is_ok_and(|p| p.m_cost() >= 19 * 1024 && p.t_cost() >= 2);
                if current {
                    Verdict::Match
                } else {
                    Verdict::MatchNeedsRehash
                }
            })
            .await?;
        Ok(if known { verdict } else { Verdict::Mismatch })
    }
}

fn is_bcrypt(hash: &str) -> bool {
    ["$2a$", "$2b$", "$2y$", "$2x$"]
        .iter()
        .any(|p| hash.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn argon2_round_trip() {
        let h = Hasher::new(1).unwrap();
        let hash = h.hash("Secret1!").await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert_eq!(
            h.verify("Secret1!", Some(&hash)).await.unwrap(),
            Verdict::Match
        );
        assert_eq!(
            h.verify("Secret2!", Some(&hash)).await.unwrap(),
            Verdict::Mismatch
        );
        assert_eq!(h.verify("Secret1!", None).await.unwrap(), Verdict::Mismatch);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_answers_busy_instead_of_waiting() {
        let h = Hasher::with_queue(1, 1).unwrap();
        let attempts = (0..6).map(|_| {
            let h = h.clone();
            tokio::spawn(async move { h.hash("Secret1!").await })
        });
        let results: Vec<_> = futures_join(attempts).await;
        assert!(results.iter().any(Result::is_ok));
        assert!(results.iter().any(|r| matches!(r, Err(HashError::Busy))));
    }

    async fn futures_join<T>(handles: impl Iterator<Item = tokio::task::JoinHandle<T>>) -> Vec<T> {
        let mut out = Vec::new();
        for h in handles.collect::<Vec<_>>() {
            out.push(h.await.unwrap());
        }
        out
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn hashing_threads_run_at_a_lower_priority() {
        let _h = Hasher::new(1).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(100));
        let (nice, policy) = std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|t| t.ok())
            .find_map(|t| {
                let comm = std::fs::read_to_string(t.path().join("comm")).ok()?;
                (comm.trim() == "ecap-hash-0").then(|| {
                    let stat = std::fs::read_to_string(t.path().join("stat")).unwrap();
                    // Fields after the ")" of the name start at stat(5)'s field 3:
                    // nice is field 19, the scheduling policy field 41 (5 = SCHED_IDLE).
                    let f: Vec<i64> = stat
                        .rsplit_once(')')
                        .unwrap()
                        .1
                        .split_whitespace()
                        .map(|x| x.parse().unwrap_or(-1))
                        .collect();
                    (f[16], f[38])
                })
            })
            .expect("the hashing thread exists");
        assert!(policy == 5 || nice >= 5, "policy {policy}, nice {nice}");
    }

    #[tokio::test]
    async fn the_dummy_hash_is_a_real_owasp_hash() {
        let parsed = PasswordHash::new(DUMMY_HASH).unwrap();
        let p = Params::try_from(&parsed.params).unwrap();
        assert_eq!((p.m_cost(), p.t_cost()), (19 * 1024, 2));
        let h = Hasher::new(1).unwrap();
        assert_eq!(h.verify("anything", None).await.unwrap(), Verdict::Mismatch);
    }

    #[tokio::test]
    async fn bcrypt_hashes_from_the_original_still_work() {
        let h = Hasher::new(1).unwrap();
        let old = bcrypt::hash("Secret1!", 10).unwrap();
        assert_eq!(
            h.verify("Secret1!", Some(&old)).await.unwrap(),
            Verdict::MatchNeedsRehash
        );
        assert_eq!(
            h.verify("nope", Some(&old)).await.unwrap(),
            Verdict::Mismatch
        );
    }
}
