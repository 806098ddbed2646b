//! The users service's schema, one definition for SQLite, PostgreSQL and MySQL.
//! Append only: a released migration is never edited.

use ecap_core::{
    db::Backend,
    migrate::{Migration, col_id as id, col_ms as ms, table_ddl},
};
use sea_query::{Alias, ColumnDef, ForeignKey, ForeignKeyAction, Index, Table};

pub const MIGRATIONS: &[Migration] = &[Migration {
    // Versions are dates with a sequence number: YYYYMMDDNN.
    version: 2026112401,
    name: "users, addresses, token revocations",
    statements: v1,
}];

fn a(name: &str) -> Alias {
    Alias::new(name)
}

fn v1(backend: Backend) -> Vec<String> {
    let users = Table::create()
        .table(a("users"))
        .if_not_exists()
        .col(id())
        .col(ColumnDef::new(a("email")).string_len(255).not_null())
        .col(
            ColumnDef::new(a("password_hash"))
                .string_len(255)
                .not_null(),
        )
        .col(ColumnDef::new(a("name")).string_len(255).not_null())
        .col(ColumnDef::new(a("phone")).string_len(32).null())
        .col(
            ColumnDef::new(a("role"))
                .string_len(16)
                .not_null()
                .default("customer"),
        )
        .col(
            ColumnDef::new(a("token_version"))
                .big_integer()
                .not_null()
                .default(0),
        )
        .col(
            ColumnDef::new(a("failed_logins"))
                .big_integer()
                .not_null()
                .default(0),
        )
        .col(ColumnDef::new(a("locked_until")).big_integer().null())
        .col(ms("created_at"))
        .col(ms("updated_at"))
        .to_owned();
    let email_unique = Index::create()
        .name("users_email_key")
        .table(a("users"))
        .col(a("email"))
        .unique()
        .to_owned();
    let role_idx = Index::create()
        .name("idx_users_role")
        .table(a("users"))
        .col(a("role"))
        .to_owned();
    let created_idx = Index::create()
        .name("idx_users_created_at")
        .table(a("users"))
        .col(a("created_at"))
        .to_owned();

    let addresses = Table::create()
        .table(a("user_addresses"))
        .if_not_exists()
        .col(id())
        .col(ColumnDef::new(a("user_id")).big_integer().not_null())
        .col(ColumnDef::new(a("label")).string_len(100).not_null())
        .col(ColumnDef::new(a("street")).text().not_null())
        .col(ColumnDef::new(a("city")).string_len(100).not_null())
        .col(ColumnDef::new(a("state")).string_len(100).not_null())
        .col(ColumnDef::new(a("zip_code")).string_len(20).not_null())
        .col(
            ColumnDef::new(a("country"))
                .string_len(100)
                .not_null()
                .default("India"),
        )
        .col(ColumnDef::new(a("phone")).string_len(32).not_null())
        .col(
            ColumnDef::new(a("is_default"))
                .big_integer()
                .not_null()
                .default(0),
        )
        .col(ms("created_at"))
        .col(ms("updated_at"))
        .foreign_key(
            ForeignKey::create()
                .name("fk_user_addresses_user")
                .from(a("user_addresses"), a("user_id"))
                .to(a("users"), a("id"))
                .on_delete(ForeignKeyAction::Cascade),
        )
        .to_owned();
    let addr_idx = Index::create()
        .name("idx_user_addresses_user_default")
        .table(a("user_addresses"))
        .col(a("user_id"))
        .col(a("is_default"))
        .to_owned();

    let revoked_tokens = Table::create()
        .table(a("revoked_tokens"))
        .if_not_exists()
        .col(
            ColumnDef::new(a("jti"))
                .string_len(64)
                .not_null()
                .primary_key(),
        )
        .col(ColumnDef::new(a("user_id")).big_integer().not_null())
        .col(ColumnDef::new(a("expires_at")).big_integer().not_null())
        .to_owned();
    let revoked_idx = Index::create()
        .name("idx_revoked_tokens_expires")
        .table(a("revoked_tokens"))
        .col(a("expires_at"))
        .to_owned();
    // Kept apart from `users` so the floor of a deleted user survives the row.
    let revoked_users = Table::create()
        .table(a("revoked_users"))
        .if_not_exists()
        .col(
            ColumnDef::new(a("user_id"))
                .big_integer()
                .not_null()
                .primary_key(),
        )
        .col(ColumnDef::new(a("min_version")).big_integer().not_null())
        .col(ms("revoked_at"))
        .to_owned();
    // One row, ever: the first admin who registered through the API.
    let bootstrap = Table::create()
        .table(a("admin_bootstrap"))
        .if_not_exists()
        .col(
            ColumnDef::new(a("id"))
                .big_integer()
                .not_null()
                .primary_key(),
        )
        .col(ColumnDef::new(a("user_email")).string_len(255).not_null())
        .col(ms("created_at"))
        .to_owned();

    vec![
        table_ddl(backend, users),
        backend.ddl(&email_unique),
        backend.ddl(&role_idx),
        backend.ddl(&created_idx),
        table_ddl(backend, addresses),
        backend.ddl(&addr_idx),
        table_ddl(backend, revoked_tokens),
        backend.ddl(&revoked_idx),
        table_ddl(backend, revoked_users),
        table_ddl(backend, bootstrap),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ddl_renders_for_every_backend() {
        for b in [Backend::Sqlite, Backend::Postgres, Backend::MySql] {
            let stmts = v1(b);
            assert_eq!(stmts.len(), 10);
            println!("{b:?}:\n{}", stmts.join(";\n"));
        }
        let sqlite = v1(Backend::Sqlite).join(";");
        // Ids are never reused, so a deleted user's revocation floor cannot hit a new user.
        assert!(sqlite.contains("AUTOINCREMENT"), "{sqlite}");
    }
}
