//! The `/api/analytics` routes. Every route needs an admin token (the
//! original had no authentication at all, S3).

use std::{convert::Infallible, time::Duration};

use axum::{
    extract::State,
    http::{HeaderValue, header},
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
};
use ecap_core::{
    auth::AdminUser,
    clock::{iso, now_ms},
    error::{ApiError, ApiResult, FieldError, Location, ok},
    events::{EventLine, OrderEvent, OrderEventKind},
    extract::{ApiJson, ApiQuery, json_int},
};
use futures::Stream;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::IntoParams;

use crate::{
    AnalyticsState,
    memory::Mirror,
    model::Dim,
    query::{
        BadParam, Granularity, Period, PeriodQuery, STATUSES, Sort, breakdown, cards, kpis, money,
    },
};

const TAG: &str = "analytics";

fn refuse(b: BadParam) -> ApiError {
    ApiError::validation(vec![FieldError::new(Location::Query, b.0, b.1)])
}

/// Period parameters shared by the routes.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Params {
    /// today, 7d, 30d, 90d or 12m. With `from`/`to` leave it out (or say
    /// `custom`): another period beside them is a 400 naming `period`.
    pub period: Option<String>,
    /// First local day of a custom period (YYYY-MM-DD, years 1000–9999).
    /// Goes with `to` (one without the other is a 400), is not after it, and
    /// the period spans at most 3,700 days.
    pub from: Option<String>,
    /// Last local day of a custom period (YYYY-MM-DD), inclusive. Goes with
    /// `from`.
    pub to: Option<String>,
    /// IANA time zone the days are counted in (default: `ECAP_TIMEZONE`).
    pub tz: Option<String>,
    /// hour, day, week or month (series only). A series has at most 5,000
    /// buckets (hourly: about 208 days): more is a 400 naming `granularity`.
    pub granularity: Option<String>,
    /// How many rows (breakdowns; 1–1000).
    pub limit: Option<String>,
    /// revenue (default) or units (breakdowns).
    pub sort: Option<String>,
    /// Export: revenue or top-products.
    pub report: Option<String>,
    /// Export: csv.
    pub format: Option<String>,
}

impl Params {
    fn period(&self, state: &AnalyticsState, default: &str) -> ApiResult<Period> {
        Period::resolve(
            &PeriodQuery {
                period: self.period.clone(),
                from: self.from.clone(),
                to: self.to.clone(),
                tz: self.tz.clone(),
            },
            default,
            &state.settings.timezone,
            now_ms(),
        )
        .map_err(refuse)
    }

    fn granularity(&self, period: &Period) -> ApiResult<Granularity> {
        match &self.granularity {
            Some(g) => Granularity::parse(g).ok_or_else(|| {
                refuse(BadParam(
                    "granularity",
                    format!("unknown granularity {g:?}: use hour, day, week or month"),
                ))
            }),
            None => Ok(match period.name.as_str() {
                "today" => Granularity::Hour,
                "12m" => Granularity::Month,
                _ => Granularity::Day,
            }),
        }
    }

    fn limit(&self, default: usize) -> ApiResult<usize> {
        match &self.limit {
            None => Ok(default),
            Some(s) => s
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=1000).contains(n))
                .ok_or_else(|| {
                    refuse(BadParam(
                        "limit",
                        format!("limit must be a whole number from 1 to 1000, got {s:?}"),
                    ))
                }),
        }
    }

    fn sort(&self) -> ApiResult<Sort> {
        match self.sort.as_deref() {
            None | Some("revenue") => Ok(Sort::Revenue),
            Some("units") => Ok(Sort::Units),
            Some(s) => Err(refuse(BadParam(
                "sort",
                format!("unknown sort {s:?}: use revenue or units"),
            ))),
        }
    }
}

fn period_json(p: &Period) -> Value {
    json!({
        "name": p.name,
        "timezone": p.tz_name,
        "firstDay": p.first_day.to_string(),
        "lastDay": p.last_day.to_string(),
        "start": iso(p.current.from),
        "end": iso(p.current.to),
        "previousStart": iso(p.previous.from),
        "previousEnd": iso(p.previous.to),
    })
}

