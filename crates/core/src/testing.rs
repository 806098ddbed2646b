//! Test support: a fresh, uniquely named database per test on SQLite, PostgreSQL
//! or MariaDB/MySQL, dropped when the test ends (also when it panics).
//!
//! Server URLs come from `ECAP_TEST_POSTGRES_URL` and `ECAP_TEST_MYSQL_URL`
//! (defaults: the local servers with trust/no-password auth). A server that does
//! not answer fails the test: store tests are never silently skipped.

#![allow(clippy::expect_used)]

use sqlx::{Connection, Executor};

use crate::{config::Secret, db::Backend};

pub const POSTGRES_DEFAULT: &str = "postgres://postgres@127.0.0.1:5432/postgres";
pub const MYSQL_DEFAULT: &str = "mysql://root@127.0.0.1:3306/mysql";

fn server_url(backend: Backend) -> String {
    match backend {
        Backend::Postgres => {
            std::env::var("ECAP_TEST_POSTGRES_URL").unwrap_or_else(|_| POSTGRES_DEFAULT.into())
        }
        Backend::MySql => {
            std::env::var("ECAP_TEST_MYSQL_URL").unwrap_or_else(|_| MYSQL_DEFAULT.into())
        }
        Backend::Sqlite => String::new(),
    }
}

/// Replaces the database name (the URL path) of a server URL.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{name}", &base[..host_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// A database that exists for one test.
pub struct TestDb {
    pub backend: Backend,
    pub url: Secret,
    name: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub async fn create(backend: Backend) -> Self {
        let name = format!("ecap_t_{}", uuid::Uuid::new_v4().simple());
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("a temporary directory");
                let url = format!("sqlite://{}", dir.path().join("ecap.db").display());
                Self {
                    backend,
                    url: Secret::new(url),
                    name,
                    _dir: Some(dir),
                }
            }
            Backend::Postgres | Backend::MySql => {
                let server = server_url(backend);
                let create = format!("CREATE DATABASE {name}");
                run_admin(backend, &server, &create)
                    .await
                    .unwrap_or_else(|e| {
                        panic!(
                            "{} at {} must answer for this test: {e}",
                            backend.name(),
                            redact(&server)
                        )
                    });
                Self {
                    backend,
                    url: Secret::new(with_database(&server, &name)),
                    name,
                    _dir: None,
                }
            }
        }
    }
}

fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => format!("{}***{}", &url[..s + 3], &url[at..]),
        _ => url.to_owned(),
    }
}

async fn run_admin(backend: Backend, server: &str, sql: &str) -> Result<(), sqlx::Error> {
    match backend {
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(server).await?;
            c.execute(sqlx::AssertSqlSafe(sql.to_owned())).await?;
            c.close().await
        }
        Backend::MySql => {
            let mut c = sqlx::MySqlConnection::connect(server).await?;
            c.execute(sqlx::AssertSqlSafe(sql.to_owned())).await?;
            c.close().await
        }
        Backend::Sqlite => Ok(()),
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if self.backend == Backend::Sqlite {
            return;
        }
        let backend = self.backend;
        let server = server_url(backend);
        let sql = match backend {
            Backend::Postgres => format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            _ => format!("DROP DATABASE IF EXISTS {}", self.name),
        };
        // Drop runs inside the test's runtime: do the async work on a thread of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(rt) = rt {
                let _ = rt.block_on(run_admin(backend, &server, &sql));
            }
        })
        .join();
    }
}

/// Generates one `#[tokio::test]` per database for each `async fn name(Backend)`
/// listed, in modules `sqlite`, `postgres`, `mysql` (the test command counts
/// tests by those module names).
#[macro_export]
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() { super::$name(ecap_core::db::Backend::Sqlite).await })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() { super::$name(ecap_core::db::Backend::Postgres).await })*
        }
        mod mysql {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() { super::$name(ecap_core::db::Backend::MySql).await })*
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_name_is_swapped() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("mysql://root@h:3306", "x"),
            "mysql://root@h:3306/x"
        );
        assert_eq!(
            with_database("mysql://root@h/db?ssl-mode=disabled", "x"),
            "mysql://root@h/x?ssl-mode=disabled"
        );
        assert_eq!(redact("postgres://u:pw@h/db"), "postgres://***@h/db");
    }
}
