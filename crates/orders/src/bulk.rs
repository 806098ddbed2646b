//! Order history written in bulk (`ecap seed --orders`, a move from another
//! shop): thousands of orders per transaction in multi-row inserts, each order
//! with its whole status path as history rows.
//!
//! Unlike [`OrderStore::import`] it writes no outbox rows and touches no stock:
//! consumers of order events rebuild what they derive from the orders tables
//! afterwards. Every path is checked against the same rules the lifecycle
//! methods of the store apply, and the columns are set the way they set them.

use std::collections::{BTreeMap, HashMap};

use ecap_core::{
    db::{Backend, Db},
    ports::ReservedLine,
    retrying,
};
use sea_query::{Alias, Expr, ExprTrait, InsertStatement, OnConflict, Query, ReturningClause};
use sea_query_sqlx::SqlxValues;
use serde_json::Value;
use sqlx::{Any, Transaction};

use crate::{
    domain::{RETURN_WINDOW_MS, Status, names},
    store::{
        Actor, OrderHistory, OrderItems, OrderRow, OrderStore, OrderUserCounters, Orders, Shipment,
        StoreError, StoreResult, total_of,
    },
};

/// Orders per transaction on the backend. PostgreSQL and MySQL: a few
/// thousand make commits cheap and keep each transaction a few megabytes.
/// SQLite: a commit writes every page its transaction touched to the WAL and
/// then to the database, and orders land all over the indexes keyed by
/// customer, so each commit rewrites most of those; ten times fewer commits
/// write ten times less (a transaction takes a few seconds, while other
/// writers wait up to their 10-second busy timeout).
pub fn orders_per_transaction(backend: Backend) -> usize {
    match backend {
        Backend::Sqlite => 50_000,
        Backend::Postgres | Backend::MySql => 5_000,
    }
}

/// The SQLite page cache during a [`HistoryImport`], in KiB:
/// enough for a transaction's dirty pages and the customer indexes of a few
/// million orders.
pub const SQLITE_BULK_CACHE_KIB: i64 = 512 * 1024;

/// An order that happened: placed at `placed_at`, then changed by `steps`.
#[derive(Debug, Clone)]
pub struct HistoricOrder {
    pub user_id: i64,
    pub user_email: Option<String>,
    /// Priced lines, one per product, quantity ≥ 1.
    pub lines: Vec<ReservedLine>,
    pub payment_method: String,
    pub shipping_address: Value,
    pub placed_at: i64,
    /// What happened after placement, oldest first.
    pub steps: Vec<HistoricStep>,
}

/// One change of an order's status, by whom and when.
#[derive(Debug, Clone)]
pub struct HistoricStep {
    pub at: i64,
    /// The history row's actor; `None` for the system.
    pub actor: Option<Actor>,
    pub change: HistoricChange,
}

/// The lifecycle operations of [`OrderStore`], as history.
#[derive(Debug, Clone)]
pub enum HistoricChange {
    /// One step of the transition table (`set_status`); `shipment` counts
    /// with `shipped`, `reason` with `cancelled`.
    Status {
        to: Status,
        shipment: Shipment,
        reason: Option<String>,
    },
    /// The customer asks to cancel, or to return within 7 days of delivery.
    RequestCancellation {
        reason: String,
    },
    ApproveCancellation,
    /// Back to the status the order had before the request.
    RejectCancellation {
        reason: String,
    },
    /// The admin's soft delete.
    Delete {
        reason: Option<String>,
    },
}

/// A history row before its order has an id.
struct Entry {
    from: Option<Status>,
    to: Status,
    actor: Option<Actor>,
    note: Option<String>,
    at: i64,
}

/// An order's final row (without id and number) and its history.
struct Replayed {
    row: OrderRow,
    history: Vec<Entry>,
}

/// The order columns a history can set; the others keep their defaults (no
/// reservation, not hidden, nothing to restore).
const COLUMNS: [Orders; 36] = [
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
    Orders::DeletedAt,
    Orders::DeletedBy,
    Orders::DeletionReason,
    Orders::StatusBeforeDeletion,
    Orders::EventSeq,
];

