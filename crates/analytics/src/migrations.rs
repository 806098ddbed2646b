//! The analytics service's schema, one definition for SQLite, PostgreSQL and
//! MySQL/MariaDB. Append only: a released migration is never edited.
//!
//! Aggregates are keyed by the 30-minute UTC slot in which the order was
//! placed (`slot` = epoch ms / 1 800 000), so any time zone whose offset is a
//! multiple of 30 minutes gets exact local days, weeks and months.

use ecap_core::{
    db::Backend,
    migrate::{Migration, col_ms, index, table_ddl},
};
use sea_query::{Alias, ColumnDef, Index, Table};

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 2026112701,
        name: "analytics orders, customers, slots, cells, meta",
        statements: v1,
    },
    Migration {
        version: 2026120701,
        name: "analytics change feed for the mirrors of other replicas",
        statements: v2,
    },
];

fn a(name: &str) -> Alias {
    Alias::new(name)
}

fn big0(name: &str) -> ColumnDef {
    ColumnDef::new(a(name))
        .big_integer()
        .not_null()
        .default(0)
        .to_owned()
}

fn v1(backend: Backend) -> Vec<String> {
    // Each order's state as last applied: the consumer replaces the order's
    // contribution when an event with a higher `seq` arrives.
    let orders = Table::create()
        .table(a("analytics_orders"))
        .if_not_exists()
        .col(
            ColumnDef::new(a("order_key"))
                .string_len(64)
                .not_null()
                .primary_key(),
        )
        .col(ColumnDef::new(a("user_id")).big_integer().not_null())
        .col(col_ms("placed_at"))
        .col(ColumnDef::new(a("status")).string_len(32).not_null())
        .col(ColumnDef::new(a("seq")).big_integer().not_null())
        .col(ColumnDef::new(a("total_cents")).big_integer().not_null())
        .col(
            ColumnDef::new(a("payment_method"))
                .string_len(32)
                .not_null(),
        )
        .col(col_ms("updated_at"))
        .to_owned();
    let customers = Table::create()
        .table(a("analytics_customers"))
        .if_not_exists()
        .col(
            ColumnDef::new(a("user_id"))
                .big_integer()
                .not_null()
                .primary_key(),
        )
        .col(col_ms("first_order_at"))
        .col(col_ms("last_order_at"))
        .col(big0("orders"))
        .to_owned();
    // Whole-shop figures per slot.
    let slots = Table::create()
        .table(a("analytics_slots"))
        .if_not_exists()
        .col(
            ColumnDef::new(a("slot"))
                .big_integer()
                .not_null()
                .primary_key(),
        )
        .col(big0("orders"))
        .col(big0("units"))
        .col(big0("gross_cents"))
        .col(big0("net_orders"))
        .col(big0("net_units"))
        .col(big0("net_cents"))
        .col(big0("cancelled"))
        .col(big0("refunded"))
        .col(big0("refund_cents"))
        .col(big0("new_customers"))
        .to_owned();
    // Per dimension (status, payment method, category, product) and slot.
    let cells = Table::create()
        .table(a("analytics_cells"))
        .if_not_exists()
        .col(ColumnDef::new(a("dim")).small_integer().not_null())
        .col(ColumnDef::new(a("dkey")).string_len(64).not_null())
        .col(ColumnDef::new(a("slot")).big_integer().not_null())
        .col(big0("orders"))
        .col(big0("units"))
        .col(big0("gross_cents"))
        .col(big0("net_units"))
        .col(big0("net_cents"))
        .primary_key(Index::create().col(a("dim")).col(a("dkey")).col(a("slot")))
        .to_owned();
    let meta = Table::create()
        .table(a("analytics_meta"))
        .if_not_exists()
        .col(
            ColumnDef::new(a("name"))
                .string_len(64)
                .not_null()
                .primary_key(),
        )
        .col(ColumnDef::new(a("value")).big_integer().not_null())
        .to_owned();
    // Orders reported through `POST /api/analytics/track/order` (placed
    // elsewhere): the event as received, so rebuilds keep them.
    let tracked = Table::create()
        .table(a("analytics_tracked"))
        .if_not_exists()
        .col(
            ColumnDef::new(a("order_key"))
                .string_len(64)
                .not_null()
                .primary_key(),
        )
        .col(ColumnDef::new(a("payload")).text().not_null())
        .col(col_ms("created_at"))
        .to_owned();
    vec![
        table_ddl(backend, orders),
        table_ddl(backend, tracked),
        backend.ddl(&index(
            "idx_analytics_orders_user",
            "analytics_orders",
            &["user_id", "placed_at"],
        )),
        table_ddl(backend, customers),
        table_ddl(backend, slots),
        table_ddl(backend, cells),
        table_ddl(backend, meta),
        // `version` is bumped by every apply and first thing by a rebuild (the
        // row lock orders them); `generation` by every rebuild (replicas reload
        // their mirror when it moves); `built` says a rebuild ever ran.
        "INSERT INTO analytics_meta (name, value) VALUES \
         ('version', 0), ('generation', 0), ('built', 0), ('last_change_at', 0)"
            .to_owned(),
    ]
}

/// Every apply's change to the aggregates, keyed by the `version` it committed
/// under, so each replica's in-memory mirror can follow the applies of the
/// others (ADR 0008). Kept a few minutes; `changes_pruned` is the highest
/// version deleted, so a replica that fell behind it reloads instead.
fn v2(backend: Backend) -> Vec<String> {
    let payload = if backend == Backend::MySql {
        ColumnDef::new(a("payload"))
            .custom(a("LONGTEXT"))
            .not_null()
            .to_owned()
    } else {
        ColumnDef::new(a("payload")).text().not_null().to_owned()
    };
    let changes = Table::create()
        .table(a("analytics_changes"))
        .if_not_exists()
        .col(
            ColumnDef::new(a("version"))
                .big_integer()
                .not_null()
                .primary_key(),
        )
        .col(payload)
        .col(col_ms("created_at"))
        .to_owned();
    vec![
        table_ddl(backend, changes),
        "INSERT INTO analytics_meta (name, value) VALUES ('changes_pruned', 0)".to_owned(),
    ]
}
