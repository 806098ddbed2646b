//! The analytics benchmark's Rust half, three subcommands; progress on
//! stderr, one JSON object on stdout.
//!
//! * `latency`: per-request latency of GET paths on a running ecap over
//!   keep-alive HTTP/1.1: a warm-up, then a fixed count of sequential
//!   requests on one connection, then the same with N concurrent clients
//!   (one connection each), then the sequential count again without
//!   `Accept-Encoding: gzip` (what compression costs).
//!
//!   `ecap-bench-analytics latency --base URL --token T --path P [--path P]...
//!    [--warmup SECS] [--requests N] [--clients N] [--client-requests N]
//!    [--max-seconds SECS]`
//!
//! * `consumer`: events applied per second by `AnalyticsStore::apply` on a
//!   fresh database, in batches of `--batch` events (as the outbox relay
//!   delivers them): created events of new orders (1–4 lines over
//!   `--products` products) and status changes of earlier ones, for
//!   `--duration` seconds. Afterwards `AnalyticsStore::verify` compares every
//!   aggregate with a recomputation from the final order states.
//!
//!   `ecap-bench-analytics consumer --database-url URL [--create-database]
//!    [--batch N] [--duration SECS] [--products N] [--customers N] [--pool N]`
//!
//!   With `--create-database` the URL names a PostgreSQL server: a fresh
//!   database `ecap_bench_an_<random>` is created, used and dropped. A SQLite
//!   URL should name a file that does not exist yet.
//!
//! * `sse`: delay from an order's commit (its `POST /api/orders` returned
//!   201) to the first `dashboard` event of `/api/analytics/stream` whose
//!   `totalOrders` includes it, on a running ecap with one stream open and
//!   orders placed one at a time at `--rate` per second.
//!
//!   `ecap-bench-analytics sse --base URL --admin-token A --customer-token C
//!    --products ID,ID,... [--rate N] [--duration SECS] [--settle SECS]`

use std::{
    collections::BTreeMap,
    error::Error,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use async_trait::async_trait;
use ecap_analytics::AnalyticsStore;
use ecap_core::{
    config::Secret,
    db::Db,
    events::{EventLine, OrderEvent, OrderEventKind, OrderSource},
    ports::PortError,
};
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde_json::{Value, json};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

type AnyResult<T> = Result<T, Box<dyn Error + Send + Sync>>;

const USAGE: &str =
    "usage: ecap-bench-analytics latency|consumer|sse [options] (see the file's doc)";

macro_rules! say {
    ($($t:tt)*) => { eprintln!("[analytics] {}", format!($($t)*)) };
}

/// Flag/value pairs after the subcommand, repeated flags kept in order.
struct Flags(Vec<(String, Option<String>)>);

impl Flags {
    fn parse(args: impl Iterator<Item = String>, switches: &[&str]) -> AnyResult<Self> {
        let mut out = Vec::new();
        let mut it = args.peekable();
        while let Some(flag) = it.next() {
            if !flag.starts_with("--") {
                return Err(format!("unexpected argument {flag:?}\n{USAGE}").into());
            }
            if switches.contains(&flag.as_str()) {
                out.push((flag, None));
                continue;
            }
            let value = it
                .next()
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
            out.push((flag, Some(value)));
        }
        Ok(Self(out))
    }

    fn check(&self, known: &[&str]) -> AnyResult<()> {
        match self.0.iter().find(|(f, _)| !known.contains(&f.as_str())) {
            Some((f, _)) => Err(format!("unknown argument {f:?}\n{USAGE}").into()),
            None => Ok(()),
        }
    }

    fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(f, _)| f == name)
            .filter_map(|(_, v)| v.clone())
            .collect()
    }

    fn get(&self, name: &str) -> Option<String> {
        self.all(name).pop()
    }

    fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(f, _)| f == name)
    }

    fn required(&self, name: &str) -> AnyResult<String> {
        self.get(name)
            .ok_or_else(|| format!("{name} is required\n{USAGE}").into())
    }

    fn num<T: std::str::FromStr>(&self, name: &str, default: T) -> AnyResult<T>
    where
        T::Err: std::fmt::Display,
    {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|e| format!("{name}: {e}").into()),
        }
    }
}

