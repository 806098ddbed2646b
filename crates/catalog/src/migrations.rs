//! The catalog's schema, one definition for SQLite, PostgreSQL and MySQL.
//! Append only: a released migration is never edited.
//!
//! Full-text search is the one place where the three differ by design: each
//! database gets its own index (SQLite FTS5, PostgreSQL GIN over a tsvector,
//! MySQL/MariaDB FULLTEXT), all over `products.search_text`.

use ecap_core::{
    clock,
    db::Backend,
    migrate::{Migration, col_id, col_ms, index, table_ddl},
};
use sea_query::{
    Alias, ColumnDef, Expr, ExprTrait, ForeignKey, ForeignKeyAction, MysqlQueryBuilder,
    PostgresQueryBuilder, Query, SqliteQueryBuilder, Table,
};

pub const MIGRATIONS: &[Migration] = &[Migration {
    version: 2026112501,
    name: "categories, products, inventory ledger, reservations, reviews, images",
    statements: v1,
}];

/// The original system's seven categories, seeded on first start.
pub const DEFAULT_CATEGORIES: [&str; 7] = [
    "electronics",
    "clothing",
    "books",
    "home",
    "sports",
    "toys",
    "other",
];

fn a(name: &str) -> Alias {
    Alias::new(name)
}

fn product_id(name: &str) -> ColumnDef {
    ColumnDef::new(a(name)).string_len(24).not_null().to_owned()
}

fn fk_product(table: &str) -> sea_query::ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(format!("fk_{table}_product"))
        .from(a(table), a("product_id"))
        .to(a("products"), a("id"))
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

