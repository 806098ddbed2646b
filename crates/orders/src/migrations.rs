//! The orders service's schema, one definition for SQLite, PostgreSQL and
//! MySQL/MariaDB. Append only: a released migration is never edited.
//!
//! Times are epoch milliseconds (UTC), money integer cents, flags 0/1.

use ecap_core::{
    db::Backend,
    migrate::{Migration, col_id, col_ms, index, table_ddl},
};
use sea_query::{Alias, ColumnDef, ForeignKey, ForeignKeyAction, Table};

pub const MIGRATIONS: &[Migration] = &[Migration {
    version: 2026112601,
    name: "orders, items, history, outbox, detail requests, placements, counters",
    statements: v1,
}];

fn a(name: &str) -> Alias {
    Alias::new(name)
}

fn big(name: &str) -> ColumnDef {
    ColumnDef::new(a(name)).big_integer().null().to_owned()
}

fn big_nn(name: &str, default: i64) -> ColumnDef {
    ColumnDef::new(a(name))
        .big_integer()
        .not_null()
        .default(default)
        .to_owned()
}

fn text(name: &str) -> ColumnDef {
    ColumnDef::new(a(name)).text().null().to_owned()
}

fn string(name: &str, len: u32) -> ColumnDef {
    ColumnDef::new(a(name)).string_len(len).null().to_owned()
}

fn string_nn(name: &str, len: u32) -> ColumnDef {
    ColumnDef::new(a(name))
        .string_len(len)
        .not_null()
        .to_owned()
}

fn fk_order(table: &str) -> sea_query::ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(format!("fk_{table}_order"))
        .from(a(table), a("order_id"))
        .to(a("orders"), a("id"))
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