/// The dashboard payload (also what the stream pushes).
pub fn dashboard_json(m: &Mirror, p: &Period) -> Value {
    let all = m.totals.total();
    let today = kpis(m, p.today);
    let current = kpis(m, p.current);
    let previous = kpis(m, p.previous);
    let top: Vec<Value> = breakdown(m, Dim::Product, None, Sort::Units, &[])
        .into_iter()
        .filter(|r| r.units_sold > 0)
        .take(10)
        .map(|r| json!({"productId": r.key, "sales": r.units_sold, "revenue": r.revenue}))
        .collect();
    let statuses: Vec<Value> = breakdown(m, Dim::Status, None, Sort::Revenue, &STATUSES)
        .into_iter()
        .map(|r| json!({"status": r.key, "count": r.orders, "revenue": r.gross_sales, "units": r.units}))
        .collect();
    let count_of = |s: &str| {
        m.dims
            .get(&Dim::Status)
            .and_then(|d| d.get(s))
            .map_or(0, |x| x.total().orders)
    };
    json!({
        "totalOrders": all.orders,
        "totalRevenue": money(all.net_cents),
        "ordersToday": today.t.orders,
        "revenueToday": money(today.t.net_cents),
        "topProducts": top,
        "lastUpdated": iso(now_ms()),
        "dataAsOf": if m.last_change_at > 0 { Value::String(iso(m.last_change_at)) } else { Value::Null },
        "grossSales": money(all.gross_cents),
        "itemsSold": all.units,
        "unitsSold": all.net_units,
        "deliveredOrders": count_of("delivered"),
        "statusBreakdown": statuses,
        "period": period_json(p),
        "kpis": cards(&current, &previous),
    })
}

/// Dashboard: the contract's counters, the original dashboard page's figures
/// and KPI cards for a period against the one before.
#[utoipa::path(get, path = "/api/analytics/dashboard", tag = TAG, params(Params),
    security(("bearer" = [])),
    responses((status = 200, description = "`data`: totalOrders, totalRevenue, ordersToday, revenueToday, topProducts, lastUpdated, statusBreakdown, itemsSold, deliveredOrders, period, kpis"),
        (status = 400, description = "Unknown period, bad dates or time zone"),
        (status = 401, description = "No or bad token"), (status = 403, description = "Not an admin")))]
pub async fn dashboard(
    State(state): State<AnalyticsState>,
    _admin: AdminUser,
    ApiQuery(params): ApiQuery<Params>,
) -> ApiResult<Response> {
    let p = params.period(&state, "30d")?;
    let mut data = dashboard_json(&state.store.read(), &p);
    name_products(&state, &mut data["topProducts"], "productId").await;
    Ok(ok(None, Some(data)))
}

/// Adds each product's `name`, `category` and `image` (null when the catalog
/// no longer has it, or does not answer: the figures still count) to rows
/// that carry its id under `key`.
pub async fn name_products(state: &AnalyticsState, rows: &mut Value, key: &str) {
    let Some(rows) = rows.as_array_mut() else {
        return;
    };
    let ids: Vec<String> = rows
        .iter()
        .filter_map(|r| r[key].as_str().map(str::to_owned))
        .collect();
    let found = if ids.is_empty() {
        Default::default()
    } else {
        match state.products.summaries(&ids).await {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(error = %e, "product names unavailable for analytics");
                Default::default()
            }
        }
    };
    for r in rows.iter_mut() {
        let s = r[key].as_str().and_then(|id| found.get(id));
        r["name"] = s.map_or(Value::Null, |s| Value::String(s.name.clone()));
        r["category"] = s.map_or(Value::Null, |s| Value::String(s.category.clone()));
        r["image"] = s
            .and_then(|s| s.image.clone())
            .map_or(Value::Null, Value::String);
    }
}