/// Latency summary of a sorted list of durations in microseconds.
fn summary(mut us: Vec<u64>, seconds: f64, errors: u64) -> Value {
    us.sort_unstable();
    let pct = |p: f64| {
        if us.is_empty() {
            return 0.0;
        }
        let i = ((us.len() as f64 - 1.0) * p).round() as usize;
        us[i] as f64 / 1000.0
    };
    let mean = if us.is_empty() {
        0.0
    } else {
        us.iter().sum::<u64>() as f64 / us.len() as f64 / 1000.0
    };
    json!({
        "requests": us.len(),
        "seconds": seconds,
        "per_sec": if seconds > 0.0 { us.len() as f64 / seconds } else { 0.0 },
        "p50_ms": pct(0.50),
        "p90_ms": pct(0.90),
        "p99_ms": pct(0.99),
        "min_ms": pct(0.0),
        "max_ms": pct(1.0),
        "mean_ms": mean,
        "errors": errors,
    })
}

// ---------------------------------------------------------------------------
// latency
// ---------------------------------------------------------------------------

/// A keep-alive HTTP/1.1 client; `gzip`: sends `Accept-Encoding: gzip` and
/// inflates the answer, as a browser does (otherwise the body comes as is).
fn http_client(connections: usize, gzip: bool) -> AnyResult<reqwest::Client> {
    let builder = reqwest::Client::builder();
    let builder = if gzip { builder } else { builder.no_gzip() };
    Ok(builder
        .http1_only()
        .pool_max_idle_per_host(connections.max(1))
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(60))
        .build()?)
}