fn v1(backend: Backend) -> Vec<String> {
    let categories = Table::create()
        .table(a("categories"))
        .if_not_exists()
        .col(col_id())
        .col(ColumnDef::new(a("name")).string_len(64).not_null())
        .col(col_ms("created_at"))
        .col(col_ms("updated_at"))
        .to_owned();
    let category_name = index("categories_name_key", "categories", &["name"])
        .unique()
        .to_owned();
    let now = clock::now_ms();
    let mut seed = Query::insert();
    seed.into_table(a("categories"))
        .columns([a("name"), a("created_at"), a("updated_at")]);
    for name in DEFAULT_CATEGORIES {
        seed.values_panic([name.into(), now.into(), now.into()]);
    }
    let seed = match backend {
        Backend::Sqlite => seed.to_string(SqliteQueryBuilder),
        Backend::Postgres => seed.to_string(PostgresQueryBuilder),
        Backend::MySql => seed.to_string(MysqlQueryBuilder),
    };

    let products = Table::create()
        .table(a("products"))
        .if_not_exists()
        .col(product_id("id").primary_key())
        .col(ColumnDef::new(a("name")).string_len(200).not_null())
        .col(ColumnDef::new(a("description")).text().not_null())
        .col(ColumnDef::new(a("price_cents")).big_integer().not_null())
        // Stock on hand: the sum of the product's ledger entries, kept in the
        // same transaction as each entry. The check is the last line of defence.
        .col(
            ColumnDef::new(a("stock"))
                .big_integer()
                .not_null()
                .default(0)
                .check(Expr::col(a("stock")).gte(0)),
        )
        .col(ColumnDef::new(a("category")).string_len(64).not_null())
        .col(ColumnDef::new(a("tags")).text().not_null())
        .col(ColumnDef::new(a("attributes")).text().not_null())
        .col(ColumnDef::new(a("sku")).string_len(100).null())
        .col(
            ColumnDef::new(a("status"))
                .string_len(16)
                .not_null()
                .default("active"),
        )
        .col(ColumnDef::new(a("owner_id")).big_integer().null())
        .col(
            ColumnDef::new(a("rating_count"))
                .big_integer()
                .not_null()
                .default(0),
        )
        .col(
            ColumnDef::new(a("rating_sum"))
                .big_integer()
                .not_null()
                .default(0),
        )
        // Average × 100, for sorting by rating with an index.
        .col(
            ColumnDef::new(a("rating_avg"))
                .big_integer()
                .not_null()
                .default(0),
        )
        .col(ColumnDef::new(a("search_text")).text().not_null())
        .col(
            ColumnDef::new(a("version"))
                .big_integer()
                .not_null()
                .default(1),
        )
        .col(col_ms("created_at"))
        .col(col_ms("updated_at"))
        .foreign_key(
            ForeignKey::create()
                .name("fk_products_category")
                .from(a("products"), a("category"))
                .to(a("categories"), a("name"))
                .on_update(ForeignKeyAction::Cascade)
                .on_delete(ForeignKeyAction::Restrict),
        )
        .to_owned();
    let sku = index("products_sku_key", "products", &["sku"])
        .unique()
        .to_owned();
    let product_indexes = [
        index(
            "idx_products_status_created",
            "products",
            &["status", "created_at"],
        ),
        index(
            "idx_products_status_category_price",
            "products",
            &["status", "category", "price_cents"],
        ),
        index(
            "idx_products_status_price",
            "products",
            &["status", "price_cents"],
        ),
        index("idx_products_status_name", "products", &["status", "name"]),
        index(
            "idx_products_status_rating",
            "products",
            &["status", "rating_avg"],
        ),
        index("idx_products_owner", "products", &["owner_id"]),
        index("idx_products_category", "products", &["category"]),
    ];
    let fts = match backend {
        Backend::Sqlite => "CREATE VIRTUAL TABLE IF NOT EXISTS products_fts USING fts5(\
             product_id UNINDEXED, body, tokenize = 'porter unicode61 remove_diacritics 2')"
            .to_owned(),
        Backend::Postgres => "CREATE INDEX IF NOT EXISTS idx_products_fts ON products \
             USING GIN (to_tsvector('english', search_text))"
            .to_owned(),
        Backend::MySql => "CREATE FULLTEXT INDEX idx_products_fts ON products (search_text)".into(),
    };

    let ledger = Table::create()
        .table(a("inventory_ledger"))
        .if_not_exists()
        .col(col_id())
        .col(product_id("product_id"))
        // What caused the entry: `order:<order id>:<product id>` for reservations
        // and releases, `manual:<uuid>` for adjustments, `initial:<product id>`.
        .col(ColumnDef::new(a("cause")).string_len(160).not_null())
        .col(ColumnDef::new(a("kind")).string_len(16).not_null())
        .col(ColumnDef::new(a("delta")).big_integer().not_null())
        .col(ColumnDef::new(a("stock_after")).big_integer().not_null())
        .col(ColumnDef::new(a("order_id")).string_len(64).null())
        .col(ColumnDef::new(a("actor_id")).big_integer().null())
        .col(ColumnDef::new(a("reason")).string_len(500).null())
        .col(col_ms("created_at"))
        .foreign_key(&mut fk_product("inventory_ledger"))
        .to_owned();
    // One entry per cause and kind: a replayed reservation or release cannot
    // write a second one, whatever the code above it does.
    let ledger_cause = index(
        "inventory_ledger_cause_key",
        "inventory_ledger",
        &["cause", "kind"],
    )
    .unique()
    .to_owned();
    let ledger_product = index(
        "idx_inventory_ledger_product",
        "inventory_ledger",
        &["product_id", "id"],
    );

    let reservations = Table::create()
        .table(a("inventory_reservations"))
        .if_not_exists()
        .col(
            ColumnDef::new(a("order_id"))
                .string_len(64)
                .not_null()
                .primary_key(),
        )
        .col(ColumnDef::new(a("state")).string_len(16).not_null())
        .col(ColumnDef::new(a("lines")).text().not_null())
        .col(col_ms("created_at"))
        .col(col_ms("updated_at"))
        .to_owned();
    let reservations_state = index(
        "idx_inventory_reservations_state",
        "inventory_reservations",
        &["state", "created_at"],
    );

    let reviews = Table::create()
        .table(a("product_reviews"))
        .if_not_exists()
        .col(col_id())
        .col(product_id("product_id"))
        .col(ColumnDef::new(a("user_id")).big_integer().not_null())
        .col(ColumnDef::new(a("user_name")).string_len(255).not_null())
        .col(ColumnDef::new(a("order_id")).string_len(64).not_null())
        .col(ColumnDef::new(a("rating")).big_integer().not_null())
        .col(ColumnDef::new(a("comment")).text().not_null())
        .col(col_ms("created_at"))
        .foreign_key(&mut fk_product("product_reviews"))
        .to_owned();
    let review_once = index(
        "product_reviews_once_key",
        "product_reviews",
        &["product_id", "user_id", "order_id"],
    )
    .unique()
    .to_owned();
    let review_product = index(
        "idx_product_reviews_product",
        "product_reviews",
        &["product_id", "created_at"],
    );

    let images = Table::create()
        .table(a("product_images"))
        .if_not_exists()
        .col(
            ColumnDef::new(a("id"))
                .string_len(36)
                .not_null()
                .primary_key(),
        )
        .col(product_id("product_id"))
        // A stored file (`object_key`) or a link given by the client (`external_url`).
        .col(ColumnDef::new(a("object_key")).string_len(255).null())
        .col(ColumnDef::new(a("external_url")).string_len(2048).null())
        .col(ColumnDef::new(a("content_type")).string_len(64).null())
        .col(ColumnDef::new(a("size_bytes")).big_integer().null())
        .col(ColumnDef::new(a("position")).big_integer().not_null())
        .col(col_ms("created_at"))
        .foreign_key(&mut fk_product("product_images"))
        .to_owned();
    let images_product = index(
        "idx_product_images_product",
        "product_images",
        &["product_id", "position"],
    );

    let mut out = vec![
        table_ddl(backend, categories),
        backend.ddl(&category_name),
        seed,
        table_ddl(backend, products),
        backend.ddl(&sku),
    ];
    out.extend(product_indexes.iter().map(|i| backend.ddl(i)));
    out.push(fts);
    out.extend([
        table_ddl(backend, ledger),
        backend.ddl(&ledger_cause),
        backend.ddl(&ledger_product),
        table_ddl(backend, reservations),
        backend.ddl(&reservations_state),
        table_ddl(backend, reviews),
        backend.ddl(&review_once),
        backend.ddl(&review_product),
        table_ddl(backend, images),
        backend.ddl(&images_product),
    ]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ddl_renders_for_every_backend() {
        for b in [Backend::Sqlite, Backend::Postgres, Backend::MySql] {
            let stmts = v1(b);
            println!("{b:?}:\n{}", stmts.join(";\n"));
            assert!(stmts.iter().any(|s| s.contains("CHECK")), "stock check");
        }
    }
}
