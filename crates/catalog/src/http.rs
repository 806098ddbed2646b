//! Handlers of the catalog: parse, authorise, call the store, shape the
//! contract's response. Product reads go through the response cache and carry
//! an `ETag`; every write bumps the cache generation before it answers.

use std::collections::HashSet;

use axum::{
    extract::{Multipart, Path, State, multipart::MultipartRejection},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use ecap_core::{
    ApiError, ApiResult,
    auth::{AdminUser, AuthUser, Role},
    clock,
    error::{ErrorCode, FieldError, Location, created, ok, ok_message},
    extract::{ApiJson, ApiQuery},
    ports::{NewReview, PortError, ProductDirectory, ProductReviews, ProductSummary, ReviewError},
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json, value::RawValue};
use utoipa::{IntoParams, ToSchema};

use crate::{
    CatalogState,
    cache::{CachedBody, etag_of},
    domain::{self, ProductStatus, money, parse_category_name, parse_int, parse_product_id},
    media::{self, ImageKind},
    store::{
        Adjustment, CategoryStats, ImageRow, LedgerRow, NewProduct, ProductChanges, ProductQuery,
        ProductRow, ProductSort, ReviewRow, StatusFilter, StoreError,
    },
};

pub(crate) const TAG_PRODUCTS: &str = "products";
pub(crate) const TAG_CATEGORIES: &str = "categories";

const REVIEWS_ON_DETAIL: u64 = 20;
/// Reviews each product of a listing embeds (the newest; `rating.count` says
/// how many there are, `GET /api/products/:id/reviews` pages through them).
const REVIEWS_IN_LIST: u64 = 3;

fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound => ApiError::not_found("Product not found"),
        // The category is data, not a schema enum: a name that names none is
        // a reference to something missing (404, as an unknown product is).
        StoreError::InvalidCategory => ApiError::not_found("Invalid category").naming("category"),
        StoreError::SkuTaken => ApiError::conflict("A product with this SKU already exists"),
        StoreError::CategoryTaken => ApiError::conflict("A category with this name already exists"),
        StoreError::CategoryInUse(n) => ApiError::conflict(format!(
            "Category is used by {n} product(s); move or delete them first"
        )),
        StoreError::Insufficient {
            available,
            requested,
        } => ApiError::conflict(format!(
            "Insufficient inventory for product. Available: {available}, requested: {requested}"
        )),
        StoreError::AlreadyReviewed => ApiError::conflict("You have already reviewed this product"),
        StoreError::Inventory(e) => ApiError::bad_request(e.to_string()),
        StoreError::Db(e) => ApiError::internal(e),
    }
}

/// `:id` as a product id, or the contract's 400 "Invalid product ID".
fn product_id(raw: &str) -> ApiResult<String> {
    parse_product_id(raw).ok_or_else(|| {
        ApiError::validation(vec![FieldError::new(
            Location::Params,
            "id",
            "Invalid product ID",
        )])
    })
}

/// Admins manage every product, merchants their own; nobody else any.
fn may_manage(user: &AuthUser, product: &ProductRow) -> bool {
    user.is_admin() || (user.role() == Role::Merchant && product.owner_id == Some(user.id()))
}

fn require_seller(user: &AuthUser) -> ApiResult<()> {
    match user.role() {
        Role::Admin | Role::Merchant => Ok(()),
        Role::Customer => Err(ApiError::forbidden(
            "Access denied. Only merchants and admins manage products.",
        )),
    }
}

/// Loads a product the caller may manage: 404 when missing, 403 when not theirs.
async fn managed_product(state: &CatalogState, user: &AuthUser, id: &str) -> ApiResult<ProductRow> {
    require_seller(user)?;
    let product = state
        .store
        .product(id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| ApiError::not_found("Product not found"))?;
    if !may_manage(user, &product) {
        return Err(ApiError::forbidden(
            "Access denied. Merchants manage only their own products.",
        ));
    }
    Ok(product)
}

/// After a committed write: later reads must not see the old value.
async fn written(state: &CatalogState) {
    if let Err(e) = state.cache.invalidate().await {
        tracing::error!(error = %e, "catalog cache could not be invalidated; entries expire by TTL");
    }
}

// ---- views --------------------------------------------------------------------

#[derive(Serialize)]
struct Rating {
    average: f64,
    count: i64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ImageOut {
    id: String,
    url: String,
    content_type: Option<String>,
    size: Option<i64>,
    uploaded: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReviewOut {
    #[serde(rename = "_id")]
    oid: String,
    id: i64,
    user_id: i64,
    user_name: String,
    order_id: Option<String>,
    rating: i64,
    comment: String,
    created_at: String,
}

impl ReviewOut {
    fn of(r: ReviewRow) -> Self {
        Self {
            oid: r.id.to_string(),
            id: r.id,
            user_id: r.user_id,
            user_name: r.user_name,
            order_id: (!r.order_id.is_empty()).then_some(r.order_id),
            rating: r.rating,
            comment: r.comment,
            created_at: clock::iso(r.created_at),
        }
    }
}

/// The product as every route shows it: the original's document fields
/// (`_id`, `isActive`, `rating`, `images` as URLs) and ecap's (`id`, `status`,
/// `attributes`, `imageFiles`, `ownerId`).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ProductOut<'a> {
    #[serde(rename = "_id")]
    oid: &'a str,
    id: &'a str,
    name: &'a str,
    description: &'a str,
    price: f64,
    inventory: i64,
    category: &'a str,
    tags: &'a RawValue,
    attributes: &'a RawValue,
    sku: Option<&'a str>,
    status: &'a str,
    is_active: bool,
    images: Vec<String>,
    image_files: Vec<ImageOut>,
    rating: Rating,
    owner_id: Option<i64>,
    created_at: String,
    updated_at: String,
    #[serde(rename = "__v")]
    version: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    reviews: Option<Vec<ReviewOut>>,
}

fn raw<'a>(text: &'a str, fallback: &'static str) -> &'a RawValue {
    serde_json::from_str::<&RawValue>(text)
        .or_else(|_| serde_json::from_str::<&RawValue>(fallback))
        .unwrap_or(RawValue::NULL)
}

async fn image_views(state: &CatalogState, images: Vec<ImageRow>) -> ApiResult<Vec<ImageOut>> {
    let mut out = Vec::with_capacity(images.len());
    for img in images {
        let url = match (&img.object_key, img.external_url) {
            (Some(key), _) => state.media.url(key).await.map_err(ApiError::internal)?,
            (None, Some(url)) => url,
            (None, None) => continue,
        };
        out.push(ImageOut {
            id: img.id,
            url,
            content_type: img.content_type,
            size: img.size_bytes,
            uploaded: img.object_key.is_some(),
        });
    }
    Ok(out)
}

fn product_out<'a>(
    p: &'a ProductRow,
    images: Vec<ImageOut>,
    reviews: Option<Vec<ReviewOut>>,
) -> ProductOut<'a> {
    ProductOut {
        oid: &p.id,
        id: &p.id,
        name: &p.name,
        description: &p.description,
        price: money(p.price_cents),
        inventory: p.stock,
        category: &p.category,
        tags: raw(&p.tags, "[]"),
        attributes: raw(&p.attributes, "{}"),
        sku: p.sku.as_deref(),
        status: &p.status,
        is_active: p.status == ProductStatus::Active.as_str(),
        images: images.iter().map(|i| i.url.clone()).collect(),
        image_files: images,
        rating: Rating {
            average: p.rating_avg as f64 / 100.0,
            count: p.rating_count,
        },
        owner_id: p.owner_id,
        created_at: clock::iso(p.created_at),
        updated_at: clock::iso(p.updated_at),
        version: p.version,
        reviews,
    }
}

