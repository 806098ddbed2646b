//! Response cache for product reads: in-process (moka, TTL + size bound) or
//! Redis when several replicas share it.
//!
//! Freshness comes from a generation number, not from deleting keys: every key
//! carries the generation it was read under, and every catalog write bumps the
//! generation after its commit and before it answers. A read that starts after a
//! write has answered therefore looks under the new generation and cannot see
//! an older body, and a slow read that straddles a write stores its body under
//! the old generation, where nobody looks any more.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use ecap_core::config::Secret;
use redis::aio::ConnectionManager;

/// A cached response body and its entity tag.
#[derive(Debug)]
pub struct CachedBody {
    pub etag: String,
    pub body: Bytes,
}

impl CachedBody {
    pub fn new(body: Bytes) -> Self {
        Self {
            etag: etag_of(&body),
            body,
        }
    }
}

/// A strong entity tag from the body's bytes.
pub fn etag_of(body: &[u8]) -> String {
    format!("\"{:016x}\"", xxhash_rust::xxh3::xxh3_64(body))
}

/// The generation a read started under; a body is stored under it.
#[derive(Debug, Clone, Copy)]
pub struct Ticket(Option<u64>);

enum Store {
    Off,
    Local {
        generation: AtomicU64,
        entries: moka::future::Cache<String, Arc<CachedBody>>,
    },
    Redis {
        conn: ConnectionManager,
        generation_key: String,
        ttl: Duration,
    },
}

/// Cheap to clone; shared by the handlers of one process.
#[derive(Clone)]
pub struct ResponseCache {
    store: Arc<Store>,
}

impl std::fmt::Debug for ResponseCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.store.as_ref() {
            Store::Off => "ResponseCache(off)",
            Store::Local { .. } => "ResponseCache(local)",
            Store::Redis { .. } => "ResponseCache(redis)",
        })
    }
}

/// Reads the generation and the body under it in one round trip. A `nil` in a
/// Lua table ends it, so a miss comes back as a one-element array.
const GET_SCRIPT: &str = r"
local g = redis.call('GET', KEYS[1]) or '0'
return {g, redis.call('GET', KEYS[1] .. ':' .. g .. ':' .. ARGV[1])}";

/// Stores only while the generation is still the one the read started under.
const SET_SCRIPT: &str = r"
if (redis.call('GET', KEYS[1]) or '0') == ARGV[1] then
  redis.call('SET', KEYS[1] .. ':' .. ARGV[1] .. ':' .. ARGV[2], ARGV[3], 'PX', ARGV[4])
  return 1
end
return 0";

#[derive(Debug, thiserror::Error)]
#[error("cache: {0}")]
pub struct CacheError(String);

impl ResponseCache {
    /// No caching: every read goes to the database.
    pub fn off() -> Self {
        Self {
            store: Arc::new(Store::Off),
        }
    }

    /// In-process: at most `max_entries` bodies, each for at most `ttl`.
    pub fn local(ttl: Duration, max_entries: u64) -> Self {
        Self {
            store: Arc::new(Store::Local {
                generation: AtomicU64::new(0),
                entries: moka::future::Cache::builder()
                    .max_capacity(max_entries)
                    .time_to_live(ttl)
                    .build(),
            }),
        }
    }

    /// Shared through Redis; keys start with `prefix` (one namespace per deployment).
    pub async fn redis(url: &Secret, prefix: &str, ttl: Duration) -> Result<Self, CacheError> {
        let client = redis::Client::open(url.expose()).map_err(|e| CacheError(e.to_string()))?;
        let conn = ConnectionManager::new(client)
            .await
            .map_err(|e| CacheError(e.to_string()))?;
        Ok(Self {
            store: Arc::new(Store::Redis {
                conn,
                generation_key: ecap_core::config::redis_key(prefix, "catalog:gen"),
                ttl,
            }),
        })
    }

    pub fn is_on(&self) -> bool {
        !matches!(self.store.as_ref(), Store::Off)
    }

