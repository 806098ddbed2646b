//! Ports: how one service reaches another without reading its tables.
//! Each has an in-process implementation, and an HTTP one in the split shape.

use std::collections::HashMap;

use async_trait::async_trait;
use serde::Serialize;

/// Order figures of one customer, as the user administration pages show them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerStats {
    pub total_orders: i64,
    pub completed_orders: i64,
    pub cancelled_orders: i64,
    /// Integer cents.
    pub total_spent_cents: i64,
}

#[derive(Debug, thiserror::Error)]
#[error("port: {0}")]
pub struct PortError(pub String);

/// What [`parse_product_id`] accepts, as the OpenAPI document's pattern (a
/// test in `openapi` checks the two agree).
pub const PRODUCT_ID_PATTERN: &str = "^[0-9a-fA-F]{24}$";

/// A product id from a path or a body: 24 hex digits (the original's Mongo
/// ObjectIds), lower-cased. The one rule every service checks ids with.
pub fn parse_product_id(raw: &str) -> Option<String> {
    let raw = raw.trim();
    (raw.len() == 24 && raw.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| raw.to_ascii_lowercase())
}

/// Marks an error as "another service did not answer": a request that hits
/// it is answered 503 (see `ApiError::internal`), not 500.
pub const UNAVAILABLE: &str = "dependency unavailable: ";

impl PortError {
    /// The service `what` did not answer (down, timed out, refused).
    pub fn unavailable(what: impl std::fmt::Display) -> Self {
        Self(format!("{UNAVAILABLE}{what}"))
    }

    /// Whether the error says a dependency did not answer.
    pub fn is_unavailable(&self) -> bool {
        self.0.contains(UNAVAILABLE)
    }
}

/// What the users service asks the orders service.
#[async_trait]
pub trait CustomerOrders: Send + Sync + 'static {
    /// Figures per user id; users without orders may be missing from the map.
    async fn stats(&self, user_ids: &[i64]) -> Result<HashMap<i64, CustomerStats>, PortError>;
    /// One page (1-based) of the customer's orders, newest first, as the
    /// contract's user details show them (items as `product_id`,
    /// `product_name`, `quantity`, `price`, `subtotal`), and how many orders
    /// the customer has in all.
    async fn customer_orders(
        &self,
        user_id: i64,
        page: u64,
        limit: u64,
    ) -> Result<(Vec<serde_json::Value>, i64), PortError>;
    /// Removes a deleted user's orders; returns how many.
    async fn forget_customer(&self, user_id: i64) -> Result<u64, PortError>;
}

/// The answer while no orders service is part of the deployment: nobody has orders.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoOrders;

#[async_trait]
impl CustomerOrders for NoOrders {
    async fn stats(&self, _user_ids: &[i64]) -> Result<HashMap<i64, CustomerStats>, PortError> {
        Ok(HashMap::new())
    }
    async fn customer_orders(
        &self,
        _user_id: i64,
        _page: u64,
        _limit: u64,
    ) -> Result<(Vec<serde_json::Value>, i64), PortError> {
        Ok((Vec::new(), 0))
    }
    async fn forget_customer(&self, _user_id: i64) -> Result<u64, PortError> {
        Ok(0)
    }
}

// ---- catalog ports -----------------------------------------------------------

/// One line an order wants: a product and how many units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReserveLine {
    pub product_id: String,
    pub quantity: i64,
}

/// A reserved line as the catalog priced it at the moment of reservation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReservedLine {
    pub product_id: String,
    pub name: String,
    pub category: String,
    pub quantity: i64,
    /// Integer cents: the authoritative unit price.
    pub unit_price_cents: i64,
}

/// Why a reservation or release did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, serde::Deserialize)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum InventoryError {
    #[error("Product not found: {0}")]
    NotFound(String),
    #[error("Product is not available: {0}")]
    Unavailable(String),
    #[error(
        "Insufficient inventory for product {product_id}. Available: {available}, requested: {requested}"
    )]
    #[serde(rename_all = "camelCase")]
    Insufficient {
        product_id: String,
        available: i64,
        requested: i64,
    },
    /// The order id already holds a different reservation, or one already released.
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    /// A transient database conflict (deadlock, serialisation): try again.
    #[error("inventory busy: {0}")]
    Busy(String),
    #[error("inventory: {0}")]
    Failed(String),
}

