//! Handlers of the orders service: parse, authorise, call the store, shape the
//! contract's responses (camelCase list items; raw snake_case rows where the
//! original returned database rows, with money as decimal strings).
//!
//! Every route needs a verified token (the original decoded tokens without
//! checking them, S1). A customer asking for someone else's order gets 404.

use std::collections::{HashMap, HashSet};

use axum::{
    Json,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use ecap_core::{
    ApiError, ApiResult,
    auth::{AdminUser, AuthUser},
    clock,
    error::{ErrorCode, FieldError, Location, created, ok},
    extract::{ApiJson, ApiQuery},
    ports::{InventoryError, NewReview, ReserveLine, ReviewError},
};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use crate::{
    OrdersState,
    domain::{
        self, DETAIL_REASONS, MAX_LINES, MAX_QUANTITY, PAYMENT_METHODS, RETENTION_MS, Retention,
        Status, decimal, money, parse_cents, parse_int,
    },
    store::{Actor, ItemRow, NewOrder, OrderQuery, OrderRow, RequestRow, Shipment, StoreError},
};

pub(crate) const TAG: &str = "orders";

fn actor(user: &AuthUser) -> Actor {
    Actor {
        id: user.id(),
        admin: user.is_admin(),
    }
}

fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound => ApiError::not_found("Order not found"),
        // A well-formed request the order's state refuses (already deleted,
        // no cancellation pending, past its window): 409, as transitions are.
        StoreError::Rule(m) => ApiError::conflict(m),
        StoreError::Transition(m) => ApiError::conflict(m),
        StoreError::IdempotencyMismatch => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::Conflict,
            "This Idempotency-Key was already used with a different request body",
        ),
        StoreError::IdempotencyInProgress => {
            ApiError::conflict("A request with this Idempotency-Key is still in progress")
        }
        StoreError::Inventory(e) => ApiError::internal(e),
        StoreError::Db(e) => ApiError::internal(e),
    }
}

/// The contract's inventory failures: `{success:false, message, productId}`.
fn inventory_error(e: InventoryError) -> Response {
    let (status, code, message, product) = match e {
        InventoryError::NotFound(p) => (
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            "Product not found".to_owned(),
            Some(p),
        ),
        InventoryError::Unavailable(p) => (
            StatusCode::CONFLICT,
            ErrorCode::Conflict,
            "This product is no longer available".to_owned(),
            Some(p),
        ),
        InventoryError::Insufficient { product_id, .. } => (
            StatusCode::CONFLICT,
            ErrorCode::Conflict,
            "This item is sold out. Will be back soon.".to_owned(),
            Some(product_id),
        ),
        InventoryError::Invalid(m) => (
            StatusCode::BAD_REQUEST,
            ErrorCode::ValidationFailed,
            m,
            None,
        ),
        InventoryError::Conflict(m) => (StatusCode::CONFLICT, ErrorCode::Conflict, m, None),
        InventoryError::Failed(m) | InventoryError::Busy(m) => {
            return ApiError::internal(m).into_response();
        }
    };
    let mut body = json!({"success": false, "message": message, "code": code, "errors": []});
    if let Some(p) = product {
        body["productId"] = Value::String(p);
    }
    (status, Json(body)).into_response()
}

/// `:id` as an order id, or the contract's 400 "Invalid order ID".
fn order_id(raw: &str) -> ApiResult<i64> {
    match raw.trim().parse::<i64>() {
        Ok(id) if id > 0 => Ok(id),
        _ => Err(ApiError::validation(vec![FieldError::new(
            Location::Params,
            "id",
            "Invalid order ID",
        )])),
    }
}

fn iso(ms: Option<i64>) -> Value {
    ms.map_or(Value::Null, |m| Value::String(clock::iso(m)))
}

fn parse_address(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

fn images(o: &OrderRow) -> Value {
    serde_json::from_str(&o.cancellation_images).unwrap_or_else(|_| json!([]))
}

/// An order as the list route shows it (OrderListItem).
pub fn list_item(o: &OrderRow, items: &[ItemRow], retention: Option<Retention>) -> Value {
    let r = retention.unwrap_or(Retention {
        can_view: true,
        can_request: false,
    });
    let lines: Vec<Value> = items
        .iter()
        .filter(|i| i.order_id == o.id)
        .map(|i| {
            json!({
                "productId": i.product_id,
                "product_id": i.product_id,
                "name": i.product_name,
                "category": i.category,
                "quantity": i.quantity,
                "price": money(i.price_cents),
                "subtotal": money(i.subtotal_cents),
            })
        })
        .collect();
    // Hidden details stay hidden in the list too (§8.7).
    let (address, lines) = if r.can_view {
        (parse_address(&o.shipping_address), lines)
    } else {
        (Value::Null, Vec::new())
    };
    json!({
        "id": o.id,
        "userId": o.user_id,
        // Who placed it, for the admin's order list (the caller's own e-mail otherwise).
        "customerEmail": o.user_email,
        "userOrderNumber": o.user_order_number,
        "totalAmount": money(o.total_cents),
        "status": o.status,
        "paymentMethod": o.payment_method,
        "shippingAddress": address,
        "items": lines,
        "createdAt": clock::iso(o.created_at),
        "updatedAt": clock::iso(o.updated_at),
        "processingAt": iso(o.processing_at),
        "shippedAt": iso(o.shipped_at),
        "outForDeliveryAt": iso(o.out_for_delivery_at),
        "deliveredAt": iso(o.delivered_at),
        "trackingNumber": o.tracking_number,
        "courierName": o.courier_name,
        "estimatedDelivery": iso(o.estimated_delivery),
        "cancellationReason": o.cancellation_reason,
        "cancellationImages": images(o),
        "cancellationRequestedAt": iso(o.cancellation_requested_at),
        "cancellationRejected": o.cancellation_rejected == 1,
        "cancellationRejectionReason": o.cancellation_rejection_reason,
        "cancelledAt": iso(o.cancelled_at),
        "refundStatus": o.refund_status,
        "refundAmount": o.refund_cents.map(money),
        "refundProcessingAt": iso(o.refund_processing_at),
        "refundedAt": iso(o.refunded_at),
        "deletedAt": iso(o.deleted_at),
        "deletionReason": o.deletion_reason,
        "statusBeforeDeletion": o.status_before_deletion,
        "deletionExpiresAt": iso(o.hidden_expires_at),
        "restorationStatus": o.restoration_status,
        "canViewDetails": r.can_view,
        "canRequestDetails": r.can_request,
    })
}

/// An order as the user details route shows it: the list item (ecap's
/// additions kept), with the contract's raw item rows `{product_id,
/// product_name, quantity, price, subtotal}` (decimal strings, as the raw rows
/// elsewhere) plus `productId`, `name` and `category`.
pub fn details_item(o: &OrderRow, items: &[ItemRow]) -> Value {
    let mut out = list_item(o, &[], None);
    out["items"] = items
        .iter()
        .filter(|i| i.order_id == o.id)
        .map(|i| {
            json!({
                "product_id": i.product_id,
                "product_name": i.product_name,
                "quantity": i.quantity,
                "price": decimal(i.price_cents),
                "subtotal": decimal(i.subtotal_cents),
                "productId": i.product_id,
                "name": i.product_name,
                "category": i.category,
            })
        })
        .collect();
    out
}

/// An order as the original's raw PostgreSQL row, plus `shippingAddress`.
pub fn raw_row(o: &OrderRow) -> Value {
    json!({
        "id": o.id,
        "user_id": o.user_id,
        "user_order_number": o.user_order_number,
        "total_amount": decimal(o.total_cents),
        "status": o.status,
        "payment_method": o.payment_method,
        "shipping_address": o.shipping_address,
        "created_at": clock::iso(o.created_at),
        "updated_at": clock::iso(o.updated_at),
        "processing_at": iso(o.processing_at),
        "shipped_at": iso(o.shipped_at),
        "out_for_delivery_at": iso(o.out_for_delivery_at),
        "delivered_at": iso(o.delivered_at),
        "tracking_number": o.tracking_number,
        "courier_name": o.courier_name,
        "estimated_delivery": iso(o.estimated_delivery),
        "cancellation_reason": o.cancellation_reason,
        "cancellation_images": images(o),
        "cancellation_requested_at": iso(o.cancellation_requested_at),
        "cancellation_approved_by": o.cancellation_approved_by,
        "cancellation_approved_at": iso(o.cancellation_approved_at),
        "cancellation_rejected": o.cancellation_rejected == 1,
        "cancellation_rejection_reason": o.cancellation_rejection_reason,
        "cancellation_rejected_by": o.cancellation_rejected_by,
        "cancellation_rejected_at": iso(o.cancellation_rejected_at),
        "cancelled_at": iso(o.cancelled_at),
        "refund_status": o.refund_status,
        "refund_amount": o.refund_cents.map(decimal),
        "refund_processing_at": iso(o.refund_processing_at),
        "refunded_at": iso(o.refunded_at),
        "inventory_deducted": o.inventory_deducted == 1,
        "deleted_at": iso(o.deleted_at),
        "deleted_by": o.deleted_by,
        "deletion_reason": o.deletion_reason,
        "shippingAddress": parse_address(&o.shipping_address),
    })
}

fn raw_item(i: &ItemRow) -> Value {
    json!({
        "id": i.id,
        "order_id": i.order_id,
        "product_id": i.product_id,
        "product_name": i.product_name,
        "category": i.category,
        "quantity": i.quantity,
        "price": decimal(i.price_cents),
        "subtotal": decimal(i.subtotal_cents),
        "created_at": clock::iso(i.created_at),
    })
}

fn request_json(r: &RequestRow) -> Value {
    json!({
        "id": r.id,
        "order_id": r.order_id,
        "user_id": r.user_id,
        "reason": r.reason,
        "other_reason": r.other_reason,
        "status": r.status,
        "admin_id": r.admin_id,
        "admin_note": r.admin_note,
        "created_at": clock::iso(r.created_at),
        "updated_at": clock::iso(r.updated_at),
    })
}

/// Loads an order the caller may see: owner or admin; others get 404.
async fn visible_order(state: &OrdersState, user: &AuthUser, id: i64) -> ApiResult<OrderRow> {
    let order = state.store.order(id).await.map_err(store_error)?;
    if !user.is_admin() && order.user_id != user.id() {
        return Err(ApiError::not_found("Order not found"));
    }
    Ok(order)
}

fn require_admin(user: &AuthUser, message: &str) -> ApiResult<()> {
    if user.is_admin() {
        Ok(())
    } else {
        Err(ApiError::forbidden(message))
    }
}

fn optional_text(v: Option<&Value>, field: &str, max: usize) -> ApiResult<Option<String>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            let s = s.trim();
            if s.chars().count() > max {
                return Err(ApiError::field(
                    field,
                    format!("{field} is limited to {max} characters"),
                ));
            }
            Ok((!s.is_empty()).then(|| s.to_owned()))
        }
        Some(_) => Err(ApiError::field(field, format!("{field} must be a string"))),
    }
}

