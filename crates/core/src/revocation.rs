//! Token revocation: one token by its `jti` (logout, refresh), or every token of a
//! user older than a generation (password, role change, deletion).
//!
//! In-process for all-in-one (the users service reloads it from its database on
//! start, so a restart forgets nothing); Redis when `REDIS_URL` is set, so every
//! replica of every service sees the same list.

use async_trait::async_trait;
use dashmap::DashMap;
use redis::AsyncCommands;

use crate::auth::Claims;

#[derive(Debug, thiserror::Error)]
#[error("revocation store: {0}")]
pub struct RevocationError(pub String);

#[async_trait]
pub trait Revocations: Send + Sync + 'static {
    /// Refuses the token with this `jti` until it would have expired anyway (`exp`, seconds).
    async fn revoke_token(&self, jti: &str, exp: u64) -> Result<(), RevocationError>;
    /// Refuses every token of `user_id` whose generation is below `min_version`.
    async fn revoke_user(&self, user_id: i64, min_version: i64) -> Result<(), RevocationError>;
    async fn is_revoked(&self, claims: &Claims) -> Result<bool, RevocationError>;
    /// Whether the store answers (`/ready`); in-process stores always do.
    async fn ping(&self) -> Result<(), RevocationError> {
        Ok(())
    }
}

/// `/ready`'s view of a revocation store.
pub struct RevocationCheck(pub std::sync::Arc<dyn Revocations>);

#[async_trait]
impl crate::http::Dependency for RevocationCheck {
    async fn is_up(&self) -> bool {
        self.0.ping().await.is_ok()
    }
}

/// Revocations kept in this process.
#[derive(Debug, Default)]
pub struct MemoryRevocations {
    tokens: DashMap<String, u64>,
    users: DashMap<i64, i64>,
}

impl MemoryRevocations {
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets token entries that have expired on their own.
    pub fn purge_expired(&self) {
        let now = jsonwebtoken::get_current_timestamp();
        self.tokens.retain(|_, exp| *exp > now);
    }
}

#[async_trait]
impl Revocations for MemoryRevocations {
    async fn revoke_token(&self, jti: &str, exp: u64) -> Result<(), RevocationError> {
        self.tokens.insert(jti.to_owned(), exp);
        if self.tokens.len().is_multiple_of(1024) {
            self.purge_expired();
        }
        Ok(())
    }

    async fn revoke_user(&self, user_id: i64, min_version: i64) -> Result<(), RevocationError> {
        let mut entry = self.users.entry(user_id).or_insert(min_version);
        *entry = (*entry).max(min_version);
        Ok(())
    }

    async fn is_revoked(&self, claims: &Claims) -> Result<bool, RevocationError> {
        if self
            .users
            .get(&claims.user_id)
            .is_some_and(|min| claims.ver < *min)
        {
            return Ok(true);
        }
        Ok(self.tokens.contains_key(&claims.jti))
    }
}

/// Revocations shared through Redis.
#[derive(Clone)]
pub struct RedisRevocations {
    conn: redis::aio::ConnectionManager,
    prefix: String,
}

impl RedisRevocations {
    /// Keys live under `prefix` (`REDIS_KEY_PREFIX`), so deployments sharing one
    /// Redis never revoke each other's users.
    pub async fn connect(
        url: &crate::config::Secret,
        prefix: &str,
    ) -> Result<Self, RevocationError> {
        let client =
            redis::Client::open(url.expose()).map_err(|e| RevocationError(e.to_string()))?;
        let conn = redis::aio::ConnectionManager::new(client)
            .await
            .map_err(|e| RevocationError(e.to_string()))?;
        Ok(Self {
            conn,
            prefix: prefix.to_owned(),
        })
    }

    fn token_key(&self, jti: &str) -> String {
        crate::config::redis_key(&self.prefix, &format!("revoked:jti:{jti}"))
    }
    fn user_key(&self, user_id: i64) -> String {
        crate::config::redis_key(&self.prefix, &format!("revoked:user:{user_id}"))
    }
}

/// Keeps the larger of the stored and the given generation.
const MAX_SCRIPT: &str = r"
local cur = tonumber(redis.call('GET', KEYS[1]) or '-1')
if tonumber(ARGV[1]) > cur then redis.call('SET', KEYS[1], ARGV[1]) end
return 1";

#[async_trait]
impl Revocations for RedisRevocations {
    async fn revoke_token(&self, jti: &str, exp: u64) -> Result<(), RevocationError> {
        let ttl = exp
            .saturating_sub(jsonwebtoken::get_current_timestamp())
            .max(1);
        let mut conn = self.conn.clone();
        conn.set_ex::<_, _, ()>(self.token_key(jti), 1, ttl)
            .await
            .map_err(|e| RevocationError(e.to_string()))
    }

