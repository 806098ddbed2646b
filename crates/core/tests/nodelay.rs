//! Connections to PostgreSQL and MariaDB do not stall on Nagle's algorithm
//! (issue 15): a statement bigger than one TCP segment ends in a partial
//! segment, which without `TCP_NODELAY` waits for the server's delayed ACK of
//! the one before (about 40 ms on Linux) — every large insert batch and every
//! bulk load paid it. sqlx 0.9 does not set the option; `vendor/sqlx-core`
//! does (vendor/README.md). Each round trip here sends 100 kB over loopback
//! and takes about a millisecond; a stall makes the median 40 ms.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use sqlx::Connection;

/// The servers `make services` starts (as `ecap_core::testing` names them).
const POSTGRES_DEFAULT: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const MYSQL_DEFAULT: &str = "mysql://root@127.0.0.1:3306/mysql";
const ROUND_TRIPS: usize = 21;
const PAYLOAD: usize = 100_000;
/// Far above a loopback round trip of 100 kB, far below a delayed ACK.
const STALL: Duration = Duration::from_millis(20);

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Sends the payload `ROUND_TRIPS` times through `round_trip` (which answers
/// the length the server counted) and fails when the median took a stall.
async fn assert_no_stall(mut round_trip: impl AsyncFnMut(&str) -> usize) {
    let text = "x".repeat(PAYLOAD);
    let mut took = Vec::new();
    for _ in 0..ROUND_TRIPS {
        let t = Instant::now();
        let n = round_trip(&text).await;
        took.push(t.elapsed());
        assert_eq!(n, PAYLOAD);
    }
    let m = median(took.clone());
    assert!(m < STALL, "median round trip {m:?} (a stall): {took:?}");
}

#[tokio::test]
async fn postgres_round_trips_do_not_wait_for_delayed_acks() {
    let url = std::env::var("ECAP_TEST_POSTGRES_URL").unwrap_or_else(|_| POSTGRES_DEFAULT.into());
    let mut c = sqlx::PgConnection::connect(&url)
        .await
        .expect("PostgreSQL must answer for this test");
    assert_no_stall(async |text| {
        let n: i32 = sqlx::query_scalar("SELECT length($1)")
            .bind(text)
            .fetch_one(&mut c)
            .await
            .unwrap();
        n as usize
    })
    .await;
}

#[tokio::test]
async fn mariadb_round_trips_do_not_wait_for_delayed_acks() {
    let url = std::env::var("ECAP_TEST_MYSQL_URL").unwrap_or_else(|_| MYSQL_DEFAULT.into());
    let mut c = sqlx::MySqlConnection::connect(&url)
        .await
        .expect("MariaDB must answer for this test");
    assert_no_stall(async |text| {
        let n: i64 = sqlx::query_scalar("SELECT LENGTH(?)")
            .bind(text)
            .fetch_one(&mut c)
            .await
            .unwrap();
        n as usize
    })
    .await;
}