/// The instants an answer can write back as RFC 3339 (`0000-01-01T00:00:00Z`
/// to `9999-12-31T23:59:59.999Z`): a time given with an offset that moves it
/// outside, such as `0000-01-01T00:00:00+23:59`, is refused rather than
/// stored and written as a negative year (or, past 9999, as 1970).
const WRITABLE_MS: std::ops::RangeInclusive<i64> = -62_167_219_200_000..=253_402_300_799_999;

/// A date (`2026-12-01`) or date-time (RFC 3339) as epoch ms.
fn parse_time(text: &str) -> Option<i64> {
    use time::{OffsetDateTime, format_description::well_known::Rfc3339};
    let text = text.trim();
    let ms = if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
        clock::ms_of(t)
    } else {
        let format = time::macros::format_description!("[year]-[month]-[day]");
        clock::ms_of(
            time::Date::parse(text, &format)
                .ok()?
                .midnight()
                .assume_utc(),
        )
    };
    WRITABLE_MS.contains(&ms).then_some(ms)
}

// ---- list and read ------------------------------------------------------------

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct ListParams {
    /// Page number, from 1.
    page: Option<String>,
    /// 1–10000, default 15.
    limit: Option<String>,
    /// Exact status.
    status: Option<String>,
    /// Placed at or after (date or RFC 3339).
    from: Option<String>,
    /// Placed at or before (a date means the end of that day).
    to: Option<String>,
    /// Order id, `#`customer order number, or part of the customer's email.
    search: Option<String>,
    /// Admins: one customer's orders.
    user_id: Option<String>,
}

/// The states of a detail or restoration request (the lists' `status` filter).
const REQUEST_STATUSES: [&str; 3] = ["pending", "approved", "rejected"];

/// Orders one bulk delete takes at most.
const BULK_MAX: usize = 500;

/// Order lists: the largest page size (the original took up to 10,000) and page.
const LIMIT_MAX: i64 = 10_000;
const PAGE_MAX: i64 = i64::MAX / (LIMIT_MAX + 1);

fn int_param(
    raw: &Option<String>,
    name: &str,
    default: i64,
    min: i64,
    max: i64,
    msg: &str,
) -> ApiResult<i64> {
    match raw.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(default),
        Some(s) => match s.parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(ApiError::validation(vec![FieldError::new(
                Location::Query,
                name,
                msg,
            )])),
        },
    }
}

fn query_of(
    user: &AuthUser,
    p: &ListParams,
    hidden: bool,
    default_limit: i64,
) -> ApiResult<OrderQuery> {
    let page = int_param(
        &p.page,
        "page",
        1,
        1,
        PAGE_MAX,
        "Page must be a positive integer",
    )?;
    let limit = int_param(
        &p.limit,
        "limit",
        default_limit,
        1,
        LIMIT_MAX,
        "Limit must be between 1 and 10000",
    )?;
    let status = match p.status.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None | Some("all") => None,
        Some(s) => match Status::parse(s) {
            Some(st) => Some(st.as_str().to_owned()),
            None => {
                return Err(ApiError::validation(vec![FieldError::new(
                    Location::Query,
                    "status",
                    "Invalid status",
                )]));
            }
        },
    };
    let time_param =
        |raw: &Option<String>, name: &str, end_of_day: bool| -> ApiResult<Option<i64>> {
            match raw.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
                None => Ok(None),
                Some(s) => {
                    let t = parse_time(s).ok_or_else(|| {
                        ApiError::validation(vec![FieldError::new(
                            Location::Query,
                            name,
                            format!("{name} must be a date (YYYY-MM-DD) or an RFC 3339 time"),
                        )])
                    })?;
                    Ok(Some(if end_of_day && s.len() == 10 {
                        t + domain::DAY_MS - 1
                    } else {
                        t
                    }))
                }
            }
        };
    let from = time_param(&p.from, "from", false)?;
    let to = time_param(&p.to, "to", true)?;
    // `from` after `to` matches nothing: an empty page, not an error.
    let customer = match p
        .user_id
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => None,
        Some(s) => Some(s.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| {
            ApiError::validation(vec![FieldError::new(
                Location::Query,
                "userId",
                "Invalid user ID",
            )])
        })?),
    };
    let search = p.search.clone().filter(|s| !s.trim().is_empty());
    if search.as_ref().is_some_and(|s| s.chars().count() > 255) {
        return Err(ApiError::validation(vec![FieldError::new(
            Location::Query,
            "search",
            "search is limited to 255 characters",
        )]));
    }
    Ok(OrderQuery {
        viewer: actor(user),
        customer: customer.filter(|_| user.is_admin()),
        status,
        from,
        to,
        search,
        page: page as u64,
        limit: limit as u64,
        hidden,
    })
}

/// The page, with items and (for customers) the retention flags: four queries
/// whatever the page size.
async fn page_json(state: &OrdersState, user: &AuthUser, q: &OrderQuery) -> ApiResult<Value> {
    let (rows, total) = state.store.list(q).await.map_err(store_error)?;
    let ids: Vec<i64> = rows.iter().map(|o| o.id).collect();
    let items = state.store.items_of(&ids).await.map_err(store_error)?;
    let flags = retention_flags(state, user, &rows).await?;
    let mut orders: Vec<Value> = rows
        .iter()
        .map(|o| list_item(o, &items, flags.get(&o.id).copied()))
        .collect();
    with_images(state, &mut orders).await;
    let limit = q.limit as i64;
    Ok(json!({
        "orders": orders,
        "pagination": {"page": q.page, "limit": q.limit, "total": total,
            "pages": (total + limit - 1) / limit},
    }))
}

/// Adds each line's current product image (`image`, null when the product has
/// none or the catalog does not answer: the order still lists).
pub async fn with_images(state: &OrdersState, orders: &mut [Value]) {
    let ids: Vec<String> = orders
        .iter()
        .flat_map(|o| o["items"].as_array().into_iter().flatten())
        .filter_map(|i| i["productId"].as_str().map(str::to_owned))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let found = if ids.is_empty() {
        HashMap::new()
    } else {
        state.products.summaries(&ids).await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "product images unavailable for the order list");
            HashMap::new()
        })
    };
    for item in orders
        .iter_mut()
        .filter_map(|o| o.get_mut("items").and_then(Value::as_array_mut))
        .flatten()
    {
        let image = item["productId"]
            .as_str()
            .and_then(|id| found.get(id))
            .and_then(|s| s.image.clone());
        item["image"] = image.map_or(Value::Null, Value::String);
    }
}