fn v1(backend: Backend) -> Vec<String> {
    let orders = Table::create()
        .table(a("orders"))
        .if_not_exists()
        .col(col_id())
        .col(ColumnDef::new(a("user_id")).big_integer().not_null())
        .col(string("user_email", 255))
        .col(
            ColumnDef::new(a("user_order_number"))
                .big_integer()
                .not_null(),
        )
        .col(ColumnDef::new(a("total_cents")).big_integer().not_null())
        .col(string_nn("status", 32))
        .col(string_nn("payment_method", 32))
        .col(ColumnDef::new(a("shipping_address")).text().not_null())
        .col(col_ms("created_at"))
        .col(col_ms("updated_at"))
        .col(big("processing_at"))
        .col(big("shipped_at"))
        .col(big("out_for_delivery_at"))
        .col(big("delivered_at"))
        .col(string("tracking_number", 255))
        .col(string("courier_name", 255))
        .col(big("estimated_delivery"))
        .col(text("cancellation_reason"))
        .col(ColumnDef::new(a("cancellation_images")).text().not_null())
        .col(big("cancellation_requested_at"))
        // The status an order had when its customer asked to cancel; a
        // rejection returns it there (the original always chose processing).
        .col(string("status_before_request", 32))
        .col(big("cancellation_approved_by"))
        .col(big("cancellation_approved_at"))
        .col(big_nn("cancellation_rejected", 0))
        .col(text("cancellation_rejection_reason"))
        .col(big("cancellation_rejected_by"))
        .col(big("cancellation_rejected_at"))
        .col(big("cancelled_at"))
        .col(string("refund_status", 32))
        .col(big("refund_cents"))
        .col(big("refund_processing_at"))
        .col(big("refunded_at"))
        // 1 while the catalog holds stock for the order under `reservation_key`.
        .col(big_nn("inventory_deducted", 0))
        .col(string("reservation_key", 64))
        // `order` (taken at placement) or `sync` (taken by sync-inventory).
        .col(string("reservation_source", 16))
        .col(big_nn("sync_generation", 0))
        // `reserve` / `release`: an inventory call decided in a committed
        // transaction and not yet confirmed; the sweeper finishes it.
        .col(string("inventory_pending", 16))
        .col(big("deleted_at"))
        .col(big("deleted_by"))
        .col(text("deletion_reason"))
        .col(string("status_before_deletion", 32))
        // The customer's own soft delete (hides the order from their list).
        .col(big("hidden_at"))
        .col(big("hidden_expires_at"))
        .col(string("restoration_status", 16))
        .col(text("restoration_reason"))
        .col(big("restoration_requested_at"))
        .col(big("restoration_decided_by"))
        .col(big("restoration_decided_at"))
        .col(text("restoration_rejection_reason"))
        // Sequence number of the order's last outbox event.
        .col(big_nn("event_seq", 0))
        .to_owned();
    let items = Table::create()
        .table(a("order_items"))
        .if_not_exists()
        .col(col_id())
        .col(ColumnDef::new(a("order_id")).big_integer().not_null())
        .col(string_nn("product_id", 64))
        .col(string_nn("product_name", 255))
        .col(string_nn("category", 64))
        .col(ColumnDef::new(a("quantity")).big_integer().not_null())
        .col(ColumnDef::new(a("price_cents")).big_integer().not_null())
        .col(ColumnDef::new(a("subtotal_cents")).big_integer().not_null())
        .col(col_ms("created_at"))
        .foreign_key(&mut fk_order("order_items"))
        .to_owned();
    let history = Table::create()
        .table(a("order_history"))
        .if_not_exists()
        .col(col_id())
        .col(ColumnDef::new(a("order_id")).big_integer().not_null())
        .col(string("from_status", 32))
        .col(string_nn("to_status", 32))
        .col(big("actor_id"))
        .col(string("actor_role", 16))
        .col(text("note"))
        .col(col_ms("created_at"))
        .foreign_key(&mut fk_order("order_history"))
        .to_owned();
    let outbox = Table::create()
        .table(a("order_outbox"))
        .if_not_exists()
        .col(col_id())
        .col(string_nn("event_id", 40))
        .col(ColumnDef::new(a("order_id")).big_integer().not_null())
        .col(ColumnDef::new(a("seq")).big_integer().not_null())
        .col(string_nn("kind", 24))
        .col(ColumnDef::new(a("payload")).text().not_null())
        .col(col_ms("created_at"))
        .col(big("delivered_at"))
        .to_owned();
    let requests = Table::create()
        .table(a("order_detail_requests"))
        .if_not_exists()
        .col(col_id())
        .col(ColumnDef::new(a("order_id")).big_integer().not_null())
        .col(ColumnDef::new(a("user_id")).big_integer().not_null())
        .col(string_nn("reason", 255))
        .col(text("other_reason"))
        .col(string_nn("status", 16))
        .col(big("admin_id"))
        .col(text("admin_note"))
        .col(col_ms("created_at"))
        .col(col_ms("updated_at"))
        .foreign_key(&mut fk_order("order_detail_requests"))
        .to_owned();
    let counters = Table::create()
        .table(a("order_user_counters"))
        .if_not_exists()
        .col(
            ColumnDef::new(a("user_id"))
                .big_integer()
                .not_null()
                .primary_key(),
        )
        .col(ColumnDef::new(a("last_number")).big_integer().not_null())
        .to_owned();
    // A placement is recorded before stock is reserved: if the process dies
    // before the order is written, the sweeper finds the row and gives the
    // stock back. With an Idempotency-Key it also remembers the answer.
    let placements = Table::create()
        .table(a("order_placements"))
        .if_not_exists()
        .col(string_nn("reservation_key", 64).primary_key())
        .col(ColumnDef::new(a("user_id")).big_integer().not_null())
        .col(string("idempotency_key", 255))
        .col(string("request_hash", 32))
        .col(big("order_id"))
        .col(col_ms("created_at"))
        .to_owned();
    vec![
        table_ddl(backend, orders),
        backend.ddl(&index(
            "orders_user_created",
            "orders",
            &["user_id", "created_at"],
        )),
        backend.ddl(
            &index(
                "orders_user_number_key",
                "orders",
                &["user_id", "user_order_number"],
            )
            .unique()
            .to_owned(),
        ),
        backend.ddl(&index("orders_status", "orders", &["status"])),
        backend.ddl(&index("orders_created", "orders", &["created_at"])),
        backend.ddl(&index(
            "orders_pending_inventory",
            "orders",
            &["inventory_pending"],
        )),
        backend.ddl(&index("orders_user_email", "orders", &["user_email"])),
        table_ddl(backend, items),
        backend.ddl(&index("order_items_order", "order_items", &["order_id"])),
        backend.ddl(&index(
            "order_items_product",
            "order_items",
            &["product_id"],
        )),
        table_ddl(backend, history),
        backend.ddl(&index(
            "order_history_order",
            "order_history",
            &["order_id"],
        )),
        table_ddl(backend, outbox),
        backend.ddl(
            &index("order_outbox_event_key", "order_outbox", &["event_id"])
                .unique()
                .to_owned(),
        ),
        backend.ddl(
            &index("order_outbox_seq_key", "order_outbox", &["order_id", "seq"])
                .unique()
                .to_owned(),
        ),
        backend.ddl(&index(
            "order_outbox_undelivered",
            "order_outbox",
            &["delivered_at"],
        )),
        table_ddl(backend, requests),
        backend.ddl(&index(
            "order_detail_requests_order",
            "order_detail_requests",
            &["order_id"],
        )),
        backend.ddl(&index(
            "order_detail_requests_status",
            "order_detail_requests",
            &["status"],
        )),
        table_ddl(backend, counters),
        table_ddl(backend, placements),
        backend.ddl(
            &index(
                "order_placements_idem_key",
                "order_placements",
                &["user_id", "idempotency_key"],
            )
            .unique()
            .to_owned(),
        ),
        backend.ddl(&index(
            "order_placements_created",
            "order_placements",
            &["created_at"],
        )),
    ]
}
