//! Per-client rate limiting with GCRA (governor).
//!
//! A budget of `max` requests per `window` is a GCRA quota with a burst of
//! `max` cells, one cell replenished every `window / max`: a client can spend the
//! whole budget at once, then gets it back evenly over the window. Both numbers
//! come from `RATE_LIMIT_MAX_REQUESTS` / `RATE_LIMIT_WINDOW_MS` (the original read
//! only the first). Login and registration have their own, stricter budget.
//!
//! [`RateLimiter`] is the seam for the Redis-backed limiter shared by replicas
//! ([`crate::redis_limit`]).

use std::{
    net::IpAddr,
    num::NonZeroU32,
    sync::{Arc, Weak},
    time::Duration,
};

use async_trait::async_trait;
use axum::{
    extract::{Request, State},
    http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};
use ecap_core::error::{ApiError, ErrorCode};
use governor::{
    Quota, RateLimiter as Governor,
    clock::{Clock, DefaultClock},
    middleware::StateInformationMiddleware,
    state::keyed::DefaultKeyedStateStore,
};
use ipnet::IpNet;

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Until the whole budget is available again.
    pub reset_after: Duration,
    /// Until the next request would be allowed (denied decisions only).
    pub retry_after: Option<Duration>,
    pub window: Duration,
}

#[derive(Debug, thiserror::Error)]
#[error("rate limiter: {0}")]
pub struct LimiterError(pub String);

/// A budget of requests per client address.
#[async_trait]
pub trait RateLimiter: Send + Sync + 'static {
    async fn check(&self, client: IpAddr) -> Result<Decision, LimiterError>;
}

type Keyed =
    Governor<IpAddr, DefaultKeyedStateStore<IpAddr>, DefaultClock, StateInformationMiddleware>;

/// In-process GCRA limiter.
pub struct GcraLimiter {
    inner: Keyed,
    limit: u32,
    window: Duration,
    period: Duration,
}

impl GcraLimiter {
    /// `max` requests per `window`. Spawns a sweeper that forgets idle clients
    /// while the limiter lives (needs a Tokio runtime).
    pub fn new(max: u32, window: Duration) -> Result<Arc<Self>, LimiterError> {
        let burst =
            NonZeroU32::new(max).ok_or_else(|| LimiterError("budget must be above 0".into()))?;
        let period = (window / max).max(Duration::from_nanos(1));
        let quota = Quota::with_period(period)
            .ok_or_else(|| LimiterError("window must be above 0".into()))?
            .allow_burst(burst);
        let limiter = Arc::new(Self {
            inner: Governor::keyed(quota).with_middleware::<StateInformationMiddleware>(),
            limit: max,
            window,
            period,
        });
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let weak: Weak<Self> = Arc::downgrade(&limiter);
            let every = window.clamp(Duration::from_secs(1), Duration::from_secs(60));
            rt.spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    let Some(l) = weak.upgrade() else { break };
                    l.inner.retain_recent();
                    l.inner.shrink_to_fit();
                }
            });
        }
        Ok(limiter)
    }

    pub fn limit(&self) -> u32 {
        self.limit
    }

    fn decide(&self, client: IpAddr) -> Decision {
        match self.inner.check_key(&client) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                Decision {
                    allowed: true,
                    limit: self.limit,
                    remaining,
                    reset_after: self.period * (self.limit - remaining.min(self.limit)),
                    retry_after: None,
                    window: self.window,
                }
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.inner.clock().now());
                Decision {
                    allowed: false,
                    limit: self.limit,
                    remaining: 0,
                    reset_after: self.window,
                    retry_after: Some(wait),
                    window: self.window,
                }
            }
        }
    }
}

#[async_trait]
impl RateLimiter for GcraLimiter {
    async fn check(&self, client: IpAddr) -> Result<Decision, LimiterError> {
        Ok(self.decide(client))
    }
}

/// The budgets the edge applies, and whose `X-Forwarded-For` to believe.
pub struct Limits {
    pub general: Arc<dyn RateLimiter>,
    pub auth: Arc<dyn RateLimiter>,
    pub trusted_proxies: Vec<IpNet>,
    /// Whether requests that arrive from a trusted proxy spend the general
    /// budget here. An edge (all-in-one, the gateway) counts them; a service of
    /// the split shape does not, since the gateway in front already did — but
    /// it still counts everyone who reaches its port directly, and keeps the
    /// login/register budget for all.
    pub trusted_proxies_limit: bool,
}