/// §8.7 for non-admins: which cancelled/deleted orders the caller may see in
/// full, and for which a detail request may be filed.
async fn retention_flags(
    state: &OrdersState,
    user: &AuthUser,
    rows: &[OrderRow],
) -> ApiResult<HashMap<i64, Retention>> {
    if user.is_admin() {
        return Ok(HashMap::new());
    }
    let watched: Vec<i64> = rows
        .iter()
        .filter(|o| matches!(o.status(), Status::Cancelled | Status::Deleted))
        .map(|o| o.id)
        .collect();
    let requests = state
        .store
        .requests_for(&watched, user.id())
        .await
        .map_err(store_error)?;
    let approved: HashSet<i64> = requests
        .iter()
        .filter(|r| r.status == "approved")
        .map(|r| r.order_id)
        .collect();
    let open: HashSet<i64> = requests
        .iter()
        .filter(|r| r.status == "pending" || r.status == "approved")
        .map(|r| r.order_id)
        .collect();
    let now = clock::now_ms();
    Ok(rows
        .iter()
        .map(|o| {
            (
                o.id,
                domain::retention(
                    o.status(),
                    o.retention_base(),
                    approved.contains(&o.id),
                    open.contains(&o.id),
                    now,
                ),
            )
        })
        .collect())
}

/// Orders: customers see their own (cancelled and deleted ones for 30 days or
/// with an approved detail request), admins all.
#[utoipa::path(get, path = "/api/orders", tag = TAG, params(ListParams), security(("bearer" = [])),
    responses((status = 200, description = "`data.orders`, `data.pagination`"),
        (status = 400, description = "Bad page, limit, status or dates"),
        (status = 401, description = "No or bad token")))]
pub async fn list_orders(
    State(state): State<OrdersState>,
    user: AuthUser,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<Response> {
    let q = query_of(&user, &params, false, 15)?;
    Ok(ok(None, Some(page_json(&state, &user, &q).await?)))
}

/// The caller's visible orders (the original's Mongo "active" list). The
/// contract shows `{orders, pagination}` at the top level, the original's code
/// put them under `data`: both are there.
#[utoipa::path(get, path = "/api/orders/active", tag = TAG, params(ListParams), security(("bearer" = [])),
    responses((status = 200, description = "`orders`, `pagination`, and the same under `data`")))]
pub async fn active_orders(
    State(state): State<OrdersState>,
    user: AuthUser,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<Response> {
    let mut q = query_of(&user, &params, false, 10)?;
    // Always the caller's own, even for admins.
    q.viewer.admin = false;
    q.customer = None;
    let page = page_json(&state, &user, &q).await?;
    Ok(Json(json!({
        "success": true,
        "orders": page["orders"],
        "pagination": page["pagination"],
        "data": page,
    }))
    .into_response())
}

/// The caller's own soft-deleted orders that can still be restored.
#[utoipa::path(get, path = "/api/orders/deleted", tag = TAG, security(("bearer" = [])),
    responses((status = 200, description = "`data.orders`")))]
pub async fn deleted_orders(
    State(state): State<OrdersState>,
    user: AuthUser,
) -> ApiResult<Response> {
    let q = OrderQuery {
        viewer: Actor {
            id: user.id(),
            admin: false,
        },
        customer: None,
        status: None,
        from: None,
        to: None,
        search: None,
        page: 1,
        limit: 1000,
        hidden: true,
    };
    let page = page_json(&state, &user, &q).await?;
    Ok(ok(None, Some(json!({"orders": page["orders"]}))))
}

/// One order with its items (owner or admin). Customers see a cancelled or
/// deleted order's details within the retention rules of §8.7.
#[utoipa::path(get, path = "/api/orders/{id}", tag = TAG, params(("id" = i64, Path)),
    security(("bearer" = [])),
    responses((status = 200, description = "`data.order` (raw row, `shippingAddress`, `items`)"),
        (status = 403, description = "Details hidden by the retention rules; `data.canRequestDetails`"),
        (status = 404, description = "Order not found")))]
pub async fn get_order(
    State(state): State<OrdersState>,
    user: AuthUser,
    Path(raw): Path<String>,
) -> ApiResult<Response> {
    let id = order_id(&raw)?;
    let order = visible_order(&state, &user, id).await?;
    if !user.is_admin() {
        let flags = retention_flags(&state, &user, std::slice::from_ref(&order)).await?;
        if let Some(r) = flags.get(&order.id).filter(|r| !r.can_view) {
            let message = if order.status() == Status::Deleted {
                "Order details are hidden after deletion. Submit a detail request within 30 days and wait for admin approval."
            } else {
                "Order details retention expired (30 days)."
            };
            let body = json!({"success": false, "message": message, "code": ErrorCode::Forbidden,
                "errors": [], "data": {"canRequestDetails": r.can_request}});
            return Ok((StatusCode::FORBIDDEN, Json(body)).into_response());
        }
    }
    let items = state.store.items_of(&[id]).await.map_err(store_error)?;
    let mut row = raw_row(&order);
    row["items"] = items.iter().map(raw_item).collect();
    Ok(ok(None, Some(json!({ "order": row }))))
}

/// The order's timeline, built from its history (every transition, in order).
#[utoipa::path(get, path = "/api/orders/{id}/tracking", tag = TAG, params(("id" = i64, Path)),
    security(("bearer" = [])),
    responses((status = 200, description = "`data.tracking`"), (status = 404, description = "Order not found")))]
pub async fn tracking(
    State(state): State<OrdersState>,
    user: AuthUser,
    Path(raw): Path<String>,
) -> ApiResult<Response> {
    let id = order_id(&raw)?;
    let order = visible_order(&state, &user, id).await?;
    let history = state.store.history_of(id).await.map_err(store_error)?;
    let timeline: Vec<Value> = history
        .iter()
        .map(|h| {
            let status = Status::parse(&h.to_status).unwrap_or(Status::Pending);
            json!({
                "status": h.to_status,
                "from": h.from_status,
                "timestamp": clock::iso(h.created_at),
                "label": status.label(),
                "note": h.note,
            })
        })
        .collect();
    Ok(ok(
        None,
        Some(json!({"tracking": {
            "orderId": order.id,
            "status": order.status,
            "trackingNumber": order.tracking_number,
            "courierName": order.courier_name,
            "estimatedDelivery": iso(order.estimated_delivery),
            "timeline": timeline,
        }})),
    ))
}

// ---- placement ------------------------------------------------------------------

/// `POST /api/orders` body. `price` and `name` of items are accepted and ignored:
/// the catalog prices every line.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateOrderBody {
    #[schema(value_type = Vec<Object>, example = json!([{"productId": "65f0c0ffee0000000000abcd", "quantity": 2}]))]
    items: Option<Value>,
    #[schema(example = "cod")]
    payment_method: Option<Value>,
    /// An address object (street, city, state, zipCode, phone, country) or text.
    #[schema(value_type = Option<Object>)]
    shipping_address: Option<Value>,
    /// Instead of `shippingAddress`: one of the caller's saved addresses.
    #[schema(value_type = Option<i64>)]
    address_id: Option<Value>,
}

fn validate_items(items: Option<&Value>, errors: &mut Vec<FieldError>) -> Vec<ReserveLine> {
    let Some(Value::Array(list)) = items else {
        errors.push(FieldError::body("items", "Items must be a non-empty array"));
        return Vec::new();
    };
    if list.is_empty() {
        errors.push(FieldError::body("items", "Items must be a non-empty array"));
        return Vec::new();
    }
    if list.len() > MAX_LINES {
        errors.push(FieldError::body(
            "items",
            format!("An order holds at most {MAX_LINES} lines"),
        ));
        return Vec::new();
    }
    let mut merged: Vec<ReserveLine> = Vec::new();
    for (n, item) in list.iter().enumerate() {
        let product = match item.get("productId").or_else(|| item.get("product_id")) {
            Some(Value::String(s)) if !s.trim().is_empty() => {
                let id = ecap_core::ports::parse_product_id(s);
                if id.is_none() {
                    errors.push(FieldError::body(
                        format!("items[{n}].productId"),
                        "Product ID must be 24 hexadecimal digits",
                    ));
                }
                id
            }
            _ => {
                errors.push(FieldError::body(
                    format!("items[{n}].productId"),
                    "Product ID is required",
                ));
                None
            }
        };
        let quantity = match item.get("quantity").and_then(parse_int) {
            Some(q) if q < 1 => {
                errors.push(FieldError::body(
                    format!("items[{n}].quantity"),
                    "Quantity must be at least 1",
                ));
                None
            }
            Some(q) if q > MAX_QUANTITY => {
                errors.push(FieldError::body(
                    format!("items[{n}].quantity"),
                    format!("Quantity must be at most {MAX_QUANTITY}"),
                ));
                None
            }
            Some(q) => Some(q),
            None => {
                errors.push(FieldError::body(
                    format!("items[{n}].quantity"),
                    "Quantity must be at least 1",
                ));
                None
            }
        };
        if let Some(price) = item.get("price").filter(|p| !p.is_null())
            && parse_cents(price).is_none()
            && price.as_f64().is_none_or(|f| f < 0.0)
        {
            errors.push(FieldError::body(
                format!("items[{n}].price"),
                "Price must be non-negative",
            ));
        }
        if let (Some(product_id), Some(quantity)) = (product, quantity) {
            match merged.iter_mut().find(|l| l.product_id == product_id) {
                Some(l) => l.quantity = (l.quantity + quantity).min(MAX_QUANTITY + 1),
                None => merged.push(ReserveLine {
                    product_id,
                    quantity,
                }),
            }
        }
    }
    if merged.iter().any(|l| l.quantity > MAX_QUANTITY) {
        errors.push(FieldError::body(
            "items",
            format!("Quantity must be at most {MAX_QUANTITY}"),
        ));
    }
    merged
}