/// One point of a series (typed: serialised without building a JSON tree).
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Point {
    pub date: String,
    pub start: String,
    pub revenue: f64,
    pub orders: i64,
    pub gross_sales: f64,
    pub counted_orders: i64,
    pub units: i64,
    pub cancelled: i64,
    pub refunded: i64,
    pub customers: i64,
    pub new_customers: i64,
}

fn series(m: &Mirror, p: &Period, g: Granularity) -> ApiResult<Vec<Point>> {
    let buckets = p.buckets(g).map_err(refuse)?;
    Ok(buckets
        .into_iter()
        .map(|(label, w)| {
            let k = kpis(m, w);
            Point {
                date: label,
                start: iso(w.from),
                revenue: money(k.t.net_cents),
                orders: k.t.orders,
                gross_sales: money(k.t.gross_cents),
                counted_orders: k.t.net_orders,
                units: k.t.units,
                cancelled: k.t.cancelled,
                refunded: k.t.refunded,
                customers: k.customers,
                new_customers: k.t.new_customers,
            }
        })
        .collect())
}

/// The revenue answer (typed, field order as documented).
#[derive(serde::Serialize)]
struct RevenueAnswer<'a> {
    period: &'a str,
    granularity: Granularity,
    timezone: &'a str,
    range: Value,
    revenue: Vec<Point>,
}

/// Revenue over time: a complete series (empty buckets are zero), oldest first.
#[utoipa::path(get, path = "/api/analytics/revenue", tag = TAG, params(Params),
    security(("bearer" = [])),
    responses((status = 200, description = "`data`: {period, granularity, timezone, revenue: [{date, revenue, orders, …}]}"),
        (status = 400, description = "Unknown period or granularity, from after to, too many buckets"),
        (status = 401, description = "No or bad token"), (status = 403, description = "Not an admin")))]
pub async fn revenue(
    State(state): State<AnalyticsState>,
    _admin: AdminUser,
    ApiQuery(params): ApiQuery<Params>,
) -> ApiResult<Response> {
    let p = params.period(&state, "7d")?;
    let g = params.granularity(&p)?;
    let points = series(&state.store.read(), &p, g)?;
    Ok(ok(
        None,
        Some(RevenueAnswer {
            period: &p.name,
            granularity: g,
            timezone: &p.tz_name,
            range: period_json(&p),
            revenue: points,
        }),
    ))
}

async fn breakdown_answer(
    state: &AnalyticsState,
    params: &Params,
    dim: Dim,
    name: &str,
    default_limit: usize,
    always: &[&str],
) -> ApiResult<Response> {
    let p = params.period(state, "30d")?;
    let limit = params.limit(default_limit)?;
    let sort = params.sort()?;
    let mut rows = breakdown(&state.store.read(), dim, Some(p.current), sort, always);
    rows.truncate(limit);
    let mut rows = serde_json::to_value(rows).map_err(ApiError::internal)?;
    if dim == Dim::Product {
        name_products(state, &mut rows, "key").await;
    }
    Ok(ok(
        None,
        Some(json!({ "period": period_json(&p), name: rows })),
    ))
}

/// Best-selling products of a period (by net revenue or units sold).
#[utoipa::path(get, path = "/api/analytics/top-products", tag = TAG, params(Params),
    security(("bearer" = [])),
    responses((status = 200, description = "`data.products`: [{key (product id), name, category, image, orders, units, unitsSold, grossSales, revenue}]"),
        (status = 400, description = "Bad period, limit or sort"), (status = 403, description = "Not an admin")))]
pub async fn top_products(
    State(state): State<AnalyticsState>,
    _admin: AdminUser,
    ApiQuery(params): ApiQuery<Params>,
) -> ApiResult<Response> {
    breakdown_answer(&state, &params, Dim::Product, "products", 10, &[]).await
}

/// Sales per category in a period.
#[utoipa::path(get, path = "/api/analytics/categories", tag = TAG, params(Params),
    security(("bearer" = [])),
    responses((status = 200, description = "`data.categories`"),
        (status = 400, description = "Bad period, limit or sort"), (status = 403, description = "Not an admin")))]