fn values(row: &OrderRow) -> [Expr; 36] {
    [
        row.user_id.into(),
        row.user_email.clone().into(),
        row.user_order_number.into(),
        row.total_cents.into(),
        row.status.clone().into(),
        row.payment_method.clone().into(),
        row.shipping_address.clone().into(),
        row.created_at.into(),
        row.updated_at.into(),
        row.processing_at.into(),
        row.shipped_at.into(),
        row.out_for_delivery_at.into(),
        row.delivered_at.into(),
        row.tracking_number.clone().into(),
        row.courier_name.clone().into(),
        row.estimated_delivery.into(),
        row.cancellation_reason.clone().into(),
        row.cancellation_images.clone().into(),
        row.cancellation_requested_at.into(),
        row.status_before_request.clone().into(),
        row.cancellation_approved_by.into(),
        row.cancellation_approved_at.into(),
        row.cancellation_rejected.into(),
        row.cancellation_rejection_reason.clone().into(),
        row.cancellation_rejected_by.into(),
        row.cancellation_rejected_at.into(),
        row.cancelled_at.into(),
        row.refund_status.clone().into(),
        row.refund_cents.into(),
        row.refund_processing_at.into(),
        row.refunded_at.into(),
        row.deleted_at.into(),
        row.deleted_by.into(),
        row.deletion_reason.clone().into(),
        row.status_before_deletion.clone().into(),
        row.event_seq.into(),
    ]
}

/// Bind parameters one statement may carry.
fn max_params(backend: Backend) -> usize {
    match backend {
        Backend::Sqlite => 32_766,
        Backend::Postgres | Backend::MySql => 65_535,
    }
}

fn rule(message: &str) -> StoreError {
    StoreError::Rule(message.to_owned())
}

/// Plays the order's steps on a fresh row with the rules of the lifecycle
/// methods (`set_status`, `request_cancellation`, `approve_cancellation`,
/// `reject_cancellation`, `delete`), setting the same columns.
fn replay(o: &HistoricOrder) -> StoreResult<Replayed> {
    if o.lines.is_empty() || o.lines.iter().any(|l| l.quantity < 1) {
        return Err(rule(
            "An order needs at least one line of quantity 1 or more",
        ));
    }
    let mut row = OrderRow::fresh(
        o.user_id,
        o.user_email.clone(),
        0,
        total_of(&o.lines),
        &o.payment_method,
        &o.shipping_address,
        o.placed_at,
        None,
    );
    let mut history = Vec::with_capacity(o.steps.len() + 1);
    history.push(Entry {
        from: None,
        to: Status::Pending,
        actor: None,
        note: None,
        at: o.placed_at,
    });
    for step in &o.steps {
        let now = step.at;
        if now < row.updated_at {
            return Err(rule("History steps must be in time order"));
        }
        let from = row.status();
        let (to, note) = match &step.change {
            HistoricChange::Status {
                to,
                shipment,
                reason,
            } => {
                let to = *to;
                if !from.can_become(to) {
                    return Err(StoreError::Transition(format!(
                        "Cannot change order status from {} to {}. Allowed next: {}",
                        from.as_str(),
                        to.as_str(),
                        names(from.next())
                    )));
                }
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
                    }
                    Status::RefundProcessing => {
                        row.refund_processing_at = Some(now);
                        row.refund_status = Some("processing".into());
                    }
                    Status::Refunded => {
                        row.refunded_at = Some(now);
                        row.refund_status = Some("completed".into());
                    }
                    Status::Pending | Status::CancelRequested | Status::Deleted => {}
                }
                (to, reason.clone())
            }
            HistoricChange::RequestCancellation { reason } => {
                let eligible = match from {
                    Status::Pending | Status::Processing => true,
                    Status::Delivered => row
                        .delivered_at
                        .is_some_and(|d| now - d <= RETURN_WINDOW_MS),
                    _ => false,
                };
                if !eligible {
                    return Err(StoreError::Rule(format!(
                        "Cannot cancel order with status: {}",
                        from.as_str()
                    )));
                }
                row.status_before_request = Some(from.as_str().into());
                row.cancellation_reason = Some(reason.clone());
                row.cancellation_requested_at = Some(now);
                row.cancellation_rejected = 0;
                (Status::CancelRequested, Some(reason.clone()))
            }
            HistoricChange::ApproveCancellation => {
                if from != Status::CancelRequested {
                    return Err(rule("Order does not have a pending cancellation request"));
                }
                row.cancelled_at = Some(now);
                row.cancellation_approved_by = step.actor.map(|a| a.id);
                row.cancellation_approved_at = Some(now);
                row.refund_status = Some("pending".into());
                row.refund_cents = Some(row.total_cents);
                (Status::Cancelled, Some("cancellation approved".into()))
            }
            HistoricChange::RejectCancellation { reason } => {
                if from != Status::CancelRequested {
                    return Err(rule("Order does not have a pending cancellation request"));
                }
                let back = row
                    .status_before_request
                    .as_deref()
                    .and_then(Status::parse)
                    .unwrap_or(Status::Processing);
                row.cancellation_rejected = 1;
                row.cancellation_rejection_reason = Some(reason.clone());
                row.cancellation_rejected_by = step.actor.map(|a| a.id);
                row.cancellation_rejected_at = Some(now);
                (back, Some(reason.clone()))
            }
            HistoricChange::Delete { reason } => {
                if from == Status::Deleted {
                    return Err(rule("Order is already deleted"));
                }
                let effective = match from {
                    Status::CancelRequested => row
                        .status_before_request
                        .as_deref()
                        .and_then(Status::parse)
                        .unwrap_or(Status::Processing),
                    other => other,
                };
                row.status_before_deletion = Some(effective.as_str().into());
                row.deleted_at = Some(now);
                row.deleted_by = step.actor.map(|a| a.id);
                row.deletion_reason = reason.clone();
                (Status::Deleted, reason.clone())
            }
        };
        row.status = to.as_str().into();
        row.updated_at = now;
        row.event_seq += 1;
        history.push(Entry {
            from: Some(from),
            to,
            actor: step.actor,
            note,
            at: now,
        });
    }
    Ok(Replayed { row, history })
}

