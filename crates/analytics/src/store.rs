//! The aggregate tables and their in-memory mirror: applying events,
//! rebuilding from the orders, verifying against them.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, RwLock, RwLockReadGuard},
};

use ecap_core::{
    clock::now_ms,
    db::{Backend, Db, DbError, DbResult},
    events::{OrderEvent, OrderSource},
    retrying,
};
use futures::TryStreamExt;
use sqlx::{Any, Transaction, any::AnyArguments, query::Query as SqlQuery};
use tokio::sync::{Mutex, watch};

use crate::{
    memory::{Mirror, NO_PREV, PairChange, PairIndex, Series, narrow},
    model::{Delta, Dim, Figures, Measure, OrderState, Totals, slot_of},
};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("{0}")]
    Source(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        Self::Db(DbError::from(e))
    }
}

impl ecap_core::db::Retryable for StoreError {
    fn is_retryable(&self) -> bool {
        matches!(self, Self::Db(e) if e.is_retryable())
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Rows per multi-row statement (under every backend's bind limit).
const ROWS_PER_STATEMENT: usize = 512;
/// Orders read per page when rebuilding or verifying.
const PAGE: usize = 5_000;

/// The analytics store. Cheap to clone; clones share the mirror.
#[derive(Clone)]
pub struct AnalyticsStore {
    db: Db,
    mirror: Arc<RwLock<Mirror>>,
    /// One applier at a time in this process (the row lock on
    /// `analytics_meta.version` orders appliers across processes).
    apply: Arc<Mutex<()>>,
    /// The `generation` the mirror was loaded at.
    generation: Arc<std::sync::atomic::AtomicI64>,
    changes: watch::Sender<u64>,
    /// The other replicas' applies this mirror has followed.
    feed: Arc<std::sync::Mutex<Feed>>,
    /// Opened by a command line tool: no mirror is loaded or kept.
    offline: bool,
}

impl std::fmt::Debug for AnalyticsStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnalyticsStore")
            .field("db", &self.db)
            .finish()
    }
}

/// A value bound into a hand-built multi-row statement.
#[derive(Debug, Clone)]
enum V {
    I(i64),
    Small(i16),
    S(String),
}

fn bind<'q>(mut q: SqlQuery<'q, Any, AnyArguments>, v: &V) -> SqlQuery<'q, Any, AnyArguments> {
    q = match v {
        V::I(i) => q.bind(*i),
        V::Small(i) => q.bind(*i),
        V::S(s) => q.bind(s.clone()),
    };
    q
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Upsert {
    /// Existing rows take the new values.
    Set,
    /// Existing rows add the new values (columns after the keys).
    Add,
}

/// Splits `n` rows into chunks whose sizes are powers of two (at most
/// [`ROWS_PER_STATEMENT`]): a handful of statement shapes per table, so
/// prepared-statement caches stay warm (on MariaDB, a cache miss costs a
/// statement close + prepare, and a 40 ms delayed-ACK stall).
fn pow2_chunks<T>(rows: &[T]) -> Vec<&[T]> {
    let mut out = Vec::new();
    let mut rest = rows;
    while !rest.is_empty() {
        let n = rest.len().min(ROWS_PER_STATEMENT);
        let size = 1usize << (usize::BITS - 1 - n.leading_zeros());
        let (head, tail) = rest.split_at(size);
        out.push(head);
        rest = tail;
    }
    out
}

