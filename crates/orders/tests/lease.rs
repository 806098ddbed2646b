//! Leases of the orders service's background jobs, on SQLite, PostgreSQL and
//! MariaDB: one holder at a time, renewals keep it, an expired lease is taken
//! over, a released one at once, and a kept lease moves to the other replica
//! within its lifetime when the holder stops renewing (a dead replica).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use ecap_core::{
    db::{Backend, Db},
    lease::{self, Lease},
    on_every_backend,
    testing::TestDb,
};

async fn open(backend: Backend) -> (TestDb, Db) {
    let t = TestDb::create(backend).await;
    let db = Db::connect(&t.url, 4).await.unwrap();
    assert_eq!(lease::migrate(&db).await.unwrap(), 1);
    assert_eq!(lease::migrate(&db).await.unwrap(), 0, "idempotent");
    (t, db)
}

async fn one_holder_renewal_expiry_and_release(backend: Backend) {
    let (_t, db) = open(backend).await;
    let ttl = Duration::from_millis(800);
    let a = Lease::new(db.clone(), "job", "replica-a", ttl);
    let b = Lease::new(db.clone(), "job", "replica-b", ttl);
    let other = Lease::new(db.clone(), "other-job", "replica-b", ttl);
    assert!(a.try_acquire().await.unwrap(), "a free lease is taken");
    assert!(!b.try_acquire().await.unwrap(), "a held lease is refused");
    assert!(other.try_acquire().await.unwrap(), "leases are per name");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(a.try_acquire().await.unwrap(), "the holder renews");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !b.try_acquire().await.unwrap(),
        "a renewed lease is still held past the first expiry"
    );
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert!(
        b.try_acquire().await.unwrap(),
        "an expired lease is taken over"
    );
    assert!(!a.try_acquire().await.unwrap(), "the old holder lost it");
    assert_eq!(b.holder().await.unwrap().unwrap().0, "replica-b");
    a.release().await.unwrap();
    assert!(
        !a.try_acquire().await.unwrap(),
        "only the holder can release"
    );
    b.release().await.unwrap();
    assert!(
        a.try_acquire().await.unwrap(),
        "a released lease is free at once"
    );
    db.close().await;
}

async fn a_dead_holder_hands_over_within_its_lifetime(backend: Backend) {
    let (_t, db) = open(backend).await;
    let ttl = Duration::from_millis(900);
    let (a, a_task) = Lease::new(db.clone(), "relay", "replica-a", ttl).keep();
    let started = Instant::now();
    while !a.held() {
        assert!(started.elapsed() < Duration::from_secs(3), "a takes it");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (b, b_task) = Lease::new(db.clone(), "relay", "replica-b", ttl).keep();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(a.held() && !b.held(), "renewals keep it with a");
    // Replica a dies: it stops renewing (and stops believing it holds the lease).
    a_task.abort();
    let died = Instant::now();
    while !b.held() {
        assert!(
            died.elapsed() < ttl + Duration::from_secs(1),
            "b takes over within the lease's lifetime and a tick"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!a.held(), "a's handle expired before b took over");
    b_task.abort();
    db.close().await;
}

on_every_backend!(
    one_holder_renewal_expiry_and_release,
    a_dead_holder_hands_over_within_its_lifetime
);