fn idempotency_key(headers: &HeaderMap) -> ApiResult<Option<String>> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = v.to_str().unwrap_or_default().trim();
    if key.is_empty() || key.len() > 255 || !key.chars().all(|c| c.is_ascii_graphic()) {
        return Err(ApiError::validation(vec![FieldError::new(
            Location::Headers,
            "Idempotency-Key",
            "Idempotency-Key must be 1–255 visible ASCII characters",
        )]));
    }
    Ok(Some(key.to_owned()))
}

/// Place an order. Prices and names come from the catalog; stock is reserved
/// for every line or none. Send `Idempotency-Key` to make retries safe.
#[utoipa::path(post, path = "/api/orders", tag = TAG, request_body = CreateOrderBody,
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Same key + same body → the first order")),
    responses((status = 201, description = "Order created successfully: `data.order`"),
        (status = 400, description = "Validation failed"),
        (status = 409, description = "Sold out, or the product is no longer available (`productId`)"),
        (status = 401, description = "No or bad token"),
        (status = 404, description = "Product not found (`productId`)"),
        (status = 409, description = "Same Idempotency-Key still in progress"),
        (status = 422, description = "Idempotency-Key reused with another body")))]
pub async fn create_order(
    State(state): State<OrdersState>,
    user: AuthUser,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<Response> {
    let idem = idempotency_key(&headers)?;
    let fields: CreateOrderBody = serde_json::from_value(body.clone())
        .map_err(|e| ApiError::bad_request(format!("Invalid order: {e}")))?;
    let mut errors = Vec::new();
    let lines = validate_items(fields.items.as_ref(), &mut errors);
    let payment = match &fields.payment_method {
        Some(Value::String(s)) if PAYMENT_METHODS.contains(&s.trim()) => s.trim().to_owned(),
        _ => {
            errors.push(FieldError::body("paymentMethod", "Invalid payment method"));
            String::new()
        }
    };
    let address_id = match &fields.address_id {
        None | Some(Value::Null) => None,
        Some(v) => match parse_int(v).filter(|n| *n > 0) {
            Some(n) => Some(n),
            None => {
                errors.push(FieldError::body("addressId", "Invalid address ID"));
                None
            }
        },
    };
    let mut address = None;
    if address_id.is_none() {
        match fields
            .shipping_address
            .as_ref()
            .map(domain::address_from_json)
        {
            Some(Ok(a)) => address = Some(a),
            Some(Err(m)) => errors.push(FieldError::body("shippingAddress", m)),
            None if errors.iter().any(|e| e.path == "addressId") => {}
            None => errors.push(FieldError::body(
                "shippingAddress",
                "Shipping address is required",
            )),
        }
    }
    if !errors.is_empty() {
        let mut e = ApiError::validation(errors);
        e.message = "Validation failed".into();
        return Err(e);
    }
    if let Some(aid) = address_id {
        let saved = state
            .addresses
            .address(user.id(), aid)
            .await
            .map_err(ApiError::internal)?
            .ok_or_else(|| ApiError::not_found("Address not found").naming("addressId"))?;
        address = Some(serde_json::to_value(saved).map_err(ApiError::internal)?);
    }
    let request_hash = format!(
        "{:032x}",
        xxhash_rust::xxh3::xxh3_128(body.to_string().as_bytes())
    );
    let new = NewOrder {
        user_id: user.id(),
        user_email: Some(user.claims.email.clone()),
        lines,
        payment_method: payment,
        shipping_address: address.unwrap_or(Value::Null),
        idempotency: idem.map(|k| (k, request_hash)),
    };
    let placed = match state.store.place(&new).await {
        Ok(p) => p,
        Err(StoreError::Inventory(e)) => return Ok(inventory_error(e)),
        Err(e) => return Err(store_error(e)),
    };
    let o = &placed.order;
    let order = json!({
        "id": o.id,
        "userId": o.user_id,
        "userOrderNumber": o.user_order_number,
        "totalAmount": money(o.total_cents),
        "status": o.status,
        "paymentMethod": o.payment_method,
        "shippingAddress": parse_address(&o.shipping_address),
        "items": placed.items.iter().map(raw_item).collect::<Vec<_>>(),
        "createdAt": clock::iso(o.created_at),
        "updatedAt": clock::iso(o.updated_at),
    });
    let mut res = created("Order created successfully", json!({ "order": order }));
    if placed.replayed {
        res.headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(res)
}

// ---- lifecycle -----------------------------------------------------------------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusBody {
    #[schema(example = "processing")]
    status: Option<Value>,
    tracking_number: Option<Value>,
    courier_name: Option<Value>,
    /// Date or RFC 3339 time.
    estimated_delivery: Option<Value>,
    cancellation_reason: Option<Value>,
}

/// Move an order one step (admin). The allowed steps are the original admin
/// UI's; anything else is 409 naming the allowed next statuses.
#[utoipa::path(put, path = "/api/orders/{id}/status", tag = TAG, params(("id" = i64, Path)),
    request_body = StatusBody, security(("bearer" = [])),
    responses((status = 200, description = "Order status updated to <status>"),
        (status = 400, description = "Invalid status"), (status = 403, description = "Not an admin"),
        (status = 404, description = "Order not found"), (status = 409, description = "Not allowed from the current status")))]
pub async fn update_status(
    State(state): State<OrdersState>,
    user: AuthUser,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<StatusBody>,
) -> ApiResult<Response> {
    require_admin(&user, "Only admins can update order status")?;
    let id = order_id(&raw)?;
    let to = body
        .status
        .as_ref()
        .and_then(Value::as_str)
        .and_then(Status::parse)
        .filter(|s| Status::SETTABLE.contains(s))
        .ok_or_else(|| ApiError::field("status", "Invalid status"))?;
    let estimated = match optional_text(body.estimated_delivery.as_ref(), "estimatedDelivery", 64)?
    {
        None => None,
        Some(t) => Some(parse_time(&t).ok_or_else(|| {
            ApiError::field(
                "estimatedDelivery",
                "estimatedDelivery must be a date or an RFC 3339 time",
            )
        })?),
    };
    let shipment = Shipment {
        tracking_number: optional_text(body.tracking_number.as_ref(), "trackingNumber", 255)?,
        courier_name: optional_text(body.courier_name.as_ref(), "courierName", 255)?,
        estimated_delivery: estimated,
    };
    let reason = optional_text(
        body.cancellation_reason.as_ref(),
        "cancellationReason",
        2000,
    )?;
    let row = state
        .store
        .set_status(id, to, actor(&user), &shipment, reason)
        .await
        .map_err(store_error)?;
    Ok(ok(
        Some(&format!("Order status updated to {}", to.as_str())),
        Some(json!({ "order": raw_row(&row) })),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CancelRequestBody {
    reason: Option<Value>,
    /// Up to 10 image URLs.
    #[schema(value_type = Vec<String>)]
    images: Option<Value>,
}

/// Ask to cancel your order: while pending or processing, or within 7 days of delivery (a return).
#[utoipa::path(post, path = "/api/orders/{id}/cancel-request", tag = TAG, params(("id" = i64, Path)),
    request_body = CancelRequestBody, security(("bearer" = [])),
    responses((status = 200, description = "Cancellation request submitted"),
        (status = 400, description = "Reason missing or invalid"),
        (status = 409, description = "Not cancellable in its status, or past the 7-day window after delivery"),
        (status = 404, description = "Order not found (or not yours)")))]
pub async fn cancel_request(
    State(state): State<OrdersState>,
    user: AuthUser,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<CancelRequestBody>,
) -> ApiResult<Response> {
    let id = order_id(&raw)?;
    let reason = optional_text(body.reason.as_ref(), "reason", 2000)?
        .ok_or_else(|| ApiError::field("reason", "Cancellation reason is required"))?;
    // An http(s) URL or one of ecap's own uploads, at most 2,048 characters.
    let image = |v: Value| match v {
        Value::String(s)
            if s.chars().count() <= 2048
                && ["https://", "http://", "/media/"]
                    .iter()
                    .any(|p| s.starts_with(p)) =>
        {
            Ok(s)
        }
        _ => Err(ApiError::field("images", "Images must be http(s) URLs")),
    };
    let images: Vec<String> = match body.images {
        None | Some(Value::Null) => Vec::new(),
        // A form with one `images=` value: a list of one (a form cannot tell).
        Some(one @ Value::String(_)) => vec![image(one)?],
        Some(Value::Array(list)) if list.len() <= 10 => {
            list.into_iter().map(image).collect::<ApiResult<_>>()?
        }
        Some(_) => {
            return Err(ApiError::field(
                "images",
                "Images must be a list of at most 10 URLs",
            ));
        }
    };
    let row = state
        .store
        .request_cancellation(id, actor(&user), &reason, &images)
        .await
        .map_err(store_error)?;
    Ok(ok(
        Some(
            "Cancellation request submitted successfully. Our team will review it within 24-48 hours.",
        ),
        Some(json!({ "order": raw_row(&row) })),
    ))
}

/// Approve a cancellation request (admin): cancelled, refund pending, stock back once.
#[utoipa::path(put, path = "/api/orders/{id}/approve-cancel", tag = TAG, params(("id" = i64, Path)),
    security(("bearer" = [])),
    responses((status = 200, description = "Cancellation approved"),
        (status = 409, description = "No pending cancellation request"), (status = 403, description = "Not an admin")))]
