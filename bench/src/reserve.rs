//! Reservation throughput: concurrent single-line `CatalogStore::reserve`
//! calls per second, on whichever database the URL names.
//!
//! Creates `--products` products with large stock in a fresh catalog, then runs
//! two timed phases with `--tasks` concurrent tasks, each reserving 1 unit per
//! call under a unique order id:
//!
//! * `uncontended`: every call picks a random product;
//! * `contended`: every call reserves the same product.
//!
//! Afterwards it checks, for every product, that `stock == initial − reserved`
//! and that the ledger sums to the stock, and that there is one reservation row
//! per successful call. Prints progress to stderr and one JSON object to stdout.
//!
//! Usage:
//! `ecap-bench-reserve --database-url URL [--create-database] [--products N]
//!  [--tasks N] [--duration SECS] [--pool N]`
//!
//! With `--create-database` the URL names a PostgreSQL server (any database on
//! it, e.g. `postgres://postgres@127.0.0.1:5432/postgres`): a fresh database
//! `ecap_bench_<random>` is created there, used, and dropped at the end, also
//! when the run fails. A SQLite URL (`sqlite:///tmp/x/reserve.db`) should name a
//! file that does not exist yet.

use std::{
    collections::HashMap,
    error::Error,
    sync::Arc,
    time::{Duration, Instant},
};

use ecap_catalog::{CatalogStore, demo, store::NewProduct};
use ecap_core::{config::Secret, db::Db, ports::ReserveLine};
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde_json::json;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

type AnyResult<T> = Result<T, Box<dyn Error + Send + Sync>>;

const USAGE: &str = "usage: ecap-bench-reserve --database-url URL [--create-database] \
     [--products N] [--tasks N] [--duration SECS] [--pool N]";

/// Stock every product starts with: far more than any run can reserve.
const INITIAL_STOCK: i64 = 100_000_000;
/// Unmeasured calls before each phase (connections, statement caches).
const WARMUP: Duration = Duration::from_millis(500);

struct Args {
    url: String,
    create_database: bool,
    products: usize,
    tasks: usize,
    duration: Duration,
    pool: u32,
}

fn parse_args() -> AnyResult<Args> {
    let mut a = Args {
        url: String::new(),
        create_database: false,
        products: 1000,
        tasks: 32,
        duration: Duration::from_secs(5),
        pool: 10,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .ok_or_else(|| format!("{name} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--database-url" => a.url = value("--database-url")?,
            "--create-database" => a.create_database = true,
            "--products" => a.products = value("--products")?.parse()?,
            "--tasks" => a.tasks = value("--tasks")?.parse()?,
            "--duration" => {
                a.duration = Duration::from_secs_f64(value("--duration")?.parse::<f64>()?);
            }
            "--pool" => a.pool = value("--pool")?.parse()?,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}\n{USAGE}").into()),
        }
    }
    if a.url.is_empty() {
        return Err(format!("--database-url is required\n{USAGE}").into());
    }
    if a.products == 0 || a.tasks == 0 || a.pool == 0 || a.duration.is_zero() {
        return Err("--products, --tasks, --pool and --duration must be positive".into());
    }
    Ok(a)
}

/// `url` with its database name replaced by `name` (keeps user, host, query).
fn with_database(url: &str, name: &str) -> AnyResult<String> {
    let scheme_end = url.find("://").ok_or("the database URL has no scheme")? + 3;
    let (base, query) = match url.find('?') {
        Some(q) => (&url[..q], &url[q..]),
        None => (url, ""),
    };
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    Ok(format!("{}/{name}{query}", &base[..host_end]))
}

macro_rules! say {
    ($($t:tt)*) => { eprintln!("[reserve] {}", format!($($t)*)) };
}

#[derive(Default)]
struct TaskResult {
    /// Successful calls per product index (measured and warm-up alike).
    reserved: HashMap<usize, i64>,
    /// Latency of each measured successful call, in microseconds.
    latencies_us: Vec<u32>,
    measured_ok: u64,
    errors: u64,
    first_error: Option<String>,
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Uncontended,
    Contended,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Uncontended => "uncontended",
            Mode::Contended => "contended",
        }
    }
}

