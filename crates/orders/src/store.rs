//! Persistence of orders and the flows that span the catalog: placement with
//! its reservation, lifecycle changes with their releases, inventory sync.
//!
//! Every change of an order is one transaction that also writes its history
//! row and its outbox event. Calls to the `Inventory` port happen outside those
//! transactions (the catalog may live in another database, or share SQLite's one
//! writer); they are idempotent by reservation key, and an intended call is
//! recorded first (`order_placements`, `orders.inventory_pending`), so the
//! sweeper can finish whatever a crash interrupted.

use std::{collections::HashMap, sync::Arc, time::Duration};

use ecap_core::{
    clock,
    db::{Db, DbError, Retryable},
    events::{EventLine, OrderEvent, OrderEventKind},
    ports::{Inventory, InventoryError, ReserveLine, ReservedLine},
    retrying,
};
use sea_query::{
    Cond, Expr, ExprTrait, Func, Iden, LockType, OnConflict, Order, Query, SelectStatement,
};
use serde_json::Value;
use sqlx::{Any, Transaction};
use tokio::sync::Notify;

use crate::domain::{RESTORE_WINDOW_MS, RETURN_WINDOW_MS, Status};

#[derive(Iden, Clone, Copy)]
pub(crate) enum Orders {
    Table,
    Id,
    UserId,
    UserEmail,
    UserOrderNumber,
    TotalCents,
    Status,
    PaymentMethod,
    ShippingAddress,
    CreatedAt,
    UpdatedAt,
    ProcessingAt,
    ShippedAt,
    OutForDeliveryAt,
    DeliveredAt,
    TrackingNumber,
    CourierName,
    EstimatedDelivery,
    CancellationReason,
    CancellationImages,
    CancellationRequestedAt,
    StatusBeforeRequest,
    CancellationApprovedBy,
    CancellationApprovedAt,
    CancellationRejected,
    CancellationRejectionReason,
    CancellationRejectedBy,
    CancellationRejectedAt,
    CancelledAt,
    RefundStatus,
    RefundCents,
    RefundProcessingAt,
    RefundedAt,
    InventoryDeducted,
    ReservationKey,
    ReservationSource,
    SyncGeneration,
    InventoryPending,
    DeletedAt,
    DeletedBy,
    DeletionReason,
    StatusBeforeDeletion,
    HiddenAt,
    HiddenExpiresAt,
    RestorationStatus,
    RestorationReason,
    RestorationRequestedAt,
    RestorationDecidedBy,
    RestorationDecidedAt,
    RestorationRejectionReason,
    EventSeq,
}

const ORDER_COLUMNS: [Orders; 50] = [
    Orders::Id,
    Orders::UserId,
    Orders::UserEmail,
    Orders::UserOrderNumber,
    Orders::TotalCents,
    Orders::Status,
    Orders::PaymentMethod,
    Orders::ShippingAddress,
    Orders::CreatedAt,
    Orders::UpdatedAt,
    Orders::ProcessingAt,
    Orders::ShippedAt,
    Orders::OutForDeliveryAt,
    Orders::DeliveredAt,
    Orders::TrackingNumber,
    Orders::CourierName,
    Orders::EstimatedDelivery,
    Orders::CancellationReason,
    Orders::CancellationImages,
    Orders::CancellationRequestedAt,
    Orders::StatusBeforeRequest,
    Orders::CancellationApprovedBy,
    Orders::CancellationApprovedAt,
    Orders::CancellationRejected,
    Orders::CancellationRejectionReason,
    Orders::CancellationRejectedBy,
    Orders::CancellationRejectedAt,
    Orders::CancelledAt,
    Orders::RefundStatus,
    Orders::RefundCents,
    Orders::RefundProcessingAt,
    Orders::RefundedAt,
    Orders::InventoryDeducted,
    Orders::ReservationKey,
    Orders::ReservationSource,
    Orders::SyncGeneration,
    Orders::InventoryPending,
    Orders::DeletedAt,
    Orders::DeletedBy,
    Orders::DeletionReason,
    Orders::StatusBeforeDeletion,
    Orders::HiddenAt,
    Orders::HiddenExpiresAt,
    Orders::RestorationStatus,
    Orders::RestorationReason,
    Orders::RestorationRequestedAt,
    Orders::RestorationDecidedBy,
    Orders::RestorationDecidedAt,
    Orders::RestorationRejectionReason,
    Orders::EventSeq,
];

#[derive(Iden, Clone, Copy)]
pub(crate) enum OrderItems {
    Table,
    Id,
    OrderId,
    ProductId,
    ProductName,
    Category,
    Quantity,
    PriceCents,
    SubtotalCents,
    CreatedAt,
}

const ITEM_COLUMNS: [OrderItems; 9] = [
    OrderItems::Id,
    OrderItems::OrderId,
    OrderItems::ProductId,
    OrderItems::ProductName,
    OrderItems::Category,
    OrderItems::Quantity,
    OrderItems::PriceCents,
    OrderItems::SubtotalCents,
    OrderItems::CreatedAt,
];

#[derive(Iden, Clone, Copy)]
pub(crate) enum OrderHistory {
    Table,
    Id,
    OrderId,
    FromStatus,
    ToStatus,
    ActorId,
    ActorRole,
    Note,
    CreatedAt,
}

#[derive(Iden, Clone, Copy)]
pub(crate) enum OrderOutbox {
    Table,
    Id,
    EventId,
    OrderId,
    Seq,
    Kind,
    Payload,
    CreatedAt,
    DeliveredAt,
}

#[derive(Iden, Clone, Copy)]
pub(crate) enum OrderDetailRequests {
    Table,
    Id,
    OrderId,
    UserId,
    Reason,
    OtherReason,
    Status,
    AdminId,
    AdminNote,
    CreatedAt,
    UpdatedAt,
}

const REQUEST_COLUMNS: [OrderDetailRequests; 10] = [
    OrderDetailRequests::Id,
    OrderDetailRequests::OrderId,
    OrderDetailRequests::UserId,
    OrderDetailRequests::Reason,
    OrderDetailRequests::OtherReason,
    OrderDetailRequests::Status,
    OrderDetailRequests::AdminId,
    OrderDetailRequests::AdminNote,
    OrderDetailRequests::CreatedAt,
    OrderDetailRequests::UpdatedAt,
];

#[derive(Iden, Clone, Copy)]
pub(crate) enum OrderUserCounters {
    Table,
    UserId,
    LastNumber,
}

#[derive(Iden, Clone, Copy)]
pub(crate) enum OrderPlacements {
    Table,
    ReservationKey,
    UserId,
    IdempotencyKey,
    RequestHash,
    OrderId,
    CreatedAt,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct OrderRow {
    pub id: i64,
    pub user_id: i64,
    pub user_email: Option<String>,
    pub user_order_number: i64,
    pub total_cents: i64,
    pub status: String,
    pub payment_method: String,
    /// JSON text.
    pub shipping_address: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub processing_at: Option<i64>,
    pub shipped_at: Option<i64>,
    pub out_for_delivery_at: Option<i64>,
    pub delivered_at: Option<i64>,
    pub tracking_number: Option<String>,
    pub courier_name: Option<String>,
    pub estimated_delivery: Option<i64>,
    pub cancellation_reason: Option<String>,
    /// JSON array of URLs.
    pub cancellation_images: String,
    pub cancellation_requested_at: Option<i64>,
    pub status_before_request: Option<String>,
    pub cancellation_approved_by: Option<i64>,
    pub cancellation_approved_at: Option<i64>,
    pub cancellation_rejected: i64,
    pub cancellation_rejection_reason: Option<String>,
    pub cancellation_rejected_by: Option<i64>,
    pub cancellation_rejected_at: Option<i64>,
    pub cancelled_at: Option<i64>,
    pub refund_status: Option<String>,
    pub refund_cents: Option<i64>,
    pub refund_processing_at: Option<i64>,
    pub refunded_at: Option<i64>,
    pub inventory_deducted: i64,
    pub reservation_key: Option<String>,
    pub reservation_source: Option<String>,
    pub sync_generation: i64,
    pub inventory_pending: Option<String>,
    pub deleted_at: Option<i64>,
    pub deleted_by: Option<i64>,
    pub deletion_reason: Option<String>,
    pub status_before_deletion: Option<String>,
    pub hidden_at: Option<i64>,
    pub hidden_expires_at: Option<i64>,
    pub restoration_status: Option<String>,
    pub restoration_reason: Option<String>,
    pub restoration_requested_at: Option<i64>,
    pub restoration_decided_by: Option<i64>,
    pub restoration_decided_at: Option<i64>,
    pub restoration_rejection_reason: Option<String>,
    pub event_seq: i64,
}

/// `order_placements.order_id` of a placement the sweeper gave up on: its
/// stock is being released, then the row goes (NULL: still being placed; 0:
/// taken by the order's transaction; above: the order).
const ABANDONED: i64 = -1;

impl OrderRow {
    /// A new pending order as it is inserted (its id set by [`OrderStore::insert_order`]);
    /// it holds stock when it has a reservation key.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn fresh(
        user_id: i64,
        user_email: Option<String>,
        number: i64,
        total_cents: i64,
        payment_method: &str,
        shipping_address: &Value,
        now: i64,
        key: Option<&str>,
    ) -> Self {
        Self {
            id: 0,
            user_id,
            user_email,
            user_order_number: number,
            total_cents,
            status: Status::Pending.as_str().into(),
            payment_method: payment_method.to_owned(),
            shipping_address: serde_json::to_string(shipping_address).unwrap_or_default(),
            created_at: now,
            updated_at: now,
            processing_at: None,
            shipped_at: None,
            out_for_delivery_at: None,
            delivered_at: None,
            tracking_number: None,
            courier_name: None,
            estimated_delivery: None,
            cancellation_reason: None,
            cancellation_images: "[]".into(),
            cancellation_requested_at: None,
            status_before_request: None,
            cancellation_approved_by: None,
            cancellation_approved_at: None,
            cancellation_rejected: 0,
            cancellation_rejection_reason: None,
            cancellation_rejected_by: None,
            cancellation_rejected_at: None,
            cancelled_at: None,
            refund_status: None,
            refund_cents: None,
            refund_processing_at: None,
            refunded_at: None,
            inventory_deducted: i64::from(key.is_some()),
            reservation_key: key.map(str::to_owned),
            reservation_source: key.map(|_| "order".to_owned()),
            sync_generation: 0,
            inventory_pending: None,
            deleted_at: None,
            deleted_by: None,
            deletion_reason: None,
            status_before_deletion: None,
            hidden_at: None,
            hidden_expires_at: None,
            restoration_status: None,
            restoration_reason: None,
            restoration_requested_at: None,
            restoration_decided_by: None,
            restoration_decided_at: None,
            restoration_rejection_reason: None,
            event_seq: 1,
        }
    }