pub async fn approve_cancel(
    State(state): State<OrdersState>,
    user: AuthUser,
    Path(raw): Path<String>,
) -> ApiResult<Response> {
    require_admin(&user, "Only admins can approve cancellations")?;
    let id = order_id(&raw)?;
    let row = state
        .store
        .approve_cancellation(id, actor(&user))
        .await
        .map_err(store_error)?;
    Ok(ok(
        Some(
            "Cancellation approved successfully. Refund will be processed within 5-7 business days.",
        ),
        Some(json!({ "order": raw_row(&row) })),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RejectBody {
    rejection_reason: Option<Value>,
}

/// Reject a cancellation request (admin): the order returns to the status it had before.
#[utoipa::path(put, path = "/api/orders/{id}/reject-cancel", tag = TAG, params(("id" = i64, Path)),
    request_body = RejectBody, security(("bearer" = [])),
    responses((status = 200, description = "Cancellation request rejected"),
        (status = 409, description = "No pending cancellation request"), (status = 403, description = "Not an admin")))]
pub async fn reject_cancel(
    State(state): State<OrdersState>,
    user: AuthUser,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<RejectBody>,
) -> ApiResult<Response> {
    require_admin(&user, "Only admins can reject cancellations")?;
    let id = order_id(&raw)?;
    let reason = optional_text(body.rejection_reason.as_ref(), "rejectionReason", 2000)?
        .unwrap_or_else(|| "Cancellation request denied".into());
    let row = state
        .store
        .reject_cancellation(id, actor(&user), &reason)
        .await
        .map_err(store_error)?;
    Ok(ok(
        Some("Cancellation request rejected. Order will continue processing."),
        Some(json!({ "order": raw_row(&row) })),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct DeleteBody {
    reason: Option<Value>,
}

/// Soft-delete an order (admin): status `deleted`; stock back unless delivered.
#[utoipa::path(delete, path = "/api/orders/{id}", tag = TAG, params(("id" = i64, Path)),
    request_body = DeleteBody, security(("bearer" = [])),
    responses((status = 200, description = "Order deleted successfully"),
        (status = 409, description = "Already deleted"), (status = 403, description = "Not an admin"),
        (status = 404, description = "Order not found")))]
pub async fn delete_order(
    State(state): State<OrdersState>,
    user: AuthUser,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<DeleteBody>,
) -> ApiResult<Response> {
    require_admin(&user, "Only admins can delete orders")?;
    let id = order_id(&raw)?;
    let reason = optional_text(body.reason.as_ref(), "reason", 500)?;
    let row = state
        .store
        .delete(id, actor(&user), reason)
        .await
        .map_err(store_error)?;
    Ok(ok(
        Some("Order deleted successfully"),
        Some(json!({ "order": raw_row(&row) })),
    ))
}

/// ecap's own route (the original had none): no old client sends it extra
/// keys, so a key it does not read is refused rather than ignored.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkDeleteBody {
    /// Up to 500 order ids.
    #[schema(value_type = Vec<i64>)]
    ids: Option<Value>,
    reason: Option<Value>,
}

/// Soft-delete several orders (admin); one result per id.
#[utoipa::path(post, path = "/api/orders/bulk-delete", tag = TAG, request_body = BulkDeleteBody,
    security(("bearer" = [])),
    responses((status = 200, description = "`data.results`, `data.succeeded`, `data.failed`"),
        (status = 400, description = "ids missing or over 500"), (status = 403, description = "Not an admin")))]
pub async fn bulk_delete(
    State(state): State<OrdersState>,
    user: AuthUser,
    ApiJson(body): ApiJson<BulkDeleteBody>,
) -> ApiResult<Response> {
    require_admin(&user, "Only admins can delete orders")?;
    // A form with one `ids=` value reads as that one id.
    let ids = match body.ids {
        Some(v @ (Value::Number(_) | Value::String(_))) => Some(Value::Array(vec![v])),
        other => other,
    };
    let ids: Vec<i64> = match &ids {
        Some(Value::Array(list)) if !list.is_empty() && list.len() <= BULK_MAX => list
            .iter()
            .map(|v| parse_int(v).filter(|n| *n > 0))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| ApiError::field("ids", "ids must be order ids"))?,
        _ => {
            return Err(ApiError::field(
                "ids",
                "ids must be a list of 1–500 order ids",
            ));
        }
    };
    let reason = optional_text(body.reason.as_ref(), "reason", 500)?;
    let mut results = Vec::new();
    let mut succeeded = 0;
    for id in ids {
        match state.store.delete(id, actor(&user), reason.clone()).await {
            Ok(_) => {
                succeeded += 1;
                results.push(json!({"id": id, "success": true}));
            }
            Err(e) => {
                let e = store_error(e);
                results.push(json!({"id": id, "success": false, "status": e.status.as_u16(), "message": e.message}));
            }
        }
    }
    let failed = results.len() - succeeded;
    Ok(ok(
        Some(&format!("Deleted {succeeded} order(s), {failed} failed")),
        Some(json!({"results": results, "succeeded": succeeded, "failed": failed})),
    ))
}

// ---- reviews ----------------------------------------------------------------------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderReviewBody {
    product_id: Option<Value>,
    #[schema(value_type = i64)]
    rating: Option<Value>,
    comment: Option<Value>,
    user_name: Option<Value>,
}

/// Review a product of your delivered order (one review per product and order).
#[utoipa::path(post, path = "/api/orders/{id}/review", tag = TAG, params(("id" = i64, Path)),
    request_body = OrderReviewBody, security(("bearer" = [])),
    responses((status = 201, description = "Review submitted successfully: `data.product`"),
        (status = 400, description = "Bad rating or product id"),
        (status = 409, description = "Not delivered / not in the order / already reviewed"),
        (status = 404, description = "Order or product not found")))]
pub async fn review_order(
    State(state): State<OrdersState>,
    user: AuthUser,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<OrderReviewBody>,
) -> ApiResult<Response> {
    let id = order_id(&raw)?;
    let mut errors = Vec::new();
    let product_id = match &body.product_id {
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_owned(),
        _ => {
            errors.push(FieldError::body("productId", "Product ID is required"));
            String::new()
        }
    };
    let rating = body
        .rating
        .as_ref()
        .and_then(parse_int)
        .filter(|r| (1..=5).contains(r));
    if rating.is_none() {
        errors.push(FieldError::body("rating", "Rating must be between 1 and 5"));
    }
    let comment = optional_text(body.comment.as_ref(), "comment", 2000)?.unwrap_or_default();
    let user_name =
        optional_text(body.user_name.as_ref(), "userName", 100)?.unwrap_or_else(|| "User".into());
    let Some(rating) = rating.filter(|_| errors.is_empty()) else {
        let mut e = ApiError::validation(errors);
        e.message = "Validation failed".into();
        return Err(e);
    };
    let order = state.store.order(id).await.map_err(store_error)?;
    if order.user_id != user.id() {
        return Err(ApiError::not_found("Order not found"));
    }
    if order.status() != Status::Delivered {
        return Err(ApiError::conflict(
            "You can only review products from delivered orders",
        ));
    }
    let items = state.store.items_of(&[id]).await.map_err(store_error)?;
    if !items.iter().any(|i| i.product_id == product_id) {
        return Err(ApiError::conflict("This product was not in this order"));
    }
    let product = state
        .reviews
        .add_review(NewReview {
            product_id,
            user_id: user.id(),
            user_name,
            order_id: id.to_string(),
            rating,
            comment,
        })
        .await
        .map_err(|e| match e {
            ReviewError::NotFound => ApiError::not_found("Product not found"),
            ReviewError::AlreadyReviewed => {
                ApiError::conflict("You have already reviewed this product")
            }
            ReviewError::Failed(m) => ApiError::internal(m),
        })?;
    Ok(created(
        "Review submitted successfully",
        json!({ "product": product }),
    ))
}

