//! The split shape's internal routes: each service serves the ports other
//! services ask of it under `/internal/...`, for callers that present the
//! service credential (`X-Internal-Token` = `INTERNAL_TOKEN`, compared in
//! constant time). The gateway never forwards `/internal`. The bodies are the
//! ports' own types as JSON; a port's refusal (insufficient stock, already
//! reviewed) travels as `422 {"error": …}`, a failure as `500`.

use std::{collections::HashMap, sync::Arc};

use axum::{
    Json, Router,
    extract::{Path, Query, Request, State},
    http::StatusCode,
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{delete, get, post},
};
use ecap_core::{
    ApiError,
    config::Secret,
    error::ErrorCode,
    events::OrderSource,
    ports::{
        AddressBook, CustomerOrders, Inventory, NewReview, PortError, ProductDirectory,
        ProductReviews, PurchaseCheck, ReserveLine,
    },
};
use serde::Deserialize;
use serde_json::json;
use subtle::ConstantTimeEq;

pub const TOKEN_HEADER: &str = "x-internal-token";

/// Requires the service credential on every route of `router`.
pub fn protect(router: Router, token: Secret) -> Router {
    router.layer(middleware::from_fn(move |req: Request, next: Next| {
        let token = token.clone();
        async move {
            let given = req
                .headers()
                .get(TOKEN_HEADER)
                .map(|v| v.as_bytes())
                .unwrap_or_default();
            let expected = token.expose().as_bytes();
            let ok = !expected.is_empty()
                && given.len() == expected.len()
                && bool::from(given.ct_eq(expected));
            if !ok {
                metrics::counter!("internal_auth_failures_total").increment(1);
                return ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    ErrorCode::Unauthenticated,
                    "Internal routes need the service credential (X-Internal-Token)",
                )
                .into_response();
            }
            next.run(req).await
        }
    }))
}

fn refused(error: impl serde::Serialize) -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(json!({ "success": false, "error": error })),
    )
        .into_response()
}

fn failed(e: PortError) -> Response {
    if e.is_unavailable() {
        return ApiError::internal(e).into_response();
    }
    tracing::error!(error = %e, "internal route failed");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(json!({ "success": false, "message": e.0 })),
    )
        .into_response()
}

// ---- catalog: inventory and reviews -----------------------------------------------