/// The images of one product, as shown.
async fn images_of_one(state: &CatalogState, p: &ProductRow) -> ApiResult<Vec<ImageOut>> {
    let images = state
        .store
        .images_of(&[p.id.as_str()])
        .await
        .map_err(store_error)?
        .remove(&p.id)
        .unwrap_or_default();
    image_views(state, images).await
}

/// The product as write routes answer it: the detail's shape, newest reviews included.
async fn product_json(state: &CatalogState, p: &ProductRow) -> ApiResult<Value> {
    let images = images_of_one(state, p).await?;
    let reviews = newest_reviews(state, p).await?;
    serde_json::to_value(product_out(p, images, Some(reviews))).map_err(ApiError::internal)
}

async fn newest_reviews(state: &CatalogState, p: &ProductRow) -> ApiResult<Vec<ReviewOut>> {
    Ok(state
        .store
        .reviews(&p.id, 1, REVIEWS_ON_DETAIL)
        .await
        .map_err(store_error)?
        .into_iter()
        .map(ReviewOut::of)
        .collect())
}

/// A 200 JSON body with its `ETag`, or 304 when the client already has it.
fn conditional(headers: &HeaderMap, cached: &CachedBody) -> Response {
    let etag = HeaderValue::from_str(&cached.etag).ok();
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',').any(|t| {
                let t = t.trim();
                t == "*" || t.trim_start_matches("W/") == cached.etag
            })
        });
    let mut res = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            cached.body.clone(),
        )
            .into_response()
    };
    if let Some(etag) = etag {
        res.headers_mut().insert(header::ETAG, etag);
    }
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    res
}

#[derive(Serialize)]
struct Envelope<T> {
    success: bool,
    data: T,
}

fn body_bytes<T: Serialize>(data: T) -> ApiResult<Bytes> {
    serde_json::to_vec(&Envelope {
        success: true,
        data,
    })
    .map(Bytes::from)
    .map_err(ApiError::internal)
}

// ---- listing ------------------------------------------------------------------

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Page number, from 1.
    page: Option<String>,
    /// Products per page, 1–100 (default 10).
    limit: Option<String>,
    /// Exact category name.
    category: Option<String>,
    /// Words searched in name, description and tags (full-text index).
    search: Option<String>,
    /// Lowest price (0 is ignored, as in the original).
    min_price: Option<String>,
    /// Highest price (0 is ignored, as in the original).
    max_price: Option<String>,
    /// `price`, `-price`, `createdAt`, `-createdAt` (default), `name`, `-name`, `rating`, `-rating`.
    sort: Option<String>,
    /// `true`: only products with stock.
    in_stock: Option<String>,
    /// `active` (default), `archived` or `all`: admins, or merchants with `mine=true`.
    status: Option<String>,
    /// `true`: only the caller's own products (merchants and admins).
    mine: Option<String>,
}

fn query_error(path: &str, msg: &str) -> FieldError {
    FieldError::new(Location::Query, path, msg)
}

/// The texts [`parse_bool`] reads (after trimming).
const BOOL_TEXTS: [&str; 7] = ["true", "1", "yes", "false", "0", "no", ""];
/// The values of the product list's `sort`.
const PRODUCT_SORTS: [&str; 9] = [
    "",
    "price",
    "-price",
    "createdAt",
    "-createdAt",
    "name",
    "-name",
    "rating",
    "-rating",
];
/// The values of the product list's `status`.
const STATUS_FILTERS: [&str; 4] = ["", "active", "archived", "all"];
const LIST_LIMIT_MAX: i64 = 100;
const LIST_PAGE_MAX: i64 = ecap_core::extract::PAGE_MAX as i64;
const SEARCH_MAX_CHARS: usize = 200;

fn parse_bool(v: &str) -> Option<bool> {
    match v.trim() {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" | "" => Some(false),
        _ => None,
    }
}

fn price_filter(raw: Option<&str>, path: &str, errors: &mut Vec<FieldError>) -> Option<i64> {
    let raw = raw?.trim();
    if raw.is_empty() {
        return None;
    }
    match raw.parse::<f64>() {
        Ok(f) if f.is_finite() && f >= 0.0 => {
            let cents = (f * 100.0).round();
            (cents > 0.0).then(|| cents.min(9e15) as i64)
        }
        _ => {
            errors.push(query_error(
                path,
                &format!("{path} must be a positive number"),
            ));
            None
        }
    }
}

fn parse_list(p: &ListParams, user: Option<&AuthUser>) -> ApiResult<ProductQuery> {
    let mut errors = Vec::new();
    let page = match p.page.as_deref().map(str::trim) {
        None | Some("") => 1,
        Some(v) => match v.parse::<u64>() {
            Ok(n) if (1..=LIST_PAGE_MAX as u64).contains(&n) => n,
            _ => {
                errors.push(query_error("page", "Page must be a positive integer"));
                1
            }
        },
    };
    let limit = match p.limit.as_deref().map(str::trim) {
        None | Some("") => 10,
        Some(v) => match v.parse::<u64>() {
            Ok(n) if (1..=LIST_LIMIT_MAX as u64).contains(&n) => n,
            _ => {
                errors.push(query_error("limit", "Limit must be between 1 and 100"));
                10
            }
        },
    };
    let min = price_filter(p.min_price.as_deref(), "minPrice", &mut errors);
    let max = price_filter(p.max_price.as_deref(), "maxPrice", &mut errors);
    // A minPrice above maxPrice matches nothing: an empty page, as the original answered.
    let (sort, descending) = match p.sort.as_deref().map(str::trim) {
        None | Some("") | Some("-createdAt") => (ProductSort::CreatedAt, true),
        Some("createdAt") => (ProductSort::CreatedAt, false),
        Some("price") => (ProductSort::Price, false),
        Some("-price") => (ProductSort::Price, true),
        Some("name") => (ProductSort::Name, false),
        Some("-name") => (ProductSort::Name, true),
        Some("rating") => (ProductSort::Rating, false),
        Some("-rating") => (ProductSort::Rating, true),
        Some(_) => {
            errors.push(query_error(
                "sort",
                "Sort must be one of price, -price, createdAt, -createdAt, name, -name, rating, -rating",
            ));
            (ProductSort::CreatedAt, true)
        }
    };
    let in_stock = match p.in_stock.as_deref() {
        None => false,
        Some(v) => parse_bool(v).unwrap_or_else(|| {
            errors.push(query_error("inStock", "inStock must be true or false"));
            false
        }),
    };
    let mine = match p.mine.as_deref() {
        None => false,
        Some(v) => parse_bool(v).unwrap_or_else(|| {
            errors.push(query_error("mine", "mine must be true or false"));
            false
        }),
    };
    let search = p
        .search
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    if search
        .as_deref()
        .is_some_and(|s| s.chars().count() > SEARCH_MAX_CHARS)
    {
        errors.push(query_error(
            "search",
            "Search text is limited to 200 characters",
        ));
    }
    let status = match p.status.as_deref().map(str::trim) {
        None | Some("") | Some("active") => StatusFilter::Active,
        Some("archived") => StatusFilter::Archived,
        Some("all") => StatusFilter::All,
        Some(_) => {
            errors.push(query_error(
                "status",
                "Status must be active, archived or all",
            ));
            StatusFilter::Active
        }
    };
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let owner_id = if mine {
        let u = user.ok_or_else(|| {
            ApiError::unauthorized(ErrorCode::Unauthenticated, "Authentication token required")
        })?;
        Some(u.id())
    } else {
        None
    };
    if status != StatusFilter::Active && !user.is_some_and(|u| u.is_admin() || mine) {
        return Err(ApiError::forbidden(
            "Only admins (or merchants listing their own products) see archived products",
        ));
    }
    Ok(ProductQuery {
        page,
        limit,
        category: p
            .category
            .as_deref()
            .map(|c| c.trim().to_lowercase())
            .filter(|c| !c.is_empty()),
        search,
        min_price_cents: min,
        max_price_cents: max,
        in_stock,
        sort,
        descending,
        status,
        owner_id,
    })
}