/// Order history being written batch by batch; [`HistoryImport::finish`]
/// ends it.
pub struct HistoryImport<'a> {
    store: &'a OrderStore,
    /// SQLite: the writer connection's page cache before the import.
    cache_before: Option<i64>,
}

impl HistoryImport<'_> {
    /// Writes a batch as [`OrderStore::import_history`] does.
    pub async fn write(&mut self, orders: &[HistoricOrder]) -> StoreResult<Vec<i64>> {
        let store = self.store;
        let mut ids = Vec::with_capacity(orders.len());
        for chunk in orders.chunks(orders_per_transaction(store.db().backend())) {
            let mut replayed = chunk.iter().map(replay).collect::<StoreResult<Vec<_>>>()?;
            ids.extend(retrying!(store.write_history(chunk, &mut replayed).await)?);
        }
        Ok(ids)
    }

    /// Sets SQLite's page cache back (a failure only costs memory until the
    /// pool closes).
    pub async fn finish(self) {
        if let Some(before) = self.cache_before {
            let db = self.store.db();
            let restored =
                sqlx::query(sqlx::AssertSqlSafe(format!("PRAGMA cache_size = {before}")))
                    .execute(db.writer())
                    .await;
            if let Err(e) = restored {
                tracing::warn!(error = %e, "could not set the page cache back");
            }
        }
    }
}

impl OrderStore {
    /// Writes orders that already happened, with their whole history, as fast
    /// as the database takes them: [`orders_per_transaction`] orders per
    /// transaction, multi-row inserts, no per-order round trip. Per-user
    /// numbers continue each customer's sequence in the order given; ids are
    /// allocated in that order too. No outbox rows and no stock: whatever is
    /// derived from order events must be rebuilt from the tables afterwards.
    /// A path the lifecycle rules refuse stops the call before its
    /// transaction writes anything (earlier transactions of the call stay).
    /// Returns the new ids. Many batches in a row: [`OrderStore::history_import`].
    pub async fn import_history(&self, orders: &[HistoricOrder]) -> StoreResult<Vec<i64>> {
        let mut import = self.history_import().await?;
        let written = import.write(orders).await;
        import.finish().await;
        written
    }