    pub fn status(&self) -> Status {
        Status::parse(&self.status).unwrap_or(Status::Pending)
    }

    pub fn status_before_deletion(&self) -> Option<Status> {
        self.status_before_deletion
            .as_deref()
            .and_then(Status::parse)
    }

    /// What the order's status says about stock (see [`Status::holds_stock`]).
    pub fn should_hold_stock(&self) -> bool {
        self.status().holds_stock(self.status_before_deletion())
    }

    /// The date the 30-day retention counts from (fixes C11: only a real
    /// cancellation or deletion starts it).
    pub fn retention_base(&self) -> Option<i64> {
        match self.status() {
            Status::Deleted => self.deleted_at,
            Status::Cancelled | Status::RefundProcessing | Status::Refunded => self.cancelled_at,
            _ => None,
        }
    }

    fn values(&self) -> Vec<(Orders, Expr)> {
        vec![
            (Orders::Status, self.status.clone().into()),
            (Orders::UpdatedAt, self.updated_at.into()),
            (
                Orders::ShippingAddress,
                self.shipping_address.clone().into(),
            ),
            (Orders::UserEmail, self.user_email.clone().into()),
            (Orders::ProcessingAt, self.processing_at.into()),
            (Orders::ShippedAt, self.shipped_at.into()),
            (Orders::OutForDeliveryAt, self.out_for_delivery_at.into()),
            (Orders::DeliveredAt, self.delivered_at.into()),
            (Orders::TrackingNumber, self.tracking_number.clone().into()),
            (Orders::CourierName, self.courier_name.clone().into()),
            (Orders::EstimatedDelivery, self.estimated_delivery.into()),
            (
                Orders::CancellationReason,
                self.cancellation_reason.clone().into(),
            ),
            (
                Orders::CancellationImages,
                self.cancellation_images.clone().into(),
            ),
            (
                Orders::CancellationRequestedAt,
                self.cancellation_requested_at.into(),
            ),
            (
                Orders::StatusBeforeRequest,
                self.status_before_request.clone().into(),
            ),
            (
                Orders::CancellationApprovedBy,
                self.cancellation_approved_by.into(),
            ),
            (
                Orders::CancellationApprovedAt,
                self.cancellation_approved_at.into(),
            ),
            (
                Orders::CancellationRejected,
                self.cancellation_rejected.into(),
            ),
            (
                Orders::CancellationRejectionReason,
                self.cancellation_rejection_reason.clone().into(),
            ),
            (
                Orders::CancellationRejectedBy,
                self.cancellation_rejected_by.into(),
            ),
            (
                Orders::CancellationRejectedAt,
                self.cancellation_rejected_at.into(),
            ),
            (Orders::CancelledAt, self.cancelled_at.into()),
            (Orders::RefundStatus, self.refund_status.clone().into()),
            (Orders::RefundCents, self.refund_cents.into()),
            (Orders::RefundProcessingAt, self.refund_processing_at.into()),
            (Orders::RefundedAt, self.refunded_at.into()),
            (Orders::InventoryDeducted, self.inventory_deducted.into()),
            (Orders::ReservationKey, self.reservation_key.clone().into()),
            (
                Orders::ReservationSource,
                self.reservation_source.clone().into(),
            ),
            (Orders::SyncGeneration, self.sync_generation.into()),
            (
                Orders::InventoryPending,
                self.inventory_pending.clone().into(),
            ),
            (Orders::DeletedAt, self.deleted_at.into()),
            (Orders::DeletedBy, self.deleted_by.into()),
            (Orders::DeletionReason, self.deletion_reason.clone().into()),
            (
                Orders::StatusBeforeDeletion,
                self.status_before_deletion.clone().into(),
            ),
            (Orders::HiddenAt, self.hidden_at.into()),
            (Orders::HiddenExpiresAt, self.hidden_expires_at.into()),
            (
                Orders::RestorationStatus,
                self.restoration_status.clone().into(),
            ),
            (
                Orders::RestorationReason,
                self.restoration_reason.clone().into(),
            ),
            (
                Orders::RestorationRequestedAt,
                self.restoration_requested_at.into(),
            ),
            (
                Orders::RestorationDecidedBy,
                self.restoration_decided_by.into(),
            ),
            (
                Orders::RestorationDecidedAt,
                self.restoration_decided_at.into(),
            ),
            (
                Orders::RestorationRejectionReason,
                self.restoration_rejection_reason.clone().into(),
            ),
            (Orders::EventSeq, self.event_seq.into()),
        ]
    }
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ItemRow {
    pub id: i64,
    pub order_id: i64,
    pub product_id: String,
    pub product_name: String,
    pub category: String,
    pub quantity: i64,
    pub price_cents: i64,
    pub subtotal_cents: i64,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct HistoryRow {
    pub from_status: Option<String>,
    pub to_status: String,
    pub actor_id: Option<i64>,
    pub actor_role: Option<String>,
    pub note: Option<String>,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RequestRow {
    pub id: i64,
    pub order_id: i64,
    pub user_id: i64,
    pub reason: String,
    pub other_reason: Option<String>,
    pub status: String,
    pub admin_id: Option<i64>,
    pub admin_note: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("Order not found")]
    NotFound,
    /// A rule of the contract refused the change (400).
    #[error("{0}")]
    Rule(String),
    /// The status machine refused the change (409).
    #[error("{0}")]
    Transition(String),
    #[error("{0}")]
    Inventory(InventoryError),
    /// The Idempotency-Key was used with another request body (422).
    #[error("This Idempotency-Key was used with a different request")]
    IdempotencyMismatch,
    /// A request with the same Idempotency-Key is still being processed (409).
    #[error("A request with this Idempotency-Key is still in progress")]
    IdempotencyInProgress,
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
        match self {
            Self::Db(e) => e.is_retryable(),
            Self::Inventory(InventoryError::Busy(_)) => true,
            _ => false,
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Who acts on an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actor {
    pub id: i64,
    pub admin: bool,
}

/// A validated order to place.
#[derive(Debug, Clone)]
pub struct NewOrder {
    pub user_id: i64,
    pub user_email: Option<String>,
    /// One line per product (merged), quantity ≥ 1.
    pub lines: Vec<ReserveLine>,
    pub payment_method: String,
    pub shipping_address: Value,
    /// `(key, hash of the request)` when the client sent an Idempotency-Key.
    pub idempotency: Option<(String, String)>,
}

/// An order written by [`OrderStore::import`]: lines already priced, placed
/// at `placed_at`, now in `status` (reached at `status_at`).
#[derive(Debug, Clone)]
pub struct ImportedOrder {
    pub user_id: i64,
    pub user_email: Option<String>,
    pub lines: Vec<ReservedLine>,
    pub payment_method: String,
    pub shipping_address: Value,
    pub placed_at: i64,
    pub status: Status,
    pub status_at: Option<i64>,
}

/// A placed order; `replayed` when an earlier request with the same
/// Idempotency-Key placed it.
#[derive(Debug, Clone)]
pub struct Placed {
    pub order: OrderRow,
    pub items: Vec<ItemRow>,
    pub replayed: bool,
}

/// Shipping details that come with `shipped`.
#[derive(Debug, Clone, Default)]
pub struct Shipment {
    pub tracking_number: Option<String>,
    pub courier_name: Option<String>,
    pub estimated_delivery: Option<i64>,
}

/// The statuses sync-inventory and its undo act on: orders on their way to
/// (or with) the customer. Not `cancel_requested` (a decision is pending:
/// approval releases the stock, rejection returns the order to one of these),
/// nor deleted, cancelled or refund states, whose stock went back (C9).
const SYNC_STATUSES: [&str; 5] = [
    "pending",
    "processing",
    "shipped",
    "out_for_delivery",
    "delivered",
];

/// Filters of an order list.
#[derive(Debug, Clone)]
pub struct OrderQuery {
    pub viewer: Actor,
    /// Admins: only this customer's orders.
    pub customer: Option<i64>,
    pub status: Option<String>,
    pub from: Option<i64>,
    pub to: Option<i64>,
    /// Admins: an order id, a customer's order number, or part of an email.
    pub search: Option<String>,
    pub page: u64,
    pub limit: u64,
    /// The customer's own soft-deleted orders instead of the visible ones.
    pub hidden: bool,
}

/// What one step of the lifecycle did, for history and outbox.
struct Change {
    from: Status,
    event: Option<OrderEventKind>,
    note: Option<String>,
    /// The order's stock goes back to the catalog.
    release: bool,
}

/// The result of sync-inventory.
#[derive(Debug, Clone, Default)]
pub struct SyncReport {
    pub synced: u64,
    pub skipped: Vec<i64>,
    pub errors: Vec<(i64, String, String)>,
}

#[derive(Clone)]
pub struct OrderStore {
    db: Db,
    inventory: Arc<dyn Inventory>,
    /// Poked after every commit that wrote an outbox row.
    relay: Arc<Notify>,
    /// The catalog lives in this database: reserve inside the order's transaction.
    shared_inventory: bool,
}

impl std::fmt::Debug for OrderStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrderStore").field("db", &self.db).finish()
    }
}

fn new_event_id() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

fn order_select() -> SelectStatement {
    Query::select()
        .columns(ORDER_COLUMNS.map(|c| (Orders::Table, c)))
        .from(Orders::Table)
        .to_owned()
}

fn lines_of(items: &[ItemRow]) -> Vec<ReserveLine> {
    items
        .iter()
        .map(|i| ReserveLine {
            product_id: i.product_id.clone(),
            quantity: i.quantity,
        })
        .collect()
}

fn inventory_failure(e: InventoryError) -> StoreError {
    StoreError::Inventory(e)
}

impl OrderStore {
    pub fn new(db: Db, inventory: Arc<dyn Inventory>) -> Self {
        Self {
            db,
            inventory,
            relay: Arc::new(Notify::new()),
            shared_inventory: false,
        }
    }

    /// Places orders in one transaction with the reservation; only when the
    /// catalog's tables are in this same database (the caller knows).
    pub fn with_shared_inventory(mut self, shared: bool) -> Self {
        self.shared_inventory = shared;
        self
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn inventory(&self) -> &Arc<dyn Inventory> {
        &self.inventory
    }

    /// Wakes the outbox relay.
    pub fn relay_signal(&self) -> Arc<Notify> {
        self.relay.clone()
    }

    // ---- placement ------------------------------------------------------------

    /// Places an order: records the placement, reserves every line (all or
    /// none, prices from the catalog), writes the order. Anything failing after
    /// the reservation gives the stock back.
    pub async fn place(&self, new: &NewOrder) -> StoreResult<Placed> {
        let key = format!("p-{}", uuid::Uuid::now_v7().simple());
        if self.shared_inventory {
            // Only a retry-safe request needs its placement recorded first.
            if new.idempotency.is_some()
                && let Some(existing) = self.claim(&key, new).await?
            {
                return Ok(existing);
            }
            return match retrying!(self.try_place_shared(&key, new).await) {
                Ok((order, items)) => {
                    self.inventory.reserved_in_committed().await;
                    self.relay.notify_one();
                    Ok(Placed {
                        order,
                        items,
                        replayed: false,
                    })
                }
                Err(e) => {
                    if new.idempotency.is_some() {
                        self.forget_placement(&key).await;
                    }
                    Err(e)
                }
            };
        }
        if let Some(existing) = self.claim(&key, new).await? {
            return Ok(existing);
        }
        let reserved = match self.inventory.reserve(&key, &new.lines).await {
            Ok(r) => r,
            Err(e) => {
                self.forget_placement(&key).await;
                return Err(inventory_failure(e));
            }
        };
        match retrying!(self.try_write_order(&key, new, &reserved).await) {
            Ok((order, items)) => {
                self.relay.notify_one();
                Ok(Placed {
                    order,
                    items,
                    replayed: false,
                })
            }
            Err(e) => {
                if let Err(release) = self.inventory.release(&key).await {
                    // The placement row stays; the sweeper retries the release.
                    tracing::error!(error = %release, key, "releasing a failed placement");
                } else {
                    self.forget_placement(&key).await;
                }
                Err(e)
            }
        }
    }

    /// Records the placement. With an Idempotency-Key already used by this
    /// user: the first order (same body), a mismatch, or a wait while the first
    /// request is still running.
    async fn claim(&self, key: &str, new: &NewOrder) -> StoreResult<Option<Placed>> {
        let (idem, hash) = match &new.idempotency {
            Some((k, h)) => (Some(k.clone()), Some(h.clone())),
            None => (None, None),
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let inserted = self
                .write(
                    &Query::insert()
                        .into_table(OrderPlacements::Table)
                        .columns([
                            OrderPlacements::ReservationKey,
                            OrderPlacements::UserId,
                            OrderPlacements::IdempotencyKey,
                            OrderPlacements::RequestHash,
                            OrderPlacements::CreatedAt,
                        ])
                        .values_panic([
                            key.into(),
                            new.user_id.into(),
                            idem.clone().into(),
                            hash.clone().into(),
                            clock::now_ms().into(),
                        ])
                        .to_owned(),
                )
                .await;
            match inserted {
                Ok(_) => return Ok(None),
                Err(e) if e.is_unique_violation() && idem.is_some() => {}
                Err(e) => return Err(e.into()),
            }
            let row: Option<(Option<String>, Option<i64>)> = self
                .db
                .fetch_optional(
                    self.db.pool(),
                    &Query::select()
                        .columns([OrderPlacements::RequestHash, OrderPlacements::OrderId])
                        .from(OrderPlacements::Table)
                        .and_where(Expr::col(OrderPlacements::UserId).eq(new.user_id))
                        .and_where(Expr::col(OrderPlacements::IdempotencyKey).eq(idem.clone()))
                        .to_owned(),
                )
                .await?;
            match row {
                Some((h, _)) if h != hash => return Err(StoreError::IdempotencyMismatch),
                Some((_, Some(order_id))) if order_id != ABANDONED => {
                    let order = self.order(order_id).await?;
                    let items = self.items_of(&[order_id]).await?;
                    return Ok(Some(Placed {
                        order,
                        items,
                        replayed: true,
                    }));
                }
                // Gone (the first attempt failed): try to become the placer.
                None => continue,
                // Still being placed, or abandoned and being released by the sweeper.
                Some((_, _)) => {
                    if tokio::time::Instant::now() > deadline {
                        return Err(StoreError::IdempotencyInProgress);
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }

    async fn forget_placement(&self, key: &str) {
        let deleted = self
            .write(
                &Query::delete()
                    .from_table(OrderPlacements::Table)
                    .and_where(Expr::col(OrderPlacements::ReservationKey).eq(key))
                    .and_where(Expr::col(OrderPlacements::OrderId).is_null())
                    .to_owned(),
            )
            .await;
        if let Err(e) = deleted {
            tracing::warn!(error = %e, key, "placement row left for the sweeper");
        }
    }

    async fn try_write_order(
        &self,
        key: &str,
        new: &NewOrder,
        reserved: &[ReservedLine],
    ) -> StoreResult<(OrderRow, Vec<ItemRow>)> {
        let mut tx = self.db.begin().await?;
        let written = self.write_order(&mut tx, key, new, reserved, true).await?;
        tx.commit().await?;
        Ok(written)
    }

    /// The all-in-one fast path: stock and order in one transaction of the
    /// shared database, so nothing needs sweeping after a crash.
    async fn try_place_shared(
        &self,
        key: &str,
        new: &NewOrder,
    ) -> StoreResult<(OrderRow, Vec<ItemRow>)> {
        let mut tx = self.db.begin().await?;
        let reserved = match self.inventory.reserve_in(&mut tx, key, &new.lines).await {
            Some(Ok(r)) => r,
            Some(Err(e)) => return Err(StoreError::Inventory(e)),
            None => {
                return Err(StoreError::Inventory(InventoryError::Failed(
                    "the inventory cannot reserve in a shared transaction".into(),
                )));
            }
        };
        let written = self
            .write_order(&mut tx, key, new, &reserved, new.idempotency.is_some())
            .await?;
        tx.commit().await?;
        Ok(written)
    }

    /// Writes a placed order, its items, history and event in `tx`; with
    /// `take_placement`, first takes its placement row (which must still exist).
    async fn write_order(
        &self,
        tx: &mut Transaction<'static, Any>,
        key: &str,
        new: &NewOrder,
        reserved: &[ReservedLine],
        take_placement: bool,
    ) -> StoreResult<(OrderRow, Vec<ItemRow>)> {
        let now = clock::now_ms();
        if take_placement {
            self.take_placement(tx, key, new).await?;
        }
        // Per-user numbers: the counter row is locked until commit, so the
        // customer's concurrent orders take turns and a rollback leaves no gap.
        let number = self.next_number(tx, new.user_id).await?;
        let mut order = OrderRow::fresh(
            new.user_id,
            new.user_email.clone(),
            number,
            total_of(reserved),
            &new.payment_method,
            &new.shipping_address,
            now,
            Some(key),
        );
        let id = self.insert_order(tx, &mut order).await?;
        self.insert_items(tx, id, reserved, now).await?;
        let items = self.items_in(tx, &[id]).await?;
        self.history(tx, id, None, Status::Pending, None, None, now)
            .await?;
        self.outbox(tx, &order, &items, OrderEventKind::Created, None, now)
            .await?;
        if new.idempotency.is_some() {
            let remember = Query::update()
                .table(OrderPlacements::Table)
                .value(OrderPlacements::OrderId, id)
                .and_where(Expr::col(OrderPlacements::ReservationKey).eq(key))
                .to_owned();
            self.db.execute(&mut **tx, &remember).await?;
        }
        Ok((order, items))
    }

    /// Takes the placement row in the order's transaction; it must still be
    /// ours (the sweeper may have given up on it).
    async fn take_placement(
        &self,
        tx: &mut Transaction<'static, Any>,
        key: &str,
        new: &NewOrder,
    ) -> StoreResult<()> {
        // The placement must still be ours (the sweeper may have given up on
        // it): taking it is the first write, and it locks the row. With an
        // Idempotency-Key the row stays and gets the order id below.
        let taken = if new.idempotency.is_some() {
            // An i64 like every other value of the column: PostgreSQL caches
            // the statement with its parameter types, and the sweeper runs the
            // same UPDATE text with `ABANDONED`.
            let take = Query::update()
                .table(OrderPlacements::Table)
                .value(OrderPlacements::OrderId, 0_i64)
                .and_where(Expr::col(OrderPlacements::ReservationKey).eq(key))
                .and_where(Expr::col(OrderPlacements::OrderId).is_null())
                .to_owned();
            self.db.execute(&mut **tx, &take).await?
        } else {
            // Without a key the row has done its job once the order commits.
            let take = Query::delete()
                .from_table(OrderPlacements::Table)
                .and_where(Expr::col(OrderPlacements::ReservationKey).eq(key))
                .and_where(Expr::col(OrderPlacements::OrderId).is_null())
                .to_owned();
            self.db.execute(&mut **tx, &take).await?
        };
        if taken == 0 {
            return Err(StoreError::Inventory(InventoryError::Conflict(
                "The reservation expired before the order was written; please try again".into(),
            )));
        }
        Ok(())
    }

    /// One write statement outside a transaction, run again if the database
    /// picks it as a deadlock victim.
    async fn write(&self, stmt: &(impl sea_query_sqlx::SqlxBinder + Sync)) -> Result<u64, DbError> {
        retrying!(self.db.execute(self.db.writer(), stmt).await)
    }

    /// The user's next order number; the counter row stays locked until the
    /// transaction ends.
    async fn next_number(
        &self,
        tx: &mut Transaction<'static, Any>,
        user_id: i64,
    ) -> StoreResult<i64> {
        let mut upsert = Query::insert()
            .into_table(OrderUserCounters::Table)
            .columns([OrderUserCounters::UserId, OrderUserCounters::LastNumber])
            .values_panic([user_id.into(), 1.into()])
            .on_conflict(
                OnConflict::column(OrderUserCounters::UserId)
                    .value(
                        OrderUserCounters::LastNumber,
                        Expr::col((OrderUserCounters::Table, OrderUserCounters::LastNumber)).add(1),
                    )
                    .to_owned(),
            )
            .to_owned();
        if self.db.backend() != ecap_core::db::Backend::MySql {
            upsert.returning_col(OrderUserCounters::LastNumber);
            let (n,): (i64,) = self.db.fetch_one(&mut **tx, &upsert).await?;
            return Ok(n);
        }
        self.db.execute(&mut **tx, &upsert).await?;
        let (n,): (i64,) = self
            .db
            .fetch_one(
                &mut **tx,
                &Query::select()
                    .column(OrderUserCounters::LastNumber)
                    .from(OrderUserCounters::Table)
                    .and_where(Expr::col(OrderUserCounters::UserId).eq(user_id))
                    .to_owned(),
            )
            .await?;
        Ok(n)
    }

    /// Inserts a new order row; sets and returns its id.
    async fn insert_order(
        &self,
        tx: &mut Transaction<'static, Any>,
        o: &mut OrderRow,
    ) -> StoreResult<i64> {
        let mut insert = Query::insert();
        insert
            .into_table(Orders::Table)
            .columns([
                Orders::UserId,
                Orders::UserEmail,
                Orders::UserOrderNumber,
                Orders::TotalCents,
                Orders::Status,
                Orders::PaymentMethod,
                Orders::ShippingAddress,
                Orders::CreatedAt,
                Orders::UpdatedAt,
                Orders::CancellationImages,
                Orders::InventoryDeducted,
                Orders::ReservationKey,
                Orders::ReservationSource,
                Orders::EventSeq,
            ])
            .values_panic([
                o.user_id.into(),
                o.user_email.clone().into(),
                o.user_order_number.into(),
                o.total_cents.into(),
                o.status.clone().into(),
                o.payment_method.clone().into(),
                o.shipping_address.clone().into(),
                o.created_at.into(),
                o.updated_at.into(),
                o.cancellation_images.clone().into(),
                o.inventory_deducted.into(),
                o.reservation_key.clone().into(),
                o.reservation_source.clone().into(),
                o.event_seq.into(),
            ]);
        o.id = self.db.insert_returning_id(tx, insert).await?;
        Ok(o.id)
    }

    async fn insert_items(
        &self,
        tx: &mut Transaction<'static, Any>,
        order_id: i64,
        lines: &[ReservedLine],
        now: i64,
    ) -> StoreResult<()> {
        let mut insert = Query::insert();
        insert.into_table(OrderItems::Table).columns([
            OrderItems::OrderId,
            OrderItems::ProductId,
            OrderItems::ProductName,
            OrderItems::Category,
            OrderItems::Quantity,
            OrderItems::PriceCents,
            OrderItems::SubtotalCents,
            OrderItems::CreatedAt,
        ]);
        for l in lines {
            insert.values_panic([
                order_id.into(),
                l.product_id.clone().into(),
                l.name.clone().into(),
                l.category.clone().into(),
                l.quantity.into(),
                l.unit_price_cents.into(),
                l.unit_price_cents.saturating_mul(l.quantity).into(),
                now.into(),
            ]);
        }
        self.db.execute(&mut **tx, &insert).await?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn history(
        &self,
        tx: &mut Transaction<'static, Any>,
        order_id: i64,
        from: Option<Status>,
        to: Status,
        actor: Option<Actor>,
        note: Option<String>,
        now: i64,
    ) -> StoreResult<()> {
        self.db
            .execute(
                &mut **tx,
                &Query::insert()
                    .into_table(OrderHistory::Table)
                    .columns([
                        OrderHistory::OrderId,
                        OrderHistory::FromStatus,
                        OrderHistory::ToStatus,
                        OrderHistory::ActorId,
                        OrderHistory::ActorRole,
                        OrderHistory::Note,
                        OrderHistory::CreatedAt,
                    ])
                    .values_panic([
                        order_id.into(),
                        from.map(|s| s.as_str()).into(),
                        to.as_str().into(),
                        actor.map(|a| a.id).into(),
                        actor
                            .map(|a| if a.admin { "admin" } else { "customer" })
                            .into(),
                        note.into(),
                        now.into(),
                    ])
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    /// Writes the order's next event (`order.event_seq` is already the new number).
    async fn outbox(
        &self,
        tx: &mut Transaction<'static, Any>,
        order: &OrderRow,
        items: &[ItemRow],
        kind: OrderEventKind,
        from: Option<Status>,
        now: i64,
    ) -> StoreResult<()> {
        let event = OrderEvent {
            event_id: new_event_id(),
            order_id: order.id,
            user_id: order.user_id,
            seq: order.event_seq,
            kind,
            from_status: from.map(|s| s.as_str().to_owned()),
            to_status: order.status.clone(),
            lines: items
                .iter()
                .map(|i| EventLine {
                    product_id: i.product_id.clone(),
                    category: i.category.clone(),
                    quantity: i.quantity,
                    unit_price_cents: i.price_cents,
                })
                .collect(),
            total_cents: order.total_cents,
            payment_method: order.payment_method.clone(),
            placed_at: order.created_at,
            at: now,
        };
        let payload = serde_json::to_string(&event).unwrap_or_default();
        self.db
            .execute(
                &mut **tx,
                &Query::insert()
                    .into_table(OrderOutbox::Table)
                    .columns([
                        OrderOutbox::EventId,
                        OrderOutbox::OrderId,
                        OrderOutbox::Seq,
                        OrderOutbox::Kind,
                        OrderOutbox::Payload,
                        OrderOutbox::CreatedAt,
                    ])
                    .values_panic([
                        event.event_id.into(),
                        order.id.into(),
                        order.event_seq.into(),
                        kind.as_str().into(),
                        payload.into(),
                        now.into(),
                    ])
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    // ---- bulk import --------------------------------------------------------------

    /// Writes orders from elsewhere (history from an old system, demo data)
    /// without touching stock: they hold no reservation until
    /// `sync_inventory` takes one. Per-user numbers continue each customer's
    /// sequence; each order gets its history and a `created` event (and one
    /// for its current status), so consumers see it like any other order.
    /// Returns the new ids.
    pub async fn import(&self, orders: &[ImportedOrder]) -> StoreResult<Vec<i64>> {
        let mut ids = Vec::with_capacity(orders.len());
        for chunk in orders.chunks(500) {
            ids.extend(retrying!(self.try_import(chunk).await)?);
        }
        self.relay.notify_one();
        Ok(ids)
    }

    async fn try_import(&self, orders: &[ImportedOrder]) -> StoreResult<Vec<i64>> {
        let mut tx = self.db.begin().await?;
        let mut ids = Vec::with_capacity(orders.len());
        for o in orders {
            let number = self.next_number(&mut tx, o.user_id).await?;
            let mut row = OrderRow::fresh(
                o.user_id,
                o.user_email.clone(),
                number,
                total_of(&o.lines),
                &o.payment_method,
                &o.shipping_address,
                o.placed_at,
                None,
            );
            let id = self.insert_order(&mut tx, &mut row).await?;
            self.insert_items(&mut tx, id, &o.lines, o.placed_at)
                .await?;
            let items = self.items_in(&mut tx, &[id]).await?;
            self.history(&mut tx, id, None, Status::Pending, None, None, o.placed_at)
                .await?;
            self.outbox(
                &mut tx,
                &row,
                &items,
                OrderEventKind::Created,
                None,
                o.placed_at,
            )
            .await?;
            if o.status != Status::Pending {
                let at = o.status_at.unwrap_or(o.placed_at);
                row.status = o.status.as_str().into();
                row.updated_at = at;
                match o.status {
                    Status::Processing => row.processing_at = Some(at),
                    Status::Shipped => row.shipped_at = Some(at),
                    Status::OutForDelivery => row.out_for_delivery_at = Some(at),
                    Status::Delivered => row.delivered_at = Some(at),
                    Status::CancelRequested => {
                        row.cancellation_requested_at = Some(at);
                        row.status_before_request = Some("processing".into());
                    }
                    Status::Cancelled | Status::RefundProcessing | Status::Refunded => {
                        row.cancelled_at = Some(at);
                        row.refund_cents = Some(row.total_cents);
                        row.refund_status = Some(
                            match o.status {
                                Status::Cancelled => "pending",
                                Status::RefundProcessing => "processing",
                                _ => "completed",
                            }
                            .into(),
                        );
                        if o.status == Status::Refunded {
                            row.refunded_at = Some(at);
                        }
                    }
                    Status::Deleted => {
                        row.deleted_at = Some(at);
                        row.status_before_deletion = Some("pending".into());
                    }
                    Status::Pending => {}
                }
                row.event_seq = 2;
                self.history(&mut tx, id, Some(Status::Pending), o.status, None, None, at)
                    .await?;
                let kind = match o.status {
                    Status::Cancelled => OrderEventKind::Cancelled,
                    Status::Refunded => OrderEventKind::Refunded,
                    Status::Deleted => OrderEventKind::Deleted,
                    _ => OrderEventKind::StatusChanged,
                };
                self.outbox(&mut tx, &row, &items, kind, Some(Status::Pending), at)
                    .await?;
                self.db
                    .execute(
                        &mut *tx,
                        &Query::update()
                            .table(Orders::Table)
                            .values(row.values())
                            .and_where(Expr::col(Orders::Id).eq(id))
                            .to_owned(),
                    )
                    .await?;
            }
            ids.push(id);
        }
        tx.commit().await?;
        Ok(ids)
    }

    // ---- reads ----------------------------------------------------------------

    pub async fn order(&self, id: i64) -> StoreResult<OrderRow> {
        self.db
            .fetch_optional(
                self.db.pool(),
                &order_select()
                    .and_where(Expr::col((Orders::Table, Orders::Id)).eq(id))
                    .to_owned(),
            )
            .await?
            .ok_or(StoreError::NotFound)
    }

    async fn order_in(
        &self,
        tx: &mut Transaction<'static, Any>,
        id: i64,
        lock: bool,
    ) -> StoreResult<OrderRow> {
        let mut q = order_select()
            .and_where(Expr::col((Orders::Table, Orders::Id)).eq(id))
            .to_owned();
        if lock {
            q.lock(LockType::Update);
        }
        self.db
            .fetch_optional(&mut **tx, &q)
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// The items of several orders in one query, by order then line.
    pub async fn items_of(&self, order_ids: &[i64]) -> StoreResult<Vec<ItemRow>> {
        let mut out = Vec::new();
        for chunk in order_ids.chunks(1000) {
            out.extend(
                self.db
                    .fetch_all::<ItemRow, _>(self.db.pool(), &items_query(chunk))
                    .await?,
            );
        }
        Ok(out)
    }

    async fn items_in(
        &self,
        tx: &mut Transaction<'static, Any>,
        order_ids: &[i64],
    ) -> StoreResult<Vec<ItemRow>> {
        Ok(self
            .db
            .fetch_all(&mut **tx, &items_query(order_ids))
            .await?)
    }

    pub async fn history_of(&self, order_id: i64) -> StoreResult<Vec<HistoryRow>> {
        Ok(self
            .db
            .fetch_all(
                self.db.pool(),
                &Query::select()
                    .columns([
                        OrderHistory::FromStatus,
                        OrderHistory::ToStatus,
                        OrderHistory::ActorId,
                        OrderHistory::ActorRole,
                        OrderHistory::Note,
                        OrderHistory::CreatedAt,
                    ])
                    .from(OrderHistory::Table)
                    .and_where(Expr::col(OrderHistory::OrderId).eq(order_id))
                    .order_by(OrderHistory::Id, Order::Asc)
                    .to_owned(),
            )
            .await?)
    }

    /// A page of orders and the total matching, newest first. Retention is
    /// part of the query, so pages are full and the total is true (C10).
    pub async fn list(&self, q: &OrderQuery) -> StoreResult<(Vec<OrderRow>, i64)> {
        let mut cond = Cond::all();
        let now = clock::now_ms();
        let col = |c: Orders| Expr::col((Orders::Table, c));
        if !q.viewer.admin || q.hidden {
            cond = cond.add(col(Orders::UserId).eq(q.viewer.id));
        }
        if q.hidden {
            cond = cond
                .add(col(Orders::HiddenAt).is_not_null())
                .add(col(Orders::HiddenExpiresAt).gt(now));
        } else if !q.viewer.admin {
            let approved = Query::select()
                .expr(Expr::val(1))
                .from(OrderDetailRequests::Table)
                .and_where(
                    Expr::col((OrderDetailRequests::Table, OrderDetailRequests::OrderId))
                        .equals((Orders::Table, Orders::Id)),
                )
                .and_where(Expr::col(OrderDetailRequests::UserId).eq(q.viewer.id))
                .and_where(Expr::col(OrderDetailRequests::Status).eq("approved"))
                .to_owned();
            let since = now - crate::domain::RETENTION_MS;
            cond = cond.add(col(Orders::HiddenAt).is_null()).add(
                Cond::any()
                    .add(col(Orders::Status).is_not_in(["deleted", "cancelled"]))
                    .add(
                        Cond::all()
                            .add(col(Orders::Status).eq("deleted"))
                            .add(col(Orders::DeletedAt).gte(since)),
                    )
                    .add(
                        Cond::all()
                            .add(col(Orders::Status).eq("cancelled"))
                            .add(col(Orders::CancelledAt).gte(since)),
                    )
                    .add(Expr::exists(approved)),
            );
        }
        if let Some(u) = q.customer {
            cond = cond.add(col(Orders::UserId).eq(u));
        }
        if let Some(s) = &q.status {
            cond = cond.add(col(Orders::Status).eq(s.as_str()));
        }
        if let Some(from) = q.from {
            cond = cond.add(col(Orders::CreatedAt).gte(from));
        }
        if let Some(to) = q.to {
            cond = cond.add(col(Orders::CreatedAt).lte(to));
        }
        if let Some(text) = q.search.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
            let text = text.trim_start_matches('#');
            let mut any = Cond::any().add(Expr::expr(Func::lower(col(Orders::UserEmail))).like(
                sea_query::LikeExpr::new(ecap_core::db::contains_pattern(text)).escape('\\'),
            ));
            if let Ok(n) = text.parse::<i64>() {
                any = any
                    .add(col(Orders::Id).eq(n))
                    .add(col(Orders::UserOrderNumber).eq(n));
            }
            cond = cond.add(any);
        }
        let (total,): (i64,) = self
            .db
            .fetch_one(
                self.db.pool(),
                &Query::select()
                    .expr(self.db.backend().cast_bigint(Func::count(Expr::val(1))))
                    .from(Orders::Table)
                    .cond_where(cond.clone())
                    .to_owned(),
            )
            .await?;
        let rows = self
            .db
            .fetch_all(
                self.db.pool(),
                &order_select()
                    .cond_where(cond)
                    .order_by((Orders::Table, Orders::CreatedAt), Order::Desc)
                    .order_by((Orders::Table, Orders::Id), Order::Desc)
                    .limit(q.limit)
                    .offset((q.page.saturating_sub(1)).saturating_mul(q.limit))
                    .to_owned(),
            )
            .await?;
        Ok((rows, total))
    }

    /// Detail requests of these orders by this user with one of `statuses`.
    pub async fn requests_for(
        &self,
        order_ids: &[i64],
        user_id: i64,
    ) -> StoreResult<Vec<RequestRow>> {
        if order_ids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self
            .db
            .fetch_all(
                self.db.pool(),
                &Query::select()
                    .columns(REQUEST_COLUMNS)
                    .from(OrderDetailRequests::Table)
                    .and_where(
                        Expr::col(OrderDetailRequests::OrderId).is_in(order_ids.iter().copied()),
                    )
                    .and_where(Expr::col(OrderDetailRequests::UserId).eq(user_id))
                    .order_by(OrderDetailRequests::Id, Order::Asc)
                    .to_owned(),
            )
            .await?)
    }

    // ---- lifecycle -----------------------------------------------------------

    /// Locks the order, lets `f` change it, then writes the row, its history
    /// and its event in one transaction; afterwards gives stock back when the
    /// change released it.
    async fn change<F>(&self, id: i64, actor: Option<Actor>, f: F) -> StoreResult<OrderRow>
    where
        F: Fn(&mut OrderRow, i64) -> StoreResult<Change>,
    {
        let row = retrying!(self.try_change(id, actor, &f).await)?;
        if row.inventory_pending.as_deref() == Some("release") {
            self.finish_release(&row).await;
        }
        self.relay.notify_one();
        Ok(row)
    }

    async fn try_change<F>(&self, id: i64, actor: Option<Actor>, f: &F) -> StoreResult<OrderRow>
    where
        F: Fn(&mut OrderRow, i64) -> StoreResult<Change>,
    {
        let mut tx = self.db.begin().await?;
        let mut row = self.order_in(&mut tx, id, true).await?;
        let now = clock::now_ms();
        let change = f(&mut row, now)?;
        row.updated_at = now;
        // Stock goes back when the order holds it — or may be about to: a
        // reserve decided by sync (or being finished by the sweeper) is turned
        // into a release. Release wins in the catalog (a late reserve of a
        // released key is refused), so whichever call lands first, nothing stays held.
        let reserving = row.inventory_pending.as_deref() == Some("reserve");
        if change.release && (row.inventory_deducted == 1 || reserving) {
            row.inventory_deducted = 0;
            row.inventory_pending = Some("release".into());
        }
        let to = row.status();
        if change.from != to {
            self.history(
                &mut tx,
                id,
                Some(change.from),
                to,
                actor,
                change.note.clone(),
                now,
            )
            .await?;
        }
        if let Some(kind) = change.event {
            row.event_seq += 1;
            let items = self.items_in(&mut tx, &[id]).await?;
            self.outbox(&mut tx, &row, &items, kind, Some(change.from), now)
                .await?;
        }
        self.db
            .execute(
                &mut *tx,
                &Query::update()
                    .table(Orders::Table)
                    .values(row.values())
                    .and_where(Expr::col(Orders::Id).eq(id))
                    .to_owned(),
            )
            .await?;
        tx.commit().await?;
        Ok(row)
    }

    /// Gives the order's stock back and clears the pending mark; on failure
    /// the mark stays for the sweeper.
    async fn finish_release(&self, row: &OrderRow) {
        let Some(key) = row.reservation_key.as_deref() else {
            return;
        };
        match self.inventory.release(key).await {
            Ok(_) => {
                let cleared = self
                    .write(
                        &Query::update()
                            .table(Orders::Table)
                            .value(Orders::InventoryPending, Option::<String>::None)
                            .and_where(Expr::col(Orders::Id).eq(row.id))
                            .and_where(Expr::col(Orders::InventoryPending).eq("release"))
                            .to_owned(),
                    )
                    .await;
                if let Err(e) = cleared {
                    tracing::warn!(error = %e, order_id = row.id, "release done, mark left for the sweeper");
                }
            }
            Err(e) => {
                tracing::error!(error = %e, order_id = row.id, "stock release failed; the sweeper retries")
            }
        }
    }

    /// `PUT /:id/status`: one step of the transition table.
    pub async fn set_status(
        &self,
        id: i64,
        to: Status,
        actor: Actor,
        shipment: &Shipment,
        reason: Option<String>,
    ) -> StoreResult<OrderRow> {
        self.change(id, Some(actor), |row, now| {
            let from = row.status();
            if !from.can_become(to) {
                return Err(StoreError::Transition(format!(
                    "Cannot change order status from {} to {}. Allowed next: {}",
                    from.as_str(),
                    to.as_str(),
                    crate::domain::names(from.next())
                )));
            }
            row.status = to.as_str().into();
            let mut event = OrderEventKind::StatusChanged;
            let mut release = false;
            match to {
                Status::Processing => row.processing_at = Some(now),
                Status::Shipped => {
                    row.shipped_at = Some(now);
                    if shipment.tracking_number.is_some() {
                        row.tracking_number = shipment.tracking_number.clone();
                    }
                    if shipment.courier_name.is_some() {
                        row.courier_name = shipment.courier_name.clone();
                    }
                    if shipment.estimated_delivery.is_some() {
                        row.estimated_delivery = shipment.estimated_delivery;
                    }
                }
                Status::OutForDelivery => row.out_for_delivery_at = Some(now),
                Status::Delivered => row.delivered_at = Some(now),
                Status::Cancelled => {
                    row.cancelled_at = Some(now);
                    if reason.is_some() {
                        row.cancellation_reason = reason.clone();
                    }
                    row.refund_status = Some("pending".into());
                    row.refund_cents = Some(row.total_cents);
                    event = OrderEventKind::Cancelled;
                    release = true;
                }
                Status::RefundProcessing => {
                    row.refund_processing_at = Some(now);
                    row.refund_status = Some("processing".into());
                }
                Status::Refunded => {
                    row.refunded_at = Some(now);
                    row.refund_status = Some("completed".into());
                    event = OrderEventKind::Refunded;
                }
                Status::Pending | Status::CancelRequested | Status::Deleted => {}
            }
            Ok(Change {
                from,
                event: Some(event),
                note: reason.clone(),
                release,
            })
        })
        .await
    }

    /// The customer asks to cancel (or return within 7 days of delivery).
    pub async fn request_cancellation(
        &self,
        id: i64,
        actor: Actor,
        reason: &str,
        images: &[String],
    ) -> StoreResult<OrderRow> {
        let images = serde_json::to_string(images).unwrap_or_else(|_| "[]".into());
        self.change(id, Some(actor), |row, now| {
            if row.user_id != actor.id {
                return Err(StoreError::NotFound);
            }
            let from = row.status();
            let eligible = match from {
                Status::Pending | Status::Processing => true,
                Status::Delivered => {
                    if row.delivered_at.is_some_and(|d| now - d > RETURN_WINDOW_MS) {
                        return Err(StoreError::Rule(
                            "The 7-day post-delivery cancellation window has expired. Orders can only be cancelled within 7 days of delivery.".into(),
                        ));
                    }
                    true
                }
                _ => false,
            };
            if !eligible {
                return Err(StoreError::Rule(format!(
                    "Cannot cancel order with status: {}. Orders can be cancelled when pending, processing, or within 7 days of delivery.",
                    from.as_str()
                )));
            }
            row.status = Status::CancelRequested.as_str().into();
            row.status_before_request = Some(from.as_str().into());
            row.cancellation_reason = Some(reason.to_owned());
            row.cancellation_images = images.clone();
            row.cancellation_requested_at = Some(now);
            row.cancellation_rejected = 0;
            Ok(Change {
                from,
                event: Some(OrderEventKind::StatusChanged),
                note: Some(reason.to_owned()),
                release: false,
            })
        })
        .await
    }

    fn pending_request(row: &OrderRow) -> StoreResult<Status> {
        let from = row.status();
        if from != Status::CancelRequested {
            return Err(StoreError::Rule(
                "Order does not have a pending cancellation request".into(),
            ));
        }
        Ok(from)
    }

    /// Admin approves: cancelled, refund pending for the full total, stock back once.
    pub async fn approve_cancellation(&self, id: i64, actor: Actor) -> StoreResult<OrderRow> {
        self.change(id, Some(actor), |row, now| {
            let from = Self::pending_request(row)?;
            row.status = Status::Cancelled.as_str().into();
            row.cancelled_at = Some(now);
            row.cancellation_approved_by = Some(actor.id);
            row.cancellation_approved_at = Some(now);
            row.refund_status = Some("pending".into());
            row.refund_cents = Some(row.total_cents);
            Ok(Change {
                from,
                event: Some(OrderEventKind::Cancelled),
                note: Some("cancellation approved".into()),
                release: true,
            })
        })
        .await
    }

    /// Admin rejects: back to the status the order had before the request (C6).
    pub async fn reject_cancellation(
        &self,
        id: i64,
        actor: Actor,
        reason: &str,
    ) -> StoreResult<OrderRow> {
        self.change(id, Some(actor), |row, now| {
            let from = Self::pending_request(row)?;
            let back = row
                .status_before_request
                .as_deref()
                .and_then(Status::parse)
                .unwrap_or(Status::Processing);
            row.status = back.as_str().into();
            row.cancellation_rejected = 1;
            row.cancellation_rejection_reason = Some(reason.to_owned());
            row.cancellation_rejected_by = Some(actor.id);
            row.cancellation_rejected_at = Some(now);
            Ok(Change {
                from,
                event: Some(OrderEventKind::StatusChanged),
                note: Some(reason.to_owned()),
                release: false,
            })
        })
        .await
    }

    /// Admin soft delete: status `deleted`; stock back unless the goods were delivered.
    pub async fn delete(
        &self,
        id: i64,
        actor: Actor,
        reason: Option<String>,
    ) -> StoreResult<OrderRow> {
        self.change(id, Some(actor), |row, now| {
            if row.deleted_at.is_some() || row.status() == Status::Deleted {
                return Err(StoreError::Rule("Order is already deleted".into()));
            }
            let from = row.status();
            // A return still being decided is judged by where the goods are:
            // a delivered order with an open request keeps them sold.
            let effective = match from {
                Status::CancelRequested => row
                    .status_before_request
                    .as_deref()
                    .and_then(Status::parse)
                    .unwrap_or(Status::Processing),
                other => other,
            };
            row.status_before_deletion = Some(effective.as_str().into());
            row.status = Status::Deleted.as_str().into();
            row.deleted_at = Some(now);
            row.deleted_by = Some(actor.id);
            row.deletion_reason = reason.clone();
            Ok(Change {
                from,
                event: Some(OrderEventKind::Deleted),
                note: reason.clone(),
                release: !Status::Deleted.holds_stock(Some(effective)),
            })
        })
        .await
    }

    /// The customer hides one of their orders (restorable for 30 days).
    pub async fn hide(&self, id: i64, actor: Actor) -> StoreResult<OrderRow> {
        self.change(id, Some(actor), |row, now| {
            if row.user_id != actor.id {
                return Err(StoreError::NotFound);
            }
            if row.hidden_at.is_some() {
                return Err(StoreError::Rule("Order is already deleted".into()));
            }
            row.hidden_at = Some(now);
            row.hidden_expires_at = Some(now + RESTORE_WINDOW_MS);
            row.restoration_status = None;
            row.restoration_reason = None;
            row.restoration_requested_at = None;
            Ok(Change {
                from: row.status(),
                event: None,
                note: None,
                release: false,
            })
        })
        .await
    }

    pub async fn request_restoration(
        &self,
        id: i64,
        actor: Actor,
        reason: &str,
    ) -> StoreResult<OrderRow> {
        self.change(id, Some(actor), |row, now| {
            if row.user_id != actor.id || row.hidden_at.is_none() {
                return Err(StoreError::NotFound);
            }
            if row.hidden_expires_at.is_some_and(|e| e <= now) {
                return Err(StoreError::Rule(
                    "This order has been permanently deleted and cannot be restored".into(),
                ));
            }
            if row.restoration_status.as_deref() == Some("pending") {
                return Err(StoreError::Rule(
                    "Restoration already requested for this order".into(),
                ));
            }
            row.restoration_status = Some("pending".into());
            row.restoration_reason = Some(reason.to_owned());
            row.restoration_requested_at = Some(now);
            Ok(Change {
                from: row.status(),
                event: None,
                note: None,
                release: false,
            })
        })
        .await
    }

    /// Admin decides a restoration request: approve un-hides the order.
    pub async fn decide_restoration(
        &self,
        id: i64,
        actor: Actor,
        approve: bool,
        reason: Option<String>,
    ) -> StoreResult<OrderRow> {
        self.change(id, Some(actor), |row, now| {
            if row.hidden_at.is_none() || row.restoration_status.as_deref() != Some("pending") {
                return Err(StoreError::NotFound);
            }
            row.restoration_decided_by = Some(actor.id);
            row.restoration_decided_at = Some(now);
            let event = if approve {
                row.restoration_status = Some("approved".into());
                row.hidden_at = None;
                row.hidden_expires_at = None;
                Some(OrderEventKind::Restored)
            } else {
                row.restoration_status = Some("rejected".into());
                row.restoration_rejection_reason = reason.clone();
                None
            };
            Ok(Change {
                from: row.status(),
                event,
                note: None,
                release: false,
            })
        })
        .await
    }

    /// Customers' soft-deleted orders past their 30 days: their personal data
    /// (shipping address) is erased; the order stays as a financial record.
    pub async fn purge_expired_hidden(&self) -> StoreResult<u64> {
        Ok(self
            .write(
                &Query::update()
                    .table(Orders::Table)
                    .value(Orders::ShippingAddress, "null")
                    .value(Orders::RestorationStatus, "expired")
                    .and_where(Expr::col(Orders::HiddenExpiresAt).lte(clock::now_ms()))
                    .cond_where(
                        Cond::any()
                            .add(Expr::col(Orders::RestorationStatus).is_null())
                            .add(Expr::col(Orders::RestorationStatus).ne("expired")),
                    )
                    .to_owned(),
            )
            .await?)
    }

    /// Restoration requests with the given status, newest first.
    pub async fn restoration_requests(&self, status: &str) -> StoreResult<Vec<OrderRow>> {
        Ok(self
            .db
            .fetch_all(
                self.db.pool(),
                &order_select()
                    .and_where(Expr::col(Orders::RestorationStatus).eq(status))
                    .order_by(Orders::RestorationRequestedAt, Order::Desc)
                    .limit(200)
                    .to_owned(),
            )
            .await?)
    }

    // ---- detail requests -------------------------------------------------------

    pub async fn create_detail_request(
        &self,
        order: &OrderRow,
        reason: &str,
        other: Option<String>,
    ) -> StoreResult<RequestRow> {
        let mut tx = self.db.begin().await?;
        // Serialises requests for one order (the latest decides what is allowed).
        self.order_in(&mut tx, order.id, true).await?;
        let latest: Option<RequestRow> = self
            .db
            .fetch_optional(
                &mut *tx,
                &Query::select()
                    .columns(REQUEST_COLUMNS)
                    .from(OrderDetailRequests::Table)
                    .and_where(Expr::col(OrderDetailRequests::OrderId).eq(order.id))
                    .and_where(Expr::col(OrderDetailRequests::UserId).eq(order.user_id))
                    .order_by(OrderDetailRequests::Id, Order::Desc)
                    .limit(1)
                    .to_owned(),
            )
            .await?;
        match latest.as_ref().map(|r| r.status.as_str()) {
            Some("pending") => return Err(StoreError::Rule("A request is already pending".into())),
            Some("approved") => {
                return Err(StoreError::Rule(
                    "Request already approved. You can view details now.".into(),
                ));
            }
            _ => {}
        }
        let now = clock::now_ms();
        let mut insert = Query::insert();
        insert
            .into_table(OrderDetailRequests::Table)
            .columns([
                OrderDetailRequests::OrderId,
                OrderDetailRequests::UserId,
                OrderDetailRequests::Reason,
                OrderDetailRequests::OtherReason,
                OrderDetailRequests::Status,
                OrderDetailRequests::CreatedAt,
                OrderDetailRequests::UpdatedAt,
            ])
            .values_panic([
                order.id.into(),
                order.user_id.into(),
                reason.into(),
                other.into(),
                "pending".into(),
                now.into(),
                now.into(),
            ]);
        let id = self.db.insert_returning_id(&mut tx, insert).await?;
        let row = self.request_in(&mut tx, id).await?;
        tx.commit().await?;
        Ok(row)
    }

    async fn request_in(
        &self,
        tx: &mut Transaction<'static, Any>,
        id: i64,
    ) -> StoreResult<RequestRow> {
        self.db
            .fetch_optional(
                &mut **tx,
                &Query::select()
                    .columns(REQUEST_COLUMNS)
                    .from(OrderDetailRequests::Table)
                    .and_where(Expr::col(OrderDetailRequests::Id).eq(id))
                    .lock(LockType::Update)
                    .to_owned(),
            )
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// Latest request of the order's owner.
    pub async fn latest_detail_request(&self, order: &OrderRow) -> StoreResult<Option<RequestRow>> {
        Ok(self
            .requests_for(&[order.id], order.user_id)
            .await?
            .into_iter()
            .last())
    }

    /// Requests (newest first, at most 200) with their order's status and dates.
    pub async fn detail_requests(
        &self,
        status: Option<&str>,
    ) -> StoreResult<Vec<(RequestRow, String, Option<i64>, Option<i64>)>> {
        let mut q = Query::select()
            .columns(REQUEST_COLUMNS.map(|c| (OrderDetailRequests::Table, c)))
            .column((Orders::Table, Orders::Status))
            .column((Orders::Table, Orders::CancelledAt))
            .column((Orders::Table, Orders::DeletedAt))
            .from(OrderDetailRequests::Table)
            .inner_join(
                Orders::Table,
                Expr::col((Orders::Table, Orders::Id))
                    .equals((OrderDetailRequests::Table, OrderDetailRequests::OrderId)),
            )
            .order_by(
                (OrderDetailRequests::Table, OrderDetailRequests::Id),
                Order::Desc,
            )
            .limit(200)
            .to_owned();
        if let Some(s) = status {
            q.and_where(Expr::col((OrderDetailRequests::Table, OrderDetailRequests::Status)).eq(s));
        }
        // `status` is both the request's and the order's: read by position.
        let (sql, values) = self.db.build(&q);
        let rows = sqlx::query_with::<Any, _>(sqlx::AssertSqlSafe(sql), values)
            .fetch_all(self.db.pool())
            .await?;
        rows.iter()
            .map(|r| {
                use sqlx::Row;
                Ok((
                    RequestRow {
                        id: r.try_get(0)?,
                        order_id: r.try_get(1)?,
                        user_id: r.try_get(2)?,
                        reason: r.try_get(3)?,
                        other_reason: r.try_get(4)?,
                        status: r.try_get(5)?,
                        admin_id: r.try_get(6)?,
                        admin_note: r.try_get(7)?,
                        created_at: r.try_get(8)?,
                        updated_at: r.try_get(9)?,
                    },
                    r.try_get(10)?,
                    r.try_get(11)?,
                    r.try_get(12)?,
                ))
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Admin decision on a pending request (a decided one stays decided, C11).
    pub async fn decide_detail_request(
        &self,
        id: i64,
        admin: i64,
        approve: bool,
        note: Option<String>,
    ) -> StoreResult<RequestRow> {
        let mut tx = self.db.begin().await?;
        let row = self.request_in(&mut tx, id).await?;
        if row.status != "pending" {
            return Err(StoreError::Transition(format!(
                "Request was already {}",
                row.status
            )));
        }
        self.db
            .execute(
                &mut *tx,
                &Query::update()
                    .table(OrderDetailRequests::Table)
                    .value(
                        OrderDetailRequests::Status,
                        if approve { "approved" } else { "rejected" },
                    )
                    .value(OrderDetailRequests::AdminId, admin)
                    .value(OrderDetailRequests::AdminNote, note)
                    .value(OrderDetailRequests::UpdatedAt, clock::now_ms())
                    .and_where(Expr::col(OrderDetailRequests::Id).eq(id))
                    .to_owned(),
            )
            .await?;
        let row = self.request_in(&mut tx, id).await?;
        tx.commit().await?;
        Ok(row)
    }

    // ---- inventory sync -----------------------------------------------------------

    /// Reserves stock for orders whose status holds stock but that hold none
    /// (imported history, or after undo). Each reservation has its own key,
    /// so a second run finds nothing to do.
    pub async fn sync_inventory(&self) -> StoreResult<SyncReport> {
        let mut report = SyncReport::default();
        let mut after = 0i64;
        loop {
            let batch: Vec<OrderRow> = self
                .db
                .fetch_all(
                    self.db.pool(),
                    &order_select()
                        .and_where(Expr::col(Orders::InventoryDeducted).eq(0))
                        .and_where(Expr::col(Orders::InventoryPending).is_null())
                        .and_where(Expr::col(Orders::Status).is_in(SYNC_STATUSES))
                        .and_where(Expr::col(Orders::Id).gt(after))
                        .order_by(Orders::Id, Order::Asc)
                        .limit(200)
                        .to_owned(),
                )
                .await?;
            let Some(last) = batch.last() else { break };
            after = last.id;
            let ids: Vec<i64> = batch.iter().map(|o| o.id).collect();
            let items = self.items_of(&ids).await?;
            for order in batch {
                let mine: Vec<ItemRow> = items
                    .iter()
                    .filter(|i| i.order_id == order.id)
                    .cloned()
                    .collect();
                match self.sync_one(&order, &mine).await {
                    Ok(true) => report.synced += 1,
                    Ok(false) => {}
                    Err((product, error)) => {
                        report.skipped.push(order.id);
                        report.errors.push((order.id, product, error));
                    }
                }
            }
        }
        Ok(report)
    }

    /// `Ok(false)`: someone else changed the order meanwhile.
    async fn sync_one(
        &self,
        order: &OrderRow,
        items: &[ItemRow],
    ) -> Result<bool, (String, String)> {
        let generation = order.sync_generation + 1;
        let key = format!("o{}-s{}", order.id, generation);
        let internal = |e: StoreError| (String::new(), e.to_string());
        // Record the intent first: a crash after the reserve is finished by the sweeper.
        let marked = self
            .write(
                &Query::update()
                    .table(Orders::Table)
                    .value(Orders::SyncGeneration, generation)
                    .value(Orders::ReservationKey, key.as_str())
                    .value(Orders::ReservationSource, "sync")
                    .value(Orders::InventoryPending, "reserve")
                    .value(Orders::UpdatedAt, clock::now_ms())
                    .and_where(Expr::col(Orders::Id).eq(order.id))
                    .and_where(Expr::col(Orders::InventoryDeducted).eq(0))
                    .and_where(Expr::col(Orders::InventoryPending).is_null())
                    .and_where(Expr::col(Orders::SyncGeneration).eq(order.sync_generation))
                    // The status may have moved since the batch was read.
                    .and_where(Expr::col(Orders::Status).is_in(SYNC_STATUSES))
                    .to_owned(),
            )
            .await
            .map_err(|e| internal(e.into()))?;
        if marked == 0 {
            return Ok(false);
        }
        let result = self.inventory.reserve(&key, &lines_of(items)).await;
        let held = result.is_ok();
        self.settle_reserve(order.id, &key, held)
            .await
            .map_err(internal)?;
        match result {
            Ok(_) => Ok(true),
            Err(e) => {
                let product = match &e {
                    InventoryError::NotFound(p) | InventoryError::Unavailable(p) => p.clone(),
                    InventoryError::Insufficient { product_id, .. } => product_id.clone(),
                    _ => String::new(),
                };
                Err((product, e.to_string()))
            }
        }
    }

    async fn settle_reserve(&self, order_id: i64, key: &str, held: bool) -> StoreResult<()> {
        self.write(
            &Query::update()
                .table(Orders::Table)
                .value(Orders::InventoryDeducted, i64::from(held))
                .value(Orders::InventoryPending, Option::<String>::None)
                .and_where(Expr::col(Orders::Id).eq(order_id))
                .and_where(Expr::col(Orders::ReservationKey).eq(key))
                .and_where(Expr::col(Orders::InventoryPending).eq("reserve"))
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    /// Gives back exactly what sync-inventory took (orders whose current
    /// reservation came from a sync); returns how many orders and the errors.
    pub async fn undo_sync(&self) -> StoreResult<(u64, Vec<(i64, String, String)>)> {
        let rows: Vec<OrderRow> = self
            .db
            .fetch_all(
                self.db.pool(),
                &order_select()
                    .and_where(Expr::col(Orders::InventoryDeducted).eq(1))
                    .and_where(Expr::col(Orders::ReservationSource).eq("sync"))
                    .and_where(Expr::col(Orders::InventoryPending).is_null())
                    .and_where(Expr::col(Orders::Status).is_in(SYNC_STATUSES))
                    .order_by(Orders::Id, Order::Asc)
                    .to_owned(),
            )
            .await?;
        let mut restored = 0;
        let mut errors = Vec::new();
        for row in rows {
            let marked = self
                .write(
                    &Query::update()
                        .table(Orders::Table)
                        .value(Orders::InventoryDeducted, 0)
                        .value(Orders::InventoryPending, "release")
                        .and_where(Expr::col(Orders::Id).eq(row.id))
                        .and_where(Expr::col(Orders::InventoryDeducted).eq(1))
                        .and_where(Expr::col(Orders::InventoryPending).is_null())
                        .and_where(Expr::col(Orders::Status).is_in(SYNC_STATUSES))
                        .to_owned(),
                )
                .await?;
            if marked == 0 {
                continue;
            }
            let mut row = row;
            row.inventory_pending = Some("release".into());
            let key = row.reservation_key.clone().unwrap_or_default();
            match self.inventory.release(&key).await {
                Ok(_) => {
                    self.finish_release(&row).await;
                    restored += 1;
                }
                Err(e) => errors.push((row.id, String::new(), e.to_string())),
            }
        }
        Ok((restored, errors))
    }

    // ---- sweeper -------------------------------------------------------------------

    /// Finishes what crashes interrupted: placements older than `grace` whose
    /// order never appeared give their stock back; decided releases and
    /// reserves are completed; expired idempotency records are dropped.
    /// Returns how many things it fixed.
    pub async fn sweep(&self, grace: Duration, idempotency_ttl: Duration) -> StoreResult<u64> {
        let now = clock::now_ms();
        let grace_ms = i64::try_from(grace.as_millis()).unwrap_or(i64::MAX);
        let mut fixed = 0;
        let stale: Vec<(String,)> = self
            .db
            .fetch_all(
                self.db.pool(),
                &Query::select()
                    .column(OrderPlacements::ReservationKey)
                    .from(OrderPlacements::Table)
                    .and_where(Expr::col(OrderPlacements::OrderId).is_null())
                    .and_where(Expr::col(OrderPlacements::CreatedAt).lt(now - grace_ms))
                    .limit(500)
                    .to_owned(),
            )
            .await?;
        for (key,) in stale {
            // Marking the row abandoned first decides the race with a late
            // placement: it finds the row no longer open and gives up (and
            // releases) on its own. The row goes only after the release, so a
            // crash in between leaves it for the next sweep, not a held stock.
            self.write(
                &Query::update()
                    .table(OrderPlacements::Table)
                    .value(OrderPlacements::OrderId, ABANDONED)
                    .and_where(Expr::col(OrderPlacements::ReservationKey).eq(key.as_str()))
                    .and_where(Expr::col(OrderPlacements::OrderId).is_null())
                    .to_owned(),
            )
            .await?;
        }
        let abandoned: Vec<(String,)> = self
            .db
            .fetch_all(
                self.db.pool(),
                &Query::select()
                    .column(OrderPlacements::ReservationKey)
                    .from(OrderPlacements::Table)
                    .and_where(Expr::col(OrderPlacements::OrderId).eq(ABANDONED))
                    .limit(500)
                    .to_owned(),
            )
            .await?;
        for (key,) in abandoned {
            match self.inventory.release(&key).await {
                Ok(released) => {
                    if released {
                        tracing::warn!(
                            key,
                            "released stock of a placement that never became an order"
                        );
                    }
                    self.write(
                        &Query::delete()
                            .from_table(OrderPlacements::Table)
                            .and_where(Expr::col(OrderPlacements::ReservationKey).eq(key.as_str()))
                            .and_where(Expr::col(OrderPlacements::OrderId).eq(ABANDONED))
                            .to_owned(),
                    )
                    .await?;
                    fixed += 1;
                }
                Err(e) => {
                    tracing::error!(error = %e, key, "sweeper could not release; retrying at the next sweep")
                }
            }
        }
        let pending: Vec<OrderRow> = self
            .db
            .fetch_all(
                self.db.pool(),
                &order_select()
                    .and_where(Expr::col(Orders::InventoryPending).is_not_null())
                    .limit(500)
                    .to_owned(),
            )
            .await?;
        for row in pending {
            match row.inventory_pending.as_deref() {
                Some("release") => {
                    self.finish_release(&row).await;
                    fixed += 1;
                }
                Some("reserve") if row.updated_at < now - grace_ms => {
                    let key = row.reservation_key.clone().unwrap_or_default();
                    if !row.should_hold_stock() {
                        // Its status no longer holds stock: make sure the key
                        // holds nothing (a release also refuses a late reserve).
                        if self.inventory.release(&key).await.is_ok() {
                            self.settle_reserve(row.id, &key, false).await?;
                        }
                        fixed += 1;
                        continue;
                    }
                    let items = self.items_of(&[row.id]).await?;
                    let held = self
                        .inventory
                        .reserve(&key, &lines_of(&items))
                        .await
                        .is_ok();
                    self.settle_reserve(row.id, &key, held).await?;
                    fixed += 1;
                }
                _ => {}
            }
        }
        let ttl_ms = i64::try_from(idempotency_ttl.as_millis()).unwrap_or(i64::MAX);
        self.write(
            &Query::delete()
                .from_table(OrderPlacements::Table)
                .and_where(Expr::col(OrderPlacements::OrderId).is_not_null())
                .and_where(Expr::col(OrderPlacements::CreatedAt).lt(now.saturating_sub(ttl_ms)))
                .to_owned(),
        )
        .await?;
        Ok(fixed)
    }

    // ---- outbox ---------------------------------------------------------------------

    /// Up to `limit` undelivered events, oldest first.
    pub async fn undelivered(&self, limit: u64) -> StoreResult<Vec<(i64, OrderEvent)>> {
        let rows: Vec<(i64, String)> = self
            .db
            .fetch_all(
                self.db.pool(),
                &Query::select()
                    .columns([OrderOutbox::Id, OrderOutbox::Payload])
                    .from(OrderOutbox::Table)
                    .and_where(Expr::col(OrderOutbox::DeliveredAt).is_null())
                    .order_by(OrderOutbox::Id, Order::Asc)
                    .limit(limit)
                    .to_owned(),
            )
            .await?;
        rows.into_iter()
            .map(|(id, payload)| {
                serde_json::from_str(&payload)
                    .map(|e| (id, e))
                    .map_err(|e| StoreError::Rule(format!("outbox row {id} is unreadable: {e}")))
            })
            .collect()
    }

    pub async fn mark_delivered(&self, ids: &[i64]) -> StoreResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        self.write(
            &Query::update()
                .table(OrderOutbox::Table)
                .value(OrderOutbox::DeliveredAt, clock::now_ms())
                .and_where(Expr::col(OrderOutbox::Id).is_in(ids.iter().copied()))
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    /// (undelivered, delivered) outbox rows.
    pub async fn outbox_counts(&self) -> StoreResult<(i64, i64)> {
        let b = self.db.backend();
        let (pending, total): (i64, i64) = self
            .db
            .fetch_one(
                self.db.pool(),
                &Query::select()
                    .expr(
                        b.cast_bigint(Func::coalesce([
                            Func::sum(
                                Expr::case(Expr::col(OrderOutbox::DeliveredAt).is_null(), 1)
                                    .finally(0),
                            )
                            .into(),
                            Expr::val(0),
                        ])),
                    )
                    .expr(b.cast_bigint(Func::count(Expr::val(1))))
                    .from(OrderOutbox::Table)
                    .to_owned(),
            )
            .await?;
        Ok((pending, total - pending))
    }

    // ---- for the other services --------------------------------------------------

    /// The user's delivered orders containing the product, oldest first.
    pub async fn delivered_orders_with(
        &self,
        user_id: i64,
        product_id: &str,
    ) -> StoreResult<Vec<i64>> {
        let rows: Vec<(i64,)> = self
            .db
            .fetch_all(
                self.db.pool(),
                &Query::select()
                    .distinct()
                    .column((Orders::Table, Orders::Id))
                    .from(Orders::Table)
                    .inner_join(
                        OrderItems::Table,
                        Expr::col((OrderItems::Table, OrderItems::OrderId))
                            .equals((Orders::Table, Orders::Id)),
                    )
                    .and_where(Expr::col((Orders::Table, Orders::UserId)).eq(user_id))
                    .and_where(Expr::col((Orders::Table, Orders::Status)).eq("delivered"))
                    .and_where(Expr::col((OrderItems::Table, OrderItems::ProductId)).eq(product_id))
                    .order_by((Orders::Table, Orders::Id), Order::Asc)
                    .to_owned(),
            )
            .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Per user: (orders, delivered, cancelled, spent cents) — spent counts
    /// orders not cancelled, refunded or deleted.
    pub async fn customer_stats(&self, user_ids: &[i64]) -> StoreResult<HashMap<i64, [i64; 4]>> {
        if user_ids.is_empty() {
            return Ok(HashMap::new());
        }
        let b = self.db.backend();
        let count_if = |cond: Expr| {
            b.cast_bigint(Func::coalesce([
                Func::sum(Expr::case(cond, 1).finally(0)).into(),
                Expr::val(0),
            ]))
        };
        let rows: Vec<(i64, i64, i64, i64, i64)> = self
            .db
            .fetch_all(
                self.db.pool(),
                &Query::select()
                    .column(Orders::UserId)
                    .expr(b.cast_bigint(Func::count(Expr::val(1))))
                    .expr(count_if(Expr::col(Orders::Status).eq("delivered")))
                    .expr(count_if(Expr::col(Orders::Status).is_in([
                        "cancelled",
                        "refund_processing",
                        "refunded",
                    ])))
                    .expr(
                        b.cast_bigint(Func::coalesce([
                            Func::sum(
                                Expr::case(
                                    Expr::col(Orders::Status).is_not_in([
                                        "cancelled",
                                        "refund_processing",
                                        "refunded",
                                        "deleted",
                                    ]),
                                    Expr::col(Orders::TotalCents),
                                )
                                .finally(0),
                            )
                            .into(),
                            Expr::val(0),
                        ])),
                    )
                    .from(Orders::Table)
                    .and_where(Expr::col(Orders::UserId).is_in(user_ids.iter().copied()))
                    .group_by_col(Orders::UserId)
                    .to_owned(),
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|(u, n, d, c, s)| (u, [n, d, c, s]))
            .collect())
    }

    /// Erases a deleted user's personal data from their orders (address,
    /// email); the orders stay as financial records. Returns how many.
    pub async fn forget_customer(&self, user_id: i64) -> StoreResult<u64> {
        Ok(self
            .write(
                &Query::update()
                    .table(Orders::Table)
                    .value(Orders::ShippingAddress, "null")
                    .value(Orders::UserEmail, Option::<String>::None)
                    .and_where(Expr::col(Orders::UserId).eq(user_id))
                    .to_owned(),
            )
            .await?)
    }
}

pub(crate) fn total_of(lines: &[ReservedLine]) -> i64 {
    lines
        .iter()
        .map(|l| l.unit_price_cents.saturating_mul(l.quantity))
        .fold(0i64, i64::saturating_add)
}

fn items_query(order_ids: &[i64]) -> SelectStatement {
    Query::select()
        .columns(ITEM_COLUMNS)
        .from(OrderItems::Table)
        .and_where(Expr::col(OrderItems::OrderId).is_in(order_ids.iter().copied()))
        .order_by(OrderItems::OrderId, Order::Asc)
        .order_by(OrderItems::Id, Order::Asc)
        .to_owned()
}