// ---- detail requests ------------------------------------------------------------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DetailRequestBody {
    /// One of the six reasons of the contract.
    reason: Option<Value>,
    other_reason: Option<Value>,
}

/// Ask to see a cancelled or deleted order's details (owner, within 30 days).
#[utoipa::path(post, path = "/api/orders/{id}/detail-request", tag = TAG, params(("id" = i64, Path)),
    request_body = DetailRequestBody, security(("bearer" = [])),
    responses((status = 201, description = "Request submitted: `data.request`"),
        (status = 400, description = "Invalid reason"),
        (status = 409, description = "Not cancelled or deleted / window expired / already pending or approved"),
        (status = 404, description = "Order not found")))]
pub async fn create_detail_request(
    State(state): State<OrdersState>,
    user: AuthUser,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<DetailRequestBody>,
) -> ApiResult<Response> {
    let id = order_id(&raw)?;
    let reason = optional_text(body.reason.as_ref(), "reason", 255)?
        .ok_or_else(|| ApiError::field("reason", "Reason is required"))?;
    if !DETAIL_REASONS.contains(&reason.as_str()) {
        return Err(ApiError::bad_request(format!(
            "Invalid reason. Allowed: {}",
            DETAIL_REASONS.join(", ")
        )));
    }
    let other = optional_text(body.other_reason.as_ref(), "otherReason", 2000)?;
    let other = if reason == "Other" {
        Some(other.ok_or_else(|| {
            ApiError::bad_request("Please provide otherReason when reason is Other")
        })?)
    } else {
        None
    };
    let order = state.store.order(id).await.map_err(store_error)?;
    if order.user_id != user.id() {
        return Err(ApiError::not_found("Order not found"));
    }
    let Some(base) = order.retention_base() else {
        return Err(ApiError::conflict(
            "Detail requests are only available for cancelled or deleted orders",
        ));
    };
    if clock::now_ms() - base > RETENTION_MS {
        return Err(ApiError::conflict(
            "Detail request window expired (30 days)",
        ));
    }
    let row = state
        .store
        .create_detail_request(&order, &reason, other)
        .await
        .map_err(store_error)?;
    Ok(created(
        "Request submitted",
        json!({ "request": request_json(&row) }),
    ))
}

/// Your latest detail request for the order, or null.
#[utoipa::path(get, path = "/api/orders/{id}/detail-request", tag = TAG, params(("id" = i64, Path)),
    security(("bearer" = [])),
    responses((status = 200, description = "`data.request` or null"), (status = 404, description = "Order not found")))]
pub async fn get_detail_request(
    State(state): State<OrdersState>,
    user: AuthUser,
    Path(raw): Path<String>,
) -> ApiResult<Response> {
    let id = order_id(&raw)?;
    let order = state.store.order(id).await.map_err(store_error)?;
    if order.user_id != user.id() {
        return Err(ApiError::not_found("Order not found"));
    }
    let latest = state
        .store
        .latest_detail_request(&order)
        .await
        .map_err(store_error)?;
    Ok(ok(
        None,
        Some(json!({ "request": latest.as_ref().map(request_json) })),
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatusParam {
    /// pending, approved or rejected.
    status: Option<String>,
}

/// Detail requests, newest first, at most 200 (admin).
#[utoipa::path(get, path = "/api/orders/detail-requests/list", tag = TAG, params(StatusParam),
    security(("bearer" = [])),
    responses((status = 200, description = "`data.requests`"), (status = 403, description = "Not an admin")))]
pub async fn list_detail_requests(
    State(state): State<OrdersState>,
    user: AuthUser,
    ApiQuery(p): ApiQuery<StatusParam>,
) -> ApiResult<Response> {
    require_admin(&user, "Only admins can view detail requests")?;
    let status = p.status.as_deref().map(str::trim).filter(|s| !s.is_empty());
    if status.is_some_and(|s| !REQUEST_STATUSES.contains(&s)) {
        return Err(ApiError::validation(vec![FieldError::new(
            Location::Query,
            "status",
            "Status must be pending, approved or rejected",
        )]));
    }
    let rows = state
        .store
        .detail_requests(status)
        .await
        .map_err(store_error)?;
    let requests: Vec<Value> = rows
        .iter()
        .map(|(r, order_status, cancelled, deleted)| {
            let mut v = request_json(r);
            v["order_status"] = json!(order_status);
            v["cancelled_at"] = iso(*cancelled);
            v["deleted_at"] = iso(*deleted);
            v
        })
        .collect();
    Ok(ok(None, Some(json!({ "requests": requests }))))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DecisionBody {
    admin_note: Option<Value>,
}

/// Approve or reject a pending detail request (admin; a decision is final).
#[utoipa::path(put, path = "/api/orders/detail-requests/{requestId}/{action}", tag = TAG,
    params(("requestId" = i64, Path), ("action" = String, Path, description = "approve or reject")),
    request_body = DecisionBody, security(("bearer" = [])),
    responses((status = 200, description = "Request approved / rejected"),
        (status = 400, description = "Invalid request ID or action"), (status = 403, description = "Not an admin"),
        (status = 404, description = "Request not found"), (status = 409, description = "Already decided")))]
pub async fn decide_detail_request(
    State(state): State<OrdersState>,
    user: AuthUser,
    Path((raw_id, action)): Path<(String, String)>,
    ApiJson(body): ApiJson<DecisionBody>,
) -> ApiResult<Response> {
    require_admin(&user, "Only admins can update detail requests")?;
    let id = raw_id
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| {
            ApiError::validation(vec![FieldError::new(
                Location::Params,
                "requestId",
                "Invalid request ID",
            )])
        })?;
    let approve = match action.as_str() {
        "approve" => true,
        "reject" => false,
        _ => {
            return Err(ApiError::validation(vec![FieldError::new(
                Location::Params,
                "action",
                "Invalid action",
            )]));
        }
    };
    let note = optional_text(body.admin_note.as_ref(), "adminNote", 2000)?;
    let row = state
        .store
        .decide_detail_request(id, user.id(), approve, note)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => ApiError::not_found("Request not found"),
            other => store_error(other),
        })?;
    Ok(ok(
        Some(if approve {
            "Request approved"
        } else {
            "Request rejected"
        }),
        Some(json!({ "request": request_json(&row) })),
    ))
}

// ---- customer soft delete and restoration ----------------------------------------

/// Hide one of your orders (restorable for 30 days through a restoration request).
#[utoipa::path(delete, path = "/api/orders/{id}/soft", tag = TAG, params(("id" = i64, Path)),
    security(("bearer" = [])),
    responses((status = 200, description = "`data.orderId`, `data.deletionExpiresAt`"),
        (status = 409, description = "Already deleted"), (status = 404, description = "Order not found")))]
pub async fn soft_delete(
    State(state): State<OrdersState>,
    user: AuthUser,
    Path(raw): Path<String>,
) -> ApiResult<Response> {
    let id = order_id(&raw)?;
    let row = state
        .store
        .hide(id, actor(&user))
        .await
        .map_err(store_error)?;
    Ok(ok(
        Some("Order deleted. You can request restoration within 30 days."),
        Some(json!({"orderId": row.id, "deletionExpiresAt": iso(row.hidden_expires_at)})),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RestoreBody {
    /// At least 10 characters.
    reason: Option<Value>,
}

/// Ask an admin to restore an order you deleted.
#[utoipa::path(post, path = "/api/orders/{id}/restore-request", tag = TAG, params(("id" = i64, Path)),
    request_body = RestoreBody, security(("bearer" = [])),
    responses((status = 200, description = "Restoration request submitted"),
        (status = 400, description = "Reason too short"),
        (status = 409, description = "Restore window expired / already requested"),
        (status = 404, description = "Deleted order not found")))]
pub async fn restore_request(
    State(state): State<OrdersState>,
    user: AuthUser,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<RestoreBody>,
) -> ApiResult<Response> {
    let id = order_id(&raw)?;
    let reason = optional_text(body.reason.as_ref(), "reason", 2000)?
        .filter(|r| r.chars().count() >= 10)
        .ok_or_else(|| {
            ApiError::field("reason", "Please provide a reason (minimum 10 characters)")
        })?;
    let row = state
        .store
        .request_restoration(id, actor(&user), &reason)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => ApiError::not_found("Deleted order not found"),
            other => store_error(other),
        })?;
    Ok(ok(
        Some("Restoration request submitted. An admin will review it shortly."),
        Some(json!({"orderId": row.id, "requestedAt": iso(row.restoration_requested_at)})),
    ))
}

