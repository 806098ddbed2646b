//! HTTP adapters of the ports, for the split shape: each service reaches the
//! others' `/internal/...` routes (see `internal.rs`) with the service
//! credential, a per-attempt timeout, round-robin over the configured
//! replicas, and bounded retries with backoff — for idempotent calls on
//! timeouts and 502/503/504, for every call when the connection was refused
//! (the request never left). A dependency that stays down surfaces as a
//! [`PortError::unavailable`], which requests answer with 503.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use ecap_core::{
    config::Secret,
    events::{OrderEvent, OrderSource},
    ports::{
        AddressBook, CustomerOrders, CustomerStats, Inventory, InventoryError, NewReview,
        PortError, ProductDirectory, ProductReviews, ProductSummary, PurchaseCheck, ReserveLine,
        ReservedLine, ReviewError, ShippingAddress,
    },
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::internal::TOKEN_HEADER;

/// Attempts of an idempotent call (the first one included).
const ATTEMPTS: u32 = 3;

/// Why a call did not give an answer.
#[derive(Debug)]
pub enum CallError {
    /// No replica answered (refused, timed out, 502/503/504 after retries).
    Unavailable(String),
    /// The service answered with this status and body.
    Status(StatusCode, Value),
}

impl CallError {
    fn port(self, service: &str) -> PortError {
        match self {
            CallError::Unavailable(m) => PortError::unavailable(format!("the {service} ({m})")),
            CallError::Status(s, body) => PortError(format!(
                "the {service} answered {s}: {}",
                body.get("message").and_then(Value::as_str).unwrap_or("")
            )),
        }
    }
}

/// A client of one service (all its replicas).
#[derive(Debug)]
pub struct ServiceClient {
    /// "catalog service", "orders service"…
    name: &'static str,
    bases: Vec<String>,
    next: AtomicUsize,
    token: Secret,
    http: reqwest::Client,
}

impl ServiceClient {
    pub fn new(
        name: &'static str,
        bases: Vec<String>,
        token: Secret,
        timeout: Duration,
    ) -> anyhow::Result<Arc<Self>> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(1).min(timeout))
            .timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .build()?;
        Ok(Arc::new(Self {
            name,
            bases,
            next: AtomicUsize::new(0),
            token,
            http,
        }))
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    fn base(&self) -> &str {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.bases.len().max(1);
        self.bases.get(i).map_or("http://127.0.0.1", String::as_str)
    }

    /// Whether some replica answers `/health` (for `/ready`).
    pub async fn healthy(&self) -> bool {
        for _ in 0..self.bases.len().max(1) {
            let url = format!("{}/health", self.base());
            if let Ok(r) = self
                .http
                .get(&url)
                .timeout(Duration::from_secs(2))
                .send()
                .await
                && r.status().is_success()
            {
                return true;
            }
        }
        false
    }

    /// Sends a call; `idempotent` calls are retried on timeouts and 502/503/504.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        idempotent: bool,
    ) -> Result<Value, CallError> {
        let attempts = if idempotent {
            ATTEMPTS.max(self.bases.len() as u32)
        } else {
            // Only calls whose request never left are repeated.
            ATTEMPTS
        };
        let mut last = String::new();
        for attempt in 0..attempts {
            if attempt > 0 {
                metrics::counter!("internal_retries_total", "service" => self.name).increment(1);
                let pause = 50u64 << attempt.min(5);
                let jitter = u64::from(rand::random::<u8>()) % 25;
                tokio::time::sleep(Duration::from_millis(pause + jitter)).await;
            }
            let url = format!("{}{path}", self.base());
            let mut req = self
                .http
                .request(method.clone(), &url)
                .header(TOKEN_HEADER, self.token.expose());
            if let Some(b) = body {
                req = req.json(b);
            }
            let started = std::time::Instant::now();
            match req.send().await {
                Ok(res) => {
                    let status = res.status();
                    metrics::histogram!("internal_call_duration_seconds", "service" => self.name)
                        .record(started.elapsed().as_secs_f64());
                    if matches!(
                        status,
                        StatusCode::BAD_GATEWAY
                            | StatusCode::SERVICE_UNAVAILABLE
                            | StatusCode::GATEWAY_TIMEOUT
                    ) {
                        last = format!("{status} from {url}");
                        if idempotent {
                            continue;
                        }
                        return Err(CallError::Unavailable(last));
                    }
                    let value: Value = match res.json().await {
                        Ok(v) => v,
                        Err(e) if idempotent => {
                            last = format!("reading the answer of {url}: {e}");
                            continue;
                        }
                        Err(e) => {
                            return Err(CallError::Unavailable(format!(
                                "reading the answer of {url}: {e}"
                            )));
                        }
                    };
                    metrics::counter!("internal_calls_total", "service" => self.name, "outcome" => if status.is_success() { "ok" } else { "refused" }).increment(1);
                    if status.is_success() {
                        return Ok(value);
                    }
                    return Err(CallError::Status(status, value));
                }
                Err(e) => {
                    last = format!("{url}: {e}");
                    let never_sent = e.is_connect();
                    if !(idempotent || never_sent) {
                        break;
                    }
                }
            }
        }
        metrics::counter!("internal_calls_total", "service" => self.name, "outcome" => "unavailable")
            .increment(1);
        Err(CallError::Unavailable(last))
    }
}