pub async fn categories(
    State(state): State<AnalyticsState>,
    _admin: AdminUser,
    ApiQuery(params): ApiQuery<Params>,
) -> ApiResult<Response> {
    breakdown_answer(&state, &params, Dim::Category, "categories", 100, &[]).await
}

/// Orders of a period per current status (every status listed).
#[utoipa::path(get, path = "/api/analytics/status-breakdown", tag = TAG, params(Params),
    security(("bearer" = [])),
    responses((status = 200, description = "`data.statuses`"),
        (status = 400, description = "Bad period"), (status = 403, description = "Not an admin")))]
pub async fn status_breakdown(
    State(state): State<AnalyticsState>,
    _admin: AdminUser,
    ApiQuery(params): ApiQuery<Params>,
) -> ApiResult<Response> {
    breakdown_answer(&state, &params, Dim::Status, "statuses", 100, &STATUSES).await
}

/// Orders of a period per payment method.
#[utoipa::path(get, path = "/api/analytics/payment-methods", tag = TAG, params(Params),
    security(("bearer" = [])),
    responses((status = 200, description = "`data.paymentMethods`"),
        (status = 400, description = "Bad period"), (status = 403, description = "Not an admin")))]
pub async fn payment_methods(
    State(state): State<AnalyticsState>,
    _admin: AdminUser,
    ApiQuery(params): ApiQuery<Params>,
) -> ApiResult<Response> {
    breakdown_answer(&state, &params, Dim::Payment, "paymentMethods", 100, &[]).await
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) || s.starts_with(['=', '+', '-', '@']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// A report as CSV for spreadsheets.
#[utoipa::path(get, path = "/api/analytics/export", tag = TAG, params(Params),
    security(("bearer" = [])),
    responses((status = 200, description = "text/csv attachment", content_type = "text/csv"),
        (status = 400, description = "Unknown report or format, bad period"),
        (status = 403, description = "Not an admin")))]
pub async fn export(
    State(state): State<AnalyticsState>,
    _admin: AdminUser,
    ApiQuery(params): ApiQuery<Params>,
) -> ApiResult<Response> {
    match params.format.as_deref() {
        None | Some("csv") => {}
        Some(f) => {
            return Err(refuse(BadParam(
                "format",
                format!("unknown format {f:?}: csv is the one offered"),
            )));
        }
    }
    let report = params.report.as_deref().unwrap_or("revenue");
    let mut out = String::new();
    let p = match report {
        "revenue" => {
            let p = params.period(&state, "30d")?;
            let g = params.granularity(&p)?;
            // Checked though this report does not read them: a bad value is
            // refused whichever report is asked for.
            params.limit(1000)?;
            params.sort()?;
            let points = series(&state.store.read(), &p, g)?;
            out.push_str(
                "date,start,orders,gross_sales,net_revenue,counted_orders,units,cancelled,refunded,customers,new_customers\n",
            );
            for v in points {
                out.push_str(&format!(
                    "{},{},{},{:.2},{:.2},{},{},{},{},{},{}\n",
                    csv_field(&v.date),
                    v.start,
                    v.orders,
                    v.gross_sales,
                    v.revenue,
                    v.counted_orders,
                    v.units,
                    v.cancelled,
                    v.refunded,
                    v.customers,
                    v.new_customers,
                ));
            }
            p
        }
        "top-products" => {
            let p = params.period(&state, "30d")?;
            params.granularity(&p)?;
            let limit = params.limit(1000)?;
            let mut rows = breakdown(
                &state.store.read(),
                Dim::Product,
                Some(p.current),
                params.sort()?,
                &[],
            );
            rows.truncate(limit);
            let ids: Vec<String> = rows.iter().map(|r| r.key.clone()).collect();
            let names = if ids.is_empty() {
                Default::default()
            } else {
                state.products.summaries(&ids).await.unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "product names unavailable for the export");
                    Default::default()
                })
            };
            out.push_str(
                "rank,product_id,orders,units,units_sold,gross_sales,net_revenue,name,category,image\n",
            );
            for (i, r) in rows.iter().enumerate() {
                let s = names.get(&r.key);
                out.push_str(&format!(
                    "{},{},{},{},{},{:.2},{:.2},{},{},{}\n",
                    i + 1,
                    csv_field(&r.key),
                    r.orders,
                    r.units,
                    r.units_sold,
                    r.gross_sales,
                    r.revenue,
                    csv_field(s.map_or("", |s| s.name.as_str())),
                    csv_field(s.map_or("", |s| s.category.as_str())),
                    csv_field(s.and_then(|s| s.image.as_deref()).unwrap_or("")),
                ));
            }
            p
        }
        other => {
            return Err(refuse(BadParam(
                "report",
                format!("unknown report {other:?}: use revenue or top-products"),
            )));
        }
    };
    let name = format!(
        "attachment; filename=\"ecap-{report}-{}-{}.csv\"",
        p.first_day, p.last_day
    );
    let mut res = out.into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&name) {
        res.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(res)
}