/// One GET, body read to the end; the body's length on a 200.
async fn get(client: &reqwest::Client, url: &str, token: &str) -> Result<usize, String> {
    let r = client
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = r.status().as_u16();
    let body = r.bytes().await.map_err(|e| e.to_string())?;
    if status != 200 {
        return Err(format!(
            "HTTP {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        ));
    }
    Ok(body.len())
}

/// `requests` sequential GETs on one client (at most `max` long): the
/// latency summary and the first error.
async fn sequential_run(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    requests: usize,
    max: Duration,
) -> (Value, Option<String>) {
    let mut lat = Vec::with_capacity(requests);
    let mut errors = 0u64;
    let mut first_error = None;
    let start = Instant::now();
    for _ in 0..requests {
        if start.elapsed() > max {
            break;
        }
        let t = Instant::now();
        match get(client, url, token).await {
            Ok(_) => lat.push(t.elapsed().as_micros() as u64),
            Err(e) => {
                errors += 1;
                first_error.get_or_insert(e);
            }
        }
    }
    (
        summary(lat, start.elapsed().as_secs_f64(), errors),
        first_error,
    )
}

async fn latency(f: &Flags) -> AnyResult<Value> {
    f.check(&[
        "--base",
        "--token",
        "--path",
        "--warmup",
        "--requests",
        "--clients",
        "--client-requests",
        "--max-seconds",
    ])?;
    let base = f.required("--base")?;
    let token = f.required("--token")?;
    let paths = f.all("--path");
    if paths.is_empty() {
        return Err(format!("at least one --path is required\n{USAGE}").into());
    }
    let warmup = Duration::from_secs_f64(f.num("--warmup", 2.0)?);
    let requests: usize = f.num("--requests", 3000)?;
    let clients: usize = f.num("--clients", 8)?;
    let client_requests: usize = f.num("--client-requests", 1000)?;
    let max = Duration::from_secs_f64(f.num("--max-seconds", 60.0)?);
    if requests == 0 || clients == 0 || client_requests == 0 {
        return Err("--requests, --clients and --client-requests must be positive".into());
    }
    let mut out = Vec::new();
    for path in &paths {
        let url = format!("{base}{path}");
        // Sequential: one client, one kept-alive connection.
        let client = http_client(1, true)?;
        let bytes = get(&client, &url, &token).await?;
        let start = Instant::now();
        let mut warm = 0u64;
        while start.elapsed() < warmup {
            get(&client, &url, &token).await?;
            warm += 1;
        }
        say!("{path}: {bytes} B, {warm} warm-up requests; {requests} sequential");
        let (sequential, mut first_error) =
            sequential_run(&client, &url, &token, requests, max).await;
        // Concurrent: `clients` tasks, each on its own connection.
        say!("{path}: {clients} clients x {client_requests} requests");
        let lat = Arc::new(Mutex::new(Vec::with_capacity(clients * client_requests)));
        let errs = Arc::new(Mutex::new((0u64, None::<String>)));
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..clients {
            let client = http_client(1, true)?;
            let (url, token, lat, errs) = (url.clone(), token.clone(), lat.clone(), errs.clone());
            tasks.push(tokio::spawn(async move {
                let mut mine = Vec::with_capacity(client_requests);
                for _ in 0..client_requests {
                    if start.elapsed() > max {
                        break;
                    }
                    let t = Instant::now();
                    match get(&client, &url, &token).await {
                        Ok(_) => mine.push(t.elapsed().as_micros() as u64),
                        Err(e) => {
                            if let Ok(mut g) = errs.lock() {
                                g.0 += 1;
                                g.1.get_or_insert(e);
                            }
                        }
                    }
                }
                if let Ok(mut g) = lat.lock() {
                    g.extend(mine);
                }
            }));
        }
        for t in tasks {
            t.await?;
        }
        let seconds = start.elapsed().as_secs_f64();
        let lat = std::mem::take(&mut *lat.lock().map_err(|_| "poisoned")?);
        let (cerrors, cfirst) = std::mem::take(&mut *errs.lock().map_err(|_| "poisoned")?);
        let concurrent = summary(lat, seconds, cerrors);
        // Sequential again without compression: what gzip costs of the above.
        let plain = http_client(1, false)?;
        let plain_bytes = get(&plain, &url, &token).await?;
        let (identity, plain_error) = sequential_run(&plain, &url, &token, requests, max).await;
        first_error = first_error.or(cfirst).or(plain_error);
        say!(
            "{path}: sequential p50 {} ms p99 {} ms; {clients} clients p50 {} ms p99 {} ms, {:.0} req/s; \
             without gzip p50 {} ms",
            sequential["p50_ms"],
            sequential["p99_ms"],
            concurrent["p50_ms"],
            concurrent["p99_ms"],
            concurrent["per_sec"].as_f64().unwrap_or_default(),
            identity["p50_ms"]
        );
        out.push(json!({
            "path": path,
            "bytes": bytes,
            "warmup_requests": warm,
            "sequential": sequential,
            "concurrent": concurrent,
            "identity_bytes": plain_bytes,
            "sequential_identity": identity,
            "clients": clients,
            "first_error": first_error,
        }));
    }
    Ok(json!({ "paths": out }))
}

// ---------------------------------------------------------------------------
// consumer
// ---------------------------------------------------------------------------

const CATEGORIES: [&str; 8] = [
    "electronics",
    "clothing",
    "books",
    "home",
    "sports",
    "toys",
    "beauty",
    "grocery",
];
const PAYMENTS: [&str; 5] = ["upi", "card", "cod", "netbanking", "wallet"];

struct Product {
    id: String,
    category: &'static str,
    price_cents: i64,
}

/// Makes a realistic event stream: new orders and the status changes of
/// earlier, still open ones, each change a complete event as the outbox
/// publishes it.
struct Generator {
    rng: StdRng,
    products: Vec<Product>,
    customers: i64,
    next_id: i64,
    /// Every order's latest event (what `verify` compares with).
    orders: BTreeMap<i64, OrderEvent>,
    /// Orders whose status can still change.
    open: Vec<i64>,
}

fn now_ms() -> i64 {
    ecap_core::clock::now_ms()
}

impl Generator {
    fn new(products: usize, customers: i64, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let products = (0..products)
            .map(|i| Product {
                id: format!("{:024x}", 0xbe_0000_u64 + i as u64),
                category: CATEGORIES[i % CATEGORIES.len()],
                price_cents: rng.random_range(199..20_000),
            })
            .collect();
        Self {
            rng,
            products,
            customers,
            next_id: 1,
            orders: BTreeMap::new(),
            open: Vec::new(),
        }
    }

    fn created(&mut self) -> OrderEvent {
        let id = self.next_id;
        self.next_id += 1;
        let n = self.rng.random_range(1..=4);
        let mut picked: Vec<usize> = Vec::with_capacity(n);
        while picked.len() < n {
            let p = self.rng.random_range(0..self.products.len());
            if !picked.contains(&p) {
                picked.push(p);
            }
        }
        let lines: Vec<EventLine> = picked
            .iter()
            .map(|&p| EventLine {
                product_id: self.products[p].id.clone(),
                category: self.products[p].category.to_owned(),
                quantity: self.rng.random_range(1..=3),
                unit_price_cents: self.products[p].price_cents,
            })
            .collect();
        let total: i64 = lines.iter().map(|l| l.quantity * l.unit_price_cents).sum();
        let shipping = if total < 50_000 { 4_900 } else { 0 };
        let now = now_ms();
        let e = OrderEvent {
            event_id: format!("bench-{id}-1"),
            order_id: id,
            user_id: self.rng.random_range(1..=self.customers),
            seq: 1,
            kind: OrderEventKind::Created,
            from_status: None,
            to_status: "pending".into(),
            lines,
            total_cents: total + shipping,
            payment_method: PAYMENTS[self.rng.random_range(0..PAYMENTS.len())].into(),
            placed_at: now,
            at: now,
        };
        self.orders.insert(id, e.clone());
        self.open.push(id);
        e
    }

    /// The next status of an open order; None closes it without an event.
    fn next_status(&mut self, from: &str) -> Option<&'static str> {
        let r: f64 = self.rng.random();
        Some(match from {
            "pending" if r < 0.12 => "cancelled",
            "pending" => "processing",
            "processing" if r < 0.05 => "cancel_requested",
            "processing" => "shipped",
            "cancel_requested" if r < 0.7 => "cancelled",
            "cancel_requested" => "processing",
            "shipped" => "out_for_delivery",
            "out_for_delivery" => "delivered",
            "delivered" if r < 0.05 => "refund_processing",
            "refund_processing" => "refunded",
            "cancelled" if r < 0.2 => "deleted",
            _ => return None,
        })
    }

    /// A status change of a random open order (None when it closed instead).
    fn changed(&mut self) -> Option<OrderEvent> {
        let i = self.rng.random_range(0..self.open.len());
        let id = self.open[i];
        let from = self.orders.get(&id)?.to_status.clone();
        let Some(to) = self.next_status(&from) else {
            self.open.swap_remove(i);
            return None;
        };
        let e = self.orders.get_mut(&id)?;
        e.seq += 1;
        e.event_id = format!("bench-{id}-{}", e.seq);
        e.kind = match to {
            "cancelled" => OrderEventKind::Cancelled,
            "refunded" => OrderEventKind::Refunded,
            "deleted" => OrderEventKind::Deleted,
            _ => OrderEventKind::StatusChanged,
        };
        e.from_status = Some(from);
        e.to_status = to.into();
        e.at = now_ms();
        Some(e.clone())
    }

    /// 40 % new orders, 60 % changes of earlier ones (new orders while none is open).
    fn next(&mut self) -> OrderEvent {
        loop {
            if self.open.is_empty() || self.rng.random::<f64>() < 0.4 {
                return self.created();
            }
            if let Some(e) = self.changed() {
                return e;
            }
        }
    }
}

/// The generator's final order states, as the orders service would list them.
struct Source(Vec<OrderEvent>);

#[async_trait]
impl OrderSource for Source {
    async fn orders_after(&self, after: i64, limit: usize) -> Result<Vec<OrderEvent>, PortError> {
        let i = self.0.partition_point(|e| e.order_id <= after);
        Ok(self.0[i..].iter().take(limit).cloned().collect())
    }

    async fn order_count(&self) -> Result<u64, PortError> {
        Ok(self.0.len() as u64)
    }
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

struct ConsumerArgs {
    batch: usize,
    duration: Duration,
    products: usize,
    customers: i64,
    pool: u32,
}

async fn consume(url: &str, a: &ConsumerArgs) -> AnyResult<Value> {
    let db = Db::connect(&Secret::new(url.to_owned()), a.pool).await?;
    let result = consume_on(&db, a).await;
    db.close().await;
    result
}

async fn consume_on(db: &Db, a: &ConsumerArgs) -> AnyResult<Value> {
    ecap_analytics::migrate(db).await?;
    let store = AnalyticsStore::open(db.clone()).await?;
    let mut g = Generator::new(a.products, a.customers, 1);
    say!(
        "batch {}: applying for {:.0} s ({} products, {} customers)",
        a.batch,
        a.duration.as_secs_f64(),
        a.products,
        a.customers
    );
    let mut lat = Vec::new();
    let (mut events, mut created, mut changed) = (0u64, 0u64, 0u64);
    let mut busy = Duration::ZERO;
    let start = Instant::now();
    while start.elapsed() < a.duration {
        let batch: Vec<OrderEvent> = (0..a.batch).map(|_| g.next()).collect();
        for e in &batch {
            if e.seq == 1 {
                created += 1;
            } else {
                changed += 1;
            }
        }
        let t = Instant::now();
        store.apply(&batch).await?;
        let took = t.elapsed();
        busy += took;
        lat.push(took.as_micros() as u64);
        events += batch.len() as u64;
    }
    let seconds = start.elapsed().as_secs_f64();
    let batches = lat.len();
    let latency = summary(lat, seconds, 0);
    say!(
        "batch {}: {events} events in {seconds:.1} s ({:.0}/s); verifying",
        a.batch,
        events as f64 / seconds
    );
    let orders = g.orders.len();
    let source = Source(std::mem::take(&mut g.orders).into_values().collect());
    let t = Instant::now();
    let diffs = store.verify(&source).await?;
    let verify_s = t.elapsed().as_secs_f64();
    say!(
        "batch {}: verify {} ({} differences, {verify_s:.1} s)",
        a.batch,
        if diffs.is_empty() { "OK" } else { "FAILED" },
        diffs.len()
    );
    Ok(json!({
        "backend": format!("{:?}", db.backend()),
        "batch": a.batch,
        "seconds": seconds,
        "events": events,
        "created_events": created,
        "change_events": changed,
        "orders": orders,
        "batches": batches,
        "events_per_sec": events as f64 / seconds,
        "apply_busy_share": busy.as_secs_f64() / seconds,
        "batch_p50_ms": latency["p50_ms"],
        "batch_p99_ms": latency["p99_ms"],
        "batch_max_ms": latency["max_ms"],
        "verify_ok": diffs.is_empty(),
        "verify_seconds": verify_s,
        "differences": diffs.len(),
        "first_differences": diffs.iter().take(5).collect::<Vec<_>>(),
    }))
}

async fn consumer(f: &Flags) -> AnyResult<Value> {
    f.check(&[
        "--database-url",
        "--create-database",
        "--batch",
        "--duration",
        "--products",
        "--customers",
        "--pool",
    ])?;
    let url = f.required("--database-url")?;
    let a = ConsumerArgs {
        batch: f.num("--batch", 100)?,
        duration: Duration::from_secs_f64(f.num("--duration", 10.0)?),
        products: f.num("--products", 300)?,
        customers: f.num("--customers", 20_000)?,
        pool: f.num("--pool", 10)?,
    };
    if a.batch == 0 || a.products < 4 || a.customers < 1 || a.pool == 0 || a.duration.is_zero() {
        return Err(
            "--batch, --customers, --pool, --duration must be positive, --products >= 4".into(),
        );
    }
    if !f.has("--create-database") {
        return consume(&url, &a).await;
    }
    let name = format!("ecap_bench_an_{:016x}", rand::random::<u64>());
    let admin = Db::connect(&Secret::new(url.clone()), 1).await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(admin.pool())
        .await?;
    say!("created database {name}");
    let result = consume(&with_database(&url, &name)?, &a).await;
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
}

// ---------------------------------------------------------------------------
// sse
// ---------------------------------------------------------------------------

/// `dashboard` events seen on the stream: (when, totalOrders).
type Seen = Arc<Mutex<Vec<(Instant, i64)>>>;

/// Reads the stream, records every `dashboard` event's arrival and count.
async fn read_stream(
    mut res: reqwest::Response,
    seen: Seen,
    tick: tokio::sync::watch::Sender<u64>,
) {
    let mut buf: Vec<u8> = Vec::new();
    while let Ok(Some(chunk)) = res.chunk().await {
        let now = Instant::now();
        buf.extend_from_slice(&chunk);
        while let Some(end) = buf.windows(2).position(|w| w == b"\n\n") {
            let raw: Vec<u8> = buf.drain(..end + 2).collect();
            let text = String::from_utf8_lossy(&raw);
            let mut event = "";
            let mut data = String::new();
            for line in text.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    event = v.trim();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.strip_prefix(' ').unwrap_or(v));
                }
            }
            if event != "dashboard" {
                continue;
            }
            let total = serde_json::from_str::<Value>(&data)
                .ok()
                .and_then(|v| v["totalOrders"].as_i64());
            if let (Some(total), Ok(mut s)) = (total, seen.lock()) {
                s.push((now, total));
            }
            tick.send_modify(|v| *v += 1);
        }
    }
}