/// `INSERT … ON CONFLICT/DUPLICATE KEY UPDATE` of many rows, chunked.
async fn upsert(
    tx: &mut Transaction<'static, Any>,
    backend: Backend,
    table: &str,
    cols: &[&str],
    keys: &[&str],
    mode: Upsert,
    rows: &[Vec<V>],
) -> DbResult<()> {
    for chunk in pow2_chunks(rows) {
        let mut sql = format!("INSERT INTO {table} ({}) VALUES ", cols.join(", "));
        let mut n = 0;
        for (r, _) in chunk.iter().enumerate() {
            if r > 0 {
                sql.push_str(", ");
            }
            sql.push('(');
            for c in 0..cols.len() {
                if c > 0 {
                    sql.push_str(", ");
                }
                n += 1;
                match backend {
                    Backend::Postgres => sql.push_str(&format!("${n}")),
                    _ => sql.push('?'),
                }
            }
            sql.push(')');
        }
        let rest: Vec<&&str> = cols.iter().filter(|c| !keys.contains(c)).collect();
        let set: Vec<String> = match backend {
            Backend::MySql => rest
                .iter()
                .map(|c| match mode {
                    Upsert::Set => format!("{c} = VALUES({c})"),
                    Upsert::Add => format!("{c} = {c} + VALUES({c})"),
                })
                .collect(),
            _ => rest
                .iter()
                .map(|c| match mode {
                    Upsert::Set => format!("{c} = excluded.{c}"),
                    Upsert::Add => format!("{c} = {table}.{c} + excluded.{c}"),
                })
                .collect(),
        };
        match backend {
            Backend::MySql => sql.push_str(" ON DUPLICATE KEY UPDATE "),
            _ => sql.push_str(&format!(
                " ON CONFLICT ({}) DO UPDATE SET ",
                keys.join(", ")
            )),
        }
        sql.push_str(&set.join(", "));
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for row in chunk {
            for v in row {
                q = bind(q, v);
            }
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

const ORDER_COLS: [&str; 8] = [
    "order_key",
    "user_id",
    "placed_at",
    "status",
    "seq",
    "total_cents",
    "payment_method",
    "updated_at",
];
const SLOT_COLS: [&str; 11] = [
    "slot",
    "orders",
    "units",
    "gross_cents",
    "net_orders",
    "net_units",
    "net_cents",
    "cancelled",
    "refunded",
    "refund_cents",
    "new_customers",
];
const CELL_COLS: [&str; 8] = [
    "dim",
    "dkey",
    "slot",
    "orders",
    "units",
    "gross_cents",
    "net_units",
    "net_cents",
];
const CUSTOMER_COLS: [&str; 4] = ["user_id", "first_order_at", "last_order_at", "orders"];

fn order_row(o: &OrderState, now: i64) -> Vec<V> {
    vec![
        V::S(o.key.clone()),
        V::I(o.user_id),
        V::I(o.placed_at),
        V::S(o.status.clone()),
        V::I(o.seq),
        V::I(o.total_cents),
        V::S(o.payment_method.clone()),
        V::I(now),
    ]
}

fn slot_row(slot: i64, t: &Totals) -> Vec<V> {
    vec![
        V::I(slot),
        V::I(t.orders),
        V::I(t.units),
        V::I(t.gross_cents),
        V::I(t.net_orders),
        V::I(t.net_units),
        V::I(t.net_cents),
        V::I(t.cancelled),
        V::I(t.refunded),
        V::I(t.refund_cents),
        V::I(t.new_customers),
    ]
}

fn cell_row(dim: Dim, key: &str, slot: i64, f: &Figures) -> Vec<V> {
    vec![
        V::Small(dim.code()),
        V::S(key.to_owned()),
        V::I(slot),
        V::I(f.orders),
        V::I(f.units),
        V::I(f.gross_cents),
        V::I(f.net_units),
        V::I(f.net_cents),
    ]
}

fn customer_row(c: &Customer) -> Vec<V> {
    vec![
        V::I(c.user_id),
        V::I(c.first_order_at),
        V::I(c.last_order_at),
        V::I(c.orders),
    ]
}

/// Writes a delta's slots and cells: added to what is there (`Add`), or as
/// the new values (`Set`, rebuild).
async fn write_delta(
    tx: &mut Transaction<'static, Any>,
    backend: Backend,
    delta: &Delta,
    mode: Upsert,
) -> DbResult<()> {
    let rows: Vec<Vec<V>> = delta.slots.iter().map(|(s, t)| slot_row(*s, t)).collect();
    upsert(
        tx,
        backend,
        "analytics_slots",
        &SLOT_COLS,
        &["slot"],
        mode,
        &rows,
    )
    .await?;
    let rows: Vec<Vec<V>> = delta
        .cell_iter()
        .map(|(d, k, s, f)| cell_row(d, k, s, f))
        .collect();
    upsert(
        tx,
        backend,
        "analytics_cells",
        &CELL_COLS,
        &["dim", "dkey", "slot"],
        mode,
        &rows,
    )
    .await
}

/// A customer's first and last order and how many.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct Customer {
    pub user_id: i64,
    pub first_order_at: i64,
    pub last_order_at: i64,
    pub orders: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct StoredOrder {
    order_key: String,
    user_id: i64,
    placed_at: i64,
    status: String,
    seq: i64,
    total_cents: i64,
    payment_method: String,
}

#[derive(sqlx::FromRow)]
struct SlotRow {
    slot: i64,
    orders: i64,
    units: i64,
    gross_cents: i64,
    net_orders: i64,
    net_units: i64,
    net_cents: i64,
    cancelled: i64,
    refunded: i64,
    refund_cents: i64,
    new_customers: i64,
}

impl SlotRow {
    fn totals(&self) -> Totals {
        Totals {
            orders: self.orders,
            units: self.units,
            gross_cents: self.gross_cents,
            net_orders: self.net_orders,
            net_units: self.net_units,
            net_cents: self.net_cents,
            cancelled: self.cancelled,
            refunded: self.refunded,
            refund_cents: self.refund_cents,
            new_customers: self.new_customers,
        }
    }
}

#[derive(sqlx::FromRow)]
struct CellRow {
    dim: i16,
    dkey: String,
    slot: i64,
    orders: i64,
    units: i64,
    gross_cents: i64,
    net_units: i64,
    net_cents: i64,
}

impl CellRow {
    fn figures(&self) -> Figures {
        Figures {
            orders: self.orders,
            units: self.units,
            gross_cents: self.gross_cents,
            net_units: self.net_units,
            net_cents: self.net_cents,
        }
    }
}

/// An ecap order's key: zero-padded, so keys sort like the ids (rebuilds
/// append to the primary key instead of splitting pages all over it).
pub fn order_key(id: i64) -> String {
    format!("{id:019}")
}

/// The state an event describes.
pub fn state_of(e: &OrderEvent) -> OrderState {
    OrderState {
        key: order_key(e.order_id),
        user_id: e.user_id,
        placed_at: e.placed_at,
        status: e.to_status.clone(),
        seq: e.seq,
        total_cents: e.total_cents,
        payment_method: e.payment_method.clone(),
        lines: e.lines.clone(),
    }
}

/// What one apply changed, for the mirror.
struct Applied {
    delta: Delta,
    pairs: Vec<PairChange>,
    applied: usize,
    last_at: i64,
    /// The `version` the apply committed under (0 when nothing changed).
    version: i64,
}

/// One apply as other replicas read it from `analytics_changes`.
#[derive(serde::Serialize, serde::Deserialize)]
struct Change {
    delta: Delta,
    pairs: Vec<PairChange>,
    last_at: i64,
}

/// How far this process's mirror has followed `analytics_changes`.
#[derive(Debug, Default)]
struct Feed {
    /// Every change up to this version is in the mirror.
    followed: i64,
    /// Versions above `followed` this process applied itself.
    own: std::collections::BTreeSet<i64>,
}

/// How long applied changes stay readable by lagging replicas.
const CHANGES_KEPT_MS: i64 = 10 * 60 * 1000;
/// Changes read per follow step.
const FOLLOW_BATCH: i64 = 500;

/// Everything derived from a set of order states (rebuild and verify).
#[derive(Debug, Default)]
pub struct Recomputed {
    pub delta: Delta,
    pub customers: HashMap<i64, Customer>,
    pub orders: usize,
    pub last_at: i64,
}

impl Recomputed {
    pub fn add(&mut self, o: &OrderState, at: i64) {
        self.delta.order(o, 1);
        self.orders += 1;
        self.last_at = self.last_at.max(at);
        if o.user_id > 0 {
            let c = self.customers.entry(o.user_id).or_insert(Customer {
                user_id: o.user_id,
                first_order_at: o.placed_at,
                last_order_at: o.placed_at,
                orders: 0,
            });
            c.orders += 1;
            c.first_order_at = c.first_order_at.min(o.placed_at);
            c.last_order_at = c.last_order_at.max(o.placed_at);
        }
    }

    /// Adds the new-customer counts (each customer's first order).
    pub fn finish(&mut self) {
        let firsts: Vec<i64> = self
            .customers
            .values()
            .map(|c| slot_of(c.first_order_at))
            .collect();
        for slot in firsts {
            self.delta.add_slot(
                slot,
                &Totals {
                    new_customers: 1,
                    ..Totals::default()
                },
                1,
            );
        }
        self.delta.compact();
    }
}

/// One difference found by [`AnalyticsStore::verify`].
pub type Difference = String;

impl AnalyticsStore {
    /// Opens the store and loads the mirror from the tables.
    pub async fn open(db: Db) -> StoreResult<Self> {
        let store = Self::unloaded(db, false);
        store.reload().await?;
        Ok(store)
    }

    /// For command line tools (rebuild, verify): the tables only, no mirror.
    pub fn open_offline(db: Db) -> Self {
        Self::unloaded(db, true)
    }

    fn unloaded(db: Db, offline: bool) -> Self {
        Self {
            db,
            mirror: Arc::new(RwLock::new(Mirror::default())),
            apply: Arc::new(Mutex::new(())),
            generation: Arc::new(std::sync::atomic::AtomicI64::new(i64::MIN)),
            changes: watch::channel(0).0,
            feed: Arc::new(std::sync::Mutex::new(Feed::default())),
            offline,
        }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Read access to the aggregates.
    pub fn read(&self) -> RwLockReadGuard<'_, Mirror> {
        match self.mirror.read() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Ticks after every change to the aggregates.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    async fn meta(&self, name: &str) -> DbResult<i64> {
        let sql = match self.db.backend() {
            Backend::Postgres => "SELECT value FROM analytics_meta WHERE name = $1",
            _ => "SELECT value FROM analytics_meta WHERE name = ?",
        };
        let v: Option<(i64,)> = sqlx::query_as(sql)
            .bind(name)
            .fetch_optional(self.db.pool())
            .await?;
        Ok(v.map_or(0, |v| v.0))
    }

    /// True once a rebuild has run (a fresh database needs one when orders
    /// already exist).
    pub async fn is_built(&self) -> StoreResult<bool> {
        Ok(self.meta("built").await? != 0)
    }

    /// Reloads the mirror when another process rebuilt the tables.
    pub async fn refresh(&self) -> StoreResult<bool> {
        let g = self.meta("generation").await?;
        if g == self.generation.load(std::sync::atomic::Ordering::Acquire) {
            return Ok(false);
        }
        self.reload().await?;
        Ok(true)
    }

    /// Loads the mirror from the tables.
    pub async fn reload(&self) -> StoreResult<()> {
        if self.offline {
            return Ok(());
        }
        let _guard = self.apply.lock().await;
        // One snapshot for the tables and the version they hold, so the
        // changes the mirror then follows are exactly those after it. A read
        // transaction from the pool: on SQLite not the writer's `BEGIN
        // IMMEDIATE`, so writes go on while the mirror loads.
        let mut tx = self.db.pool().begin().await.map_err(DbError::from)?;
        if self.db.backend() == Backend::Postgres {
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                .execute(&mut *tx)
                .await?;
        }
        let meta: Vec<(String, i64)> = sqlx::query_as(
            "SELECT name, value FROM analytics_meta \
             WHERE name IN ('generation', 'last_change_at', 'version')",
        )
        .fetch_all(&mut *tx)
        .await?;
        let meta_value = |n: &str| meta.iter().find(|(k, _)| k == n).map_or(0, |(_, v)| *v);
        let generation = meta_value("generation");
        let version = meta_value("version");
        let mut mirror = Mirror {
            last_change_at: meta_value("last_change_at"),
            ..Mirror::default()
        };
        let mut rows = sqlx::query_as::<_, SlotRow>(
            "SELECT slot, orders, units, gross_cents, net_orders, net_units, net_cents, \
             cancelled, refunded, refund_cents, new_customers FROM analytics_slots ORDER BY slot",
        )
        .fetch(&mut *tx);
        while let Some(r) = rows.try_next().await? {
            mirror.totals.push_sorted(r.slot, &r.totals());
        }
        drop(rows);
        let mut rows = sqlx::query_as::<_, CellRow>(
            "SELECT dim, dkey, slot, orders, units, gross_cents, net_units, net_cents \
             FROM analytics_cells ORDER BY dim, dkey, slot",
        )
        .fetch(&mut *tx);
        let mut current: Option<(Dim, String, Series<Figures>)> = None;
        while let Some(r) = rows.try_next().await? {
            let Some(dim) = Dim::from_code(r.dim) else {
                continue;
            };
            if current
                .as_ref()
                .is_none_or(|(d, k, _)| *d != dim || *k != r.dkey)
            {
                if let Some((d, k, s)) = current.take() {
                    mirror.dims.entry(d).or_default().insert(k, s);
                }
                current = Some((dim, r.dkey.clone(), Series::default()));
            }
            if let Some((_, _, s)) = current.as_mut() {
                s.push_sorted(r.slot, &r.figures());
            }
        }
        if let Some((d, k, s)) = current.take() {
            mirror.dims.entry(d).or_default().insert(k, s);
        }
        drop(rows);
        let mut rows = sqlx::query_as::<_, (i64, i64)>(
            "SELECT user_id, placed_at FROM analytics_orders WHERE user_id > 0 \
             ORDER BY user_id, placed_at",
        )
        .fetch(&mut *tx);
        let mut pairs = Vec::new();
        let mut last: Option<(i64, i64)> = None;
        while let Some((user, at)) = rows.try_next().await? {
            let prev = match last {
                Some((u, t)) if u == user => slot_of(t),
                _ => NO_PREV,
            };
            pairs.push((narrow(slot_of(at)), narrow(prev)));
            last = Some((user, at));
        }
        drop(rows);
        mirror.pairs = PairIndex::from_pairs(pairs);
        tx.commit().await?;
        *self.write() = mirror;
        *self.feed_state() = Feed {
            followed: version,
            own: std::collections::BTreeSet::new(),
        };
        self.generation
            .store(generation, std::sync::atomic::Ordering::Release);
        self.changes.send_modify(|v| *v += 1);
        Ok(())
    }

    fn feed_state(&self) -> std::sync::MutexGuard<'_, Feed> {
        match self.feed.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Brings the mirror up to date with the applies other replicas committed
    /// (`analytics_changes`); reloads from the tables when it fell behind what
    /// is kept. Returns how many changes it applied.
    pub async fn follow(&self) -> StoreResult<usize> {
        if self.offline {
            return Ok(0);
        }
        let guard = self.apply.lock().await;
        let followed = self.feed_state().followed;
        if self.meta("changes_pruned").await? > followed {
            drop(guard);
            tracing::warn!("analytics mirror fell behind the change feed: reloading");
            self.reload().await?;
            return Ok(0);
        }
        let sql = format!(
            "SELECT version, payload FROM analytics_changes WHERE version > {} \
             ORDER BY version LIMIT {FOLLOW_BATCH}",
            self.ph(1)
        );
        let rows: Vec<(i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(followed)
            .fetch_all(self.db.pool())
            .await?;
        let Some(&(last, _)) = rows.last() else {
            return Ok(0);
        };
        let mut applied = 0;
        for (version, payload) in rows {
            if self.feed_state().own.remove(&version) {
                continue;
            }
            match serde_json::from_str::<Change>(&payload) {
                Ok(c) => {
                    let mut m = self.write();
                    m.apply(&c.delta, &c.pairs);
                    m.last_change_at = m.last_change_at.max(c.last_at);
                    applied += 1;
                }
                Err(e) => {
                    // Not ours to read (a newer release?): the tables are
                    // still right, so start over from them.
                    drop(guard);
                    tracing::warn!(version, error = %e, "unreadable analytics change: reloading");
                    self.reload().await?;
                    return Ok(applied);
                }
            }
        }
        let mut feed = self.feed_state();
        feed.followed = last;
        feed.own.retain(|v| *v > last);
        drop(feed);
        if applied > 0 {
            self.changes.send_modify(|v| *v += 1);
        }
        Ok(applied)
    }

    /// Deletes changes older than every replica needs (a few minutes), and
    /// records the highest version deleted.
    pub async fn prune_changes(&self) -> StoreResult<u64> {
        let cutoff = now_ms() - CHANGES_KEPT_MS;
        let mut tx = self.db.begin().await?;
        let sql = format!(
            "SELECT MAX(version) FROM analytics_changes WHERE created_at < {}",
            self.ph(1)
        );
        let (upto,): (Option<i64>,) = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(cutoff)
            .fetch_one(&mut *tx)
            .await?;
        let Some(upto) = upto else {
            tx.rollback().await?;
            return Ok(0);
        };
        let sql = format!(
            "UPDATE analytics_meta SET value = {} WHERE name = 'changes_pruned' AND value < {}",
            self.ph(1),
            self.ph(2)
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(upto)
            .bind(upto)
            .execute(&mut *tx)
            .await?;
        let sql = format!(
            "DELETE FROM analytics_changes WHERE version <= {}",
            self.ph(1)
        );
        let n = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(upto)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Mirror> {
        match self.mirror.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Applies events: idempotent (an event whose `seq` is not above the one
    /// applied for its order changes nothing) and order-insensitive (only the
    /// highest `seq` per order matters). Returns how many orders changed.
    pub async fn apply(&self, events: &[OrderEvent]) -> StoreResult<usize> {
        let mut latest: HashMap<i64, &OrderEvent> = HashMap::new();
        for e in events {
            match latest.get(&e.order_id) {
                Some(have) if have.seq >= e.seq => {}
                _ => {
                    latest.insert(e.order_id, e);
                }
            }
        }
        let states: Vec<(OrderState, i64)> = latest.values().map(|e| (state_of(e), e.at)).collect();
        self.apply_states(&states).await
    }

    /// Applies order states (with the time of their change).
    pub async fn apply_states(&self, states: &[(OrderState, i64)]) -> StoreResult<usize> {
        self.apply_with(states, None).await
    }

    /// Records an order placed outside ecap (`track/order`), once per key:
    /// false when the key was tracked before (nothing changes).
    pub async fn track(&self, event: &OrderEvent, key: &str) -> StoreResult<bool> {
        let state = OrderState {
            key: key.to_owned(),
            ..state_of(event)
        };
        let payload = serde_json::to_string(event).unwrap_or_default();
        let n = self
            .apply_with(&[(state, event.at)], Some((key, &payload)))
            .await?;
        Ok(n > 0)
    }

    async fn apply_with(
        &self,
        states: &[(OrderState, i64)],
        tracked: Option<(&str, &str)>,
    ) -> StoreResult<usize> {
        if states.is_empty() {
            return Ok(0);
        }
        let _guard = self.apply.lock().await;
        let applied = retrying!(self.try_apply(states, tracked).await)?;
        let n = applied.applied;
        if n > 0 {
            let mut m = self.write();
            m.apply(&applied.delta, &applied.pairs);
            m.last_change_at = m.last_change_at.max(applied.last_at);
            drop(m);
            let mut feed = self.feed_state();
            if applied.version > feed.followed {
                feed.own.insert(applied.version);
            }
            drop(feed);
            self.changes.send_modify(|v| *v += 1);
        }
        Ok(n)
    }

    fn ph(&self, n: usize) -> String {
        match self.db.backend() {
            Backend::Postgres => format!("${n}"),
            _ => "?".into(),
        }
    }

    async fn try_apply(
        &self,
        states: &[(OrderState, i64)],
        tracked: Option<(&str, &str)>,
    ) -> StoreResult<Applied> {
        let backend = self.db.backend();
        let mut tx = self.db.begin().await?;
        // Orders appliers and rebuilds (which bump it first too).
        sqlx::query("UPDATE analytics_meta SET value = value + 1 WHERE name = 'version'")
            .execute(&mut *tx)
            .await?;
        let (version,): (i64,) =
            sqlx::query_as("SELECT value FROM analytics_meta WHERE name = 'version'")
                .fetch_one(&mut *tx)
                .await?;
        if let Some((key, payload)) = tracked {
            let sql = format!(
                "INSERT INTO analytics_tracked (order_key, payload, created_at) VALUES ({}, {}, {})",
                self.ph(1),
                self.ph(2),
                self.ph(3)
            );
            let inserted = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(key.to_owned())
                .bind(payload.to_owned())
                .bind(now_ms())
                .execute(&mut *tx)
                .await;
            match inserted.map_err(DbError::from) {
                Ok(_) => {}
                Err(e) if e.is_unique_violation() => {
                    tx.rollback().await?;
                    return Ok(Applied {
                        delta: Delta::default(),
                        pairs: Vec::new(),
                        applied: 0,
                        last_at: 0,
                        version: 0,
                    });
                }
                Err(e) => return Err(e.into()),
            }
        }
        let mut existing: HashMap<String, StoredOrder> = HashMap::new();
        let keys: Vec<String> = states.iter().map(|(s, _)| s.key.clone()).collect();
        for chunk in pow2_chunks(&keys) {
            let list: Vec<String> = (1..=chunk.len()).map(|i| self.ph(i)).collect();
            let sql = format!(
                "SELECT order_key, user_id, placed_at, status, seq, total_cents, payment_method \
                 FROM analytics_orders WHERE order_key IN ({})",
                list.join(", ")
            );
            let mut q = sqlx::query_as::<_, StoredOrder>(sqlx::AssertSqlSafe(sql));
            for k in chunk {
                q = q.bind(k.clone());
            }
            for row in q.fetch_all(&mut *tx).await? {
                existing.insert(row.order_key.clone(), row);
            }
        }
        let now = now_ms();
        let mut delta = Delta::default();
        let mut rows = Vec::new();
        let mut fresh: Vec<&OrderState> = Vec::new();
        let mut last_at = 0;
        for (s, at) in states {
            match existing.get(&s.key) {
                Some(old) if old.seq >= s.seq => continue,
                Some(old) => {
                    let before = OrderState {
                        key: old.order_key.clone(),
                        user_id: old.user_id,
                        placed_at: old.placed_at,
                        status: old.status.clone(),
                        seq: old.seq,
                        total_cents: old.total_cents,
                        payment_method: old.payment_method.clone(),
                        lines: s.lines.clone(),
                    };
                    delta.order(&before, -1);
                    // What placement fixed stays as first recorded.
                    let after = OrderState {
                        user_id: old.user_id,
                        placed_at: old.placed_at,
                        total_cents: old.total_cents,
                        payment_method: old.payment_method.clone(),
                        ..s.clone()
                    };
                    delta.order(&after, 1);
                    rows.push(order_row(&after, now));
                }
                None => {
                    delta.order(s, 1);
                    rows.push(order_row(s, now));
                    fresh.push(s);
                }
            }
            last_at = last_at.max(*at);
        }
        let applied = rows.len();
        if applied == 0 {
            tx.rollback().await?;
            return Ok(Applied {
                delta,
                pairs: Vec::new(),
                applied,
                last_at,
                version: 0,
            });
        }
        upsert(
            &mut tx,
            backend,
            "analytics_orders",
            &ORDER_COLS,
            &["order_key"],
            Upsert::Set,
            &rows,
        )
        .await?;
        let pairs = self.customers(&mut tx, &mut fresh, &mut delta).await?;
        delta.compact();
        write_delta(&mut tx, backend, &delta, Upsert::Add).await?;
        let sql = format!(
            "UPDATE analytics_meta SET value = {} WHERE name = 'last_change_at' AND value < {}",
            self.ph(1),
            self.ph(2)
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(last_at)
            .bind(last_at)
            .execute(&mut *tx)
            .await?;
        // The change itself, for the mirrors of the other replicas.
        let change = Change {
            delta,
            pairs,
            last_at,
        };
        let payload = serde_json::to_string(&change)
            .map_err(|e| StoreError::Source(format!("encoding an analytics change: {e}")))?;
        let sql = format!(
            "INSERT INTO analytics_changes (version, payload, created_at) VALUES ({}, {}, {})",
            self.ph(1),
            self.ph(2),
            self.ph(3)
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(version)
            .bind(payload)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        let Change {
            delta,
            pairs,
            last_at,
        } = change;
        Ok(Applied {
            delta,
            pairs,
            applied,
            last_at,
            version,
        })
    }

    /// Customer bookkeeping for orders seen for the first time: first/last
    /// order, new-customer counts, and the chain of each customer's orders.
    async fn customers(
        &self,
        tx: &mut Transaction<'static, Any>,
        fresh: &mut Vec<&OrderState>,
        delta: &mut Delta,
    ) -> StoreResult<Vec<PairChange>> {
        fresh.retain(|o| o.user_id > 0);
        if fresh.is_empty() {
            return Ok(Vec::new());
        }
        fresh.sort_by(|a, b| (a.placed_at, &a.key).cmp(&(b.placed_at, &b.key)));
        let users: Vec<i64> = {
            let set: HashSet<i64> = fresh.iter().map(|o| o.user_id).collect();
            set.into_iter().collect()
        };
        let mut known: HashMap<i64, Customer> = HashMap::new();
        for chunk in pow2_chunks(&users) {
            let list: Vec<String> = (1..=chunk.len()).map(|i| self.ph(i)).collect();
            let sql = format!(
                "SELECT user_id, first_order_at, last_order_at, orders FROM analytics_customers \
                 WHERE user_id IN ({})",
                list.join(", ")
            );
            let mut q = sqlx::query_as::<_, Customer>(sqlx::AssertSqlSafe(sql));
            for u in chunk {
                q = q.bind(*u);
            }
            for c in q.fetch_all(&mut **tx).await? {
                known.insert(c.user_id, c);
            }
        }
        // Orders of this batch not yet linked into their customer's chain.
        let mut unlinked: HashSet<&str> = fresh.iter().map(|o| o.key.as_str()).collect();
        let mut pairs = Vec::new();
        let new_customer = |delta: &mut Delta, at: i64, sign: i64| {
            delta.add_slot(
                slot_of(at),
                &Totals {
                    new_customers: 1,
                    ..Totals::default()
                },
                sign,
            );
        };
        for o in fresh.iter() {
            let t = o.placed_at;
            let cur = slot_of(t);
            match known.get_mut(&o.user_id) {
                None => {
                    known.insert(
                        o.user_id,
                        Customer {
                            user_id: o.user_id,
                            first_order_at: t,
                            last_order_at: t,
                            orders: 1,
                        },
                    );
                    new_customer(delta, t, 1);
                    pairs.push(PairChange::Insert { cur, prev: NO_PREV });
                }
                Some(c) => {
                    c.orders += 1;
                    if t >= c.last_order_at {
                        pairs.push(PairChange::Insert {
                            cur,
                            prev: slot_of(c.last_order_at),
                        });
                        c.last_order_at = t;
                    } else if t < c.first_order_at {
                        let first = slot_of(c.first_order_at);
                        new_customer(delta, c.first_order_at, -1);
                        new_customer(delta, t, 1);
                        pairs.push(PairChange::Remove {
                            cur: first,
                            prev: NO_PREV,
                        });
                        pairs.push(PairChange::Insert {
                            cur: first,
                            prev: cur,
                        });
                        pairs.push(PairChange::Insert { cur, prev: NO_PREV });
                        c.first_order_at = t;
                    } else {
                        // Between two of the customer's orders: find them.
                        let sql = format!(
                            "SELECT placed_at, order_key FROM analytics_orders WHERE user_id = {}",
                            self.ph(1)
                        );
                        let mut theirs: Vec<(i64, String)> =
                            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                                .bind(o.user_id)
                                .fetch_all(&mut **tx)
                                .await?;
                        theirs.retain(|(_, k)| *k == o.key || !unlinked.contains(k.as_str()));
                        theirs.sort();
                        let me = (t, o.key.clone());
                        let prev = theirs.iter().rev().find(|x| **x < me).map(|x| x.0);
                        let next = theirs.iter().find(|x| **x > me).map(|x| x.0);
                        if let (Some(p), Some(n)) = (prev, next) {
                            pairs.push(PairChange::Remove {
                                cur: slot_of(n),
                                prev: slot_of(p),
                            });
                            pairs.push(PairChange::Insert {
                                cur,
                                prev: slot_of(p),
                            });
                            pairs.push(PairChange::Insert {
                                cur: slot_of(n),
                                prev: cur,
                            });
                        }
                    }
                }
            }
            unlinked.remove(o.key.as_str());
        }
        let rows: Vec<Vec<V>> = users
            .iter()
            .filter_map(|u| known.get(u))
            .map(customer_row)
            .collect();
        upsert(
            tx,
            self.db.backend(),
            "analytics_customers",
            &CUSTOMER_COLS,
            &["user_id"],
            Upsert::Set,
            &rows,
        )
        .await?;
        Ok(pairs)
    }

    /// Orders reported from outside, as they were tracked.
    async fn tracked(&self) -> StoreResult<Vec<(OrderState, i64)>> {
        let rows: Vec<(String, String, i64)> =
            sqlx::query_as("SELECT order_key, payload, created_at FROM analytics_tracked")
                .fetch_all(self.db.pool())
                .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(key, payload, at)| {
                let e: OrderEvent = serde_json::from_str(&payload).ok()?;
                Some((
                    OrderState {
                        key,
                        ..state_of(&e)
                    },
                    at,
                ))
            })
            .collect())
    }

    /// Reads every order from `source` (and the tracked ones) and recomputes
    /// the aggregates.
    pub async fn recompute(
        &self,
        source: &dyn OrderSource,
        mut each_page: impl FnMut(&[OrderState], u64),
    ) -> StoreResult<Recomputed> {
        let mut r = Recomputed::default();
        let tracked = self.tracked().await?;
        for (s, at) in &tracked {
            r.add(s, *at);
        }
        let states: Vec<OrderState> = tracked.into_iter().map(|(s, _)| s).collect();
        each_page(&states, 0);
        let mut after = 0;
        let mut done = 0u64;
        loop {
            let page = source
                .orders_after(after, PAGE)
                .await
                .map_err(|e| StoreError::Source(e.0))?;
            let Some(last) = page.last() else { break };
            after = last.order_id;
            let states: Vec<OrderState> = page.iter().map(state_of).collect();
            for (s, e) in states.iter().zip(&page) {
                r.add(s, e.at);
            }
            done += page.len() as u64;
            each_page(&states, done);
        }
        r.finish();
        Ok(r)
    }

    /// Recomputes every aggregate from the orders and replaces the tables in
    /// one transaction, then reloads the mirror. `progress(done, total)`.
    pub async fn rebuild(
        &self,
        source: &dyn OrderSource,
        progress: &(dyn Fn(u64, u64) + Send + Sync),
    ) -> StoreResult<usize> {
        let total = source
            .order_count()
            .await
            .map_err(|e| StoreError::Source(e.0))?;
        let backend = self.db.backend();
        let applied = {
            let _guard = self.apply.lock().await;
            let mut tx = self.db.begin().await?;
            sqlx::query("UPDATE analytics_meta SET value = value + 1 WHERE name = 'version'")
                .execute(&mut *tx)
                .await?;
            // SQLite: a page cache that holds the tables being rewritten (the
            // default 2 MB makes every insert a read), given back before commit.
            let cache_before = match backend {
                Backend::Sqlite => {
                    let (before,): (i64,) = sqlx::query_as("PRAGMA cache_size")
                        .fetch_one(&mut *tx)
                        .await?;
                    sqlx::query("PRAGMA cache_size = -262144")
                        .execute(&mut *tx)
                        .await?;
                    Some(before)
                }
                _ => None,
            };
            for t in [
                "analytics_orders",
                "analytics_customers",
                "analytics_slots",
                "analytics_cells",
            ] {
                sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {t}")))
                    .execute(&mut *tx)
                    .await?;
            }
            let now = now_ms();
            let mut pending: Vec<Vec<V>> = Vec::new();
            let mut r = Recomputed::default();
            for (s, at) in self.tracked().await? {
                r.add(&s, at);
                pending.push(order_row(&s, now));
            }
            let mut done = 0u64;
            let fetch = |after: i64| async move {
                source
                    .orders_after(after, PAGE)
                    .await
                    .map_err(|e| StoreError::Source(e.0))
            };
            let mut page = fetch(0).await?;
            while let Some(last) = page.last() {
                let after = last.order_id;
                for e in &page {
                    let s = state_of(e);
                    r.add(&s, e.at);
                    pending.push(order_row(&s, now));
                }
                done += page.len() as u64;
                // Read the next page while this one is written.
                let (written, next) = futures::join!(
                    upsert(
                        &mut tx,
                        backend,
                        "analytics_orders",
                        &ORDER_COLS,
                        &["order_key"],
                        Upsert::Set,
                        &pending,
                    ),
                    fetch(after)
                );
                written?;
                page = next?;
                pending.clear();
                progress(done, total.max(done));
            }
            r.finish();
            let mut customers: Vec<&Customer> = r.customers.values().collect();
            customers.sort_unstable_by_key(|c| c.user_id);
            let rows: Vec<Vec<V>> = customers.into_iter().map(customer_row).collect();
            upsert(
                &mut tx,
                backend,
                "analytics_customers",
                &CUSTOMER_COLS,
                &["user_id"],
                Upsert::Set,
                &rows,
            )
            .await?;
            write_delta(&mut tx, backend, &r.delta, Upsert::Set).await?;
            for sql in [
                "UPDATE analytics_meta SET value = value + 1 WHERE name = 'generation'",
                "UPDATE analytics_meta SET value = 1 WHERE name = 'built'",
            ] {
                sqlx::query(sql).execute(&mut *tx).await?;
            }
            let sql = format!(
                "UPDATE analytics_meta SET value = {} WHERE name = 'last_change_at'",
                self.ph(1)
            );
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(r.last_at)
                .execute(&mut *tx)
                .await?;
            if let Some(before) = cache_before {
                sqlx::query(sqlx::AssertSqlSafe(format!("PRAGMA cache_size = {before}")))
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            r.orders
        };
        self.reload().await?;
        Ok(applied)
    }

    /// Compares every aggregate table, and the mirror, with a recomputation
    /// from the orders; returns the differences (empty when all agree).
    pub async fn verify(&self, source: &dyn OrderSource) -> StoreResult<Vec<Difference>> {
        let mut want_orders: HashMap<String, (i64, i64, String, i64, i64, String)> = HashMap::new();
        let r = self
            .recompute(source, |states, _| {
                for s in states {
                    want_orders.insert(
                        s.key.clone(),
                        (
                            s.user_id,
                            s.placed_at,
                            s.status.clone(),
                            s.seq,
                            s.total_cents,
                            s.payment_method.clone(),
                        ),
                    );
                }
            })
            .await?;
        let mut diffs = Vec::new();
        let pool = self.db.pool();
        let have: Vec<StoredOrder> = sqlx::query_as(
            "SELECT order_key, user_id, placed_at, status, seq, total_cents, payment_method \
             FROM analytics_orders",
        )
        .fetch_all(pool)
        .await?;
        let mut seen = HashSet::new();
        for o in have {
            let got = (
                o.user_id,
                o.placed_at,
                o.status.clone(),
                o.seq,
                o.total_cents,
                o.payment_method.clone(),
            );
            match want_orders.get(&o.order_key) {
                None => diffs.push(format!(
                    "order {}: applied but not in the orders",
                    o.order_key
                )),
                Some(w) if *w != got => diffs.push(format!(
                    "order {}: applied {:?}, orders say {:?}",
                    o.order_key, got, w
                )),
                Some(_) => {}
            }
            seen.insert(o.order_key);
        }
        for k in want_orders.keys().filter(|k| !seen.contains(*k)) {
            diffs.push(format!("order {k}: in the orders, never applied"));
        }
        let slots: Vec<SlotRow> = sqlx::query_as(
            "SELECT slot, orders, units, gross_cents, net_orders, net_units, net_cents, \
             cancelled, refunded, refund_cents, new_customers FROM analytics_slots",
        )
        .fetch_all(pool)
        .await?;
        let slot_totals: HashMap<i64, Totals> = slots
            .iter()
            .map(|s| (s.slot, s.totals()))
            .filter(|(_, t)| !t.is_zero())
            .collect();
        compare("slot", &slot_totals, &r.delta.slots, &mut diffs);
        let cells: Vec<CellRow> = sqlx::query_as(
            "SELECT dim, dkey, slot, orders, units, gross_cents, net_units, net_cents \
             FROM analytics_cells",
        )
        .fetch_all(pool)
        .await?;
        let got: HashMap<(i16, String, i64), Figures> = cells
            .iter()
            .map(|c| ((c.dim, c.dkey.clone(), c.slot), c.figures()))
            .filter(|(_, f)| !f.is_zero())
            .collect();
        let want: HashMap<(i16, String, i64), Figures> = r
            .delta
            .cell_iter()
            .map(|(d, k, s, f)| ((d.code(), k.clone(), s), *f))
            .collect();
        compare("cell", &got, &want, &mut diffs);
        let customers: Vec<Customer> = sqlx::query_as(
            "SELECT user_id, first_order_at, last_order_at, orders FROM analytics_customers",
        )
        .fetch_all(pool)
        .await?;
        let got: HashMap<i64, Customer> = customers.into_iter().map(|c| (c.user_id, c)).collect();
        let want: HashMap<i64, Customer> = r.customers.clone();
        if got != want {
            let mut n = 0;
            for (u, w) in &want {
                if got.get(u) != Some(w) {
                    n += 1;
                    if n <= 20 {
                        diffs.push(format!("customer {u}: have {:?}, want {w:?}", got.get(u)));
                    }
                }
            }
            let extra = got.keys().filter(|u| !want.contains_key(u)).count();
            if extra > 0 {
                diffs.push(format!("{extra} customers recorded without orders"));
            }
        }
        if self.offline {
            return Ok(diffs);
        }
        // The mirror this process serves from.
        let m = self.read();
        let mirror: HashMap<i64, Totals> = m.totals.entries().into_iter().collect();
        if mirror != slot_totals {
            diffs.push("the in-memory totals differ from the tables (reload needed)".into());
        }
        Ok(diffs)
    }
}

fn compare<K: std::hash::Hash + Eq + std::fmt::Debug, T: Measure + std::fmt::Debug>(
    what: &str,
    got: &HashMap<K, T>,
    want: &HashMap<K, T>,
    diffs: &mut Vec<Difference>,
) {
    let mut n = 0;
    let mut report = |line: String| {
        n += 1;
        if n <= 20 {
            diffs.push(line);
        }
    };
    for (k, w) in want {
        if w.is_zero() {
            continue;
        }
        match got.get(k) {
            Some(g) if g == w => {}
            g => report(format!("{what} {k:?}: have {g:?}, want {w:?}")),
        }
    }
    for (k, g) in got {
        if !want.contains_key(k) {
            report(format!("{what} {k:?}: have {g:?}, want nothing"));
        }
    }
    if n > 20 {
        diffs.push(format!("… {} more {what} differences", n - 20));
    }
}