    /// Starts writing order history in batches (see [`OrderStore::import_history`]).
    ///
    /// On SQLite the writer connection's page cache is raised to
    /// [`SQLITE_BULK_CACHE_KIB`] until [`HistoryImport::finish`] sets it back,
    /// so the indexes keyed by customer stay in memory from one batch to the
    /// next instead of being read again for every order.
    pub async fn history_import(&self) -> StoreResult<HistoryImport<'_>> {
        let db = self.db();
        let cache_before = match db.backend() {
            Backend::Sqlite => {
                let (before,): (i64,) = sqlx::query_as("PRAGMA cache_size")
                    .fetch_one(db.writer())
                    .await?;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "PRAGMA cache_size = -{SQLITE_BULK_CACHE_KIB}"
                )))
                .execute(db.writer())
                .await?;
                Some(before)
            }
            _ => None,
        };
        Ok(HistoryImport {
            store: self,
            cache_before,
        })
    }
    async fn write_history(
        &self,
        orders: &[HistoricOrder],
        replayed: &mut [Replayed],
    ) -> StoreResult<Vec<i64>> {
        let db = self.db();
        let mut tx = db.begin().await?;
        if db.backend() == Backend::Postgres {
            // Planning each huge INSERT for its values (a "custom plan") costs
            // more than running it; the generic plan serves every batch.
            sqlx::query("SET LOCAL plan_cache_mode = force_generic_plan")
                .execute(&mut *tx)
                .await?;
        }
        let mut next = next_numbers(db, &mut tx, replayed).await?;
        for r in replayed.iter_mut() {
            let n = next.entry(r.row.user_id).or_insert(1);
            r.row.user_order_number = *n;
            *n += 1;
        }
        let (ids, with_orders) = match db.backend() {
            Backend::Sqlite | Backend::Postgres => {
                (reserve_ids(db, &mut tx, replayed.len()).await?, true)
            }
            Backend::MySql => (insert_mysql(db, &mut tx, replayed).await?, false),
        };

        let mut insert = Query::insert();
        insert
            .into_table(Orders::Table)
            .columns(std::iter::once(Orders::Id).chain(COLUMNS));
        let order_rows = replayed
            .iter()
            .zip(&ids)
            .filter(|_| with_orders)
            .map(|(r, id)| std::iter::once(Expr::from(*id)).chain(values(&r.row)));
        let count = if with_orders { replayed.len() } else { 0 };
        let orders_sql = statements(db, insert, COLUMNS.len() + 1, count, order_rows);

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
        let item_rows = orders.iter().zip(&ids).flat_map(|(o, &id)| {
            o.lines.iter().map(move |l| {
                [
                    id.into(),
                    l.product_id.clone().into(),
                    l.name.clone().into(),
                    l.category.clone().into(),
                    l.quantity.into(),
                    l.unit_price_cents.into(),
                    l.unit_price_cents.saturating_mul(l.quantity).into(),
                    o.placed_at.into(),
                ]
            })
        });
        let count = orders.iter().map(|o| o.lines.len()).sum();
        let items_sql = statements(db, insert, 8, count, item_rows);

        let mut insert = Query::insert();
        insert.into_table(OrderHistory::Table).columns([
            OrderHistory::OrderId,
            OrderHistory::FromStatus,
            OrderHistory::ToStatus,
            OrderHistory::ActorId,
            OrderHistory::ActorRole,
            OrderHistory::Note,
            OrderHistory::CreatedAt,
        ]);
        let history_rows = replayed.iter().zip(&ids).flat_map(|(r, &id)| {
            r.history.iter().map(move |h| {
                [
                    id.into(),
                    h.from.map(|s| s.as_str()).into(),
                    h.to.as_str().into(),
                    h.actor.map(|a| a.id).into(),
                    h.actor
                        .map(|a| if a.admin { "admin" } else { "customer" })
                        .into(),
                    h.note.clone().into(),
                    h.at.into(),
                ]
            })
        });
        let count = replayed.iter().map(|r| r.history.len()).sum();
        let history_sql = statements(db, insert, 7, count, history_rows);

        run_pipelined(&mut tx, orders_sql.chain(items_sql).chain(history_sql)).await?;
        tx.commit().await?;
        Ok(ids)
    }
}

/// Renders a multi-row INSERT for the backend. On SQLite as `INSERT OR
/// FAIL`: a failing row ends the statement without undoing the rows before
/// it, so SQLite keeps no statement journal (a copy of every page the
/// statement touches); the transaction is abandoned on any error anyway.
fn render(db: &Db, stmt: &InsertStatement) -> (String, SqlxValues) {
    let (sql, values) = db.build(stmt);
    match db.backend() {
        Backend::Sqlite => (
            sql.replacen("INSERT INTO", "INSERT OR FAIL INTO", 1),
            values,
        ),
        _ => (sql, values),
    }
}