fn field<T: serde::de::DeserializeOwned>(v: &Value, name: &str) -> Result<T, String> {
    serde_json::from_value(v.get(name).cloned().unwrap_or(Value::Null))
        .map_err(|e| format!("unexpected answer ({name}): {e}"))
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

// ---- orders → catalog ---------------------------------------------------------------

/// The catalog's stock over HTTP (reserve and release are idempotent by key).
#[derive(Clone, Debug)]
pub struct HttpInventory(pub Arc<ServiceClient>);

fn inventory_error(client: &ServiceClient, e: CallError) -> InventoryError {
    match e {
        CallError::Status(StatusCode::UNPROCESSABLE_ENTITY, body) => {
            field::<InventoryError>(&body, "error").unwrap_or_else(InventoryError::Failed)
        }
        other => InventoryError::Failed(other.port(client.name()).0),
    }
}

#[async_trait]
impl Inventory for HttpInventory {
    async fn reserve(
        &self,
        order_id: &str,
        lines: &[ReserveLine],
    ) -> Result<Vec<ReservedLine>, InventoryError> {
        let body = json!({ "orderId": order_id, "lines": lines });
        let v = self
            .0
            .call(
                Method::POST,
                "/internal/inventory/reserve",
                Some(&body),
                true,
            )
            .await
            .map_err(|e| inventory_error(&self.0, e))?;
        field(&v, "lines").map_err(InventoryError::Failed)
    }

    async fn release(&self, order_id: &str) -> Result<bool, InventoryError> {
        let body = json!({ "orderId": order_id });
        let v = self
            .0
            .call(
                Method::POST,
                "/internal/inventory/release",
                Some(&body),
                true,
            )
            .await
            .map_err(|e| inventory_error(&self.0, e))?;
        field(&v, "released").map_err(InventoryError::Failed)
    }
}

/// The catalog's reviews over HTTP (not repeated once sent: a second
/// attempt would find the first review).
#[derive(Clone, Debug)]
pub struct HttpReviews(pub Arc<ServiceClient>);

#[async_trait]
impl ProductReviews for HttpReviews {
    async fn add_review(&self, review: NewReview) -> Result<Value, ReviewError> {
        let body = serde_json::to_value(&review).map_err(|e| ReviewError::Failed(e.to_string()))?;
        let v = self
            .0
            .call(Method::POST, "/internal/reviews", Some(&body), false)
            .await
            .map_err(|e| match e {
                CallError::Status(StatusCode::UNPROCESSABLE_ENTITY, body) => {
                    field::<ReviewError>(&body, "error").unwrap_or_else(ReviewError::Failed)
                }
                other => ReviewError::Failed(other.port(self.0.name()).0),
            })?;
        Ok(v.get("product").cloned().unwrap_or(Value::Null))
    }
}

/// The catalog's product names over HTTP (analytics' top products).
#[derive(Clone, Debug)]
pub struct HttpProductDirectory(pub Arc<ServiceClient>);

#[async_trait]
impl ProductDirectory for HttpProductDirectory {
    async fn summaries(
        &self,
        ids: &[String],
    ) -> Result<HashMap<String, ProductSummary>, PortError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let body = json!({ "ids": ids });
        let v = self
            .0
            .call(
                Method::POST,
                "/internal/products/summaries",
                Some(&body),
                true,
            )
            .await
            .map_err(|e| e.port(self.0.name()))?;
        field(&v, "summaries").map_err(PortError)
    }
}

// ---- catalog → orders, users → orders, analytics → orders ---------------------------------

/// The orders service's purchase check over HTTP.
#[derive(Clone, Debug)]
pub struct HttpPurchases(pub Arc<ServiceClient>);