/// A canonical key for a public listing, so equal queries share a cache entry.
fn list_key(q: &ProductQuery) -> String {
    format!(
        "list:{}:{}:{}:{}:{}:{}:{}:{:?}:{}",
        q.page,
        q.limit,
        q.category.as_deref().unwrap_or(""),
        q.search.as_deref().unwrap_or("").to_lowercase(),
        q.min_price_cents.unwrap_or(-1),
        q.max_price_cents.unwrap_or(-1),
        q.in_stock,
        q.sort,
        q.descending
    )
}

#[derive(Serialize)]
struct Pagination {
    page: u64,
    limit: u64,
    total: i64,
    pages: i64,
}

#[derive(Serialize)]
struct ListData<'a> {
    products: Vec<ProductOut<'a>>,
    pagination: Pagination,
}

async fn build_list(state: &CatalogState, q: &ProductQuery) -> ApiResult<Bytes> {
    let (rows, total) = state.store.list(q).await.map_err(store_error)?;
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    let mut images = state.store.images_of(&ids).await.map_err(store_error)?;
    let mut reviews = state
        .store
        .newest_reviews_of(&ids, REVIEWS_IN_LIST)
        .await
        .map_err(store_error)?;
    let mut products = Vec::with_capacity(rows.len());
    for r in &rows {
        let imgs = image_views(state, images.remove(&r.id).unwrap_or_default()).await?;
        let newest = reviews.remove(&r.id).unwrap_or_default();
        products.push(product_out(
            r,
            imgs,
            Some(newest.into_iter().map(ReviewOut::of).collect()),
        ));
    }
    let limit = i64::try_from(q.limit).unwrap_or(1).max(1);
    body_bytes(ListData {
        products,
        pagination: Pagination {
            page: q.page,
            limit: q.limit,
            total,
            pages: (total + limit - 1) / limit,
        },
    })
}

/// List products (public): filters, full-text search, sorting, pagination.
#[utoipa::path(get, path = "/api/products", tag = TAG_PRODUCTS, params(ListParams),
    responses((status = 200, description = "`data.products`, `data.pagination {page, limit, total, pages}`; `ETag` set"),
        (status = 304, description = "Not modified (If-None-Match)"),
        (status = 400, description = "Invalid query parameter"),
        (status = 401, description = "`mine=true` without a token (or a bad token)"),
        (status = 403, description = "`status` other than active for someone not an admin (merchants: with `mine=true`)")))]
pub async fn list_products(
    State(state): State<CatalogState>,
    user: Option<AuthUser>,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<Response> {
    let q = parse_list(&params, user.as_ref())?;
    // Only the public view is shared; owners' and admins' listings are built each time.
    if q.status != StatusFilter::Active || q.owner_id.is_some() {
        let body = build_list(&state, &q).await?;
        return Ok(conditional(&headers, &CachedBody::new(body)));
    }
    let key = list_key(&q);
    let cached = state
        .cache
        .get_or_build(&key, || build_list(&state, &q))
        .await
        .map_err(|e| (*e).clone())?;
    Ok(conditional(&headers, &cached))
}

// ---- one product --------------------------------------------------------------

#[derive(Serialize)]
struct ProductData<'a> {
    product: ProductOut<'a>,
}

async fn build_detail(state: &CatalogState, p: &ProductRow) -> ApiResult<Bytes> {
    let images = images_of_one(state, p).await?;
    let reviews = newest_reviews(state, p).await?;
    body_bytes(ProductData {
        product: product_out(p, images, Some(reviews)),
    })
}

/// One product with its images and latest reviews (public; archived products
/// only for admins and their merchant).
#[utoipa::path(get, path = "/api/products/{id}", tag = TAG_PRODUCTS,
    params(("id" = String, Path, description = "Product id (24 hex digits)")),
    responses((status = 200, description = "`data.product`; `ETag` set"),
        (status = 304, description = "Not modified (If-None-Match)"),
        (status = 400, description = "Invalid product ID"),
        (status = 404, description = "Product not found")))]
pub async fn get_product(
    State(state): State<CatalogState>,
    user: Option<AuthUser>,
    headers: HeaderMap,
    Path(raw_id): Path<String>,
) -> ApiResult<Response> {
    let id = product_id(&raw_id)?;
    let built = state
        .cache
        .get_or_build(&format!("product:{id}"), || async {
            let p = state
                .store
                .product(&id)
                .await
                .map_err(|e| Detail::Failed(store_error(e)))?
                .ok_or_else(|| Detail::Failed(ApiError::not_found("Product not found")))?;
            if p.status != ProductStatus::Active.as_str() {
                return Err(Detail::NotPublic(Box::new(p)));
            }
            build_detail(&state, &p).await.map_err(Detail::Failed)
        })
        .await;
    match built {
        Ok(cached) => Ok(conditional(&headers, &cached)),
        Err(e) => match e.as_ref() {
            Detail::Failed(e) => Err(e.clone()),
            // Archived: only for admins and its merchant, so never cached.
            Detail::NotPublic(p) => {
                if !user.as_ref().is_some_and(|u| may_manage(u, p)) {
                    return Err(ApiError::not_found("Product not found"));
                }
                let body = build_detail(&state, p).await?;
                Ok(conditional(&headers, &CachedBody::new(body)))
            }
        },
    }
}

/// Why a product detail was not served from (or stored in) the cache.
enum Detail {
    Failed(ApiError),
    NotPublic(Box<ProductRow>),
}