async fn sse(f: &Flags) -> AnyResult<Value> {
    f.check(&[
        "--base",
        "--admin-token",
        "--customer-token",
        "--products",
        "--rate",
        "--duration",
        "--settle",
    ])?;
    let base = f.required("--base")?;
    let admin = f.required("--admin-token")?;
    let customer = f.required("--customer-token")?;
    let products: Vec<String> = f
        .required("--products")?
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let rate: f64 = f.num("--rate", 10.0)?;
    let duration: f64 = f.num("--duration", 10.0)?;
    let settle = Duration::from_secs_f64(f.num("--settle", 5.0)?);
    if products.is_empty() || rate <= 0.0 || duration <= 0.0 {
        return Err("--products must name a product, --rate and --duration be positive".into());
    }
    let count = (rate * duration).round().max(1.0) as usize;
    let client = http_client(2, true)?;
    let stream_client = reqwest::Client::builder().http1_only().build()?;
    let res = stream_client
        .get(format!("{base}/api/analytics/stream?period=today"))
        .bearer_auth(&admin)
        .send()
        .await?;
    if res.status().as_u16() != 200 {
        return Err(format!("stream: HTTP {}", res.status()).into());
    }
    let seen: Seen = Arc::new(Mutex::new(Vec::new()));
    let (tick, mut ticks) = tokio::sync::watch::channel(0u64);
    let reader = tokio::spawn(read_stream(res, seen.clone(), tick));
    // The event sent at connect gives the count before our orders.
    let first = tokio::time::timeout(Duration::from_secs(10), ticks.changed()).await;
    let base_total = match (first, seen.lock()) {
        (Ok(Ok(())), Ok(s)) => s.last().map(|x| x.1),
        _ => None,
    }
    .ok_or("no first dashboard event within 10 s")?;
    say!("stream open, totalOrders {base_total}; {count} orders at {rate}/s");
    let mut rng = StdRng::seed_from_u64(7);
    let url = format!("{base}/api/orders");
    let period = Duration::from_secs_f64(1.0 / rate);
    let mut returned: Vec<Option<Instant>> = Vec::with_capacity(count);
    let mut post_ms = Vec::with_capacity(count);
    let mut errors = 0u64;
    let mut first_error = None;
    let start = Instant::now();
    for i in 0..count {
        let due = start + period.mul_f64(i as f64);
        tokio::time::sleep_until(due.into()).await;
        let pid = &products[rng.random_range(0..products.len())];
        let body = json!({
            "items": [{"productId": pid, "quantity": 1}],
            "paymentMethod": "upi",
            "shippingAddress": {"street": "1 Bench Road", "city": "Pune", "state": "MH",
                "zipCode": "411001", "country": "India"},
        });
        let t = Instant::now();
        let r = client
            .post(&url)
            .bearer_auth(&customer)
            .json(&body)
            .send()
            .await;
        match r {
            Ok(r) if r.status().as_u16() == 201 => {
                let at = Instant::now();
                let _ = r.bytes().await;
                returned.push(Some(at));
                post_ms.push(at.duration_since(t).as_micros() as u64);
            }
            Ok(r) => {
                errors += 1;
                let status = r.status().as_u16();
                let text = r.text().await.unwrap_or_default();
                first_error.get_or_insert(format!("HTTP {status}: {text}"));
                returned.push(None);
            }
            Err(e) => {
                errors += 1;
                first_error.get_or_insert(e.to_string());
                returned.push(None);
            }
        }
    }
    let placed = returned.iter().flatten().count() as i64;
    // Wait for the event that includes the last order (or give up after `settle`).
    let deadline = Instant::now() + settle;
    loop {
        let done = seen
            .lock()
            .map(|s| s.last().is_some_and(|x| x.1 >= base_total + placed))
            .unwrap_or(true);
        if done || Instant::now() >= deadline {
            break;
        }
        let _ = tokio::time::timeout(Duration::from_millis(100), ticks.changed()).await;
    }
    reader.abort();
    let events = seen.lock().map(|s| s.clone()).unwrap_or_default();
    let mut delays = Vec::new();
    let mut missed = 0u64;
    let mut early = 0u64;
    for (k, at) in (1i64..).zip(returned.iter().flatten()) {
        match events.iter().find(|(_, total)| *total >= base_total + k) {
            Some((when, _)) if when >= at => {
                delays.push(when.duration_since(*at).as_micros() as u64)
            }
            Some(_) => {
                // The event left before the POST's answer was read: no delay.
                early += 1;
                delays.push(0);
            }
            None => missed += 1,
        }
    }
    let s = summary(delays, 0.0, missed);
    let post = summary(post_ms, 0.0, 0);
    say!(
        "delay order -> dashboard event: p50 {} ms, p99 {} ms ({} events, {missed} orders never seen)",
        s["p50_ms"],
        s["p99_ms"],
        events.len().saturating_sub(1)
    );
    Ok(json!({
        "orders": count,
        "placed": placed,
        "errors": errors,
        "first_error": first_error,
        "rate": rate,
        "seconds": start.elapsed().as_secs_f64(),
        "events": events.len().saturating_sub(1),
        "missed": missed,
        "early": early,
        "delay_p50_ms": s["p50_ms"],
        "delay_p90_ms": s["p90_ms"],
        "delay_p99_ms": s["p99_ms"],
        "delay_min_ms": s["min_ms"],
        "delay_max_ms": s["max_ms"],
        "post_p50_ms": post["p50_ms"],
        "post_p99_ms": post["p99_ms"],
    }))
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let cmd = args.next().unwrap_or_default();
    let result = match cmd.as_str() {
        "latency" => match Flags::parse(args, &[]) {
            Ok(f) => latency(&f).await,
            Err(e) => Err(e),
        },
        "consumer" => match Flags::parse(args, &["--create-database"]) {
            Ok(f) => consumer(&f).await,
            Err(e) => Err(e),
        },
        "sse" => match Flags::parse(args, &[]) {
            Ok(f) => sse(&f).await,
            Err(e) => Err(e),
        },
        "-h" | "--help" => {
            println!("{USAGE}");
            return;
        }
        _ => Err(USAGE.into()),
    };
    match result {
        Ok(v) => println!("{v}"),
        Err(e) => {
            eprintln!("ecap-bench-analytics: {e}");
            std::process::exit(1);
        }
    }
}
