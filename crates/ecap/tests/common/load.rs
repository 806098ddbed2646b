//! Mixed traffic for fault tests: clients placing orders, moving their own
//! orders through the lifecycle and reading products and orders, every answer
//! recorded, and the checks that no acknowledged write was lost.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use serde_json::{Value, json};

/// The order lifecycle the load walks each of its orders through.
pub const CHAIN: [&str; 5] = [
    "pending",
    "processing",
    "shipped",
    "out_for_delivery",
    "delivered",
];

/// One answered (or failed) request of the load.
#[derive(Debug, Clone)]
pub struct Sample {
    pub at: Instant,
    pub took: Duration,
    /// 0: no HTTP answer (connection error or client timeout).
    pub status: u16,
    pub kind: &'static str,
}

/// An order the load placed: the last status the server acknowledged and the
/// one asked for when the answer did not come.
#[derive(Debug, Clone)]
pub struct Placed {
    pub acked: &'static str,
    pub maybe: Option<&'static str>,
}

#[derive(Default)]
pub struct Ledger {
    pub samples: Vec<Sample>,
    pub orders: HashMap<i64, Placed>,
    /// Error answers not in the shared shape, or 5xx other than 503/507.
    pub violations: Vec<String>,
}

pub struct Shop {
    pub admin: String,
    pub customers: Vec<String>,
    pub products: Vec<String>,
}

/// Mixed traffic from `workers` clients until `stop`: orders placed, each
/// worker's own orders moved along [`CHAIN`] (every fifth one cancelled), the
/// product list and single orders read. Every answer is recorded.
pub fn load(
    base: &str,
    shop: &Shop,
    workers: usize,
    stop: Arc<AtomicBool>,
    ledger: Arc<Mutex<Ledger>>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    (0..workers)
        .map(|n| {
            let (client, base) = (client.clone(), base.to_owned());
            let token = shop.customers[n % shop.customers.len()].clone();
            let admin = shop.admin.clone();
            let products = shop.products.clone();
            let (stop, ledger) = (stop.clone(), ledger.clone());
            tokio::spawn(async move {
                let mut mine: Vec<i64> = Vec::new();
                let mut k = 0usize;
                while !stop.load(Ordering::SeqCst) {
                    k += 1;
                    let at = Instant::now();
                    let (kind, req, change) = match k % 4 {
                        0 | 1 => {
                            let items: Vec<Value> = (0..1 + k % 2)
                                .map(|l| json!({"productId": products[(n + k + l) % products.len()], "quantity": 1 + l}))
                                .collect();
                            let req = client
                                .post(format!("{base}/api/orders"))
                                .bearer_auth(&token)
                                .json(&json!({"items": items, "paymentMethod": "cod",
                                    "shippingAddress": "1 Fault Lane"}));
                            ("place", req, None)
                        }
                        2 => {
                            let req = match mine.last() {
                                Some(id) if k % 8 == 2 => client
                                    .get(format!("{base}/api/orders/{id}"))
                                    .bearer_auth(&token),
                                _ => client.get(format!("{base}/api/products?limit=5")),
                            };
                            ("read", req, None)
                        }
                        _ => {
                            let next = {
                                let l = ledger.lock().unwrap();
                                mine.iter().rev().find_map(|id| {
                                    let now = l.orders[id].acked;
                                    let i = CHAIN.iter().position(|s| *s == now)?;
                                    let to = if i == 0 && id % 5 == 0 {
                                        "cancelled"
                                    } else {
                                        CHAIN.get(i + 1)?
                                    };
                                    Some((*id, to))
                                })
                            };
                            let Some((id, to)) = next else { continue };
                            ledger.lock().unwrap().orders.get_mut(&id).unwrap().maybe = Some(to);
                            let req = client
                                .put(format!("{base}/api/orders/{id}/status"))
                                .bearer_auth(&admin)
                                .json(&json!({"status": to}));
                            ("status", req, Some((id, to)))
                        }
                    };
                    let (status, body, retry_after) = match req.send().await {
                        Ok(r) => {
                            let status = r.status().as_u16();
                            let retry = r.headers().contains_key("retry-after");
                            (status, r.json::<Value>().await.unwrap_or(Value::Null), retry)
                        }
                        Err(_) => (0, Value::Null, false),
                    };
                    let mut l = ledger.lock().unwrap();
                    l.samples.push(Sample {
                        at,
                        took: at.elapsed(),
                        status,
                        kind,
                    });
                    match status {
                        201 if kind == "place" => {
                            let id = body["data"]["order"]["id"].as_i64().unwrap();
                            l.orders.insert(
                                id,
                                Placed {
                                    acked: "pending",
                                    maybe: None,
                                },
                            );
                            mine.push(id);
                        }
                        200 => {
                            if let Some((id, to)) = change {
                                let o = l.orders.get_mut(&id).unwrap();
                                o.acked = to;
                                o.maybe = None;
                            }
                        }
                        503 | 507 => {
                            let code = if status == 503 {
                                "unavailable"
                            } else {
                                "insufficient_storage"
                            };
                            if body["success"] != false
                                || body["code"] != code
                                || !body["errors"].is_array()
                                || !retry_after
                            {
                                l.violations.push(format!("{kind} {status}: {body}"));
                            }
                        }
                        0 => l.violations.push(format!("{kind}: no answer after {:?}", at.elapsed())),
                        s if s >= 500 => l.violations.push(format!("{kind} {s}: {body}")),
                        _ => {}
                    }
                }
            })
        })
        .collect()
}

/// Every acknowledged order is there, in its acknowledged status (or the one
/// whose answer was lost).
pub async fn every_acknowledged_order_is_there(base: &str, admin: &str, ledger: &Ledger) {
    let client = reqwest::Client::new();
    for (id, placed) in &ledger.orders {
        let r = client
            .get(format!("{base}/api/orders/{id}"))
            .bearer_auth(admin)
            .send()
            .await
            .unwrap();
        let code = r.status();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        assert_eq!(code, 200, "acknowledged order {id}: {body}");
        let status = body["data"]["order"]["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            status == placed.acked || Some(status.as_str()) == placed.maybe,
            "order {id}: status {status}, acknowledged {placed:?}"
        );
    }
}

/// How long after `since` the load's first order was acknowledged; panics
/// with what the load saw when none is within 15 s.
pub async fn first_order_after(ledger: &Mutex<Ledger>, since: Instant) -> Duration {
    loop {
        {
            let l = ledger.lock().unwrap();
            if let Some(s) = l
                .samples
                .iter()
                .find(|s| s.at >= since && s.kind == "place" && s.status == 201)
            {
                return s.at + s.took - since;
            }
            if since.elapsed() > Duration::from_secs(15) {
                let after: Vec<Sample> = l
                    .samples
                    .iter()
                    .filter(|s| s.at >= since)
                    .cloned()
                    .collect();
                panic!(
                    "orders did not resume: {}; {:?}",
                    summary(&after),
                    l.violations.iter().rev().take(5).collect::<Vec<_>>()
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn summary(samples: &[Sample]) -> String {
    let mut by: HashMap<(&str, u16), usize> = HashMap::new();
    for s in samples {
        *by.entry((s.kind, s.status)).or_default() += 1;
    }
    let mut v: Vec<_> = by.into_iter().collect();
    v.sort();
    format!("{v:?}")
}