/// Product fields ecap reads; anything else in the body is ignored, never stored.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct ProductBody {
    #[schema(example = "Merino Crew-Neck Sweater")]
    name: Option<String>,
    description: Option<String>,
    /// Decimal with at most two places, ≥ 0.
    #[schema(example = 59.99)]
    price: Option<f64>,
    /// Stock on hand, integer ≥ 0 (create: initial stock; update: sets it, as a ledger entry).
    inventory: Option<i64>,
    #[schema(example = "clothing")]
    category: Option<String>,
    tags: Option<Vec<String>>,
    /// Free-form JSON object, returned as given (sizes, colours, RAM…);
    /// left out or null: none (on an update: unchanged).
    #[schema(value_type = Option<Object>)]
    attributes: Option<Value>,
    sku: Option<String>,
    /// `active` (default) or `archived` (stored, not listed or sold); `isActive` is accepted too.
    status: Option<String>,
    /// Linked image URLs (http/https). Uploaded files use POST /api/products/{id}/images.
    images: Option<Vec<String>>,
}

/// Create a product (admins and merchants; the caller becomes its owner).
#[utoipa::path(post, path = "/api/products", tag = TAG_PRODUCTS, request_body = ProductBody,
    security(("bearer" = [])),
    responses((status = 201, description = "Product created successfully: `data.product`"),
        (status = 400, description = "Validation failed"),
        (status = 404, description = "No such category (`errors` names `category`)"),
        (status = 401, description = "No or bad token"), (status = 403, description = "Customers may not"),
        (status = 409, description = "SKU taken")))]
pub async fn create_product(
    State(state): State<CatalogState>,
    user: AuthUser,
    ApiJson(body): ApiJson<Map<String, Value>>,
) -> ApiResult<Response> {
    require_seller(&user)?;
    let input = domain::product_input(&body, true).map_err(validation_failed)?;
    let new = NewProduct {
        name: input.name.unwrap_or_default(),
        description: input.description.unwrap_or_default(),
        price_cents: input.price_cents.unwrap_or_default(),
        stock: input.stock.unwrap_or(0),
        category: input.category.unwrap_or_default(),
        tags: input.tags.unwrap_or_default(),
        attributes: input.attributes.unwrap_or_else(|| json!({})),
        sku: input.sku.flatten(),
        owner_id: Some(user.id()),
        images: input.images.unwrap_or_default(),
    };
    let mut row = state.store.create(new).await.map_err(store_error)?;
    if input.status == Some(ProductStatus::Archived) {
        // Created as a draft: stored, not listed or sold until set active.
        row = state
            .store
            .update(
                &row.id,
                &ProductChanges {
                    status: Some(ProductStatus::Archived),
                    ..ProductChanges::default()
                },
                user.id(),
            )
            .await
            .map_err(store_error)?;
    }
    written(&state).await;
    let product = product_json(&state, &row).await?;
    Ok(created(
        "Product created successfully",
        json!({ "product": product }),
    ))
}

/// The contract's variant B: `message: "Validation failed"` and every rule in `errors`.
fn validation_failed(errors: Vec<FieldError>) -> ApiError {
    let mut e = ApiError::validation(errors);
    if e.errors.len() > 1 {
        e.message = "Validation failed".into();
    }
    e
}

/// Update a product (admins; merchants their own). Given fields only.
#[utoipa::path(put, path = "/api/products/{id}", tag = TAG_PRODUCTS, request_body = ProductBody,
    params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Product updated successfully: `data.product`"),
        (status = 400, description = "Validation failed"), (status = 401, description = "No or bad token"),
        (status = 403, description = "Not yours"),
        (status = 404, description = "Product not found, or no such category (`errors` names `category`)"),
        (status = 409, description = "SKU taken")))]
pub async fn update_product(
    State(state): State<CatalogState>,
    user: AuthUser,
    Path(raw_id): Path<String>,
    ApiJson(body): ApiJson<Map<String, Value>>,
) -> ApiResult<Response> {
    let id = product_id(&raw_id)?;
    let current = managed_product(&state, &user, &id).await?;
    let body = without_uploaded_urls(&state, &current, body).await?;
    let changes = domain::product_input(&body, false).map_err(validation_failed)?;
    if changes.is_empty() {
        return Err(ApiError::bad_request("No product fields to update"));
    }
    let row = state
        .store
        .update(&id, &changes, user.id())
        .await
        .map_err(store_error)?;
    written(&state).await;
    let product = product_json(&state, &row).await?;
    Ok(ok(
        Some("Product updated successfully"),
        Some(json!({ "product": product })),
    ))
}

/// The original's admin page sends the whole product back on update, `images`
/// included: the URLs of the product's uploaded files are the files
/// themselves (kept as they are), not links to add. Compared without the
/// query string, which a presigned S3 URL changes on every read.
async fn without_uploaded_urls(
    state: &CatalogState,
    product: &ProductRow,
    mut body: Map<String, Value>,
) -> ApiResult<Map<String, Value>> {
    let Some(Value::Array(urls)) = body.get_mut("images") else {
        return Ok(body);
    };
    let base = |u: &str| u.split('?').next().unwrap_or(u).to_owned();
    let uploaded: HashSet<String> = images_of_one(state, product)
        .await?
        .into_iter()
        .filter(|i| i.uploaded)
        .map(|i| base(&i.url))
        .collect();
    if !uploaded.is_empty() {
        urls.retain(|u| !u.as_str().is_some_and(|u| uploaded.contains(&base(u))));
    }
    Ok(body)
}

/// Archive a product (the contract's soft delete): no longer listed or sold.
#[utoipa::path(delete, path = "/api/products/{id}", tag = TAG_PRODUCTS,
    params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Product deleted successfully"),
        (status = 401, description = "No or bad token"), (status = 403, description = "Not yours"),
        (status = 404, description = "Product not found")))]
pub async fn delete_product(
    State(state): State<CatalogState>,
    user: AuthUser,
    Path(raw_id): Path<String>,
) -> ApiResult<Response> {
    let id = product_id(&raw_id)?;
    managed_product(&state, &user, &id).await?;
    state
        .store
        .update(
            &id,
            &ProductChanges {
                status: Some(ProductStatus::Archived),
                ..ProductChanges::default()
            },
            user.id(),
        )
        .await
        .map_err(store_error)?;
    written(&state).await;
    Ok(ok_message("Product deleted successfully"))
}

// ---- inventory ----------------------------------------------------------------

#[derive(Debug, Deserialize, ToSchema)]
pub struct InventoryBody {
    /// Units to add (positive) or deduct (negative).
    #[schema(value_type = i64, example = -2)]
    change: Option<Value>,
    /// Why (kept in the ledger).
    reason: Option<String>,
}

/// Adjust stock by `change` (admins; merchants their own): a manual ledger entry.
#[utoipa::path(patch, path = "/api/products/{id}/inventory", tag = TAG_PRODUCTS,
    request_body = InventoryBody, params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, description = "`data.product`, `data.previousInventory`, `data.change`"),
        (status = 400, description = "Not an integer"),
        (status = 409, description = "Insufficient inventory"),
        (status = 401, description = "No or bad token"), (status = 403, description = "Not yours"),
        (status = 404, description = "Product not found")))]