/// Restoration requests (admin), newest first; `status` defaults to pending.
#[utoipa::path(get, path = "/api/orders/restoration-requests", tag = TAG, params(StatusParam),
    security(("bearer" = [])),
    responses((status = 200, description = "`data.requests`"), (status = 403, description = "Not an admin")))]
pub async fn restoration_requests(
    State(state): State<OrdersState>,
    user: AuthUser,
    ApiQuery(p): ApiQuery<StatusParam>,
) -> ApiResult<Response> {
    require_admin(&user, "Access denied. Admin privileges required.")?;
    let status = p
        .status
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or("pending");
    if !REQUEST_STATUSES.contains(&status) {
        return Err(ApiError::validation(vec![FieldError::new(
            Location::Query,
            "status",
            "Status must be pending, approved or rejected",
        )]));
    }
    let rows = state
        .store
        .restoration_requests(status)
        .await
        .map_err(store_error)?;
    let ids: Vec<i64> = rows.iter().map(|o| o.id).collect();
    let items = state.store.items_of(&ids).await.map_err(store_error)?;
    let requests: Vec<Value> = rows
        .iter()
        .map(|o| {
            let mut v = list_item(o, &items, None);
            v["restorationReason"] = json!(o.restoration_reason);
            v["restorationRequestedAt"] = iso(o.restoration_requested_at);
            v
        })
        .collect();
    Ok(ok(None, Some(json!({ "requests": requests }))))
}

async fn decide_restoration(
    state: &OrdersState,
    user: &AuthUser,
    raw: &str,
    approve: bool,
    reason: Option<String>,
) -> ApiResult<OrderRow> {
    require_admin(user, "Access denied. Admin privileges required.")?;
    let id = order_id(raw)?;
    state
        .store
        .decide_restoration(id, actor(user), approve, reason)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => ApiError::not_found("Restoration request not found"),
            other => store_error(other),
        })
}

/// Restore a customer's deleted order (admin).
#[utoipa::path(post, path = "/api/orders/{id}/restoration/approve", tag = TAG, params(("id" = i64, Path)),
    security(("bearer" = [])),
    responses((status = 200, description = "Order restored successfully"),
        (status = 404, description = "Restoration request not found")))]
pub async fn approve_restoration(
    State(state): State<OrdersState>,
    user: AuthUser,
    Path(raw): Path<String>,
) -> ApiResult<Response> {
    let row = decide_restoration(&state, &user, &raw, true, None).await?;
    let items = state.store.items_of(&[row.id]).await.map_err(store_error)?;
    Ok(ok(
        Some("Order restored successfully"),
        Some(json!({ "order": list_item(&row, &items, None) })),
    ))
}

/// Reject a restoration request (admin).
#[utoipa::path(post, path = "/api/orders/{id}/restoration/reject", tag = TAG, params(("id" = i64, Path)),
    request_body = RejectBody, security(("bearer" = [])),
    responses((status = 200, description = "Restoration request rejected"),
        (status = 404, description = "Restoration request not found")))]
pub async fn reject_restoration(
    State(state): State<OrdersState>,
    user: AuthUser,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<RejectBody>,
) -> ApiResult<Response> {
    let reason = optional_text(body.rejection_reason.as_ref(), "rejectionReason", 2000)?;
    decide_restoration(&state, &user, &raw, false, reason).await?;
    Ok(ok::<()>(Some("Restoration request rejected"), None))
}

/// Customers' deleted orders past their 30 days lose their personal data
/// (the order itself stays, as a financial record) (admin).
#[utoipa::path(post, path = "/api/orders/cleanup/expired", tag = TAG, security(("bearer" = [])),
    responses((status = 200, description = "`data.deletedCount`"), (status = 403, description = "Not an admin")))]
pub async fn cleanup_expired(
    State(state): State<OrdersState>,
    _admin: AdminUser,
) -> ApiResult<Response> {
    let n = state
        .store
        .purge_expired_hidden()
        .await
        .map_err(store_error)?;
    Ok(ok(
        Some(&format!(
            "Erased the personal data of {n} expired deleted order(s)"
        )),
        Some(json!({ "deletedCount": n })),
    ))
}

// ---- inventory sync and outbox ------------------------------------------------------

/// Reserve stock for orders that should hold some but do not (imported orders,
/// or after undo). Running it twice changes nothing.
#[utoipa::path(post, path = "/api/orders/sync-inventory", tag = TAG, security(("bearer" = [])),
    responses((status = 200, description = "`data.synced`, `skippedCount`, `skippedOrderIds`, `errors`"),
        (status = 403, description = "Not an admin")))]
pub async fn sync_inventory(
    State(state): State<OrdersState>,
    user: AuthUser,
) -> ApiResult<Response> {
    require_admin(&user, "Only admins can run inventory sync")?;
    let report = state.store.sync_inventory().await.map_err(store_error)?;
    let errors: Vec<Value> = report
        .errors
        .iter()
        .map(|(o, p, e)| json!({"orderId": o, "productId": p, "error": e}))
        .collect();
    Ok(ok(
        Some("Inventory sync completed"),
        Some(json!({
            "synced": report.synced,
            "skippedCount": report.skipped.len(),
            "skippedOrderIds": report.skipped,
            "errors": errors,
        })),
    ))
}

/// Give back exactly what sync-inventory took.
#[utoipa::path(post, path = "/api/orders/undo-sync-inventory", tag = TAG, security(("bearer" = [])),
    responses((status = 200, description = "`data.restoredOrderCount`, `errors`"),
        (status = 403, description = "Not an admin")))]
pub async fn undo_sync_inventory(
    State(state): State<OrdersState>,
    user: AuthUser,
) -> ApiResult<Response> {
    require_admin(&user, "Only admins can run undo sync")?;
    let (restored, errors) = state.store.undo_sync().await.map_err(store_error)?;
    let errors: Vec<Value> = errors
        .iter()
        .map(|(o, p, e)| json!({"orderId": o, "productId": p, "error": e}))
        .collect();
    Ok(ok(
        Some(
            "Undo sync completed. Inventory restored for previously synced orders. You can run sync-inventory again if needed.",
        ),
        Some(json!({"restoredOrderCount": restored, "errors": errors})),
    ))
}

/// Delivery state of the order events (admin).
#[utoipa::path(get, path = "/api/orders/outbox", tag = TAG, security(("bearer" = [])),
    responses((status = 200, description = "`data.pending`, `data.delivered`"), (status = 403, description = "Not an admin")))]
pub async fn outbox_status(
    State(state): State<OrdersState>,
    _admin: AdminUser,
) -> ApiResult<Response> {
    let (pending, delivered) = state.store.outbox_counts().await.map_err(store_error)?;
    Ok(ok(
        None,
        Some(json!({"pending": pending, "delivered": delivered})),
    ))
}

/// The exact bodies of this service's 2xx answers (see
/// [`ecap_core::openapi::add_response_schemas`]).
pub const RESPONSES: &str = include_str!("responses.json");