/// How long the stream waits after a change for more changes to coalesce.
const COALESCE: Duration = Duration::from_millis(200);

/// Live dashboard: an `event: dashboard` with the dashboard payload at once and
/// after every change (within a second; bursts are coalesced).
#[utoipa::path(get, path = "/api/analytics/stream", tag = TAG, params(Params),
    security(("bearer" = [])),
    responses((status = 200, description = "text/event-stream of `dashboard` events", content_type = "text/event-stream"),
        (status = 400, description = "Bad period"), (status = 403, description = "Not an admin")))]
pub async fn stream(
    State(state): State<AnalyticsState>,
    _admin: AdminUser,
    ApiQuery(params): ApiQuery<Params>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    // Resolve once to refuse bad parameters before the stream starts.
    params.period(&state, "30d")?;
    let rx = state.store.subscribe();
    let stream = futures::stream::unfold(
        (state, params, rx, true),
        |(state, params, mut rx, first)| async move {
            if !first {
                rx.changed().await.ok()?;
                tokio::time::sleep(COALESCE).await;
            }
            rx.borrow_and_update();
            // "today" moves at midnight: resolve on every push.
            let mut data = match params.period(&state, "30d") {
                Ok(p) => dashboard_json(&state.store.read(), &p),
                Err(_) => return None,
            };
            name_products(&state, &mut data["topProducts"], "productId").await;
            let event = Event::default().event("dashboard").data(data.to_string());
            Some((Ok(event), (state, params, rx, false)))
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// The original's body: `{orderId, amount, items: [{productId, quantity}]}`;
/// ecap also takes `userId`, `paymentMethod`, `status`, `placedAt` and item
/// `price`/`category`.
fn tracked_event(body: &Value) -> ApiResult<(String, OrderEvent)> {
    let mut errors = Vec::new();
    let err = |errors: &mut Vec<FieldError>, path: &str, msg: &str| {
        errors.push(FieldError::body(path, msg));
    };
    let order_id = match &body["orderId"] {
        Value::String(s) if !s.trim().is_empty() && s.chars().count() <= 60 => {
            Some(s.trim().to_owned())
        }
        // An integer in the 64-bit range the document states (a whole number
        // written `706.0` too, as JSON Schema counts it).
        v @ Value::Number(n) => n
            .as_u64()
            .map(|u| u.to_string())
            .or_else(|| json_int(v).map(|i| i.to_string())),
        _ => None,
    };
    let order_id = match order_id {
        Some(id) => id,
        None => {
            err(
                &mut errors,
                "orderId",
                "orderId is required (a string or an integer, up to 60 characters)",
            );
            String::new()
        }
    };
    let cents = |v: &Value| -> Option<i64> {
        let f = v.as_f64()?;
        let c = (f * 100.0).round();
        ((0.0..1e12).contains(&f) && (f * 100.0 - c).abs() < 1e-6).then_some(c as i64)
    };
    let amount = match cents(&body["amount"]) {
        Some(c) => c,
        None => {
            err(
                &mut errors,
                "amount",
                "amount must be a number ≥ 0 with at most two decimals",
            );
            0
        }
    };
    let mut lines = Vec::new();
    match body.get("items") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) if items.len() <= 1000 => {
            for (i, it) in items.iter().enumerate() {
                let pid = match &it["productId"] {
                    Value::String(s) if !s.is_empty() && s.chars().count() <= 64 => s.clone(),
                    Value::Number(n) => n.to_string(),
                    _ => {
                        err(
                            &mut errors,
                            &format!("items[{i}].productId"),
                            "productId is required",
                        );
                        continue;
                    }
                };
                let qty = json_int(&it["quantity"]).filter(|q| (1..=1_000_000).contains(q));
                let Some(quantity) = qty else {
                    err(
                        &mut errors,
                        &format!("items[{i}].quantity"),
                        "quantity must be a whole number from 1 to 1000000",
                    );
                    continue;
                };
                let unit_price_cents = match it.get("price") {
                    None | Some(Value::Null) => 0,
                    Some(v) => match cents(v) {
                        Some(c) => c,
                        None => {
                            err(
                                &mut errors,
                                &format!("items[{i}].price"),
                                "price must be a number ≥ 0",
                            );
                            continue;
                        }
                    },
                };
                let category = it["category"].as_str().unwrap_or("Uncategorized");
                lines.push(EventLine {
                    product_id: pid,
                    category: category.chars().take(64).collect(),
                    quantity,
                    unit_price_cents,
                });
            }
        }
        Some(_) => err(
            &mut errors,
            "items",
            "items must be a list of at most 1000 {productId, quantity}",
        ),
    }
    let user_id = match body.get("userId") {
        None | Some(Value::Null) => 0,
        Some(v) => json_int(v).filter(|u| *u > 0).unwrap_or_else(|| {
            err(&mut errors, "userId", "userId must be a positive integer");
            0
        }),
    };
    let payment_method = match &body["paymentMethod"] {
        Value::Null => "unknown".to_owned(),
        Value::String(s) if !s.is_empty() && s.chars().count() <= 32 => s.clone(),
        _ => {
            err(
                &mut errors,
                "paymentMethod",
                "paymentMethod must be a short string",
            );
            String::new()
        }
    };
    let status = match &body["status"] {
        Value::Null => "pending".to_owned(),
        Value::String(s) if STATUSES.contains(&s.as_str()) => s.clone(),
        _ => {
            err(
                &mut errors,
                "status",
                "status must be one of the order statuses",
            );
            String::new()
        }
    };
    let now = now_ms();
    let placed_at = match &body["placedAt"] {
        Value::Null => now,
        Value::String(s) => match s.parse::<jiff::Timestamp>() {
            Ok(t)
                if t.as_millisecond() <= now + 86_400_000
                    && t.as_millisecond() >= 946_684_800_000 =>
            {
                t.as_millisecond()
            }
            _ => {
                err(
                    &mut errors,
                    "placedAt",
                    "placedAt must be an ISO 8601 time between 2000 and tomorrow",
                );
                now
            }
        },
        _ => {
            err(&mut errors, "placedAt", "placedAt must be an ISO 8601 time");
            now
        }
    };
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    Ok((
        format!("ext:{order_id}"),
        OrderEvent {
            event_id: String::new(),
            order_id: 0,
            user_id,
            seq: 1,
            kind: OrderEventKind::Created,
            from_status: None,
            to_status: status,
            lines,
            total_cents: amount,
            payment_method,
            placed_at,
            at: now,
        },
    ))
}

/// Records an order placed outside ecap, once per `orderId` (a repeat
/// changes nothing). ecap's own orders arrive through the outbox.
#[utoipa::path(post, path = "/api/analytics/track/order", tag = TAG,
    security(("bearer" = [])),
    request_body(content = Object, description = "{orderId, amount, items: [{productId, quantity, price?, category?}], userId?, paymentMethod?, status?, placedAt?}"),
    responses((status = 200, description = "`message`: Order analytics tracked; `data.tracked` false on a repeat"),
        (status = 400, description = "Missing or bad fields; nothing recorded"),
        (status = 403, description = "Not an admin")))]