pub async fn adjust_inventory(
    State(state): State<CatalogState>,
    user: AuthUser,
    Path(raw_id): Path<String>,
    ApiJson(body): ApiJson<InventoryBody>,
) -> ApiResult<Response> {
    let id = product_id(&raw_id)?;
    managed_product(&state, &user, &id).await?;
    let change = body
        .change
        .as_ref()
        .and_then(parse_int)
        .filter(|c| c.abs() <= domain::MAX_STOCK)
        .ok_or_else(|| {
            ApiError::field(
                "change",
                "Change must be an integer (negative to deduct, positive to restore)",
            )
        })?;
    let reason = body
        .reason
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty());
    if reason.as_deref().is_some_and(|r| r.chars().count() > 500) {
        return Err(ApiError::field(
            "reason",
            "Reason is limited to 500 characters",
        ));
    }
    managed_product(&state, &user, &id).await?;
    let (row, previous) = state
        .store
        .adjust(
            &id,
            change,
            &Adjustment {
                actor_id: user.id(),
                reason,
            },
        )
        .await
        .map_err(store_error)?;
    written(&state).await;
    let product = product_json(&state, &row).await?;
    Ok(ok(
        Some("Inventory updated successfully"),
        Some(json!({ "product": product, "previousInventory": previous, "change": change })),
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    page: Option<u64>,
    /// 1–100, default 20.
    limit: Option<u64>,
}

fn page_of(p: &PageParams) -> ApiResult<(u64, u64)> {
    let page = p.page.unwrap_or(1);
    let limit = p.limit.unwrap_or(20);
    if !(1..=LIST_PAGE_MAX as u64).contains(&page) {
        return Err(ApiError::validation(vec![query_error(
            "page",
            &format!("page must be between 1 and {LIST_PAGE_MAX}"),
        )]));
    }
    if !(1..=LIST_LIMIT_MAX as u64).contains(&limit) {
        return Err(ApiError::validation(vec![query_error(
            "limit",
            &format!("limit must be between 1 and {LIST_LIMIT_MAX}"),
        )]));
    }
    Ok((page, limit))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LedgerOut {
    id: i64,
    cause: String,
    kind: String,
    change: i64,
    stock_after: i64,
    order_id: Option<String>,
    actor_id: Option<i64>,
    reason: Option<String>,
    created_at: String,
}

impl LedgerOut {
    fn of(r: LedgerRow) -> Self {
        Self {
            id: r.id,
            cause: r.cause,
            kind: r.kind,
            change: r.delta,
            stock_after: r.stock_after,
            order_id: r.order_id,
            actor_id: r.actor_id,
            reason: r.reason,
            created_at: clock::iso(r.created_at),
        }
    }
}

/// The product's stock ledger, newest first (admins; merchants their own).
#[utoipa::path(get, path = "/api/products/{id}/inventory/history", tag = TAG_PRODUCTS,
    params(("id" = String, Path), PageParams), security(("bearer" = [])),
    responses((status = 200, description = "`data.entries`, `data.inventory`, `data.pagination`"),
        (status = 401, description = "No or bad token"), (status = 403, description = "Not yours"),
        (status = 404, description = "Product not found")))]
pub async fn inventory_history(
    State(state): State<CatalogState>,
    user: AuthUser,
    Path(raw_id): Path<String>,
    ApiQuery(params): ApiQuery<PageParams>,
) -> ApiResult<Response> {
    let id = product_id(&raw_id)?;
    let (page, limit) = page_of(&params)?;
    let product = managed_product(&state, &user, &id).await?;
    let (rows, total) = state
        .store
        .ledger(&id, page, limit)
        .await
        .map_err(store_error)?;
    let limit_i = i64::try_from(limit).unwrap_or(1);
    Ok(ok(
        None,
        Some(json!({
            "productId": id,
            "inventory": product.stock,
            "entries": rows.into_iter().map(LedgerOut::of).collect::<Vec<_>>(),
            "pagination": {"page": page, "limit": limit, "total": total,
                "pages": (total + limit_i - 1) / limit_i},
        })),
    ))
}

// ---- reviews ------------------------------------------------------------------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReviewBody {
    /// Integer 1–5.
    #[schema(value_type = i64, example = 5)]
    rating: Option<Value>,
    comment: Option<String>,
    /// Display name (default "User"); the reviewer is always the token's user.
    user_name: Option<String>,
    /// Which delivered order the review is for (default: the oldest not yet
    /// reviewed): its id, as text or a number.
    #[schema(value_type = Option<String>)]
    order_id: Option<Value>,
}

/// Review a product you received (a delivered order of yours must contain it).
#[utoipa::path(post, path = "/api/products/{id}/reviews", tag = TAG_PRODUCTS,
    request_body = ReviewBody, params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 201, description = "Review added successfully: `data.product`"),
        (status = 400, description = "Invalid rating"),
        (status = 409, description = "Already reviewed"),
        (status = 401, description = "No or bad token"),
        (status = 403, description = "No delivered order of yours contains this product"),
        (status = 404, description = "Product not found")))]
pub async fn add_review(
    State(state): State<CatalogState>,
    user: AuthUser,
    Path(raw_id): Path<String>,
    ApiJson(body): ApiJson<ReviewBody>,
) -> ApiResult<Response> {
    let id = product_id(&raw_id)?;
    let mut errors = Vec::new();
    let rating = body
        .rating
        .as_ref()
        .and_then(parse_int)
        .filter(|r| (1..=5).contains(r));
    if rating.is_none() {
        errors.push(FieldError::body("rating", "Rating must be between 1 and 5"));
    }
    let comment = body.comment.unwrap_or_default().trim().to_owned();
    if comment.chars().count() > 2000 {
        errors.push(FieldError::body(
            "comment",
            "Comment is limited to 2000 characters",
        ));
    }
    let user_name = body
        .user_name
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "User".into());
    if user_name.chars().count() > 100 {
        errors.push(FieldError::body(
            "userName",
            "Name is limited to 100 characters",
        ));
    }
    let wanted_order = match &body.order_id {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.trim().to_owned()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(_) => {
            errors.push(FieldError::body(
                "orderId",
                "orderId must be a string or number",
            ));
            None
        }
    };
    let Some(rating) = rating.filter(|_| errors.is_empty()) else {
        return Err(validation_failed(errors));
    };
    if state
        .store
        .product(&id)
        .await
        .map_err(store_error)?
        .is_none()
    {
        return Err(ApiError::not_found("Product not found"));
    }
    let delivered = state
        .purchases
        .delivered_orders_with(user.id(), &id)
        .await
        .map_err(ApiError::internal)?;
    let eligible: Vec<String> = match &wanted_order {
        Some(o) => delivered.into_iter().filter(|d| d == o).collect(),
        None => delivered,
    };
    if eligible.is_empty() {
        return Err(ApiError::forbidden(
            "You can only review products from your delivered orders",
        ));
    }
    let reviewed = state
        .store
        .reviewed_orders(&id, user.id())
        .await
        .map_err(store_error)?;
    let Some(order_id) = eligible.into_iter().find(|o| !reviewed.contains(o)) else {
        return Err(ApiError::conflict("You have already reviewed this product"));
    };
    let row = state
        .store
        .add_review(&ReviewRow {
            id: 0,
            product_id: id,
            user_id: user.id(),
            user_name,
            order_id,
            rating,
            comment,
            created_at: clock::now_ms(),
        })
        .await
        .map_err(store_error)?;
    written(&state).await;
    let product = product_json(&state, &row).await?;
    Ok(created(
        "Review added successfully",
        json!({ "product": product }),
    ))
}

