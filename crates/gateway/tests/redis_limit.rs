//! The Redis GCRA limiter on the real Redis (`ECAP_TEST_REDIS_URL`, default
//! 127.0.0.1:6379), each test under its own random key prefix.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    net::{IpAddr, Ipv4Addr},
    sync::Arc,
    time::{Duration, Instant},
};

use ecap_gateway::{FailPolicy, FailPolicyLimiter, RateLimiter, RedisGcraLimiter};

const A: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10));
const B: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 11));

fn url() -> String {
    std::env::var("ECAP_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

fn prefix() -> String {
    format!(
        "ecap-test-{:016x}:ratelimit:general:",
        rand::random::<u64>()
    )
}

async fn drop_keys(prefix: &str) -> usize {
    let client = redis::Client::open(url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    if !keys.is_empty() {
        let _: () = redis::cmd("DEL")
            .arg(&keys)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    keys.len()
}

#[tokio::test]
async fn two_limiters_spend_one_budget() {
    let prefix = prefix();
    let window = Duration::from_secs(3);
    let one = RedisGcraLimiter::new(&url(), prefix.clone(), 3, window).unwrap();
    let two = RedisGcraLimiter::new(&url(), prefix.clone(), 3, window).unwrap();
    let mut left = Vec::new();
    for l in [&one, &two, &one] {
        let d = l.check(A).await.unwrap();
        assert!(d.allowed);
        assert_eq!(d.limit, 3);
        left.push(d.remaining);
    }
    assert_eq!(left, [2, 1, 0]);
    let d = two.check(A).await.unwrap();
    assert!(!d.allowed, "the budget spent on one is spent on the other");
    // One cell comes back every window / max = 1 s.
    let wait = d.retry_after.unwrap();
    assert!(
        wait > Duration::from_millis(800) && wait <= Duration::from_secs(1),
        "{wait:?}"
    );
    assert!(d.reset_after > Duration::from_secs(2) && d.reset_after <= window);
    // Another client has its own budget.
    assert_eq!(one.check(B).await.unwrap().remaining, 2);
    tokio::time::sleep(wait + Duration::from_millis(50)).await;
    assert!(one.check(A).await.unwrap().allowed);
    assert!(!two.check(A).await.unwrap().allowed);
    // One key per client, gone once its budget is whole again: B's (one cell
    // spent, one second ago) has expired, A's is still there.
    assert_eq!(drop_keys(&prefix).await, 1);
}

#[tokio::test]
async fn an_unreachable_redis_fails_as_configured() {
    let down = "redis://127.0.0.1:1";
    let raw = RedisGcraLimiter::new(down, prefix(), 5, Duration::from_secs(60)).unwrap();
    let started = Instant::now();
    assert!(raw.check(A).await.is_err());
    let closed = FailPolicyLimiter::new(raw.clone(), FailPolicy::Closed);
    assert!(closed.check(A).await.is_err());
    let open = FailPolicyLimiter::new(raw as Arc<dyn RateLimiter>, FailPolicy::Open);
    let d = open.check(A).await.unwrap();
    assert!(d.allowed);
    assert_eq!(d.limit, 0, "no figures from a limiter that decided nothing");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "a dead Redis is noticed quickly: {:?}",
        started.elapsed()
    );
}
