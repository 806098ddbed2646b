//! The catalog service: products, categories, the inventory ledger, reviews and
//! images. `router(state)` serves the contract's `/api/products` and
//! `/api/categories` routes, plus `/media/*` for locally stored images;
//! [`CatalogInventory`] is the in-process implementation of the `Inventory` port.

pub mod cache;
pub mod demo;
pub mod domain;
pub mod http;
pub mod media;
pub mod migrations;
pub mod store;

use std::sync::Arc;

use async_trait::async_trait;
use axum::{
    Router,
    extract::{DefaultBodyLimit, FromRef},
    routing::get,
};
use ecap_core::{
    auth::AuthState,
    db::Db,
    ports::{Inventory, InventoryError, PurchaseCheck, ReserveLine, ReservedLine},
};
use utoipa_axum::{router::OpenApiRouter, routes};

pub use cache::ResponseCache;
pub use media::MediaStore;
pub use store::CatalogStore;

/// Behaviour switches of the catalog, from the configuration.
#[derive(Debug, Clone)]
pub struct CatalogSettings {
    /// Largest accepted image file.
    pub max_image_bytes: usize,
}

impl CatalogSettings {
    /// One upload request may carry up to ten images plus form overhead.
    pub fn upload_limit_bytes(&self) -> usize {
        self.max_image_bytes
            .saturating_mul(10)
            .saturating_add(1024 * 1024)
    }
}

#[derive(Clone)]
pub struct CatalogState {
    pub store: CatalogStore,
    pub auth: AuthState,
    pub cache: ResponseCache,
    pub media: MediaStore,
    pub purchases: Arc<dyn PurchaseCheck>,
    pub settings: Arc<CatalogSettings>,
}

impl FromRef<CatalogState> for AuthState {
    fn from_ref(s: &CatalogState) -> Self {
        s.auth.clone()
    }
}

/// Applies the service's migrations.
pub async fn migrate(db: &Db) -> Result<usize, ecap_core::db::DbError> {
    ecap_core::migrate::run(db, "catalog", migrations::MIGRATIONS).await
}

/// The `Inventory` port served by this process's catalog: reservations change
/// stock, so each one also refreshes the product cache.
#[derive(Clone, Debug)]
pub struct CatalogInventory {
    pub store: CatalogStore,
    pub cache: ResponseCache,
}

#[async_trait]
impl Inventory for CatalogInventory {
    async fn reserve(
        &self,
        order_id: &str,
        lines: &[ReserveLine],
    ) -> Result<Vec<ReservedLine>, InventoryError> {
        let out = self.store.reserve(order_id, lines).await;
        if out.is_ok() {
            let _ = self.cache.invalidate().await;
        }
        out
    }

    async fn release(&self, order_id: &str) -> Result<bool, InventoryError> {
        let out = self.store.release(order_id).await;
        if matches!(out, Ok(true)) {
            let _ = self.cache.invalidate().await;
        }
        out
    }

    async fn reserve_in(
        &self,
        conn: &mut sqlx::AnyConnection,
        order_id: &str,
        lines: &[ReserveLine],
    ) -> Option<Result<Vec<ReservedLine>, InventoryError>> {
        Some(self.store.reserve_in(conn, order_id, lines).await)
    }

    async fn reserved_in_committed(&self) {
        let _ = self.cache.invalidate().await;
    }
}

/// The routes with their OpenAPI description. Uploads take bodies up to
/// `upload_limit` bytes; every other route keeps the process's limit.
pub fn openapi_router(upload_limit: usize) -> OpenApiRouter<CatalogState> {
    let (schemas, paths, upload) = routes!(http::upload_images);
    let upload = upload.layer(DefaultBodyLimit::max(upload_limit));
    OpenApiRouter::new()
        .routes(routes!(http::list_products, http::create_product))
        .routes(routes!(
            http::get_product,
            http::update_product,
            http::delete_product
        ))
        .routes(routes!(http::adjust_inventory))
        .routes(routes!(http::inventory_history))
        .routes(routes!(http::add_review, http::list_reviews))
        .routes((schemas, paths, upload))
        .routes(routes!(http::delete_image))
        .routes(routes!(http::list_categories, http::create_category))
        .routes(routes!(http::rename_category, http::delete_category))
}

/// The service's routes, ready to merge into a process's router.
pub fn router(state: CatalogState) -> (Router, utoipa::openapi::OpenApi) {
    let (router, api) = openapi_router(state.settings.upload_limit_bytes()).split_for_parts();
    let router = router.route("/media/{*key}", get(http::serve_media));
    (router.with_state(state), api)
}