    async fn revoke_user(&self, user_id: i64, min_version: i64) -> Result<(), RevocationError> {
        let mut conn = self.conn.clone();
        redis::Script::new(MAX_SCRIPT)
            .key(self.user_key(user_id))
            .arg(min_version)
            .invoke_async::<i64>(&mut conn)
            .await
            .map(|_| ())
            .map_err(|e| RevocationError(e.to_string()))
    }

    async fn is_revoked(&self, claims: &Claims) -> Result<bool, RevocationError> {
        let mut conn = self.conn.clone();
        let (token, min): (Option<i64>, Option<i64>) = redis::pipe()
            .get(self.token_key(&claims.jti))
            .get(self.user_key(claims.user_id))
            .query_async(&mut conn)
            .await
            .map_err(|e| RevocationError(e.to_string()))?;
        Ok(token.is_some() || min.is_some_and(|m| claims.ver < m))
    }

    async fn ping(&self) -> Result<(), RevocationError> {
        let mut conn = self.conn.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map(|_| ())
            .map_err(|e| RevocationError(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;

    fn claims(user_id: i64, ver: i64, jti: &str) -> Claims {
        Claims {
            user_id,
            email: "a@b.co".into(),
            role: Role::Customer,
            iat: 0,
            exp: u64::MAX / 2,
            jti: jti.into(),
            ver,
        }
    }

    async fn story(r: &dyn Revocations, user: i64) {
        let a = claims(user, 0, &format!("a{user}"));
        let b = claims(user, 1, &format!("b{user}"));
        assert!(!r.is_revoked(&a).await.unwrap());
        r.revoke_token(&a.jti, jsonwebtoken::get_current_timestamp() + 60)
            .await
            .unwrap();
        assert!(r.is_revoked(&a).await.unwrap());
        assert!(!r.is_revoked(&b).await.unwrap());
        r.revoke_user(user, 2).await.unwrap();
        r.revoke_user(user, 1).await.unwrap(); // never lowers the bar
        assert!(r.is_revoked(&b).await.unwrap());
        assert!(!r.is_revoked(&claims(user, 2, "c")).await.unwrap());
    }

    #[tokio::test]
    async fn memory_story() {
        story(&MemoryRevocations::new(), 1).await;
    }

    #[tokio::test]
    async fn redis_story() {
        let url = std::env::var("ECAP_TEST_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        let prefix = format!("test-{}:", rand::random::<u64>());
        let r = RedisRevocations::connect(&crate::config::Secret::new(url), &prefix)
            .await
            .expect("Redis must answer for this test (set ECAP_TEST_REDIS_URL)");
        let user = i64::from(rand::random::<u32>()) + 1_000_000;
        story(&r, user).await;
    }

    /// Two shops on one Redis with two prefixes: a logout or a role change in one
    /// never refuses the other's tokens, even for the same user id and jti.
    #[tokio::test]
    async fn prefixes_keep_deployments_apart() {
        let url = crate::config::Secret::new(
            std::env::var("ECAP_TEST_REDIS_URL")
                .unwrap_or_else(|_| "redis://127.0.0.1:6379".into()),
        );
        let run = rand::random::<u64>();
        let a = RedisRevocations::connect(&url, &format!("shop-a-{run}:"))
            .await
            .expect("Redis must answer for this test (set ECAP_TEST_REDIS_URL)");
        let b = RedisRevocations::connect(&url, &format!("shop-b-{run}:"))
            .await
            .expect("Redis must answer for this test");
        let user = 42;
        let token = claims(user, 0, &format!("same-jti-{run}"));
        a.revoke_token(&token.jti, jsonwebtoken::get_current_timestamp() + 60)
            .await
            .unwrap();
        a.revoke_user(user, 5).await.unwrap();
        assert!(a.is_revoked(&token).await.unwrap());
        assert!(!b.is_revoked(&token).await.unwrap());
        assert!(!b.is_revoked(&claims(user, 1, "other")).await.unwrap());
        // The keys written are the prefixed ones, and only those.
        let mut conn = a.conn.clone();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("*{run}*"))
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(keys.len(), 2, "{keys:?}");
        assert!(
            keys.iter()
                .all(|k| k.starts_with(&format!("shop-a-{run}:revoked:"))),
            "{keys:?}"
        );
        let _: () = redis::cmd("DEL")
            .arg(&keys)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
}