#[derive(Clone)]
struct CatalogPorts {
    inventory: Arc<dyn Inventory>,
    reviews: Arc<dyn ProductReviews>,
    directory: Arc<dyn ProductDirectory>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReserveBody {
    order_id: String,
    #[serde(default)]
    lines: Vec<ReserveLine>,
}

/// Routes the catalog serves: reserve, release, add a review, product summaries.
pub fn catalog_routes(
    inventory: Arc<dyn Inventory>,
    reviews: Arc<dyn ProductReviews>,
    directory: Arc<dyn ProductDirectory>,
) -> Router {
    Router::new()
        .route("/internal/inventory/reserve", post(reserve))
        .route("/internal/inventory/release", post(release))
        .route("/internal/reviews", post(add_review))
        .route("/internal/products/summaries", post(summaries))
        .with_state(CatalogPorts {
            inventory,
            reviews,
            directory,
        })
}

#[derive(Deserialize)]
struct IdsBody {
    ids: Vec<String>,
}

async fn summaries(State(p): State<CatalogPorts>, Json(body): Json<IdsBody>) -> Response {
    match p.directory.summaries(&body.ids).await {
        Ok(map) => Json(json!({ "success": true, "summaries": map })).into_response(),
        Err(e) => failed(e),
    }
}

async fn reserve(State(p): State<CatalogPorts>, Json(body): Json<ReserveBody>) -> Response {
    match p.inventory.reserve(&body.order_id, &body.lines).await {
        Ok(lines) => Json(json!({ "success": true, "lines": lines })).into_response(),
        Err(e) => refused(e),
    }
}

async fn release(State(p): State<CatalogPorts>, Json(body): Json<ReserveBody>) -> Response {
    match p.inventory.release(&body.order_id).await {
        Ok(released) => Json(json!({ "success": true, "released": released })).into_response(),
        Err(e) => refused(e),
    }
}

async fn add_review(State(p): State<CatalogPorts>, Json(body): Json<NewReview>) -> Response {
    match p.reviews.add_review(body).await {
        Ok(product) => Json(json!({ "success": true, "product": product })).into_response(),
        Err(e) => refused(e),
    }
}

// ---- orders: purchases, customer figures, order source ------------------------------

#[derive(Clone)]
struct OrdersPorts {
    purchases: Arc<dyn PurchaseCheck>,
    customers: Arc<dyn CustomerOrders>,
    source: Arc<dyn OrderSource>,
}

/// Routes the orders service serves: the purchase check (catalog), customer
/// figures and orders (users), and the order source (analytics).
pub fn orders_routes(
    purchases: Arc<dyn PurchaseCheck>,
    customers: Arc<dyn CustomerOrders>,
    source: Arc<dyn OrderSource>,
) -> Router {
    Router::new()
        .route("/internal/purchases", get(purchases_of))
        .route("/internal/customers/stats", post(customer_stats))
        .route("/internal/customers/{id}/orders", get(customer_orders))
        .route("/internal/customers/{id}/orders", delete(forget_customer))
        .route("/internal/orders/after", get(orders_after))
        .route("/internal/orders/count", get(order_count))
        .with_state(OrdersPorts {
            purchases,
            customers,
            source,
        })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PurchaseQuery {
    user_id: i64,
    product_id: String,
}

async fn purchases_of(State(p): State<OrdersPorts>, Query(q): Query<PurchaseQuery>) -> Response {
    match p
        .purchases
        .delivered_orders_with(q.user_id, &q.product_id)
        .await
    {
        Ok(ids) => Json(json!({ "success": true, "orderIds": ids })).into_response(),
        Err(e) => failed(e),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StatsBody {
    user_ids: Vec<i64>,
}

async fn customer_stats(State(p): State<OrdersPorts>, Json(body): Json<StatsBody>) -> Response {
    match p.customers.stats(&body.user_ids).await {
        Ok(stats) => Json(json!({ "success": true, "stats": stats })).into_response(),
        Err(e) => failed(e),
    }
}

#[derive(Deserialize)]
struct PageQuery {
    page: Option<u64>,
    limit: Option<u64>,
}

async fn customer_orders(
    State(p): State<OrdersPorts>,
    Path(id): Path<i64>,
    Query(q): Query<PageQuery>,
) -> Response {
    let page = q.page.unwrap_or(1).max(1);
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    match p.customers.customer_orders(id, page, limit).await {
        Ok((orders, total)) => {
            Json(json!({ "success": true, "orders": orders, "total": total })).into_response()
        }
        Err(e) => failed(e),
    }
}

async fn forget_customer(State(p): State<OrdersPorts>, Path(id): Path<i64>) -> Response {
    match p.customers.forget_customer(id).await {
        Ok(n) => Json(json!({ "success": true, "removed": n })).into_response(),
        Err(e) => failed(e),
    }
}

#[derive(Deserialize)]
struct AfterQuery {
    after: Option<i64>,
    limit: Option<usize>,
}

async fn orders_after(State(p): State<OrdersPorts>, Query(q): Query<AfterQuery>) -> Response {
    let limit = q.limit.unwrap_or(1000).clamp(1, 10_000);
    match p.source.orders_after(q.after.unwrap_or(0), limit).await {
        Ok(orders) => Json(json!({ "success": true, "orders": orders })).into_response(),
        Err(e) => failed(e),
    }
}

async fn order_count(State(p): State<OrdersPorts>) -> Response {
    match p.source.order_count().await {
        Ok(n) => Json(json!({ "success": true, "count": n })).into_response(),
        Err(e) => failed(e),
    }
}

// ---- users: the address book ----------------------------------------------------

/// Routes the users service serves: a customer's saved address.
pub fn users_routes(addresses: Arc<dyn AddressBook>) -> Router {
    Router::new()
        .route(
            "/internal/users/{user}/addresses/{address}",
            get(address_of),
        )
        .with_state(addresses)
}

async fn address_of(
    State(book): State<Arc<dyn AddressBook>>,
    Path((user, address)): Path<(i64, i64)>,
) -> Response {
    match book.address(user, address).await {
        Ok(a) => Json(json!({ "success": true, "address": a })).into_response(),
        Err(e) => failed(e),
    }
}

/// Checks the answer shape of the stats map (keys are user ids as text).
pub fn stats_from_json(
    v: serde_json::Value,
) -> Result<HashMap<i64, ecap_core::ports::CustomerStats>, String> {
    serde_json::from_value(v).map_err(|e| e.to_string())
}