/// The in-process [`ProductDirectory`]: names, categories and first images
/// straight from the catalog (archived products included: figures outlive sales).
#[derive(Clone)]
pub struct CatalogDirectory(pub CatalogState);

#[async_trait::async_trait]
impl ProductDirectory for CatalogDirectory {
    async fn summaries(
        &self,
        ids: &[String],
    ) -> Result<std::collections::HashMap<String, ProductSummary>, PortError> {
        let state = &self.0;
        let port = |e: &dyn std::fmt::Display| PortError(e.to_string());
        let mut refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        refs.sort_unstable();
        refs.dedup();
        // Two queries whatever the number of ids.
        let rows = state
            .store
            .products_by_ids(&refs)
            .await
            .map_err(|e| port(&e))?;
        let mut images = state.store.images_of(&refs).await.map_err(|e| port(&e))?;
        let mut out = std::collections::HashMap::with_capacity(rows.len());
        for p in rows {
            let first = images
                .remove(&p.id)
                .unwrap_or_default()
                .into_iter()
                .min_by_key(|i| i.position);
            let image = match first {
                Some(img) => image_views(state, vec![img])
                    .await
                    .map_err(|e| port(&e.message))?
                    .into_iter()
                    .next()
                    .map(|i| i.url),
                None => None,
            };
            out.insert(
                p.id.clone(),
                ProductSummary {
                    id: p.id,
                    name: p.name,
                    category: p.category,
                    image,
                },
            );
        }
        Ok(out)
    }
}

/// The `ProductReviews` port served by this process's catalog: the orders
/// service has checked the purchase; the unique index still refuses a second
/// review of the same product under the same order.
#[derive(Clone)]
pub struct CatalogReviews(pub CatalogState);

#[async_trait::async_trait]
impl ProductReviews for CatalogReviews {
    async fn add_review(&self, r: NewReview) -> Result<Value, ReviewError> {
        let state = &self.0;
        let row = state
            .store
            .add_review(&ReviewRow {
                id: 0,
                product_id: r.product_id,
                user_id: r.user_id,
                user_name: r.user_name,
                order_id: r.order_id,
                rating: r.rating,
                comment: r.comment,
                created_at: clock::now_ms(),
            })
            .await
            .map_err(|e| match e {
                StoreError::NotFound => ReviewError::NotFound,
                StoreError::AlreadyReviewed => ReviewError::AlreadyReviewed,
                other => ReviewError::Failed(other.to_string()),
            })?;
        written(state).await;
        product_json(state, &row)
            .await
            .map_err(|e| ReviewError::Failed(e.message))
    }
}

/// A page of a product's reviews, newest first (public).
#[utoipa::path(get, path = "/api/products/{id}/reviews", tag = TAG_PRODUCTS,
    params(("id" = String, Path), PageParams),
    responses((status = 200, description = "`data.reviews`, `data.rating`"),
        (status = 404, description = "Product not found")))]
pub async fn list_reviews(
    State(state): State<CatalogState>,
    Path(raw_id): Path<String>,
    ApiQuery(params): ApiQuery<PageParams>,
) -> ApiResult<Response> {
    let id = product_id(&raw_id)?;
    let (page, limit) = page_of(&params)?;
    let p = state
        .store
        .product(&id)
        .await
        .map_err(store_error)?
        .filter(|p| p.status == ProductStatus::Active.as_str())
        .ok_or_else(|| ApiError::not_found("Product not found"))?;
    let reviews: Vec<ReviewOut> = state
        .store
        .reviews(&id, page, limit)
        .await
        .map_err(store_error)?
        .into_iter()
        .map(ReviewOut::of)
        .collect();
    Ok(ok(
        None,
        Some(json!({
            "reviews": reviews,
            "rating": {"average": p.rating_avg as f64 / 100.0, "count": p.rating_count},
            "pagination": {"page": page, "limit": limit, "total": p.rating_count},
        })),
    ))
}

// ---- images -------------------------------------------------------------------

/// Upload images (multipart, field `image` or `images`; JPEG, PNG or WebP,
/// checked by content; 5 MiB each by default). Admins; merchants their own.
#[utoipa::path(post, path = "/api/products/{id}/images", tag = TAG_PRODUCTS,
    params(("id" = String, Path)), security(("bearer" = [])),
    request_body(content_type = "multipart/form-data", description = "One or more files in field `image`"),
    responses((status = 201, description = "Images uploaded: `data.product`, `data.images`"),
        (status = 400, description = "Not an image / no file"),
        (status = 401, description = "No or bad token"), (status = 403, description = "Not yours"),
        (status = 404, description = "Product not found"),
        (status = 413, description = "File over the limit")))]
pub async fn upload_images(
    State(state): State<CatalogState>,
    user: AuthUser,
    Path(raw_id): Path<String>,
    multipart: Result<Multipart, MultipartRejection>,
) -> ApiResult<Response> {
    let id = product_id(&raw_id)?;
    managed_product(&state, &user, &id).await?;
    // Not multipart, or without its boundary: the JSON error, not axum's text.
    let mut multipart = multipart.map_err(|e| {
        ApiError::bad_request(format!(
            "The upload must be multipart/form-data with a boundary: {}",
            e.body_text()
        ))
    })?;
    let limit = state.settings.max_image_bytes;
    // Everything is read and checked before anything is stored: a bad file
    // among good ones changes nothing.
    let mut files: Vec<(Bytes, ImageKind)> = Vec::new();
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return Err(multipart_error(e.status(), &e.body_text())),
        };
        if field.file_name().is_none() && !matches!(field.name(), Some("image" | "images" | "file"))
        {
            continue;
        }
        let mut field = field;
        let mut data = Vec::new();
        loop {
            match field.chunk().await {
                Ok(Some(chunk)) => {
                    if data.len() + chunk.len() > limit {
                        return Err(too_large(limit));
                    }
                    data.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => return Err(multipart_error(e.status(), &e.body_text())),
            }
        }
        let Some(kind) = media::sniff(&data) else {
            return Err(ApiError::field(
                "image",
                "Only JPEG, PNG and WebP images are accepted (checked by content)",
            ));
        };
        if files.len() >= 10 {
            return Err(ApiError::field("image", "At most 10 images per upload"));
        }
        files.push((Bytes::from(data), kind));
    }
    if files.is_empty() {
        return Err(ApiError::field(
            "image",
            "No image file in the request (field `image`)",
        ));
    }
    let mut added = Vec::new();
    for (bytes, kind) in files {
        let image_id = uuid::Uuid::now_v7().to_string();
        let key = media::image_key(&id, &image_id, kind);
        let size = i64::try_from(bytes.len()).unwrap_or(i64::MAX);
        state
            .media
            .put(&key, bytes, kind)
            .await
            .map_err(ApiError::internal)?;
        let row = ImageRow {
            id: image_id,
            product_id: id.clone(),
            object_key: Some(key.clone()),
            external_url: None,
            content_type: Some(kind.content_type().to_owned()),
            size_bytes: Some(size),
            position: 0,
            created_at: clock::now_ms(),
        };
        if let Err(e) = state.store.add_image(&row).await {
            // Do not leave an orphan file behind a failed insert.
            let _ = state.media.delete(&key).await;
            return Err(store_error(e));
        }
        added.push(row.id);
    }
    written(&state).await;
    let row = state
        .store
        .product(&id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| ApiError::not_found("Product not found"))?;
    let product = product_json(&state, &row).await?;
    Ok(created(
        "Images uploaded successfully",
        json!({ "product": product, "imageIds": added }),
    ))
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::PayloadTooLarge,
        format!("Image is larger than the limit of {limit} bytes"),
    )
}