pub async fn track_order(
    State(state): State<AnalyticsState>,
    _admin: AdminUser,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<Response> {
    if !body.is_object() {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    }
    let (key, event) = tracked_event(&body)?;
    let tracked = state
        .store
        .track(&event, &key)
        .await
        .map_err(ApiError::internal)?;
    Ok(ok(
        Some("Order analytics tracked"),
        Some(json!({"orderId": key.trim_start_matches("ext:"), "tracked": tracked})),
    ))
}

/// Kept for compatibility: daily figures are per-day buckets that start at
/// zero at midnight in the reporting time zone, so there is nothing to reset
/// and nothing is changed.
#[utoipa::path(post, path = "/api/analytics/reset/daily", tag = TAG,
    security(("bearer" = [])),
    responses((status = 200, description = "`message`: Daily counters reset; `data.changed` is false"),
        (status = 403, description = "Not an admin")))]
pub async fn reset_daily(
    State(state): State<AnalyticsState>,
    _admin: AdminUser,
) -> ApiResult<Response> {
    let p = Params::default().period(&state, "today")?;
    Ok(ok(
        Some("Daily counters reset"),
        Some(json!({
            "changed": false,
            "reason": "daily figures are computed per day in the reporting time zone and start from zero at midnight",
            "dayStarted": iso(p.today.from),
            "timezone": p.tz_name,
        })),
    ))
}

