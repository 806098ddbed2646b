//! The API gateway: the split shape's reverse proxy ([`proxy`]) and the edge
//! policies the all-in-one process shares: per-client rate limiting (GCRA,
//! in-process or in Redis for every replica) with a stricter budget for login
//! and registration, and client identification that believes
//! `X-Forwarded-For` only from trusted proxies.

pub mod client_ip;
pub mod proxy;
pub mod rate_limit;
pub mod redis_limit;

pub use client_ip::client_ip;
pub use proxy::{Gateway, GatewaySettings, Service};
pub use rate_limit::{Decision, GcraLimiter, LimiterError, Limits, RateLimiter, rate_limit};
pub use redis_limit::{FailPolicy, FailPolicyLimiter, RedisGcraLimiter};