fn multipart_error(status: StatusCode, text: &str) -> ApiError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::new(
            status,
            ErrorCode::PayloadTooLarge,
            "Request body is too large",
        );
    }
    ApiError::bad_request(format!("Could not read the upload: {text}"))
}

/// Remove an image from a product (and its file).
#[utoipa::path(delete, path = "/api/products/{id}/images/{imageId}", tag = TAG_PRODUCTS,
    params(("id" = String, Path), ("imageId" = String, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Image deleted successfully"),
        (status = 401, description = "No or bad token"), (status = 403, description = "Not yours"),
        (status = 404, description = "Product or image not found")))]
pub async fn delete_image(
    State(state): State<CatalogState>,
    user: AuthUser,
    Path((raw_id, image_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let id = product_id(&raw_id)?;
    managed_product(&state, &user, &id).await?;
    let row = state
        .store
        .remove_image(&id, &image_id)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => ApiError::not_found("Image not found"),
            other => store_error(other),
        })?;
    written(&state).await;
    if let Some(key) = &row.object_key
        && let Err(e) = state.media.delete(key).await
    {
        tracing::warn!(error = %e, key, "image file not deleted; the row is gone");
    }
    Ok(ok_message("Image deleted successfully"))
}

/// Files of the local media store (`./data/media`), as `/media/<key>`.
pub async fn serve_media(
    State(state): State<CatalogState>,
    headers: HeaderMap,
    Path(key): Path<String>,
) -> Response {
    // Only product images of the local store: an S3 bucket is read through
    // presigned URLs, never proxied (it may hold other objects).
    if !state.media.is_local() || !key.starts_with("products/") {
        return ApiError::not_found("File not found").into_response();
    }
    match state.media.get(&key).await {
        Ok(Some((bytes, content_type))) => {
            let etag = etag_of(&bytes);
            if headers
                .get(header::IF_NONE_MATCH)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.split(',').any(|t| t.trim() == etag))
            {
                return StatusCode::NOT_MODIFIED.into_response();
            }
            let mut res = (
                [
                    (header::CONTENT_TYPE, content_type),
                    // Keys are never reused: a file under a key never changes.
                    (
                        header::CACHE_CONTROL,
                        "public, max-age=31536000, immutable".to_owned(),
                    ),
                ],
                bytes,
            )
                .into_response();
            if let Ok(v) = HeaderValue::from_str(&etag) {
                res.headers_mut().insert(header::ETAG, v);
            }
            res
        }
        Ok(None) | Err(media::MediaError::InvalidKey) => {
            ApiError::not_found("File not found").into_response()
        }
        Err(e) => ApiError::internal(e).into_response(),
    }
}

// ---- categories ---------------------------------------------------------------

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CategoryOut {
    id: i64,
    name: String,
    product_count: i64,
    units_in_stock: i64,
    stock_value: f64,
    created_at: String,
}

/// The categories (public): the contract's `categories` names, plus
/// `details` with each one's active products, units in stock and stock value.
#[utoipa::path(get, path = "/api/categories", tag = TAG_CATEGORIES,
    responses((status = 200, description = "`data.categories` (names), `data.details`")))]
pub async fn list_categories(
    State(state): State<CatalogState>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let cached = state
        .cache
        .get_or_build("categories", || async {
            let rows: Vec<CategoryStats> = state.store.categories().await.map_err(store_error)?;
            let names: Vec<&str> = rows.iter().map(|c| c.name.as_str()).collect();
            let details: Vec<CategoryOut> = rows
                .iter()
                .map(|c| CategoryOut {
                    id: c.id,
                    name: c.name.clone(),
                    product_count: c.product_count,
                    units_in_stock: c.units_in_stock,
                    stock_value: money(c.stock_value_cents),
                    created_at: clock::iso(c.created_at),
                })
                .collect();
            body_bytes(json!({ "categories": names, "details": details }))
        })
        .await
        .map_err(|e| (*e).clone())?;
    Ok(conditional(&headers, &cached))
}

/// ecap's own routes (the original's categories were a fixed list): no old
/// client sends extra keys, so a key it does not read is refused.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CategoryBody {
    #[schema(example = "garden")]
    name: Option<String>,
}

fn category_name(body: &CategoryBody) -> ApiResult<String> {
    body.name
        .as_deref()
        .and_then(parse_category_name)
        .ok_or_else(|| {
            ApiError::field(
                "name",
                "Category name must be 1–64 letters, digits, spaces, '-' or '_'",
            )
        })
}

fn category_error(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound => ApiError::not_found("Category not found"),
        other => store_error(other),
    }
}

fn category_param(raw: &str) -> ApiResult<String> {
    parse_category_name(raw).ok_or_else(|| ApiError::not_found("Category not found"))
}

/// Create a category (admin).
#[utoipa::path(post, path = "/api/categories", tag = TAG_CATEGORIES, request_body = CategoryBody,
    security(("bearer" = [])),
    responses((status = 201, description = "Category created"), (status = 400, description = "Invalid name"),
        (status = 403, description = "Admins only"), (status = 409, description = "Exists already")))]
pub async fn create_category(
    State(state): State<CatalogState>,
    AdminUser(_admin): AdminUser,
    ApiJson(body): ApiJson<CategoryBody>,
) -> ApiResult<Response> {
    let name = category_name(&body)?;
    state
        .store
        .create_category(&name)
        .await
        .map_err(store_error)?;
    written(&state).await;
    Ok(created(
        "Category created successfully",
        json!({ "category": { "name": name } }),
    ))
}

/// Rename a category (admin); its products follow.
#[utoipa::path(put, path = "/api/categories/{name}", tag = TAG_CATEGORIES, request_body = CategoryBody,
    params(("name" = String, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Category renamed"), (status = 400, description = "Invalid name"),
        (status = 403, description = "Admins only"), (status = 404, description = "Category not found"),
        (status = 409, description = "Name taken")))]
pub async fn rename_category(
    State(state): State<CatalogState>,
    AdminUser(_admin): AdminUser,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<CategoryBody>,
) -> ApiResult<Response> {
    let from = category_param(&raw)?;
    let to = category_name(&body)?;
    if from != to {
        state
            .store
            .rename_category(&from, &to)
            .await
            .map_err(category_error)?;
        written(&state).await;
    }
    Ok(ok(
        Some("Category renamed successfully"),
        Some(json!({ "category": { "name": to, "previousName": from } })),
    ))
}