/// The exact bodies of this service's 2xx answers (see
/// [`ecap_core::openapi::add_response_schemas`]).
pub const RESPONSES: &str = include_str!("responses.json");

/// The rules the handlers above enforce, written into the OpenAPI document
/// from the constants the validators use: each route lists only the
/// parameters it reads, with their values.
pub fn refine_spec(api: &mut utoipa::openapi::OpenApi) {
    use ecap_core::openapi::{integer_range, param_schema, string_enum};
    use utoipa::openapi::{
        RefOr,
        schema::{KnownFormat, SchemaFormat},
    };

    const PERIOD: [&str; 4] = ["period", "from", "to", "tz"];
    let routes: [(&str, &[&str]); 8] = [
        ("/api/analytics/dashboard", &[]),
        ("/api/analytics/revenue", &["granularity"]),
        ("/api/analytics/top-products", &["limit", "sort"]),
        ("/api/analytics/categories", &["limit", "sort"]),
        ("/api/analytics/status-breakdown", &[]),
        ("/api/analytics/payment-methods", &[]),
        (
            "/api/analytics/export",
            &["report", "format", "granularity", "limit", "sort"],
        ),
        ("/api/analytics/stream", &[]),
    ];
    for (path, extra) in routes {
        if let Some(op) = api.paths.paths.get_mut(path).and_then(|i| i.get.as_mut())
            && let Some(params) = op.parameters.as_mut()
        {
            params.retain(|p| match p {
                RefOr::T(p) => {
                    PERIOD.contains(&p.name.as_str()) || extra.contains(&p.name.as_str())
                }
                RefOr::Ref(_) => true,
            });
        }
        if let Some(o) = param_schema(api, "get", path, "period") {
            // `custom` alone is refused (it needs from and to); from and to
            // without a period make a custom period.
            let named: Vec<&str> = crate::query::PERIODS
                .into_iter()
                .filter(|p| *p != "custom")
                .collect();
            string_enum(o, &named);
        }
        for name in ["from", "to"] {
            if let Some(o) = param_schema(api, "get", path, name) {
                o.format = Some(SchemaFormat::KnownFormat(KnownFormat::Date));
                o.pattern = Some(crate::query::DATE_PATTERN.into());
            }
        }
        if let Some(o) = param_schema(api, "get", path, "granularity") {
            string_enum(o, &["hour", "day", "week", "month"]);
        }
        if let Some(o) = param_schema(api, "get", path, "limit") {
            integer_range(o, 1, 1000);
        }
        if let Some(o) = param_schema(api, "get", path, "sort") {
            string_enum(o, &["revenue", "units"]);
        }
        if let Some(o) = param_schema(api, "get", path, "report") {
            string_enum(o, &["revenue", "top-products"]);
        }
        if let Some(o) = param_schema(api, "get", path, "format") {
            string_enum(o, &["csv"]);
        }
        if let Some(op) = api.paths.paths.get_mut(path).and_then(|i| i.get.as_mut()) {
            for p in op.parameters.iter_mut().flatten() {
                if let RefOr::T(p) = p
                    && p.name == "tz"
                {
                    p.schema = Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                        "TimeZone",
                    )));
                }
            }
        }
    }
    track_order_schema(api);
    // The zones `tz` takes: the IANA database bundled in the binary (every
    // name in it resolves; the system's database may add more), listed once.
    let db = jiff::tz::TimeZoneDatabase::bundled();
    let mut zones: Vec<String> = db.available().map(|n| n.as_str().to_owned()).collect();
    zones.sort();
    let zones: Vec<&str> = zones.iter().map(String::as_str).collect();
    let mut zone = utoipa::openapi::schema::Object::new();
    string_enum(&mut zone, &zones);
    zone.description = Some("An IANA time zone name".into());
    if let Some(c) = api.components.as_mut() {
        c.schemas.insert(
            "TimeZone".into(),
            RefOr::T(utoipa::openapi::schema::Schema::Object(zone)),
        );
    }
}