async fn worker(
    store: CatalogStore,
    ids: Arc<Vec<String>>,
    mode: Mode,
    task: usize,
    measure_from: Instant,
    end: Instant,
) -> TaskResult {
    let mut rng = StdRng::seed_from_u64(0x5eed_0000 + task as u64);
    let mut out = TaskResult::default();
    let mut n = 0u64;
    loop {
        let started = Instant::now();
        if started >= end {
            break;
        }
        let index = match mode {
            Mode::Uncontended => rng.random_range(0..ids.len()),
            Mode::Contended => 0,
        };
        let order_id = format!("bench-{}-{task}-{n}", mode.name());
        n += 1;
        let line = [ReserveLine {
            product_id: ids[index].clone(),
            quantity: 1,
        }];
        let result = store.reserve(&order_id, &line).await;
        let took = started.elapsed();
        match result {
            Ok(_) => {
                *out.reserved.entry(index).or_default() += 1;
                if started >= measure_from {
                    out.measured_ok += 1;
                    out.latencies_us
                        .push(u32::try_from(took.as_micros()).unwrap_or(u32::MAX));
                }
            }
            Err(e) => {
                out.errors += 1;
                if out.first_error.is_none() {
                    out.first_error = Some(e.to_string());
                }
            }
        }
    }
    out
}

fn percentile_ms(sorted_us: &[u32], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted_us.len() as f64).ceil() as usize;
    f64::from(sorted_us[rank.clamp(1, sorted_us.len()) - 1]) / 1000.0
}

async fn phase(
    store: &CatalogStore,
    ids: &Arc<Vec<String>>,
    mode: Mode,
    args: &Args,
    reserved: &mut [i64],
) -> AnyResult<serde_json::Value> {
    let measure_from = Instant::now() + WARMUP;
    let end = measure_from + args.duration;
    let handles: Vec<_> = (0..args.tasks)
        .map(|task| {
            tokio::spawn(worker(
                store.clone(),
                ids.clone(),
                mode,
                task,
                measure_from,
                end,
            ))
        })
        .collect();
    let mut latencies = Vec::new();
    let (mut ok, mut errors, mut first_error) = (0u64, 0u64, None);
    for h in handles {
        let r = h.await?;
        for (index, count) in r.reserved {
            reserved[index] += count;
        }
        latencies.extend(r.latencies_us);
        ok += r.measured_ok;
        errors += r.errors;
        first_error = first_error.or(r.first_error);
    }
    // Calls still running at `end` finish after it; count the real span.
    let seconds = measure_from.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let per_sec = ok as f64 / seconds;
    let (p50, p99) = (
        percentile_ms(&latencies, 50.0),
        percentile_ms(&latencies, 99.0),
    );
    let max = latencies
        .last()
        .map_or(f64::NAN, |m| f64::from(*m) / 1000.0);
    say!(
        "{:11} {ok} reservations in {seconds:.2} s = {per_sec:.0}/s, p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.1} ms, {errors} errors{}",
        mode.name(),
        first_error
            .as_deref()
            .map(|e| format!(" (first: {e})"))
            .unwrap_or_default()
    );
    Ok(json!({
        "name": mode.name(),
        "reservations": ok,
        "seconds": seconds,
        "per_sec": per_sec,
        "p50_ms": p50,
        "p99_ms": p99,
        "max_ms": max,
        "errors": errors,
        "first_error": first_error,
    }))
}

async fn check(
    store: &CatalogStore,
    ids: &[String],
    reserved: &[i64],
) -> AnyResult<serde_json::Value> {
    let mut mismatches = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let stock = store
            .product(id)
            .await?
            .ok_or_else(|| format!("product {id} vanished"))?
            .stock;
        let ledger = store.ledger_sum(id).await?;
        let expected = INITIAL_STOCK - reserved[i];
        if stock != expected || ledger != stock {
            mismatches.push(format!(
                "{id}: stock {stock}, expected {expected}, ledger sum {ledger}"
            ));
        }
    }
    let total: i64 = reserved.iter().sum();
    let (rows,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM inventory_reservations")
        .fetch_one(store.db().pool())
        .await?;
    if rows != total {
        mismatches.push(format!(
            "{rows} reservation rows for {total} successful reservations"
        ));
    }
    let ok = mismatches.is_empty();
    if ok {
        say!(
            "check OK: {} products, stock = initial − reserved and ledger sum = stock; {rows} reservation rows",
            ids.len()
        );
    } else {
        say!("check FAIL: {} mismatches", mismatches.len());
        for m in mismatches.iter().take(10) {
            say!("  {m}");
        }
    }
    Ok(json!({
        "ok": ok,
        "products": ids.len(),
        "reserved_total": total,
        "reservation_rows": rows,
        "mismatches": mismatches.iter().take(20).collect::<Vec<_>>(),
    }))
}