    /// The body cached under `key` for the current generation, and the ticket
    /// to store a freshly built one with. A cache that fails is a miss.
    pub async fn get(&self, key: &str) -> (Option<Arc<CachedBody>>, Ticket) {
        match self.store.as_ref() {
            Store::Off => (None, Ticket(None)),
            Store::Local {
                generation,
                entries,
            } => {
                let g = generation.load(Ordering::Acquire);
                (entries.get(&format!("{g}:{key}")).await, Ticket(Some(g)))
            }
            Store::Redis {
                conn,
                generation_key,
                ..
            } => {
                let mut conn = conn.clone();
                let got: Result<Vec<Vec<u8>>, _> = redis::Script::new(GET_SCRIPT)
                    .key(generation_key)
                    .arg(key)
                    .invoke_async(&mut conn)
                    .await;
                match got {
                    Ok(parts) => {
                        let g = parts
                            .first()
                            .and_then(|g| std::str::from_utf8(g).ok())
                            .and_then(|g| g.parse().ok());
                        let body = parts.get(1).and_then(|raw| decode(raw));
                        (body.map(Arc::new), Ticket(g))
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "product cache unavailable; reading the database");
                        (None, Ticket(None))
                    }
                }
            }
        }
    }

    /// The body cached under `key`, or the one `build` makes, stored for the
    /// next reader. In-process, concurrent misses of one key wait for a single
    /// build (no stampede of identical queries on a cold or just-invalidated cache).
    pub async fn get_or_build<F, Fut, E>(
        &self,
        key: &str,
        build: F,
    ) -> Result<Arc<CachedBody>, Arc<E>>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Bytes, E>>,
        E: Send + Sync + 'static,
    {
        match self.store.as_ref() {
            Store::Off => build()
                .await
                .map(|b| Arc::new(CachedBody::new(b)))
                .map_err(Arc::new),
            Store::Local {
                generation,
                entries,
            } => {
                let g = generation.load(Ordering::Acquire);
                entries
                    .try_get_with(format!("{g}:{key}"), async move {
                        build().await.map(|b| Arc::new(CachedBody::new(b)))
                    })
                    .await
            }
            Store::Redis { .. } => {
                let (hit, ticket) = self.get(key).await;
                if let Some(hit) = hit {
                    return Ok(hit);
                }
                let body = build().await.map_err(Arc::new)?;
                Ok(self.put(ticket, key, body).await)
            }
        }
    }

    /// Stores `body` under `key` if no write happened since `ticket` was taken;
    /// returns it with its entity tag either way.
    pub async fn put(&self, ticket: Ticket, key: &str, body: Bytes) -> Arc<CachedBody> {
        let cached = Arc::new(CachedBody::new(body));
        let Ticket(Some(g)) = ticket else {
            return cached;
        };
        match self.store.as_ref() {
            Store::Off => {}
            Store::Local {
                generation,
                entries,
            } => {
                if generation.load(Ordering::Acquire) == g {
                    entries.insert(format!("{g}:{key}"), cached.clone()).await;
                }
            }
            Store::Redis {
                conn,
                generation_key,
                ttl,
            } => {
                let mut conn = conn.clone();
                let stored: Result<i64, _> = redis::Script::new(SET_SCRIPT)
                    .key(generation_key)
                    .arg(g)
                    .arg(key)
                    .arg(encode(&cached))
                    .arg(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1))
                    .invoke_async(&mut conn)
                    .await;
                if let Err(e) = stored {
                    tracing::warn!(error = %e, "product cache unavailable; not stored");
                }
            }
        }
        cached
    }

    /// Makes every cached body unreachable. Called after each catalog write
    /// commits, before the write answers.
    pub async fn invalidate(&self) -> Result<(), CacheError> {
        match self.store.as_ref() {
            Store::Off => Ok(()),
            Store::Local {
                generation,
                entries,
            } => {
                generation.fetch_add(1, Ordering::AcqRel);
                entries.invalidate_all();
                Ok(())
            }
            Store::Redis {
                conn,
                generation_key,
                ..
            } => {
                let mut conn = conn.clone();
                redis::cmd("INCR")
                    .arg(generation_key)
                    .query_async::<i64>(&mut conn)
                    .await
                    .map(|_| ())
                    .map_err(|e| CacheError(e.to_string()))
            }
        }
    }
}

/// `etag \n body` as one Redis value.
fn encode(c: &CachedBody) -> Vec<u8> {
    let mut out = Vec::with_capacity(c.etag.len() + 1 + c.body.len());
    out.extend_from_slice(c.etag.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(&c.body);
    out
}

fn decode(raw: &[u8]) -> Option<CachedBody> {
    let split = raw.iter().position(|b| *b == b'\n')?;
    let etag = std::str::from_utf8(&raw[..split]).ok()?.to_owned();
    Some(CachedBody {
        etag,
        body: Bytes::copy_from_slice(&raw[split + 1..]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn story(cache: &ResponseCache) {
        let key = format!("k{}", rand::random::<u32>());
        let (hit, t) = cache.get(&key).await;
        assert!(hit.is_none());
        cache.put(t, &key, Bytes::from_static(b"v1")).await;
        let (hit, _) = cache.get(&key).await;
        assert_eq!(hit.unwrap().body.as_ref(), b"v1");

        // A read that straddles a write never lands where later reads look.
        let (_, stale) = cache.get(&format!("{key}x")).await;
        cache.invalidate().await.unwrap();
        cache
            .put(stale, &format!("{key}x"), Bytes::from_static(b"old"))
            .await;
        assert!(cache.get(&format!("{key}x")).await.0.is_none());
        assert!(cache.get(&key).await.0.is_none());
    }

    #[tokio::test]
    async fn concurrent_misses_build_once() {
        let cache = ResponseCache::local(Duration::from_secs(60), 100);
        let builds = Arc::new(AtomicU64::new(0));
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (cache, builds) = (cache.clone(), builds.clone());
                tokio::spawn(async move {
                    cache
                        .get_or_build("k", || async move {
                            builds.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            Ok::<_, std::io::Error>(Bytes::from_static(b"body"))
                        })
                        .await
                        .unwrap()
                })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap().body.as_ref(), b"body");
        }
        assert_eq!(builds.load(Ordering::SeqCst), 1);
        cache.invalidate().await.unwrap();
        let err = cache
            .get_or_build("k", || async { Err::<Bytes, _>("db down") })
            .await
            .unwrap_err();
        assert_eq!(*err, "db down");
    }

    #[tokio::test]
    async fn local_story() {
        story(&ResponseCache::local(Duration::from_secs(60), 100)).await;
    }

    #[tokio::test]
    async fn redis_story() {
        let url = std::env::var("ECAP_TEST_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        let prefix = format!("ecap-test-{}:", uuid::Uuid::new_v4().simple());
        let cache = ResponseCache::redis(&Secret::new(url), &prefix, Duration::from_secs(60))
            .await
            .expect("Redis must answer for this test");
        story(&cache).await;
    }

    #[test]
    fn etags_follow_the_bytes() {
        assert_eq!(etag_of(b"a"), etag_of(b"a"));
        assert_ne!(etag_of(b"a"), etag_of(b"b"));
        let c = CachedBody::new(Bytes::from_static(b"x\ny"));
        let d = decode(&encode(&c)).unwrap();
        assert_eq!(d.etag, c.etag);
        assert_eq!(d.body, c.body);
    }
}