/// The body of `POST /api/analytics/track/order` in the document: the rules
/// of `tracked_event`.
fn track_order_schema(api: &mut utoipa::openapi::OpenApi) {
    use ecap_core::openapi::{NONBLANK_CHAR, TEXT_CHAR};
    let (t, n) = (TEXT_CHAR, NONBLANK_CHAR);
    let money =
        json!({"type": "number", "minimum": 0, "exclusiveMaximum": 1e12, "multipleOf": 0.01});
    let schema = json!({
        "type": "object",
        "required": ["orderId", "amount"],
        "properties": {
            "orderId": {"oneOf": [
                {"type": "string", "maxLength": 60, "pattern": format!("^{t}*{n}{t}*$")},
                {"type": "integer", "minimum": i64::MIN, "maximum": u64::MAX},
            ]},
            "amount": money,
            "items": {"type": ["array", "null"], "maxItems": 1000, "items": {
                "type": "object",
                "required": ["productId", "quantity"],
                "properties": {
                    "productId": {"oneOf": [
                        {"type": "string", "minLength": 1, "maxLength": 64, "pattern": format!("^{t}*$")},
                        {"type": "number"},
                    ]},
                    "quantity": {"type": "integer", "minimum": 1, "maximum": 1_000_000},
                    "price": {"type": ["number", "null"], "minimum": 0, "exclusiveMaximum": 1e12, "multipleOf": 0.01},
                    "category": {"type": ["string", "null"], "pattern": format!("^{t}*$")},
                },
            }},
            "userId": {"type": ["integer", "null"], "minimum": 1, "maximum": i64::MAX},
            "paymentMethod": {"type": ["string", "null"], "minLength": 1, "maxLength": 32, "pattern": format!("^{t}*$")},
            "status": {"type": ["string", "null"], "enum": STATUSES.iter().map(|s| Value::from(*s)).chain([Value::Null]).collect::<Vec<_>>()},
            "placedAt": {
                "type": ["string", "null"],
                "format": "date-time",
                "description": "Between 2000 and tomorrow (the schema admits the years 2000–2025)",
                "pattern": "^(200[0-9]|201[0-9]|202[0-5])-",
            },
        },
    });
    if let Ok(schema) = serde_json::from_value::<utoipa::openapi::schema::Schema>(schema)
        && let Some(c) = api.components.as_mut()
    {
        c.schemas
            .insert("TrackOrderBody".into(), utoipa::openapi::RefOr::T(schema));
    }
    ecap_core::openapi::set_body_schema(
        api,
        "post",
        "/api/analytics/track/order",
        "TrackOrderBody",
    );
}