/// The rendered statements inserting the `count` rows of `rows` with `base`
/// (table and columns set), each built only when asked for: as many rows as
/// the backend's bind-parameter limit allows, the rest in power-of-two
/// sizes, so the same few statement texts come back and the connection's
/// prepared statements are reused instead of parsed anew.
fn statements<'a, R>(
    db: &'a Db,
    base: InsertStatement,
    columns: usize,
    count: usize,
    rows: impl Iterator<Item = R> + 'a,
) -> impl Iterator<Item = (String, SqlxValues)> + 'a
where
    R: IntoIterator<Item = Expr>,
{
    let mut rows = rows.peekable();
    let mut sizes = statement_sizes(count, max_params(db.backend()) / columns);
    std::iter::from_fn(move || {
        rows.peek()?;
        let mut stmt = base.clone();
        for row in rows.by_ref().take(sizes.next().unwrap_or(1)) {
            stmt.values_panic(row);
        }
        Some(render(db, &stmt))
    })
}

/// Rows per statement for `count` rows: `full` while that many are left,
/// then powers of two.
fn statement_sizes(count: usize, full: usize) -> impl Iterator<Item = usize> {
    let mut left = count;
    std::iter::from_fn(move || {
        let take = match left {
            0 => return None,
            n if n >= full => full,
            n => 1 << n.ilog2(),
        };
        left -= take;
        Some(take)
    })
}

/// Runs the statements in order, building each next one while the database
/// works on the one before.
async fn run_pipelined(
    tx: &mut Transaction<'static, Any>,
    mut statements: impl Iterator<Item = (String, SqlxValues)>,
) -> StoreResult<()> {
    let mut next = statements.next();
    while let Some((sql, values)) = next {
        let run = sqlx::query_with::<Any, _>(sqlx::AssertSqlSafe(sql), values).execute(&mut **tx);
        // `join` polls `run` first: the statement is on its way before the
        // next one is built.
        let (done, built) = futures::future::join(run, async { statements.next() }).await;
        done?;
        next = built;
    }
    Ok(())
}

/// Adds each customer's orders in this batch to their counter; returns the
/// first new number per customer. The counters are locked until commit, in
/// user-id order, so concurrent placements wait instead of deadlocking.
async fn next_numbers(
    db: &Db,
    tx: &mut Transaction<'static, Any>,
    replayed: &[Replayed],
) -> StoreResult<HashMap<i64, i64>> {
    let mut counts: BTreeMap<i64, i64> = BTreeMap::new();
    for r in replayed {
        *counts.entry(r.row.user_id).or_default() += 1;
    }
    let backend = db.backend();
    let added = match backend {
        Backend::MySql => Expr::cust("VALUES(`last_number`)"),
        _ => Expr::col((Alias::new("excluded"), OrderUserCounters::LastNumber)),
    };
    let counted: Vec<(i64, i64)> = counts.into_iter().collect();
    let mut last: Vec<(i64, i64)> = Vec::with_capacity(counted.len());
    for part in counted.chunks(max_params(backend) / 2) {
        let mut upsert = Query::insert()
            .into_table(OrderUserCounters::Table)
            .columns([OrderUserCounters::UserId, OrderUserCounters::LastNumber])
            .on_conflict(
                OnConflict::column(OrderUserCounters::UserId)
                    .value(
                        OrderUserCounters::LastNumber,
                        Expr::col((OrderUserCounters::Table, OrderUserCounters::LastNumber))
                            .add(added.clone()),
                    )
                    .to_owned(),
            )
            .to_owned();
        for &(user, n) in part {
            upsert.values_panic([user.into(), n.into()]);
        }
        if backend == Backend::MySql {
            db.execute(&mut **tx, &upsert).await?;
            last.extend(
                db.fetch_all::<(i64, i64), _>(
                    &mut **tx,
                    &Query::select()
                        .columns([OrderUserCounters::UserId, OrderUserCounters::LastNumber])
                        .from(OrderUserCounters::Table)
                        .and_where(
                            Expr::col(OrderUserCounters::UserId)
                                .is_in(part.iter().map(|&(u, _)| u)),
                        )
                        .to_owned(),
                )
                .await?,
            );
        } else {
            upsert.returning(ReturningClause::Columns(vec![
                OrderUserCounters::UserId.into(),
                OrderUserCounters::LastNumber.into(),
            ]));
            last.extend(db.fetch_all::<(i64, i64), _>(&mut **tx, &upsert).await?);
        }
    }
    let counts: HashMap<i64, i64> = counted.into_iter().collect();
    Ok(last
        .into_iter()
        .map(|(user, last)| (user, last - counts.get(&user).copied().unwrap_or(0) + 1))
        .collect())
}