async fn run(url: &str, args: &Args) -> AnyResult<serde_json::Value> {
    let db = Db::connect(&Secret::new(url), args.pool).await?;
    let backend = db.backend().name();
    ecap_catalog::migrate(&db).await?;
    let store = CatalogStore::new(db.clone());
    if store.count_products().await? != 0 {
        return Err("the catalog is not empty: give a fresh database".into());
    }
    let began = Instant::now();
    let mut ids = Vec::with_capacity(args.products);
    for chunk_start in (0..args.products).step_by(1000) {
        let batch: Vec<NewProduct> = (chunk_start..(chunk_start + 1000).min(args.products))
            .map(|i| {
                let p = demo::product(7, i as u64);
                NewProduct {
                    name: p.name,
                    description: p.description,
                    price_cents: p.price_cents,
                    stock: INITIAL_STOCK,
                    category: p.category.to_owned(),
                    tags: p.tags,
                    attributes: p.attributes,
                    sku: Some(p.sku),
                    owner_id: None,
                    images: Vec::new(),
                }
            })
            .collect();
        ids.extend(store.insert_many(&batch).await?);
    }
    say!(
        "{backend}: {} products created in {:.2} s; {} tasks, pool {}, {:.1} s per phase",
        ids.len(),
        began.elapsed().as_secs_f64(),
        args.tasks,
        args.pool,
        args.duration.as_secs_f64()
    );
    let ids = Arc::new(ids);
    let mut reserved = vec![0i64; ids.len()];
    let mut phases = Vec::new();
    for mode in [Mode::Uncontended, Mode::Contended] {
        phases.push(phase(&store, &ids, mode, args, &mut reserved).await?);
    }
    let checked = check(&store, &ids, &reserved).await?;
    db.close().await;
    Ok(json!({
        "backend": backend,
        "products": ids.len(),
        "tasks": args.tasks,
        "pool": args.pool,
        "duration_s": args.duration.as_secs_f64(),
        "phases": phases,
        "check": checked,
    }))
}

#[tokio::main]
async fn main() -> AnyResult<()> {
    let args = parse_args()?;
    let result = if args.create_database {
        let name = format!("ecap_bench_{:016x}", rand::random::<u64>());
        let admin = Db::connect(&Secret::new(args.url.clone()), 1).await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(admin.pool())
            .await?;
        say!("created database {name}");
        let result = run(&with_database(&args.url, &name)?, &args).await;
        // Dropped whether the run worked or not (FORCE: a failed run may have
        // left connections open).
        let dropped = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(admin.pool())
        .await;
        admin.close().await;
        match dropped {
            Ok(_) => say!("dropped database {name}"),
            Err(e) => say!("could not drop database {name}: {e}"),
        }
        result
    } else {
        run(&args.url, &args).await
    };
    let value = result?;
    println!("{value}");
    if value["check"]["ok"] != json!(true) {
        std::process::exit(3);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_name_is_replaced() {
        let swap = |u: &str| with_database(u, "x").ok();
        assert_eq!(
            swap("postgres://postgres@127.0.0.1:5432/postgres").as_deref(),
            Some("postgres://postgres@127.0.0.1:5432/x")
        );
        assert_eq!(
            swap("postgres://u:p@h/db?sslmode=disable").as_deref(),
            Some("postgres://u:p@h/x?sslmode=disable")
        );
        assert_eq!(
            swap("postgres://h:5432").as_deref(),
            Some("postgres://h:5432/x")
        );
    }

    #[test]
    fn percentiles() {
        let v: Vec<u32> = (1..=100).map(|i| i * 1000).collect();
        assert!((percentile_ms(&v, 50.0) - 50.0).abs() < 1e-9);
        assert!((percentile_ms(&v, 99.0) - 99.0).abs() < 1e-9);
    }
}