/// What the orders service asks the catalog: stock for an order, all lines or
/// none, idempotent by order id (a repeated reserve returns the first result, a
/// repeated release changes nothing).
#[async_trait]
pub trait Inventory: Send + Sync + 'static {
    async fn reserve(
        &self,
        order_id: &str,
        lines: &[ReserveLine],
    ) -> Result<Vec<ReservedLine>, InventoryError>;
    /// Gives back what `order_id` holds; `false` when it held nothing (never
    /// reserved, or already released).
    async fn release(&self, order_id: &str) -> Result<bool, InventoryError>;

    /// Reserves inside the caller's open transaction — possible only when the
    /// catalog lives in the same database (the all-in-one shape), and used only
    /// when the process wired it so. `None`: not available, use `reserve`.
    /// A rollback of the caller's transaction undoes the reservation.
    async fn reserve_in(
        &self,
        _conn: &mut sqlx::AnyConnection,
        _order_id: &str,
        _lines: &[ReserveLine],
    ) -> Option<Result<Vec<ReservedLine>, InventoryError>> {
        None
    }

    /// Called after a transaction that reserved through `reserve_in` committed.
    async fn reserved_in_committed(&self) {}
}

/// What the catalog asks the orders service before accepting a review.
#[async_trait]
pub trait PurchaseCheck: Send + Sync + 'static {
    /// Ids of the user's delivered orders that contain the product, oldest first.
    async fn delivered_orders_with(
        &self,
        user_id: i64,
        product_id: &str,
    ) -> Result<Vec<String>, PortError>;
}

/// The answer while no orders service is wired in: nobody bought anything, so
/// nobody may review. Reviews are never allowed by default.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoPurchases;

#[async_trait]
impl PurchaseCheck for NoPurchases {
    async fn delivered_orders_with(
        &self,
        _user_id: i64,
        _product_id: &str,
    ) -> Result<Vec<String>, PortError> {
        Ok(Vec::new())
    }
}

// ---- orders → users, orders → catalog ------------------------------------------

/// A saved address as an order copies it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShippingAddress {
    pub label: Option<String>,
    pub street: String,
    pub city: String,
    pub state: String,
    pub zip_code: String,
    pub country: String,
    pub phone: String,
}

/// What the orders service asks the users service for `addressId`.
#[async_trait]
pub trait AddressBook: Send + Sync + 'static {
    /// The user's address with that id; `None` when it is not theirs or gone.
    async fn address(
        &self,
        user_id: i64,
        address_id: i64,
    ) -> Result<Option<ShippingAddress>, PortError>;
}

/// No users service in the process: nobody has saved addresses.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoAddresses;

#[async_trait]
impl AddressBook for NoAddresses {
    async fn address(&self, _: i64, _: i64) -> Result<Option<ShippingAddress>, PortError> {
        Ok(None)
    }
}

/// A review the orders service forwards (route `POST /api/orders/:id/review`),
/// after checking the order is the caller's, delivered and holds the product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewReview {
    pub product_id: String,
    pub user_id: i64,
    pub user_name: String,
    pub order_id: String,
    pub rating: i64,
    pub comment: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, serde::Deserialize)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum ReviewError {
    #[error("Product not found")]
    NotFound,
    #[error("You have already reviewed this product")]
    AlreadyReviewed,
    #[error("{0}")]
    Failed(String),
}

/// What the orders service asks the catalog to record a review.
#[async_trait]
pub trait ProductReviews: Send + Sync + 'static {
    /// Stores the review; answers the product as the catalog shows it.
    async fn add_review(&self, review: NewReview) -> Result<serde_json::Value, ReviewError>;
}

/// What a page shows of a product next to figures (analytics' top products):
/// its name, category and first image, as the catalog has them now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductSummary {
    pub id: String,
    pub name: String,
    pub category: String,
    /// The first image's URL, when the product has one.
    pub image: Option<String>,
}

/// What analytics asks the catalog about products it has figures for.
#[async_trait]
pub trait ProductDirectory: Send + Sync + 'static {
    /// Summaries per product id; unknown ids (deleted products) are missing.
    async fn summaries(&self, ids: &[String])
    -> Result<HashMap<String, ProductSummary>, PortError>;
}

/// The answer while no catalog is reachable: no names (figures keep their ids).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProductDirectory;

#[async_trait]
impl ProductDirectory for NoProductDirectory {
    async fn summaries(
        &self,
        _ids: &[String],
    ) -> Result<HashMap<String, ProductSummary>, PortError> {
        Ok(HashMap::new())
    }
}
