//! The API gateway's edge policies, shared by the all-in-one process: per-client
//! rate limiting (GCRA) with a stricter budget for login and registration, and
//! client identification that believes `X-Forwarded-For` only from trusted proxies.

pub mod client_ip;
pub mod rate_limit;

pub use client_ip::client_ip;
pub use rate_limit::{Decision, GcraLimiter, Limits, RateLimiter, rate_limit};