/// `count` new order ids, in the write transaction.
///
/// SQLite: the transaction holds the database's only write lock (`BEGIN
/// IMMEDIATE` on the writer connection), so the ids after the highest ever
/// given (`AUTOINCREMENT` never reuses one: `sqlite_sequence` remembers it)
/// are free until commit; inserting them moves `sqlite_sequence` on.
/// PostgreSQL: `nextval` of the column's sequence, `count` times in one
/// statement; other sessions keep drawing from the same sequence, so the ids
/// are unique, if not always consecutive.
async fn reserve_ids(
    db: &Db,
    tx: &mut Transaction<'static, Any>,
    count: usize,
) -> StoreResult<Vec<i64>> {
    let count = i64::try_from(count).unwrap_or(i64::MAX);
    match db.backend() {
        Backend::Sqlite => {
            let (last,): (Option<i64>,) = sqlx::query_as(
                "SELECT MAX(n) FROM (SELECT MAX(id) AS n FROM orders \
                 UNION ALL SELECT seq AS n FROM sqlite_sequence WHERE name = 'orders')",
            )
            .fetch_one(&mut **tx)
            .await?;
            let first = last.unwrap_or(0) + 1;
            Ok((first..first + count).collect())
        }
        _ => {
            let ids: Vec<(i64,)> = sqlx::query_as(
                "SELECT nextval(pg_get_serial_sequence('orders', 'id')) \
                 FROM generate_series(1, $1) ORDER BY 1",
            )
            .bind(count)
            .fetch_all(&mut **tx)
            .await?;
            Ok(ids.into_iter().map(|(id,)| id).collect())
        }
    }
}

