//! Persistence of the catalog: one set of queries for SQLite, PostgreSQL and
//! MySQL/MariaDB, built with sea-query.
//!
//! Stock is a ledger: every change is an `inventory_ledger` row keyed by its
//! cause, written in the same transaction as the conditional update of
//! `products.stock` (`… SET stock = stock - q WHERE stock >= q`), so the column
//! always equals the sum of the entries and never goes below zero.

use std::collections::HashMap;

use ecap_core::{
    clock,
    db::{Backend, Db, DbError, Retryable},
    ports::{InventoryError, ReserveLine, ReservedLine},
    retrying,
};
use sea_query::{
    Alias, Cond, Expr, ExprTrait, Func, Iden, LockType, Order, Query, SelectStatement, SimpleExpr,
};
use sqlx::{Any, AnyConnection, Transaction};

pub use crate::domain::ProductChanges;
use crate::domain::{self, ProductStatus};

#[derive(Iden, Clone, Copy)]
pub(crate) enum Products {
    Table,
    Id,
    Name,
    Description,
    PriceCents,
    Stock,
    Category,
    Tags,
    Attributes,
    Sku,
    Status,
    OwnerId,
    RatingCount,
    RatingSum,
    RatingAvg,
    SearchText,
    Version,
    CreatedAt,
    UpdatedAt,
}

#[derive(Iden, Clone, Copy)]
enum Categories {
    Table,
    Id,
    Name,
    CreatedAt,
    UpdatedAt,
}

#[derive(Iden, Clone, Copy)]
enum InventoryLedger {
    Table,
    Id,
    ProductId,
    Cause,
    Kind,
    Delta,
    StockAfter,
    OrderId,
    ActorId,
    Reason,
    CreatedAt,
}

#[derive(Iden, Clone, Copy)]
enum InventoryReservations {
    Table,
    OrderId,
    State,
    Lines,
    CreatedAt,
    UpdatedAt,
}

#[derive(Iden, Clone, Copy)]
enum ProductReviews {
    Table,
    Id,
    ProductId,
    UserId,
    UserName,
    OrderId,
    Rating,
    Comment,
    CreatedAt,
}

#[derive(Iden, Clone, Copy)]
enum ProductImages {
    Table,
    Id,
    ProductId,
    ObjectKey,
    ExternalUrl,
    ContentType,
    SizeBytes,
    Position,
    CreatedAt,
}

const PRODUCT_COLUMNS: [Products; 17] = [
    Products::Id,
    Products::Name,
    Products::Description,
    Products::PriceCents,
    Products::Stock,
    Products::Category,
    Products::Tags,
    Products::Attributes,
    Products::Sku,
    Products::Status,
    Products::OwnerId,
    Products::RatingCount,
    Products::RatingSum,
    Products::RatingAvg,
    Products::Version,
    Products::CreatedAt,
    Products::UpdatedAt,
];

const IMAGE_COLUMNS: [ProductImages; 8] = [
    ProductImages::Id,
    ProductImages::ProductId,
    ProductImages::ObjectKey,
    ProductImages::ExternalUrl,
    ProductImages::ContentType,
    ProductImages::SizeBytes,
    ProductImages::Position,
    ProductImages::CreatedAt,
];