/// Operational endpoints that probes and scrapers hit; never limited.
fn exempt(method: &Method, path: &str) -> bool {
    method == Method::OPTIONS || matches!(path, "/health" | "/ready" | "/metrics")
}

fn is_auth_attempt(method: &Method, path: &str) -> bool {
    method == Method::POST
        && matches!(
            path.trim_end_matches('/'),
            "/api/auth/login" | "/api/auth/register"
        )
}

/// Axum middleware: `from_fn_with_state(limits, rate_limit)`.
pub async fn rate_limit(State(limits): State<Arc<Limits>>, req: Request, next: Next) -> Response {
    if exempt(req.method(), req.uri().path()) {
        return next.run(req).await;
    }
    let ip: IpAddr = crate::client_ip(&req, &limits.trusted_proxies);
    if is_auth_attempt(req.method(), req.uri().path()) {
        match limits.auth.check(ip).await {
            Ok(d) if !d.allowed => return too_many(&d),
            Ok(_) => {}
            Err(e) => return unavailable(&e),
        }
    }
    if !limits.trusted_proxies_limit
        && crate::client_ip::peer_is_trusted(&req, &limits.trusted_proxies)
    {
        return next.run(req).await;
    }
    let decision = match limits.general.check(ip).await {
        Ok(d) => d,
        // Failing closed: an unreachable limiter must not switch limits off (S11).
        // A limiter configured to fail open never gets here (`FailPolicyLimiter`).
        Err(e) => return unavailable(&e),
    };
    if !decision.allowed {
        return too_many(&decision);
    }
    let mut res = next.run(req).await;
    headers(res.headers_mut(), &decision);
    res
}

fn unavailable(e: &LimiterError) -> Response {
    tracing::error!(error = %e, "rate limiter unavailable: request refused");
    let mut err = ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Unavailable,
        "Service temporarily unavailable. Please try again later.",
    );
    err.retry_after_secs = Some(1);
    err.into_response()
}

fn too_many(d: &Decision) -> Response {
    let retry = d
        .retry_after
        .map_or(1, |w| w.as_secs() + u64::from(w.subsec_nanos() > 0))
        .max(1);
    let mut err = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::RateLimited,
        "Too many requests. Please try again later.",
    );
    err.retry_after_secs = Some(retry);
    let mut res = err.into_response();
    headers(res.headers_mut(), d);
    res
}

fn headers(h: &mut HeaderMap, d: &Decision) {
    // A limiter that failed open decided nothing: no figures to show.
    if d.limit == 0 {
        return;
    }
    let secs = |x: Duration| x.as_secs() + u64::from(x.subsec_nanos() > 0);
    let mut set = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(HeaderName::from_static(name), v);
        }
    };
    set("x-ratelimit-limit", d.limit.to_string());
    set("x-ratelimit-remaining", d.remaining.to_string());
    set("ratelimit-limit", d.limit.to_string());
    set("ratelimit-remaining", d.remaining.to_string());
    set("ratelimit-reset", secs(d.reset_after).to_string());
    set(
        "ratelimit-policy",
        format!("{};w={}", d.limit, secs(d.window)),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    #[tokio::test]
    async fn budget_then_refusal_then_refill() {
        let l = GcraLimiter::new(3, Duration::from_millis(600)).unwrap();
        for left in [2, 1, 0] {
            let d = l.check(A).await.unwrap();
            assert!(d.allowed);
            assert_eq!(d.remaining, left);
        }
        let d = l.check(A).await.unwrap();
        assert!(!d.allowed);
        let wait = d.retry_after.unwrap();
        assert!(wait <= Duration::from_millis(200), "{wait:?}");
        // Another client has its own budget.
        assert!(l.check(B).await.unwrap().allowed);
        // One cell comes back every window / max.
        tokio::time::sleep(wait + Duration::from_millis(20)).await;
        assert!(l.check(A).await.unwrap().allowed);
    }

    #[test]
    fn the_window_shapes_the_refill() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let l = GcraLimiter::new(2, Duration::from_secs(3600)).unwrap();
            l.check(A).await.unwrap();
            l.check(A).await.unwrap();
            let d = l.check(A).await.unwrap();
            // With an hour-long window a cell takes half an hour to return.
            let wait = d.retry_after.unwrap();
            assert!(
                wait > Duration::from_secs(1700) && wait <= Duration::from_secs(1800),
                "{wait:?}"
            );
        });
    }
}