/// MySQL/MariaDB: the rows take their ids from AUTO_INCREMENT. A multi-row
/// `INSERT … VALUES` is a "simple insert": InnoDB reserves its whole row
/// count at once, so its ids are consecutive (in steps of
/// `auto_increment_increment`) from `LAST_INSERT_ID()`, in lock modes 0 and
/// 1 by the table lock and in mode 2 because only bulk inserts (`INSERT …
/// SELECT`, `LOAD DATA`, which nothing runs on `orders`) reserve row by row.
async fn insert_mysql(
    db: &Db,
    tx: &mut Transaction<'static, Any>,
    replayed: &[Replayed],
) -> StoreResult<Vec<i64>> {
    let (step,): (i64,) = sqlx::query_as("SELECT CAST(@@auto_increment_increment AS SIGNED)")
        .fetch_one(&mut **tx)
        .await?;
    let mut ids = Vec::with_capacity(replayed.len());
    let mut rest = replayed;
    for size in statement_sizes(replayed.len(), max_params(Backend::MySql) / COLUMNS.len()) {
        let (part, after) = rest.split_at(size.min(rest.len()));
        rest = after;
        let mut insert = Query::insert();
        insert.into_table(Orders::Table).columns(COLUMNS);
        for r in part {
            insert.values_panic(values(&r.row));
        }
        let (sql, values) = render(db, &insert);
        sqlx::query_with::<Any, _>(sqlx::AssertSqlSafe(sql), values)
            .execute(&mut **tx)
            .await?;
        let (first,): (i64,) = sqlx::query_as("SELECT CAST(LAST_INSERT_ID() AS SIGNED)")
            .fetch_one(&mut **tx)
            .await?;
        ids.extend((0..part.len() as i64).map(|k| first + k * step));
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADMIN: Option<Actor> = Some(Actor { id: 1, admin: true });

    fn order(steps: Vec<(i64, Option<Actor>, HistoricChange)>) -> HistoricOrder {
        HistoricOrder {
            user_id: 7,
            user_email: Some("c@example.com".into()),
            lines: vec![ReservedLine {
                product_id: "p1".into(),
                name: "Lamp".into(),
                category: "Home".into(),
                quantity: 2,
                unit_price_cents: 1250,
            }],
            payment_method: "upi".into(),
            shipping_address: serde_json::json!({"city": "Pune"}),
            placed_at: 1000,
            steps: steps
                .into_iter()
                .map(|(at, actor, change)| HistoricStep { at, actor, change })
                .collect(),
        }
    }

    fn to(status: Status) -> HistoricChange {
        HistoricChange::Status {
            to: status,
            shipment: Shipment::default(),
            reason: None,
        }
    }

    #[test]
    fn a_refunded_return_sets_what_the_store_sets() {
        let customer = Some(Actor {
            id: 7,
            admin: false,
        });
        let r = replay(&order(vec![
            (2000, ADMIN, to(Status::Processing)),
            (3000, ADMIN, to(Status::Shipped)),
            (4000, ADMIN, to(Status::OutForDelivery)),
            (5000, ADMIN, to(Status::Delivered)),
            (
                6000,
                customer,
                HistoricChange::RequestCancellation {
                    reason: "Item damaged".into(),
                },
            ),
            (7000, ADMIN, HistoricChange::ApproveCancellation),
            (8000, ADMIN, to(Status::RefundProcessing)),
            (9000, ADMIN, to(Status::Refunded)),
        ]))
        .unwrap();
        let row = &r.row;
        assert_eq!(row.status, "refunded");
        assert_eq!(row.total_cents, 2500);
        assert_eq!(row.event_seq, 9);
        assert_eq!(r.history.len(), 9);
        assert_eq!(row.status_before_request.as_deref(), Some("delivered"));
        assert_eq!(row.cancelled_at, Some(7000));
        assert_eq!(row.cancellation_approved_by, Some(1));
        assert_eq!(row.refund_cents, Some(2500));
        assert_eq!(row.refund_status.as_deref(), Some("completed"));
        assert_eq!(
            (row.refund_processing_at, row.refunded_at, row.updated_at),
            (Some(8000), Some(9000), 9000)
        );
        assert_eq!(r.history[6].from, Some(Status::CancelRequested));
        assert_eq!(r.history[6].to, Status::Cancelled);
    }

    #[test]
    fn a_rejected_request_goes_back_and_a_delete_remembers_where_from() {
        let customer = Some(Actor {
            id: 7,
            admin: false,
        });
        let r = replay(&order(vec![
            (2000, ADMIN, to(Status::Processing)),
            (
                2500,
                customer,
                HistoricChange::RequestCancellation {
                    reason: "Changed my mind".into(),
                },
            ),
            (
                3000,
                ADMIN,
                HistoricChange::RejectCancellation {
                    reason: "Already packed".into(),
                },
            ),
            (4000, ADMIN, HistoricChange::Delete { reason: None }),
        ]))
        .unwrap();
        assert_eq!(r.row.status, "deleted");
        assert_eq!(r.row.cancellation_rejected, 1);
        assert_eq!(r.row.status_before_deletion.as_deref(), Some("processing"));
        assert_eq!(r.row.deleted_by, Some(1));
        assert_eq!(r.history[3].to, Status::Processing);
    }

    #[test]
    fn paths_the_rules_refuse_are_refused() {
        let skip = order(vec![(2000, ADMIN, to(Status::Delivered))]);
        assert!(matches!(replay(&skip), Err(StoreError::Transition(_))));
        let late_return = order(vec![
            (2000, ADMIN, to(Status::Processing)),
            (3000, ADMIN, to(Status::Shipped)),
            (4000, ADMIN, to(Status::OutForDelivery)),
            (5000, ADMIN, to(Status::Delivered)),
            (
                5000 + RETURN_WINDOW_MS + 1,
                None,
                HistoricChange::RequestCancellation { reason: "x".into() },
            ),
        ]);
        assert!(matches!(replay(&late_return), Err(StoreError::Rule(_))));
        let backwards = order(vec![(500, ADMIN, to(Status::Processing))]);
        assert!(matches!(replay(&backwards), Err(StoreError::Rule(_))));
        let mut empty = order(Vec::new());
        empty.lines.clear();
        assert!(matches!(replay(&empty), Err(StoreError::Rule(_))));
    }

    #[test]
    fn statements_come_in_a_few_sizes() {
        let sizes: Vec<usize> = statement_sizes(2300, 1000).collect();
        assert_eq!(sizes, [1000, 1000, 256, 32, 8, 4]);
        assert_eq!(statement_sizes(0, 1000).count(), 0);
        assert_eq!(statement_sizes(1000, 1000).collect::<Vec<_>>(), [1000]);
    }
}