/// Delete a category no product uses (admin); 409 while products use it.
#[utoipa::path(delete, path = "/api/categories/{name}", tag = TAG_CATEGORIES,
    params(("name" = String, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Category deleted"), (status = 403, description = "Admins only"),
        (status = 404, description = "Category not found"), (status = 409, description = "In use")))]
pub async fn delete_category(
    State(state): State<CatalogState>,
    AdminUser(_admin): AdminUser,
    Path(raw): Path<String>,
) -> ApiResult<Response> {
    let name = category_param(&raw)?;
    state
        .store
        .delete_category(&name)
        .await
        .map_err(category_error)?;
    written(&state).await;
    Ok(ok_message("Category deleted successfully"))
}

/// The exact bodies of this service's 2xx answers (see
/// [`ecap_core::openapi::add_response_schemas`]).
pub const RESPONSES: &str = include_str!("responses.json");

/// The rules the handlers above enforce, written into the OpenAPI document
/// from the constants the validators use (`domain` and this module).
pub fn refine_spec(api: &mut utoipa::openapi::OpenApi) {
    use domain::{
        CATEGORY_PATTERN, IMAGE_URL_PATTERN, MAX_DESCRIPTION_CHARS, MAX_IMAGES, MAX_NAME_CHARS,
        MAX_PRICE_CENTS, MAX_SKU_CHARS, MAX_STOCK, MAX_TAG_CHARS, MAX_TAGS, SKU_PATTERN,
    };
    use ecap_core::openapi::{
        integer_range, optional_copy, param_schema, property_schema, require, set_body_schema,
        string_enum, trimmed_text,
    };
    use utoipa::openapi::{
        RefOr,
        schema::{Object, Schema, SchemaType, Type},
    };

    let list = "/api/products";
    if let Some(o) = param_schema(api, "get", list, "page") {
        integer_range(o, 1, LIST_PAGE_MAX);
    }
    if let Some(o) = param_schema(api, "get", list, "limit") {
        integer_range(o, 1, LIST_LIMIT_MAX);
    }
    for name in ["minPrice", "maxPrice"] {
        if let Some(o) = param_schema(api, "get", list, name) {
            o.schema_type = SchemaType::Type(Type::Number);
            o.minimum = Some(utoipa::Number::Int(0));
        }
    }
    if let Some(o) = param_schema(api, "get", list, "sort") {
        string_enum(o, &PRODUCT_SORTS);
    }
    if let Some(o) = param_schema(api, "get", list, "status") {
        string_enum(o, &STATUS_FILTERS);
    }
    for name in ["inStock", "mine"] {
        if let Some(o) = param_schema(api, "get", list, name) {
            string_enum(o, &BOOL_TEXTS);
        }
    }
    if let Some(o) = param_schema(api, "get", list, "search") {
        o.max_length = Some(SEARCH_MAX_CHARS);
    }
    for path in [
        "/api/products/{id}/reviews",
        "/api/products/{id}/inventory/history",
    ] {
        if let Some(o) = param_schema(api, "get", path, "page") {
            integer_range(o, 1, LIST_PAGE_MAX);
        }
        if let Some(o) = param_schema(api, "get", path, "limit") {
            integer_range(o, 1, LIST_LIMIT_MAX);
        }
    }

    let text = |api: &mut utoipa::openapi::OpenApi, schema: &str, prop: &str, min, max| {
        if let Some(o) = property_schema(api, schema, prop) {
            trimmed_text(o, min, max);
        }
    };
    text(api, "ProductBody", "name", 1, MAX_NAME_CHARS);
    text(api, "ProductBody", "description", 1, MAX_DESCRIPTION_CHARS);
    if let Some(o) = property_schema(api, "ProductBody", "price") {
        o.minimum = Some(utoipa::Number::Int(0));
        o.maximum = Some(utoipa::Number::Int((MAX_PRICE_CENTS / 100) as isize));
        o.multiple_of = Some(utoipa::Number::Float(0.01));
    }
    if let Some(o) = property_schema(api, "ProductBody", "inventory") {
        o.minimum = Some(utoipa::Number::Int(0));
        o.maximum = Some(utoipa::Number::Int(MAX_STOCK as isize));
    }
    for (schema, prop) in [("ProductBody", "category"), ("CategoryBody", "name")] {
        if let Some(o) = property_schema(api, schema, prop) {
            o.schema_type = SchemaType::Type(Type::String);
            o.pattern = Some(CATEGORY_PATTERN.into());
        }
    }
    if let Some(o) = property_schema(api, "ProductBody", "sku") {
        o.max_length = Some(MAX_SKU_CHARS);
        o.pattern = Some(SKU_PATTERN.into());
    }
    if let Some(o) = property_schema(api, "ProductBody", "status") {
        string_enum(o, &["active", "archived"]);
    }
    // Arrays: `tags` of short words, `images` of http(s) links.
    let array_of = |max_items: usize, item: Object| {
        let mut array = utoipa::openapi::schema::Array::new(item);
        array.max_items = Some(max_items);
        array.schema_type = SchemaType::from_iter([Type::Array, Type::Null]);
        RefOr::T(Schema::Array(array))
    };
    let mut tag = Object::with_type(Type::String);
    trimmed_text(&mut tag, 1, MAX_TAG_CHARS);
    let mut url = Object::with_type(Type::String);
    url.max_length = Some(2048);
    url.pattern = Some(IMAGE_URL_PATTERN.into());
    if let Some(components) = api.components.as_mut()
        && let Some(RefOr::T(Schema::Object(body))) = components.schemas.get_mut("ProductBody")
    {
        body.properties
            .insert("tags".into(), array_of(MAX_TAGS, tag));
        body.properties
            .insert("images".into(), array_of(MAX_IMAGES, url));
    }
    if optional_copy(api, "ProductBody", "ProductUpdateBody") {
        set_body_schema(api, "put", "/api/products/{id}", "ProductUpdateBody");
        if let Some(components) = api.components.as_mut()
            && let Some(RefOr::T(Schema::Object(body))) =
                components.schemas.get_mut("ProductUpdateBody")
        {
            // An update needs at least one field it knows.
            body.min_properties = Some(1);
        }
        // A null field of an update is not given (the category too).
        if let Some(o) = property_schema(api, "ProductUpdateBody", "category") {
            o.schema_type = SchemaType::from_iter([Type::String, Type::Null]);
        }
    }
    require(
        api,
        "ProductBody",
        &["name", "description", "price", "category"],
    );
    require(api, "CategoryBody", &["name"]);

    if let Some(o) = property_schema(api, "InventoryBody", "change") {
        integer_range(o, -MAX_STOCK, MAX_STOCK);
    }
    text(api, "InventoryBody", "reason", 0, 500);
    require(api, "InventoryBody", &["change"]);

    if let Some(o) = property_schema(api, "ReviewBody", "rating") {
        integer_range(o, 1, 5);
    }
    if let Some(o) = property_schema(api, "ReviewBody", "orderId") {
        o.schema_type = SchemaType::Array(vec![Type::String, Type::Number, Type::Null]);
    }
    text(api, "ReviewBody", "comment", 0, 2000);
    text(api, "ReviewBody", "userName", 0, 100);
    require(api, "ReviewBody", &["rating"]);
}
