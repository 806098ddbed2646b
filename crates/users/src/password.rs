//! Password hashing off the async runtime: argon2id (OWASP parameters) for new
//! hashes, bcrypt accepted for accounts imported from the original system.
//!
//! A semaphore bounds how many hashes run at once, so a login flood queues
//! instead of taking every core from the requests that need none.

use std::sync::Arc;

use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version};
use tokio::sync::Semaphore;

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("password hashing task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
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

#[derive(Clone)]
pub struct Hasher {
    permits: Arc<Semaphore>,
    argon: Arc<Argon2<'static>>,
    /// A real hash to verify against when the account does not exist, so timing
    /// does not reveal which e-mail addresses have accounts.
    dummy: Arc<String>,
}

/// OWASP's argon2id recommendation: 19 MiB, 2 passes, 1 lane.
fn owasp_argon() -> Result<Argon2<'static>, HashError> {
    let params = Params::new(19 * 1024, 2, 1, None).map_err(|e| HashError::Hash(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

impl Hasher {
    pub fn new(concurrency: usize) -> Result<Self, HashError> {
        let argon = owasp_argon()?;
        let dummy = argon
            .hash_password(b"not-a-real-password")
            .map_err(|e| HashError::Hash(e.to_string()))?
            .to_string();
        Ok(Self {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            argon: Arc::new(argon),
            dummy: Arc::new(dummy),
        })
    }

    pub async fn hash(&self, password: &str) -> Result<String, HashError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| HashError::Closed)?;
        let argon = self.argon.clone();
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || {
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
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| HashError::Closed)?;
        let known = stored.is_some();
        let stored = stored.unwrap_or(&self.dummy).to_owned();
        let argon = self.argon.clone();
        let password = password.to_owned();
        let verdict = tokio::task::spawn_blocking(move || {
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