#[async_trait]
impl PurchaseCheck for HttpPurchases {
    async fn delivered_orders_with(
        &self,
        user_id: i64,
        product_id: &str,
    ) -> Result<Vec<String>, PortError> {
        let path = format!(
            "/internal/purchases?userId={user_id}&productId={}",
            encode(product_id)
        );
        let v = self
            .0
            .call(Method::GET, &path, None, true)
            .await
            .map_err(|e| e.port(self.0.name()))?;
        field(&v, "orderIds").map_err(PortError)
    }
}

/// The orders service's customer figures over HTTP.
#[derive(Clone, Debug)]
pub struct HttpCustomerOrders(pub Arc<ServiceClient>);

#[async_trait]
impl CustomerOrders for HttpCustomerOrders {
    async fn stats(&self, user_ids: &[i64]) -> Result<HashMap<i64, CustomerStats>, PortError> {
        if user_ids.is_empty() {
            return Ok(HashMap::new());
        }
        let body = json!({ "userIds": user_ids });
        let v = self
            .0
            .call(Method::POST, "/internal/customers/stats", Some(&body), true)
            .await
            .map_err(|e| e.port(self.0.name()))?;
        crate::internal::stats_from_json(v.get("stats").cloned().unwrap_or(Value::Null))
            .map_err(PortError)
    }

    async fn customer_orders(
        &self,
        user_id: i64,
        page: u64,
        limit: u64,
    ) -> Result<(Vec<Value>, i64), PortError> {
        let path = format!("/internal/customers/{user_id}/orders?page={page}&limit={limit}");
        let v = self
            .0
            .call(Method::GET, &path, None, true)
            .await
            .map_err(|e| e.port(self.0.name()))?;
        Ok((
            field(&v, "orders").map_err(PortError)?,
            field(&v, "total").map_err(PortError)?,
        ))
    }

    async fn forget_customer(&self, user_id: i64) -> Result<u64, PortError> {
        let path = format!("/internal/customers/{user_id}/orders");
        let v = self
            .0
            .call(Method::DELETE, &path, None, true)
            .await
            .map_err(|e| e.port(self.0.name()))?;
        field(&v, "removed").map_err(PortError)
    }
}

/// The orders, read over HTTP, for analytics' rebuild and verify.
#[derive(Clone, Debug)]
pub struct HttpOrderSource(pub Arc<ServiceClient>);

#[async_trait]
impl OrderSource for HttpOrderSource {
    async fn orders_after(&self, after: i64, limit: usize) -> Result<Vec<OrderEvent>, PortError> {
        let path = format!("/internal/orders/after?after={after}&limit={limit}");
        let v = self
            .0
            .call(Method::GET, &path, None, true)
            .await
            .map_err(|e| e.port(self.0.name()))?;
        field(&v, "orders").map_err(PortError)
    }

    async fn order_count(&self) -> Result<u64, PortError> {
        let v = self
            .0
            .call(Method::GET, "/internal/orders/count", None, true)
            .await
            .map_err(|e| e.port(self.0.name()))?;
        field(&v, "count").map_err(PortError)
    }
}

// ---- orders → users ----------------------------------------------------------------

/// The users service's address book over HTTP.
#[derive(Clone, Debug)]
pub struct HttpAddressBook(pub Arc<ServiceClient>);

#[async_trait]
impl AddressBook for HttpAddressBook {
    async fn address(
        &self,
        user_id: i64,
        address_id: i64,
    ) -> Result<Option<ShippingAddress>, PortError> {
        let path = format!("/internal/users/{user_id}/addresses/{address_id}");
        let v = self
            .0
            .call(Method::GET, &path, None, true)
            .await
            .map_err(|e| e.port(self.0.name()))?;
        field(&v, "address").map_err(PortError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_parts_are_encoded() {
        assert_eq!(encode("a b/c?d"), "a%20b%2Fc%3Fd");
        assert_eq!(encode("prod-1_x.y~"), "prod-1_x.y~");
    }

    #[test]
    fn inventory_errors_cross_the_wire() {
        let e = InventoryError::Insufficient {
            product_id: "p".into(),
            available: 1,
            requested: 2,
        };
        let v = json!({ "error": e });
        assert_eq!(field::<InventoryError>(&v, "error"), Ok(e));
        let v = json!({ "error": InventoryError::NotFound("x".into()) });
        assert_eq!(
            field::<InventoryError>(&v, "error"),
            Ok(InventoryError::NotFound("x".into()))
        );
        let unavailable = CallError::Unavailable("refused".into()).port("catalog service");
        assert!(unavailable.is_unavailable());
    }
}