/// The rules the handlers above enforce, written into the OpenAPI document
/// from the constants the validators use (`domain` and this module).
pub fn refine_spec(api: &mut utoipa::openapi::OpenApi) {
    use ecap_core::openapi::{
        NONBLANK_CHAR, TEXT_CHAR, integer_range, param_schema, property_schema, require,
        string_enum, trimmed_text,
    };
    use utoipa::openapi::{RefOr, schema::Schema};

    let statuses: Vec<&str> = ["", "all"]
        .into_iter()
        .chain(Status::ALL.iter().map(|s| s.as_str()))
        .collect();
    let when = json!({"anyOf": [
        {"type": "string", "format": "date"},
        {"type": "string", "format": "date-time"},
    ]});
    for path in ["/api/orders", "/api/orders/active"] {
        if let Some(o) = param_schema(api, "get", path, "page") {
            integer_range(o, 1, PAGE_MAX);
        }
        if let Some(o) = param_schema(api, "get", path, "limit") {
            integer_range(o, 1, LIMIT_MAX);
        }
        if let Some(o) = param_schema(api, "get", path, "status") {
            string_enum(o, &statuses);
        }
        if let Some(o) = param_schema(api, "get", path, "userId") {
            integer_range(o, 1, i64::MAX);
        }
        set_param(api, path, "from", &when);
        set_param(api, path, "to", &when);
        // The list reads a blank value as not given (forms send `userId=`).
        for name in ["page", "limit", "userId", "from", "to"] {
            ecap_core::openapi::blank_means_absent(api, path, name);
        }
    }
    for path in [
        "/api/orders/detail-requests/list",
        "/api/orders/restoration-requests",
    ] {
        if let Some(o) = param_schema(api, "get", path, "status") {
            let values: Vec<&str> = [""].into_iter().chain(REQUEST_STATUSES).collect();
            string_enum(o, &values);
        }
    }
    if let Some(o) = param_schema(api, "post", "/api/orders", "Idempotency-Key") {
        o.min_length = Some(1);
        o.max_length = Some(255);
        o.pattern = Some("^[!-~]+$".into());
    }
    if let Some(o) = param_schema(
        api,
        "put",
        "/api/orders/detail-requests/{requestId}/{action}",
        "action",
    ) {
        string_enum(o, &["approve", "reject"]);
    }

    let text = |api: &mut utoipa::openapi::OpenApi, schema: &str, prop: &str, min, max| {
        if let Some(o) = property_schema(api, schema, prop) {
            trimmed_text(o, min, max);
        }
    };
    let t = TEXT_CHAR;
    let n = NONBLANK_CHAR;
    let product_id = json!({"type": "string", "pattern": ecap_core::ports::PRODUCT_ID_PATTERN});
    let address_field = json!({"type": "string", "maxLength": 500, "pattern": format!("^{t}*$")});
    let address_keys = ["street", "city", "state", "zipCode", "phone", "country"];
    // At least one field that is not blank: one variant per field.
    let fields: serde_json::Map<String, Value> = address_keys
        .iter()
        .map(|k| ((*k).to_owned(), address_field.clone()))
        .collect();
    let filled: Vec<Value> = address_keys
        .iter()
        .map(|k| {
            let mut props = fields.clone();
            props.insert(
                (*k).to_owned(),
                json!({"type": "string", "maxLength": 500, "pattern": format!("^{t}*{n}{t}*$")}),
            );
            json!({"type": "object", "required": [k], "properties": props, "additionalProperties": false})
        })
        .collect();
    let address = json!({
        "oneOf": [
            {"type": "string", "maxLength": 2000, "pattern": format!("^{t}*{n}{t}*$")},
            {"anyOf": filled},
        ],
    });
    // The address comes as `shippingAddress`, or as one of the caller's
    // saved addresses (`addressId`, used when both are sent).
    let properties = json!({
        "items": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_LINES,
            "items": {
                "type": "object",
                "required": ["productId", "quantity"],
                "properties": {
                    "productId": product_id,
                    "quantity": {"type": "integer", "minimum": 1, "maximum": MAX_QUANTITY},
                    "price": {"type": "number", "minimum": 0, "description": "Ignored: the catalog prices every line"},
                    "name": {"type": "string", "description": "Ignored: the catalog names every line"},
                },
            },
            "example": [{"productId": "65f0c0ffee0000000000abcd", "quantity": 2}],
        },
        "paymentMethod": {"type": "string", "enum": PAYMENT_METHODS, "example": "cod"},
        "shippingAddress": address,
        "addressId": {"type": "integer", "format": "int64", "minimum": 1, "description": "One of the caller's saved addresses, used instead of `shippingAddress` (404 when it is not theirs)"},
    });
    let variants: Vec<Value> = ["shippingAddress", "addressId"]
        .into_iter()
        .map(|a| {
            json!({
                "type": "object",
                "required": ["items", "paymentMethod", a],
                "properties": properties,
                "additionalProperties": false,
            })
        })
        .collect();
    let order = json!({ "anyOf": variants });
    set_component(api, "CreateOrderBody", order);
    // The same lines merged may still exceed MAX_QUANTITY for one product:
    // a 400 the schema cannot say (documented in the operation).

    if let Some(o) = property_schema(api, "StatusBody", "status") {
        let settable: Vec<&str> = Status::SETTABLE.iter().map(|s| s.as_str()).collect();
        string_enum(o, &settable);
    }
    require(api, "StatusBody", &["status"]);
    text(api, "StatusBody", "trackingNumber", 0, 255);
    text(api, "StatusBody", "courierName", 0, 255);
    text(api, "StatusBody", "cancellationReason", 0, 2000);
    let when_or_null = json!({"anyOf": [
        {"type": "string", "format": "date"},
        {"type": "string", "format": "date-time"},
        {"type": "null"},
    ]});
    set_property(api, "StatusBody", "estimatedDelivery", &when_or_null);

    text(api, "CancelRequestBody", "reason", 1, 2000);
    require(api, "CancelRequestBody", &["reason"]);
    // A list, or its one item (what a form with one value sends).
    let image = json!({"type": "string", "maxLength": 2048, "pattern": format!("^(https?://|/media/){}*$", ecap_core::openapi::TEXT_CHAR)});
    let images = json!({"anyOf": [{"type": "array", "maxItems": 10, "items": image}, image]});
    set_property(api, "CancelRequestBody", "images", &images);
    text(api, "RejectBody", "rejectionReason", 0, 2000);
    text(api, "DeleteBody", "reason", 0, 500);
    text(api, "BulkDeleteBody", "reason", 0, 500);
    let id = json!({"type": "integer", "format": "int64", "minimum": 1});
    let ids =
        json!({"anyOf": [{"type": "array", "minItems": 1, "maxItems": BULK_MAX, "items": id}, id]});
    set_property(api, "BulkDeleteBody", "ids", &ids);
    require(api, "BulkDeleteBody", &["ids"]);

    set_property(api, "OrderReviewBody", "productId", &product_id);
    if let Some(o) = property_schema(api, "OrderReviewBody", "rating") {
        integer_range(o, 1, 5);
    }
    text(api, "OrderReviewBody", "comment", 0, 2000);
    text(api, "OrderReviewBody", "userName", 0, 100);
    require(api, "OrderReviewBody", &["productId", "rating"]);

    // `Other` needs `otherReason`; the other five take it optionally.
    let (listed, other): (Vec<&str>, Vec<&str>) =
        DETAIL_REASONS.iter().partition(|r| **r != "Other");
    let detail = json!({"oneOf": [
        {
            "type": "object",
            "required": ["reason"],
            "properties": {
                "reason": {"type": "string", "enum": listed},
                "otherReason": {"type": ["string", "null"], "maxLength": 2000, "pattern": format!("^{t}*$")},
            },
            "additionalProperties": false,
        },
        {
            "type": "object",
            "required": ["reason", "otherReason"],
            "properties": {
                "reason": {"type": "string", "enum": other},
                "otherReason": {"type": "string", "maxLength": 2000, "pattern": format!("^{t}*{n}{t}*$")},
            },
            "additionalProperties": false,
        },
    ]});
    set_component(api, "DetailRequestBody", detail);
    text(api, "DecisionBody", "adminNote", 0, 2000);
    if let Some(o) = property_schema(api, "RestoreBody", "reason") {
        trimmed_text(o, 2, 2000);
        o.pattern = Some(format!("^{t}*{n}{t}{{8,}}{n}{t}*$"));
    }
    require(api, "RestoreBody", &["reason"]);

    fn set_component(api: &mut utoipa::openapi::OpenApi, name: &str, schema: Value) {
        match serde_json::from_value::<Schema>(schema) {
            Ok(schema) => {
                if let Some(c) = api.components.as_mut() {
                    c.schemas.insert(name.to_owned(), RefOr::T(schema));
                }
            }
            Err(e) => tracing::error!(schema = name, error = %e, "OpenAPI schema not written"),
        }
    }
    fn set_property(api: &mut utoipa::openapi::OpenApi, name: &str, prop: &str, schema: &Value) {
        if let Ok(schema) = serde_json::from_value::<Schema>(schema.clone())
            && let Some(c) = api.components.as_mut()
            && let Some(RefOr::T(Schema::Object(o))) = c.schemas.get_mut(name)
        {
            o.properties.insert(prop.to_owned(), RefOr::T(schema));
        }
    }
    fn set_param(api: &mut utoipa::openapi::OpenApi, path: &str, name: &str, schema: &Value) {
        if let Ok(schema) = serde_json::from_value::<Schema>(schema.clone())
            && let Some(p) = ecap_core::openapi::parameter(api, "get", path, name)
        {
            p.schema = Some(RefOr::T(schema));
        }
    }
}
