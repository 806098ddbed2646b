//! GCRA in Redis: one budget shared by every gateway replica.
//!
//! The whole decision is one Lua script (atomic on the server), timed by Redis's
//! own clock (`TIME`), so replicas whose clocks drift still agree. Per client the
//! script keeps one key, the theoretical arrival time (TAT) in microseconds,
//! expiring when the budget is whole again. The arithmetic is the in-process
//! limiter's: `max` cells of burst, one back every `window / max`.
//!
//! When Redis cannot answer, [`FailPolicy`] decides: let the request through
//! (fail open) or refuse it (fail closed, the default; the original failed open, S11).

use std::{
    net::IpAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use async_trait::async_trait;
use redis::{Script, aio::ConnectionManager};

use crate::rate_limit::{Decision, LimiterError, RateLimiter};

/// Returns `{allowed, remaining, reset_after_us, retry_after_us}`.
const GCRA: &str = r"
local period = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then tat = now end
local new_tat = tat + period
local allow_at = new_tat - period * burst
if allow_at > now then
  return {0, 0, tat - now, allow_at - now}
end
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1)
return {1, math.floor((now - allow_at) / period), new_tat - now, 0}
";

/// GCRA budget of `max` requests per `window` per client, kept in Redis.
pub struct RedisGcraLimiter {
    conn: ConnectionManager,
    script: Script,
    key_prefix: String,
    limit: u32,
    window: Duration,
    period_us: u64,
    timeout: Duration,
}

impl RedisGcraLimiter {
    /// `key_prefix` is the whole prefix of this budget's keys, e.g.
    /// `ecap:ratelimit:general:`; the client address follows it. Connects
    /// lazily: a Redis that is down at start is the fail policy's business, not
    /// a start-up failure.
    pub fn new(
        url: &str,
        key_prefix: impl Into<String>,
        max: u32,
        window: Duration,
    ) -> Result<Arc<Self>, LimiterError> {
        if max == 0 || window.is_zero() {
            return Err(LimiterError("budget and window must be above 0".into()));
        }
        let client = redis::Client::open(url).map_err(|e| LimiterError(e.to_string()))?;
        let timeout = Duration::from_millis(250);
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1));
        let conn = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| LimiterError(e.to_string()))?;
        let period_us = (window.as_micros() / u128::from(max)).max(1);
        Ok(Arc::new(Self {
            conn,
            script: Script::new(GCRA),
            key_prefix: key_prefix.into(),
            limit: max,
            window,
            period_us: u64::try_from(period_us).unwrap_or(u64::MAX),
            timeout: timeout * 2,
        }))
    }
}

#[async_trait]
impl RateLimiter for RedisGcraLimiter {
    async fn check(&self, client: IpAddr) -> Result<Decision, LimiterError> {
        let key = ecap_core::config::redis_key(&self.key_prefix, &client.to_string());
        let mut conn = self.conn.clone();
        let mut invocation = self.script.key(key);
        invocation.arg(self.period_us).arg(self.limit);
        let call = invocation.invoke_async::<(i64, i64, i64, i64)>(&mut conn);
        let (allowed, remaining, reset_us, retry_us) = tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| LimiterError("Redis did not answer in time".into()))?
            .map_err(|e| LimiterError(e.to_string()))?;
        let us = |v: i64| Duration::from_micros(u64::try_from(v).unwrap_or(0));
        Ok(Decision {
            allowed: allowed == 1,
            limit: self.limit,
            remaining: u32::try_from(remaining).unwrap_or(0).min(self.limit),
            reset_after: us(reset_us),
            retry_after: (allowed != 1).then(|| us(retry_us)),
            window: self.window,
        })
    }
}

/// What a limiter that cannot decide does with the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailPolicy {
    /// Let it through (counted, logged).
    Open,
    /// Refuse it with 503 (counted, logged).
    Closed,
}

/// Applies a [`FailPolicy`] to a limiter that may fail (Redis), with a metric
/// (`gateway_rate_limiter_failures_total{policy}`) and a warning at most every
/// ten seconds.
pub struct FailPolicyLimiter {
    inner: Arc<dyn RateLimiter>,
    policy: FailPolicy,
    last_warned: AtomicU64,
}

impl FailPolicyLimiter {
    pub fn new(inner: Arc<dyn RateLimiter>, policy: FailPolicy) -> Arc<Self> {
        Arc::new(Self {
            inner,
            policy,
            last_warned: AtomicU64::new(0),
        })
    }
}

#[async_trait]
impl RateLimiter for FailPolicyLimiter {
    async fn check(&self, client: IpAddr) -> Result<Decision, LimiterError> {
        match self.inner.check(client).await {
            Ok(d) => Ok(d),
            Err(e) => {
                let policy = match self.policy {
                    FailPolicy::Open => "open",
                    FailPolicy::Closed => "closed",
                };
                metrics::counter!("gateway_rate_limiter_failures_total", "policy" => policy)
                    .increment(1);
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                let last = self.last_warned.load(Ordering::Relaxed);
                if now >= last + 10
                    && self
                        .last_warned
                        .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                        .is_ok()
                {
                    tracing::warn!(error = %e, policy, "rate limiter unavailable: failing {policy}");
                }
                match self.policy {
                    FailPolicy::Open => Ok(Decision {
                        allowed: true,
                        limit: 0,
                        remaining: 0,
                        reset_after: Duration::ZERO,
                        retry_after: None,
                        window: Duration::ZERO,
                    }),
                    FailPolicy::Closed => Err(e),
                }
            }
        }
    }
}