const LEDGER_COLUMNS: [InventoryLedger; 10] = [
    InventoryLedger::Id,
    InventoryLedger::ProductId,
    InventoryLedger::Cause,
    InventoryLedger::Kind,
    InventoryLedger::Delta,
    InventoryLedger::StockAfter,
    InventoryLedger::OrderId,
    InventoryLedger::ActorId,
    InventoryLedger::Reason,
    InventoryLedger::CreatedAt,
];

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ProductRow {
    pub id: String,
    pub name: String,
    pub description: String,
    pub price_cents: i64,
    pub stock: i64,
    pub category: String,
    /// JSON array of strings.
    pub tags: String,
    /// JSON object, as the client gave it.
    pub attributes: String,
    pub sku: Option<String>,
    pub status: String,
    pub owner_id: Option<i64>,
    pub rating_count: i64,
    pub rating_sum: i64,
    pub rating_avg: i64,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ImageRow {
    pub id: String,
    pub product_id: String,
    pub object_key: Option<String>,
    pub external_url: Option<String>,
    pub content_type: Option<String>,
    pub size_bytes: Option<i64>,
    pub position: i64,
    pub created_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LedgerRow {
    pub id: i64,
    pub product_id: String,
    pub cause: String,
    pub kind: String,
    pub delta: i64,
    pub stock_after: i64,
    pub order_id: Option<String>,
    pub actor_id: Option<i64>,
    pub reason: Option<String>,
    pub created_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReviewRow {
    pub id: i64,
    pub product_id: String,
    pub user_id: i64,
    pub user_name: String,
    pub order_id: String,
    pub rating: i64,
    pub comment: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CategoryStats {
    pub id: i64,
    pub name: String,
    pub product_count: i64,
    pub units_in_stock: i64,
    pub stock_value_cents: i64,
    pub created_at: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("Invalid category")]
    InvalidCategory,
    #[error("a product with this SKU already exists")]
    SkuTaken,
    #[error("a category with this name already exists")]
    CategoryTaken,
    #[error("the category is used by {0} products")]
    CategoryInUse(i64),
    #[error("Insufficient inventory for product. Available: {available}, requested: {requested}")]
    Insufficient { available: i64, requested: i64 },
    #[error("You have already reviewed this product")]
    AlreadyReviewed,
    #[error(transparent)]
    Inventory(#[from] InventoryError),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        Self::Db(DbError::Sqlx(e))
    }
}

impl Retryable for StoreError {
    fn is_retryable(&self) -> bool {
        matches!(self, Self::Db(e) if e.is_retryable())
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A product to create; values already validated.
#[derive(Debug, Clone)]
pub struct NewProduct {
    pub name: String,
    pub description: String,
    pub price_cents: i64,
    pub stock: i64,
    pub category: String,
    pub tags: Vec<String>,
    pub attributes: serde_json::Value,
    pub sku: Option<String>,
    pub owner_id: Option<i64>,
    pub images: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProductSort {
    CreatedAt,
    Price,
    Name,
    Rating,
}

/// Which statuses a listing shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    Active,
    Archived,
    All,
}

#[derive(Debug, Clone)]
pub struct ProductQuery {
    pub page: u64,
    pub limit: u64,
    pub category: Option<String>,
    pub search: Option<String>,
    pub min_price_cents: Option<i64>,
    pub max_price_cents: Option<i64>,
    pub in_stock: bool,
    pub sort: ProductSort,
    pub descending: bool,
    pub status: StatusFilter,
    pub owner_id: Option<i64>,
}

/// Who changed stock by hand, and why.
#[derive(Debug, Clone)]
pub struct Adjustment {
    pub actor_id: i64,
    pub reason: Option<String>,
}

/// `order:<order id>:<product id>`: the cause of a reservation and its release.
fn order_cause(order_id: &str, product_id: &str) -> String {
    format!("order:{order_id}:{product_id}")
}

/// `COUNT(*)`: counts from any index; `COUNT(id)` on a text key that no
/// secondary index carries makes SQLite read every matching row.
fn count_rows() -> Expr {
    Expr::cust("COUNT(*)")
}

fn json_text(v: &impl serde::Serialize) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

fn search_text(name: &str, description: &str, tags: &[String]) -> String {
    format!("{name}\n{description}\n{}", tags.join(" "))
}

/// Merges lines naming the same product and checks their quantities.
pub fn normalise_lines(lines: &[ReserveLine]) -> Result<Vec<ReserveLine>, InventoryError> {
    if lines.is_empty() {
        return Err(InventoryError::Invalid(
            "An order needs at least one item".into(),
        ));
    }
    if lines.len() > domain::MAX_ORDER_LINES {
        return Err(InventoryError::Invalid(format!(
            "An order holds at most {} items",
            domain::MAX_ORDER_LINES
        )));
    }
    let mut merged: Vec<ReserveLine> = Vec::with_capacity(lines.len());
    for line in lines {
        let id = domain::parse_product_id(&line.product_id)
            .ok_or_else(|| InventoryError::NotFound(line.product_id.clone()))?;
        if line.quantity < 1 || line.quantity > domain::MAX_LINE_QUANTITY {
            return Err(InventoryError::Invalid(format!(
                "Quantity must be between 1 and {}",
                domain::MAX_LINE_QUANTITY
            )));
        }
        match merged.iter_mut().find(|l| l.product_id == id) {
            Some(l) => l.quantity = l.quantity.saturating_add(line.quantity),
            None => merged.push(ReserveLine {
                product_id: id,
                quantity: line.quantity,
            }),
        }
    }
    Ok(merged)
}

fn check_order_id(order_id: &str) -> Result<(), InventoryError> {
    let ok = !order_id.is_empty()
        && order_id.len() <= 64
        && order_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(InventoryError::Invalid(
            "Order ids are 1–64 letters, digits, '-', '_' or '.'".into(),
        ))
    }
}

#[derive(Clone, Debug)]
pub struct CatalogStore {
    db: Db,
}

impl CatalogStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    fn select_products() -> SelectStatement {
        Query::select()
            .columns(PRODUCT_COLUMNS.map(|c| (Products::Table, c)))
            .from(Products::Table)
            .to_owned()
    }

    pub async fn product(&self, id: &str) -> StoreResult<Option<ProductRow>> {
        Ok(self
            .db
            .fetch_optional(
                self.db.pool(),
                &Self::select_products()
                    .and_where(Expr::col((Products::Table, Products::Id)).eq(id))
                    .to_owned(),
            )
            .await?)
    }

    /// The products with these ids (any status), in no particular order; one query.
    pub async fn products_by_ids(&self, ids: &[&str]) -> StoreResult<Vec<ProductRow>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self
            .db
            .fetch_all(
                self.db.pool(),
                &Self::select_products()
                    .and_where(
                        Expr::col((Products::Table, Products::Id)).is_in(ids.iter().copied()),
                    )
                    .to_owned(),
            )
            .await?)
    }

    async fn product_in(&self, conn: &mut AnyConnection, id: &str) -> StoreResult<ProductRow> {
        self.db
            .fetch_optional(
                &mut *conn,
                &Self::select_products()
                    .and_where(Expr::col((Products::Table, Products::Id)).eq(id))
                    .to_owned(),
            )
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// Reads the product with a row lock (PostgreSQL/MySQL; SQLite's write
    /// transaction already excludes every other writer).
    async fn lock_product(&self, conn: &mut AnyConnection, id: &str) -> StoreResult<ProductRow> {
        self.db
            .fetch_optional(
                &mut *conn,
                &Self::select_products()
                    .and_where(Expr::col((Products::Table, Products::Id)).eq(id))
                    .lock(LockType::Update)
                    .to_owned(),
            )
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// The condition `search` adds: each database's own full-text index.
    fn search_condition(&self, text: &str) -> Option<SimpleExpr> {
        let tokens = domain::search_tokens(text);
        match self.db.backend() {
            Backend::Sqlite => {
                if tokens.is_empty() {
                    return None;
                }
                let query = format!(
                    "body : ({})",
                    tokens
                        .iter()
                        .map(|t| format!("\"{t}\"*"))
                        .collect::<Vec<_>>()
                        .join(" AND ")
                );
                Some(Expr::cust_with_values(
                    "\"products\".\"id\" IN (SELECT product_id FROM products_fts WHERE products_fts MATCH ?)",
                    [query],
                ))
            }
            Backend::Postgres => {
                if tokens.is_empty() {
                    return None;
                }
                let query = tokens
                    .iter()
                    .map(|t| format!("{t}:*"))
                    .collect::<Vec<_>>()
                    .join(" & ");
                Some(Expr::cust_with_values(
                    "to_tsvector('english', \"products\".\"search_text\") @@ to_tsquery('english', $1)",
                    [query],
                ))
            }
            Backend::MySql => {
                // InnoDB indexes words of three characters or more.
                let long: Vec<_> = tokens.iter().filter(|t| t.chars().count() >= 3).collect();
                if long.is_empty() {
                    return None;
                }
                let query = long
                    .iter()
                    .map(|t| format!("+{t}*"))
                    .collect::<Vec<_>>()
                    .join(" ");
                Some(Expr::cust_with_values(
                    "MATCH (`products`.`search_text`) AGAINST (? IN BOOLEAN MODE)",
                    [query],
                ))
            }
        }
    }

    async fn index_search(
        &self,
        conn: &mut AnyConnection,
        id: &str,
        text: &str,
        fresh: bool,
    ) -> StoreResult<()> {
        if self.db.backend() != Backend::Sqlite {
            return Ok(()); // PostgreSQL and MySQL index `search_text` themselves.
        }
        if !fresh {
            sqlx::query("DELETE FROM products_fts WHERE product_id = ?")
                .bind(id)
                .execute(&mut *conn)
                .await?;
        }
        sqlx::query("INSERT INTO products_fts (product_id, body) VALUES (?, ?)")
            .bind(id)
            .bind(text)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    /// One page of products and the number matching.
    pub async fn list(&self, q: &ProductQuery) -> StoreResult<(Vec<ProductRow>, i64)> {
        let searching = q.search.as_deref().is_some_and(|s| !s.trim().is_empty());
        let status = match q.status {
            StatusFilter::Active => Some("active"),
            StatusFilter::Archived => Some("archived"),
            StatusFilter::All => None,
        };
        let status_cond = |count: bool| match status {
            // Counting a full-text match on SQLite: `+status` keeps the planner
            // from walking every product of the status through its index and
            // probing the match for each (100k products: 126 ms → 25 ms).
            Some(s) if count && searching && self.db.backend() == Backend::Sqlite => {
                Cond::all().add(Expr::cust_with_values("+\"products\".\"status\" = ?", [s]))
            }
            Some(s) => Cond::all().add(Expr::col((Products::Table, Products::Status)).eq(s)),
            None => Cond::all(),
        };
        let mut cond = Cond::all();
        if let Some(c) = &q.category {
            cond = cond.add(Expr::col((Products::Table, Products::Category)).eq(c.as_str()));
        }
        if let Some(min) = q.min_price_cents {
            cond = cond.add(Expr::col((Products::Table, Products::PriceCents)).gte(min));
        }
        if let Some(max) = q.max_price_cents {
            cond = cond.add(Expr::col((Products::Table, Products::PriceCents)).lte(max));
        }
        if q.in_stock {
            cond = cond.add(Expr::col((Products::Table, Products::Stock)).gt(0));
        }
        if let Some(owner) = q.owner_id {
            cond = cond.add(Expr::col((Products::Table, Products::OwnerId)).eq(owner));
        }
        if let Some(text) = q.search.as_deref().filter(|s| !s.trim().is_empty()) {
            match self.search_condition(text) {
                Some(expr) => cond = cond.add(expr),
                None => {
                    let pattern = ecap_core::db::contains_pattern(text.trim());
                    cond = cond.add(
                        Expr::expr(Func::lower(Expr::col((
                            Products::Table,
                            Products::SearchText,
                        ))))
                        .like(sea_query::LikeExpr::new(pattern).escape('\\')),
                    );
                }
            }
        }
        let (total,): (i64,) = self
            .db
            .fetch_one(
                self.db.pool(),
                &Query::select()
                    .expr(count_rows())
                    .from(Products::Table)
                    .cond_where(status_cond(true).add(cond.clone()))
                    .to_owned(),
            )
            .await?;
        let cond = status_cond(false).add(cond);
        let order = if q.descending {
            Order::Desc
        } else {
            Order::Asc
        };
        let col = match q.sort {
            ProductSort::CreatedAt => Products::CreatedAt,
            ProductSort::Price => Products::PriceCents,
            ProductSort::Name => Products::Name,
            ProductSort::Rating => Products::RatingAvg,
        };
        let offset = (q.page.saturating_sub(1)).saturating_mul(q.limit);
        let mut stmt = Self::select_products();
        stmt.cond_where(cond)
            .order_by((Products::Table, col), order.clone());
        if q.sort == ProductSort::Rating {
            stmt.order_by((Products::Table, Products::RatingCount), order.clone());
        }
        // A total order, so pages never overlap or skip.
        stmt.order_by((Products::Table, Products::Id), order)
            .limit(q.limit)
            .offset(offset);
        let rows = self.db.fetch_all(self.db.pool(), &stmt).await?;
        Ok((rows, total))
    }

    /// Images of the given products, in display order.
    pub async fn images_of(&self, ids: &[&str]) -> StoreResult<HashMap<String, Vec<ImageRow>>> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let rows: Vec<ImageRow> = self
            .db
            .fetch_all(
                self.db.pool(),
                &Query::select()
                    .columns(IMAGE_COLUMNS)
                    .from(ProductImages::Table)
                    .and_where(Expr::col(ProductImages::ProductId).is_in(ids.iter().copied()))
                    .order_by(ProductImages::ProductId, Order::Asc)
                    .order_by(ProductImages::Position, Order::Asc)
                    .to_owned(),
            )
            .await?;
        Ok(by_product(rows, |r| &r.product_id))
    }

    async fn category_exists(&self, conn: &mut AnyConnection, name: &str) -> StoreResult<bool> {
        let row: Option<(i64,)> = self
            .db
            .fetch_optional(
                &mut *conn,
                &Query::select()
                    .column(Categories::Id)
                    .from(Categories::Table)
                    .and_where(Expr::col(Categories::Name).eq(name))
                    .to_owned(),
            )
            .await?;
        Ok(row.is_some())
    }

    fn map_unique(e: StoreError) -> StoreError {
        match e {
            StoreError::Db(ref d) if d.is_unique_violation() => StoreError::SkuTaken,
            other => other,
        }
    }

    pub async fn create(&self, new: NewProduct) -> StoreResult<ProductRow> {
        let id = domain::new_product_id();
        retrying!(self.try_create(&id, &new).await).map_err(Self::map_unique)
    }

    async fn try_create(&self, id: &str, new: &NewProduct) -> StoreResult<ProductRow> {
        let mut tx = self.db.begin().await?;
        if !self.category_exists(&mut tx, &new.category).await? {
            return Err(StoreError::InvalidCategory);
        }
        self.insert_product(&mut tx, id, new, clock::now_ms())
            .await?;
        let row = self.product_in(&mut tx, id).await?;
        tx.commit().await?;
        Ok(row)
    }

    async fn insert_product(
        &self,
        conn: &mut AnyConnection,
        id: &str,
        new: &NewProduct,
        now: i64,
    ) -> StoreResult<()> {
        let text = search_text(&new.name, &new.description, &new.tags);
        self.db
            .execute(
                &mut *conn,
                &Query::insert()
                    .into_table(Products::Table)
                    .columns([
                        Products::Id,
                        Products::Name,
                        Products::Description,
                        Products::PriceCents,
                        Products::Stock,
                        Products::Category,
                        Products::Tags,
                        Products::Attributes,
                        Products::Sku,
                        Products::Status,
                        Products::OwnerId,
                        Products::SearchText,
                        Products::CreatedAt,
                        Products::UpdatedAt,
                    ])
                    .values_panic([
                        id.into(),
                        new.name.clone().into(),
                        new.description.clone().into(),
                        new.price_cents.into(),
                        new.stock.into(),
                        new.category.clone().into(),
                        json_text(&new.tags).into(),
                        json_text(&new.attributes).into(),
                        new.sku.clone().into(),
                        ProductStatus::Active.as_str().into(),
                        new.owner_id.into(),
                        text.clone().into(),
                        now.into(),
                        now.into(),
                    ])
                    .to_owned(),
            )
            .await?;
        if new.stock > 0 {
            self.ledger_entry(
                &mut *conn,
                Entry {
                    product_id: id,
                    cause: &format!("initial:{id}"),
                    kind: "initial",
                    delta: new.stock,
                    stock_after: new.stock,
                    order_id: None,
                    actor_id: new.owner_id,
                    reason: Some("initial stock"),
                    now,
                },
            )
            .await?;
        }
        self.index_search(&mut *conn, id, &text, true).await?;
        if !new.images.is_empty() {
            self.link_images(&mut *conn, id, &new.images, now).await?;
        }
        Ok(())
    }

    /// Replaces the product's linked images (uploaded files stay).
    async fn link_images(
        &self,
        conn: &mut AnyConnection,
        id: &str,
        urls: &[String],
        now: i64,
    ) -> StoreResult<()> {
        self.db
            .execute(
                &mut *conn,
                &Query::delete()
                    .from_table(ProductImages::Table)
                    .and_where(Expr::col(ProductImages::ProductId).eq(id))
                    .and_where(Expr::col(ProductImages::ObjectKey).is_null())
                    .to_owned(),
            )
            .await?;
        for (i, url) in urls.iter().enumerate() {
            self.db
                .execute(
                    &mut *conn,
                    &Query::insert()
                        .into_table(ProductImages::Table)
                        .columns([
                            ProductImages::Id,
                            ProductImages::ProductId,
                            ProductImages::ExternalUrl,
                            ProductImages::Position,
                            ProductImages::CreatedAt,
                        ])
                        .values_panic([
                            uuid::Uuid::now_v7().to_string().into(),
                            id.into(),
                            url.clone().into(),
                            i64::try_from(i).unwrap_or(0).into(),
                            now.into(),
                        ])
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn ledger_entry(&self, conn: &mut AnyConnection, e: Entry<'_>) -> StoreResult<()> {
        self.db
            .execute(
                conn,
                &Query::insert()
                    .into_table(InventoryLedger::Table)
                    .columns([
                        InventoryLedger::ProductId,
                        InventoryLedger::Cause,
                        InventoryLedger::Kind,
                        InventoryLedger::Delta,
                        InventoryLedger::StockAfter,
                        InventoryLedger::OrderId,
                        InventoryLedger::ActorId,
                        InventoryLedger::Reason,
                        InventoryLedger::CreatedAt,
                    ])
                    .values_panic([
                        e.product_id.into(),
                        e.cause.into(),
                        e.kind.into(),
                        e.delta.into(),
                        e.stock_after.into(),
                        e.order_id.map(str::to_owned).into(),
                        e.actor_id.into(),
                        e.reason.map(str::to_owned).into(),
                        e.now.into(),
                    ])
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    /// Several ledger entries in one statement.
    async fn ledger_entries(
        &self,
        conn: &mut AnyConnection,
        entries: &[Entry<'_>],
    ) -> StoreResult<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut insert = Query::insert();
        insert.into_table(InventoryLedger::Table).columns([
            InventoryLedger::ProductId,
            InventoryLedger::Cause,
            InventoryLedger::Kind,
            InventoryLedger::Delta,
            InventoryLedger::StockAfter,
            InventoryLedger::OrderId,
            InventoryLedger::ActorId,
            InventoryLedger::Reason,
            InventoryLedger::CreatedAt,
        ]);
        for e in entries {
            insert.values_panic([
                e.product_id.into(),
                e.cause.into(),
                e.kind.into(),
                e.delta.into(),
                e.stock_after.into(),
                e.order_id.map(str::to_owned).into(),
                e.actor_id.into(),
                e.reason.map(str::to_owned).into(),
                e.now.into(),
            ]);
        }
        self.db.execute(conn, &insert).await?;
        Ok(())
    }

    /// Applies `changes`; stock set this way is a manual ledger entry for the difference.
    pub async fn update(
        &self,
        id: &str,
        changes: &ProductChanges,
        actor_id: i64,
    ) -> StoreResult<ProductRow> {
        retrying!(self.try_update(id, changes, actor_id).await).map_err(Self::map_unique)
    }

    async fn try_update(
        &self,
        id: &str,
        c: &ProductChanges,
        actor_id: i64,
    ) -> StoreResult<ProductRow> {
        let mut tx = self.db.begin().await?;
        let before = self.lock_product(&mut tx, id).await?;
        if let Some(cat) = &c.category
            && !self.category_exists(&mut tx, cat).await?
        {
            return Err(StoreError::InvalidCategory);
        }
        let now = clock::now_ms();
        let mut stmt = Query::update();
        stmt.table(Products::Table)
            .value(Products::Version, Expr::col(Products::Version).add(1))
            .value(Products::UpdatedAt, now)
            .and_where(Expr::col(Products::Id).eq(id));
        if let Some(v) = &c.name {
            stmt.value(Products::Name, v.clone());
        }
        if let Some(v) = &c.description {
            stmt.value(Products::Description, v.clone());
        }
        if let Some(v) = c.price_cents {
            stmt.value(Products::PriceCents, v);
        }
        if let Some(v) = &c.category {
            stmt.value(Products::Category, v.clone());
        }
        if let Some(v) = &c.tags {
            stmt.value(Products::Tags, json_text(v));
        }
        if let Some(v) = &c.attributes {
            stmt.value(Products::Attributes, json_text(v));
        }
        if let Some(v) = &c.sku {
            stmt.value(Products::Sku, v.clone());
        }
        if let Some(v) = c.status {
            stmt.value(Products::Status, v.as_str());
        }
        if let Some(stock) = c.stock {
            stmt.value(Products::Stock, stock);
        }
        let search_changed = c.name.is_some() || c.description.is_some() || c.tags.is_some();
        let text = search_text(
            c.name.as_deref().unwrap_or(&before.name),
            c.description.as_deref().unwrap_or(&before.description),
            &c.tags
                .clone()
                .unwrap_or_else(|| serde_json::from_str(&before.tags).unwrap_or_default()),
        );
        if search_changed {
            stmt.value(Products::SearchText, text.clone());
        }
        self.db.execute(&mut *tx, &stmt).await?;
        if let Some(stock) = c.stock
            && stock != before.stock
        {
            self.ledger_entry(
                &mut tx,
                Entry {
                    product_id: id,
                    cause: &format!("manual:{}", uuid::Uuid::now_v7()),
                    kind: "manual",
                    delta: stock - before.stock,
                    stock_after: stock,
                    order_id: None,
                    actor_id: Some(actor_id),
                    reason: Some("stock set by product update"),
                    now,
                },
            )
            .await?;
        }
        if search_changed {
            self.index_search(&mut tx, id, &text, false).await?;
        }
        if let Some(urls) = &c.images {
            self.link_images(&mut tx, id, urls, now).await?;
        }
        let row = self.product_in(&mut tx, id).await?;
        tx.commit().await?;
        Ok(row)
    }

    /// Adds `change` (negative deducts) to the stock, as a manual ledger entry.
    /// Returns the product after and the stock before.
    pub async fn adjust(
        &self,
        id: &str,
        change: i64,
        who: &Adjustment,
    ) -> StoreResult<(ProductRow, i64)> {
        retrying!(self.try_adjust(id, change, who).await)
    }

    async fn try_adjust(
        &self,
        id: &str,
        change: i64,
        who: &Adjustment,
    ) -> StoreResult<(ProductRow, i64)> {
        let mut tx = self.db.begin().await?;
        if change == 0 {
            let row = self.product_in(&mut tx, id).await?;
            let stock = row.stock;
            return Ok((row, stock));
        }
        let now = clock::now_ms();
        let touched = self
            .db
            .execute(
                &mut *tx,
                &Query::update()
                    .table(Products::Table)
                    .value(Products::Stock, Expr::col(Products::Stock).add(change))
                    .value(Products::Version, Expr::col(Products::Version).add(1))
                    .value(Products::UpdatedAt, now)
                    .and_where(Expr::col(Products::Id).eq(id))
                    .and_where(Expr::col(Products::Stock).add(change).gte(0))
                    .to_owned(),
            )
            .await?;
        if touched == 0 {
            let row = self.product_in(&mut tx, id).await?;
            return Err(StoreError::Insufficient {
                available: row.stock,
                requested: change.saturating_abs(),
            });
        }
        let row = self.product_in(&mut tx, id).await?;
        self.ledger_entry(
            &mut tx,
            Entry {
                product_id: id,
                cause: &format!("manual:{}", uuid::Uuid::now_v7()),
                kind: "manual",
                delta: change,
                stock_after: row.stock,
                order_id: None,
                actor_id: Some(who.actor_id),
                reason: who.reason.as_deref(),
                now,
            },
        )
        .await?;
        tx.commit().await?;
        let before = row.stock - change;
        Ok((row, before))
    }

    /// Stock ledger of a product, newest first, and how many entries it has.
    pub async fn ledger(
        &self,
        id: &str,
        page: u64,
        limit: u64,
    ) -> StoreResult<(Vec<LedgerRow>, i64)> {
        let (total,): (i64,) = self
            .db
            .fetch_one(
                self.db.pool(),
                &Query::select()
                    .expr(Expr::col(InventoryLedger::Id).count())
                    .from(InventoryLedger::Table)
                    .and_where(Expr::col(InventoryLedger::ProductId).eq(id))
                    .to_owned(),
            )
            .await?;
        let rows = self
            .db
            .fetch_all(
                self.db.pool(),
                &Query::select()
                    .columns(LEDGER_COLUMNS)
                    .from(InventoryLedger::Table)
                    .and_where(Expr::col(InventoryLedger::ProductId).eq(id))
                    .order_by(InventoryLedger::Id, Order::Desc)
                    .limit(limit)
                    .offset(page.saturating_sub(1).saturating_mul(limit))
                    .to_owned(),
            )
            .await?;
        Ok((rows, total))
    }

    /// Sum of a product's ledger entries (what `stock` must equal).
    pub async fn ledger_sum(&self, id: &str) -> StoreResult<i64> {
        let sum = self.db.backend().cast_bigint(Func::coalesce([
            Func::sum(Expr::col(InventoryLedger::Delta)).into(),
            Expr::val(0),
        ]));
        let (total,): (i64,) = self
            .db
            .fetch_one(
                self.db.pool(),
                &Query::select()
                    .expr(sum)
                    .from(InventoryLedger::Table)
                    .and_where(Expr::col(InventoryLedger::ProductId).eq(id))
                    .to_owned(),
            )
            .await?;
        Ok(total)
    }

    // ---- reservations -------------------------------------------------------

    /// Reserves every line for `order_id` or none; a repeated call with the same
    /// lines returns the first result and changes nothing.
    pub async fn reserve(
        &self,
        order_id: &str,
        lines: &[ReserveLine],
    ) -> Result<Vec<ReservedLine>, InventoryError> {
        check_order_id(order_id)?;
        let lines = normalise_lines(lines)?;
        let result = retrying!(self.try_reserve(order_id, &lines).await);
        match result {
            Ok(Some(reserved)) => Ok(reserved),
            // Someone else holds (or held) this order id: answer from their row.
            Ok(None) => self.existing_reservation(order_id, &lines).await,
            Err(StoreError::Inventory(e)) => Err(e),
            Err(StoreError::Db(e)) if e.is_unique_violation() => {
                self.existing_reservation(order_id, &lines).await
            }
            Err(e) => Err(InventoryError::Failed(e.to_string())),
        }
    }

    async fn existing_reservation(
        &self,
        order_id: &str,
        lines: &[ReserveLine],
    ) -> Result<Vec<ReservedLine>, InventoryError> {
        let row: Option<(String, String)> = self
            .db
            .fetch_optional(
                self.db.pool(),
                &Query::select()
                    .columns([InventoryReservations::State, InventoryReservations::Lines])
                    .from(InventoryReservations::Table)
                    .and_where(Expr::col(InventoryReservations::OrderId).eq(order_id))
                    .to_owned(),
            )
            .await
            .map_err(|e| InventoryError::Failed(e.to_string()))?;
        let Some((state, stored)) = row else {
            return Err(InventoryError::Failed(
                "reservation vanished while being read".into(),
            ));
        };
        if state != "held" {
            return Err(InventoryError::Conflict(format!(
                "The reservation of order {order_id} was already released"
            )));
        }
        let stored: Vec<ReservedLine> =
            serde_json::from_str(&stored).map_err(|e| InventoryError::Failed(e.to_string()))?;
        let mut want: Vec<(&str, i64)> = lines
            .iter()
            .map(|l| (l.product_id.as_str(), l.quantity))
            .collect();
        let mut have: Vec<(&str, i64)> = stored
            .iter()
            .map(|l| (l.product_id.as_str(), l.quantity))
            .collect();
        want.sort_unstable();
        have.sort_unstable();
        if want != have {
            return Err(InventoryError::Conflict(format!(
                "Order {order_id} already holds a different reservation"
            )));
        }
        Ok(stored)
    }

    /// Takes every line's stock, all or none, on the caller's connection (a
    /// transaction): one conditional `UPDATE` per line, in product-id order,
    /// and one ledger insert. Returns the lines priced, in the caller's order.
    async fn take_lines(
        &self,
        conn: &mut AnyConnection,
        order_id: &str,
        lines: &[ReserveLine],
        now: i64,
    ) -> StoreResult<Vec<ReservedLine>> {
        // Rows are locked in one order (by id), so two orders cannot deadlock.
        let mut ordered: Vec<&ReserveLine> = lines.iter().collect();
        ordered.sort_by(|a, b| a.product_id.cmp(&b.product_id));
        let mut reserved: HashMap<&str, ReservedLine> = HashMap::new();
        let mut causes = Vec::with_capacity(ordered.len());
        let mut after = Vec::with_capacity(ordered.len());
        for line in ordered {
            let mut update = Query::update()
                .table(Products::Table)
                .value(
                    Products::Stock,
                    Expr::col(Products::Stock).sub(line.quantity),
                )
                .value(Products::Version, Expr::col(Products::Version).add(1))
                .value(Products::UpdatedAt, now)
                .and_where(Expr::col(Products::Id).eq(line.product_id.as_str()))
                .and_where(Expr::col(Products::Status).eq("active"))
                .and_where(Expr::col(Products::Stock).gte(line.quantity))
                .to_owned();
            // What the line costs, read in the same statement where the
            // database can (one round trip per line instead of two).
            let taken: Option<(i64, i64, String, String)> = if self.db.backend() == Backend::MySql {
                let touched = self.db.execute(&mut *conn, &update).await?;
                if touched == 0 {
                    None
                } else {
                    let p = self.product_in(conn, &line.product_id).await?;
                    Some((p.stock, p.price_cents, p.name, p.category))
                }
            } else {
                update.returning(Query::returning().columns([
                    Products::Stock,
                    Products::PriceCents,
                    Products::Name,
                    Products::Category,
                ]));
                self.db.fetch_optional(&mut *conn, &update).await?
            };
            let Some((stock_after, price_cents, name, category)) = taken else {
                // Why not: missing, archived or not enough.
                return Err(match self.product_in(conn, &line.product_id).await {
                    Err(StoreError::NotFound) => {
                        InventoryError::NotFound(line.product_id.clone()).into()
                    }
                    Err(e) => e,
                    Ok(product) if product.status != "active" => {
                        InventoryError::Unavailable(line.product_id.clone()).into()
                    }
                    Ok(product) => InventoryError::Insufficient {
                        product_id: line.product_id.clone(),
                        available: product.stock,
                        requested: line.quantity,
                    }
                    .into(),
                });
            };
            causes.push(order_cause(order_id, &line.product_id));
            after.push(stock_after);
            reserved.insert(
                line.product_id.as_str(),
                ReservedLine {
                    product_id: line.product_id.clone(),
                    name,
                    category,
                    quantity: line.quantity,
                    unit_price_cents: price_cents,
                },
            );
        }
        let mut ordered: Vec<&ReserveLine> = lines.iter().collect();
        ordered.sort_by(|a, b| a.product_id.cmp(&b.product_id));
        let entries: Vec<Entry<'_>> = ordered
            .iter()
            .zip(causes.iter().zip(&after))
            .map(|(line, (cause, stock_after))| Entry {
                product_id: &line.product_id,
                cause,
                kind: "reserve",
                delta: -line.quantity,
                stock_after: *stock_after,
                order_id: Some(order_id),
                actor_id: None,
                reason: None,
                now,
            })
            .collect();
        self.ledger_entries(conn, &entries).await?;
        // In the order the caller gave.
        let out: Vec<ReservedLine> = lines
            .iter()
            .filter_map(|l| reserved.remove(l.product_id.as_str()))
            .collect();
        Ok(out)
    }

    /// Reserves inside the caller's transaction (the orders service's, when
    /// it shares this database): the same rules as [`Self::reserve`], and the
    /// reservation row is written with its lines. The caller commits; a
    /// rollback undoes everything. Cache invalidation is the caller's after commit.
    pub async fn reserve_in(
        &self,
        conn: &mut AnyConnection,
        order_id: &str,
        lines: &[ReserveLine],
    ) -> Result<Vec<ReservedLine>, InventoryError> {
        check_order_id(order_id)?;
        let lines = normalise_lines(lines)?;
        let now = clock::now_ms();
        let out = self
            .take_lines(conn, order_id, &lines, now)
            .await
            .map_err(|e| match e {
                StoreError::Inventory(e) => e,
                StoreError::Db(e) if e.is_retryable() => InventoryError::Busy(e.to_string()),
                other => InventoryError::Failed(other.to_string()),
            })?;
        let mut insert = Query::insert();
        insert
            .into_table(InventoryReservations::Table)
            .columns([
                InventoryReservations::OrderId,
                InventoryReservations::State,
                InventoryReservations::Lines,
                InventoryReservations::CreatedAt,
                InventoryReservations::UpdatedAt,
            ])
            .values_panic([
                order_id.into(),
                "held".into(),
                json_text(&out).into(),
                now.into(),
                now.into(),
            ]);
        self.db.execute(conn, &insert).await.map_err(|e| {
            if e.is_retryable() {
                InventoryError::Busy(e.to_string())
            } else {
                InventoryError::Failed(e.to_string())
            }
        })?;
        Ok(out)
    }

    /// `Ok(None)`: the order id is taken (read the existing reservation).
    async fn try_reserve(
        &self,
        order_id: &str,
        lines: &[ReserveLine],
    ) -> StoreResult<Option<Vec<ReservedLine>>> {
        let mut tx = self.db.begin().await?;
        let now = clock::now_ms();
        // Taking the order id first makes concurrent calls for it queue on the
        // key and fail fast, before any stock is touched.
        let inserted = self
            .insert_reservation(&mut tx, order_id, "held", now)
            .await;
        match inserted {
            Ok(_) => {}
            Err(e) if e.is_unique_violation() => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        let out = self.take_lines(&mut tx, order_id, lines, now).await?;
        self.db
            .execute(
                &mut *tx,
                &Query::update()
                    .table(InventoryReservations::Table)
                    .value(InventoryReservations::Lines, json_text(&out))
                    .and_where(Expr::col(InventoryReservations::OrderId).eq(order_id))
                    .to_owned(),
            )
            .await?;
        tx.commit().await?;
        Ok(Some(out))
    }

    /// Takes `order_id` for a reservation in `state` (lines filled in later).
    async fn insert_reservation(
        &self,
        conn: &mut AnyConnection,
        order_id: &str,
        state: &str,
        now: i64,
    ) -> Result<u64, DbError> {
        self.db
            .execute(
                conn,
                &Query::insert()
                    .into_table(InventoryReservations::Table)
                    .columns([
                        InventoryReservations::OrderId,
                        InventoryReservations::State,
                        InventoryReservations::Lines,
                        InventoryReservations::CreatedAt,
                        InventoryReservations::UpdatedAt,
                    ])
                    .values_panic([
                        order_id.into(),
                        state.into(),
                        "[]".into(),
                        now.into(),
                        now.into(),
                    ])
                    .to_owned(),
            )
            .await
    }

    /// Gives back what `order_id` holds; `false` when it holds nothing.
    pub async fn release(&self, order_id: &str) -> Result<bool, InventoryError> {
        check_order_id(order_id)?;
        let mut result = retrying!(self.try_release(order_id).await);
        if matches!(result, Err(StoreError::Db(DbError::Conflict(_)))) {
            // Raced a reserve of the same id: it exists now, so release it.
            result = retrying!(self.try_release(order_id).await);
        }
        result.map_err(|e| match e {
            StoreError::Inventory(e) => e,
            other => InventoryError::Failed(other.to_string()),
        })
    }

    async fn try_release(&self, order_id: &str) -> StoreResult<bool> {
        let mut tx = self.db.begin().await?;
        let row: Option<(String, String)> = self
            .db
            .fetch_optional(
                &mut *tx,
                &Query::select()
                    .columns([InventoryReservations::State, InventoryReservations::Lines])
                    .from(InventoryReservations::Table)
                    .and_where(Expr::col(InventoryReservations::OrderId).eq(order_id))
                    .lock(LockType::Update)
                    .to_owned(),
            )
            .await?;
        let Some((state, lines)) = row else {
            // Release wins over a reserve still on its way (a sweeper giving
            // up on a stalled placement): the id is marked released, so that
            // reserve will be refused instead of holding stock nobody frees.
            let now = clock::now_ms();
            let inserted = self
                .insert_reservation(&mut tx, order_id, "released", now)
                .await;
            return match inserted {
                Ok(_) => {
                    tx.commit().await?;
                    Ok(false)
                }
                // A reserve took the id meanwhile: the caller tries again.
                Err(e) if e.is_unique_violation() => Err(StoreError::Db(DbError::Conflict(
                    "reservation appeared during release".into(),
                ))),
                Err(e) => Err(e.into()),
            };
        };
        if state != "held" {
            return Ok(false);
        }
        let mut lines: Vec<ReservedLine> = serde_json::from_str(&lines)
            .map_err(|e| StoreError::Inventory(InventoryError::Failed(e.to_string())))?;
        lines.sort_by(|a, b| a.product_id.cmp(&b.product_id));
        let now = clock::now_ms();
        for line in &lines {
            self.db
                .execute(
                    &mut *tx,
                    &Query::update()
                        .table(Products::Table)
                        .value(
                            Products::Stock,
                            Expr::col(Products::Stock).add(line.quantity),
                        )
                        .value(Products::Version, Expr::col(Products::Version).add(1))
                        .value(Products::UpdatedAt, now)
                        .and_where(Expr::col(Products::Id).eq(line.product_id.as_str()))
                        .to_owned(),
                )
                .await?;
            let product = self.product_in(&mut tx, &line.product_id).await?;
            self.ledger_entry(
                &mut tx,
                Entry {
                    product_id: &line.product_id,
                    cause: &order_cause(order_id, &line.product_id),
                    kind: "release",
                    delta: line.quantity,
                    stock_after: product.stock,
                    order_id: Some(order_id),
                    actor_id: None,
                    reason: None,
                    now,
                },
            )
            .await?;
        }
        self.db
            .execute(
                &mut *tx,
                &Query::update()
                    .table(InventoryReservations::Table)
                    .value(InventoryReservations::State, "released")
                    .value(InventoryReservations::UpdatedAt, now)
                    .and_where(Expr::col(InventoryReservations::OrderId).eq(order_id))
                    .to_owned(),
            )
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Number of reservations an order id has (0 or 1), for tests and checks.
    pub async fn reservation_state(&self, order_id: &str) -> StoreResult<Option<String>> {
        let row: Option<(String,)> = self
            .db
            .fetch_optional(
                self.db.pool(),
                &Query::select()
                    .column(InventoryReservations::State)
                    .from(InventoryReservations::Table)
                    .and_where(Expr::col(InventoryReservations::OrderId).eq(order_id))
                    .to_owned(),
            )
            .await?;
        Ok(row.map(|(s,)| s))
    }

    // ---- categories ---------------------------------------------------------

    /// Every category with its active products' count, units and stock value.
    pub async fn categories(&self) -> StoreResult<Vec<CategoryStats>> {
        let b = self.db.backend();
        let stock = || Expr::col((Products::Table, Products::Stock));
        let sum_or_zero = |e: Expr| Func::coalesce([Func::sum(e).into(), Expr::val(0)]);
        let stmt = Query::select()
            .column((Categories::Table, Categories::Id))
            .column((Categories::Table, Categories::Name))
            .expr_as(
                b.cast_bigint(Func::count(Expr::col((Products::Table, Products::Id)))),
                Alias::new("product_count"),
            )
            .expr_as(
                b.cast_bigint(sum_or_zero(stock())),
                Alias::new("units_in_stock"),
            )
            .expr_as(
                b.cast_bigint(sum_or_zero(
                    stock().mul(Expr::col((Products::Table, Products::PriceCents))),
                )),
                Alias::new("stock_value_cents"),
            )
            .column((Categories::Table, Categories::CreatedAt))
            .from(Categories::Table)
            .left_join(
                Products::Table,
                Cond::all()
                    .add(
                        Expr::col((Products::Table, Products::Category))
                            .equals((Categories::Table, Categories::Name)),
                    )
                    .add(Expr::col((Products::Table, Products::Status)).eq("active")),
            )
            .group_by_col((Categories::Table, Categories::Id))
            .group_by_col((Categories::Table, Categories::Name))
            .group_by_col((Categories::Table, Categories::CreatedAt))
            .order_by((Categories::Table, Categories::Id), Order::Asc)
            .to_owned();
        Ok(self.db.fetch_all(self.db.pool(), &stmt).await?)
    }

    pub async fn create_category(&self, name: &str) -> StoreResult<()> {
        let now = clock::now_ms();
        self.db
            .execute(
                self.db.pool(),
                &Query::insert()
                    .into_table(Categories::Table)
                    .columns([
                        Categories::Name,
                        Categories::CreatedAt,
                        Categories::UpdatedAt,
                    ])
                    .values_panic([name.into(), now.into(), now.into()])
                    .to_owned(),
            )
            .await
            .map_err(|e| {
                if e.is_unique_violation() {
                    StoreError::CategoryTaken
                } else {
                    e.into()
                }
            })?;
        Ok(())
    }

    /// Renames a category; its products follow (foreign key ON UPDATE CASCADE).
    pub async fn rename_category(&self, from: &str, to: &str) -> StoreResult<()> {
        let touched = self
            .db
            .execute(
                self.db.pool(),
                &Query::update()
                    .table(Categories::Table)
                    .value(Categories::Name, to)
                    .value(Categories::UpdatedAt, clock::now_ms())
                    .and_where(Expr::col(Categories::Name).eq(from))
                    .to_owned(),
            )
            .await
            .map_err(|e| {
                if e.is_unique_violation() {
                    StoreError::CategoryTaken
                } else {
                    StoreError::from(e)
                }
            })?;
        if touched == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Deletes a category no product uses (archived ones included).
    pub async fn delete_category(&self, name: &str) -> StoreResult<()> {
        retrying!(self.try_delete_category(name).await)
    }

    async fn try_delete_category(&self, name: &str) -> StoreResult<()> {
        let mut tx = self.db.begin().await?;
        let (used,): (i64,) = self
            .db
            .fetch_one(
                &mut *tx,
                &Query::select()
                    .expr(count_rows())
                    .from(Products::Table)
                    .and_where(Expr::col(Products::Category).eq(name))
                    .to_owned(),
            )
            .await?;
        if used > 0 {
            return Err(StoreError::CategoryInUse(used));
        }
        let touched = self
            .db
            .execute(
                &mut *tx,
                &Query::delete()
                    .from_table(Categories::Table)
                    .and_where(Expr::col(Categories::Name).eq(name))
                    .to_owned(),
            )
            .await
            .map_err(|e| match e {
                // A product appeared meanwhile: the foreign key refused.
                DbError::Sqlx(ref s)
                    if s.as_database_error()
                        .is_some_and(|d| d.is_foreign_key_violation()) =>
                {
                    StoreError::CategoryInUse(1)
                }
                other => other.into(),
            })?;
        if touched == 0 {
            return Err(StoreError::NotFound);
        }
        tx.commit().await?;
        Ok(())
    }

    // ---- reviews ------------------------------------------------------------

    /// Order ids under which `user_id` already reviewed the product.
    pub async fn reviewed_orders(
        &self,
        product_id: &str,
        user_id: i64,
    ) -> StoreResult<Vec<String>> {
        let rows: Vec<(String,)> = self
            .db
            .fetch_all(
                self.db.pool(),
                &Query::select()
                    .column(ProductReviews::OrderId)
                    .from(ProductReviews::Table)
                    .and_where(Expr::col(ProductReviews::ProductId).eq(product_id))
                    .and_where(Expr::col(ProductReviews::UserId).eq(user_id))
                    .to_owned(),
            )
            .await?;
        Ok(rows.into_iter().map(|(o,)| o).collect())
    }

    /// Stores a review and updates the product's rating in one transaction.
    pub async fn add_review(&self, review: &ReviewRow) -> StoreResult<ProductRow> {
        retrying!(self.try_add_review(review).await)
    }

    async fn try_add_review(&self, r: &ReviewRow) -> StoreResult<ProductRow> {
        let mut tx = self.db.begin().await?;
        let product = self.lock_product(&mut tx, &r.product_id).await?;
        let inserted = self
            .db
            .execute(
                &mut *tx,
                &Query::insert()
                    .into_table(ProductReviews::Table)
                    // Every column but the generated id.
                    .columns(Self::REVIEW_COLUMNS[1..].iter().copied())
                    .values_panic([
                        r.product_id.clone().into(),
                        r.user_id.into(),
                        r.user_name.clone().into(),
                        r.order_id.clone().into(),
                        r.rating.into(),
                        r.comment.clone().into(),
                        r.created_at.into(),
                    ])
                    .to_owned(),
            )
            .await;
        match inserted {
            Ok(_) => {}
            Err(e) if e.is_unique_violation() => return Err(StoreError::AlreadyReviewed),
            Err(e) => return Err(e.into()),
        }
        // Computed here, not in SQL: MySQL evaluates SET assignments left to right.
        let count = product.rating_count + 1;
        let sum = product.rating_sum + r.rating;
        self.db
            .execute(
                &mut *tx,
                &Query::update()
                    .table(Products::Table)
                    .value(Products::RatingCount, count)
                    .value(Products::RatingSum, sum)
                    .value(Products::RatingAvg, domain::rating_avg_x100(sum, count))
                    .value(Products::Version, Expr::col(Products::Version).add(1))
                    .value(Products::UpdatedAt, clock::now_ms())
                    .and_where(Expr::col(Products::Id).eq(r.product_id.as_str()))
                    .to_owned(),
            )
            .await?;
        let row = self.product_in(&mut tx, &r.product_id).await?;
        tx.commit().await?;
        Ok(row)
    }

    const REVIEW_COLUMNS: [ProductReviews; 8] = [
        ProductReviews::Id,
        ProductReviews::ProductId,
        ProductReviews::UserId,
        ProductReviews::UserName,
        ProductReviews::OrderId,
        ProductReviews::Rating,
        ProductReviews::Comment,
        ProductReviews::CreatedAt,
    ];

    /// A page of a product's reviews, newest first.
    pub async fn reviews(
        &self,
        product_id: &str,
        page: u64,
        limit: u64,
    ) -> StoreResult<Vec<ReviewRow>> {
        Ok(self
            .db
            .fetch_all(
                self.db.pool(),
                &Query::select()
                    .columns(Self::REVIEW_COLUMNS)
                    .from(ProductReviews::Table)
                    .and_where(Expr::col(ProductReviews::ProductId).eq(product_id))
                    .order_by(ProductReviews::CreatedAt, Order::Desc)
                    .order_by(ProductReviews::Id, Order::Desc)
                    .limit(limit)
                    .offset(page.saturating_sub(1).saturating_mul(limit))
                    .to_owned(),
            )
            .await?)
    }

    /// The newest `per_product` reviews of each product, newest first, in one
    /// query (a window over the product's index), however many each has.
    pub async fn newest_reviews_of(
        &self,
        ids: &[&str],
        per_product: u64,
    ) -> StoreResult<HashMap<String, Vec<ReviewRow>>> {
        if ids.is_empty() || per_product == 0 {
            return Ok(HashMap::new());
        }
        let rank = Alias::new("review_rank");
        let ranked = Query::select()
            .columns(Self::REVIEW_COLUMNS)
            .expr_window_as(
                Func::cust("ROW_NUMBER"),
                sea_query::WindowStatement::partition_by(ProductReviews::ProductId)
                    .order_by(ProductReviews::CreatedAt, Order::Desc)
                    .order_by(ProductReviews::Id, Order::Desc)
                    .to_owned(),
                rank.clone(),
            )
            .from(ProductReviews::Table)
            .and_where(Expr::col(ProductReviews::ProductId).is_in(ids.iter().copied()))
            .to_owned();
        let rows: Vec<ReviewRow> = self
            .db
            .fetch_all(
                self.db.pool(),
                &Query::select()
                    .columns(Self::REVIEW_COLUMNS)
                    .from_subquery(ranked, Alias::new("ranked"))
                    .and_where(Expr::col(rank.clone()).lte(per_product as i64))
                    .order_by(ProductReviews::ProductId, Order::Asc)
                    .order_by(rank, Order::Asc)
                    .to_owned(),
            )
            .await?;
        Ok(by_product(rows, |r| &r.product_id))
    }

    // ---- images -------------------------------------------------------------

    /// Records an uploaded file as the product's last image.
    pub async fn add_image(&self, image: &ImageRow) -> StoreResult<()> {
        retrying!(self.try_add_image(image).await)
    }

    async fn try_add_image(&self, img: &ImageRow) -> StoreResult<()> {
        let mut tx = self.db.begin().await?;
        self.lock_product(&mut tx, &img.product_id).await?;
        let pos = self.db.backend().cast_bigint(
            Func::coalesce([
                Func::max(Expr::col(ProductImages::Position)).into(),
                Expr::val(-1),
            ])
            .add(1),
        );
        let (position,): (i64,) = self
            .db
            .fetch_one(
                &mut *tx,
                &Query::select()
                    .expr(pos)
                    .from(ProductImages::Table)
                    .and_where(Expr::col(ProductImages::ProductId).eq(img.product_id.as_str()))
                    .to_owned(),
            )
            .await?;
        self.db
            .execute(
                &mut *tx,
                &Query::insert()
                    .into_table(ProductImages::Table)
                    .columns([
                        ProductImages::Id,
                        ProductImages::ProductId,
                        ProductImages::ObjectKey,
                        ProductImages::ContentType,
                        ProductImages::SizeBytes,
                        ProductImages::Position,
                        ProductImages::CreatedAt,
                    ])
                    .values_panic([
                        img.id.clone().into(),
                        img.product_id.clone().into(),
                        img.object_key.clone().into(),
                        img.content_type.clone().into(),
                        img.size_bytes.into(),
                        position.into(),
                        img.created_at.into(),
                    ])
                    .to_owned(),
            )
            .await?;
        self.touch(&mut tx, &img.product_id).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Removes an image row; returns it (its object key is the caller's to delete).
    pub async fn remove_image(&self, product_id: &str, image_id: &str) -> StoreResult<ImageRow> {
        retrying!(self.try_remove_image(product_id, image_id).await)
    }

    async fn try_remove_image(&self, product_id: &str, image_id: &str) -> StoreResult<ImageRow> {
        let mut tx = self.db.begin().await?;
        let row: ImageRow = self
            .db
            .fetch_optional(
                &mut *tx,
                &Query::select()
                    .columns(IMAGE_COLUMNS)
                    .from(ProductImages::Table)
                    .and_where(Expr::col(ProductImages::Id).eq(image_id))
                    .and_where(Expr::col(ProductImages::ProductId).eq(product_id))
                    .to_owned(),
            )
            .await?
            .ok_or(StoreError::NotFound)?;
        self.db
            .execute(
                &mut *tx,
                &Query::delete()
                    .from_table(ProductImages::Table)
                    .and_where(Expr::col(ProductImages::Id).eq(image_id))
                    .to_owned(),
            )
            .await?;
        self.touch(&mut tx, product_id).await?;
        tx.commit().await?;
        Ok(row)
    }

    async fn touch(&self, conn: &mut AnyConnection, id: &str) -> StoreResult<()> {
        self.db
            .execute(
                conn,
                &Query::update()
                    .table(Products::Table)
                    .value(Products::Version, Expr::col(Products::Version).add(1))
                    .value(Products::UpdatedAt, clock::now_ms())
                    .and_where(Expr::col(Products::Id).eq(id))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    // ---- bulk ---------------------------------------------------------------

    /// Inserts many products in one transaction (demo data, imports); returns
    /// their ids. Categories must exist.
    pub async fn insert_many(&self, products: &[NewProduct]) -> StoreResult<Vec<String>> {
        let mut tx: Transaction<'static, Any> = self.db.begin().await?;
        let now = clock::now_ms();
        let mut ids = Vec::with_capacity(products.len());
        for (i, p) in products.iter().enumerate() {
            let id = domain::new_product_id();
            // Distinct, increasing creation times keep "newest first" meaningful.
            let created = now - i64::try_from(products.len() - i).unwrap_or(0);
            self.insert_product(&mut tx, &id, p, created).await?;
            ids.push(id);
        }
        tx.commit().await?;
        Ok(ids)
    }

    pub async fn count_products(&self) -> StoreResult<i64> {
        let (n,): (i64,) = self
            .db
            .fetch_one(
                self.db.pool(),
                &Query::select()
                    .expr(count_rows())
                    .from(Products::Table)
                    .to_owned(),
            )
            .await?;
        Ok(n)
    }
}

struct Entry<'a> {
    product_id: &'a str,
    cause: &'a str,
    kind: &'a str,
    delta: i64,
    stock_after: i64,
    order_id: Option<&'a str>,
    actor_id: Option<i64>,
    reason: Option<&'a str>,
    now: i64,
}

/// Rows grouped by product id, each group in the rows' order.
fn by_product<T>(rows: Vec<T>, product_id: impl Fn(&T) -> &String) -> HashMap<String, Vec<T>> {
    let mut out: HashMap<String, Vec<T>> = HashMap::new();
    for r in rows {
        out.entry(product_id(&r).clone()).or_default().push(r);
    }
    out
}
