//! The order benchmark's client: sets a running ecap up (an admin, customers,
//! products with plenty of stock), then places orders of three lines over HTTP
//! with N concurrent clients for a fixed time (and at most a fixed count), and
//! prints one JSON line: orders/s, p50/p99/max latency, errors, for each
//! client count.
//!
//! `ecap-bench-orders --base http://127.0.0.1:PORT --clients 8,32 --duration 10`
//!
//! `--setup FILE` only sets up and saves the tokens and product ids to FILE;
//! `--state FILE` skips the set-up and uses them, so a harness can run one
//! client count at a time and look at the database in between.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use rand::{Rng, SeedableRng, rngs::StdRng};
use serde_json::{Value, json};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const STOCK: i64 = 10_000_000;
const LINES: usize = 3;

struct Args {
    base: String,
    clients: Vec<usize>,
    duration: f64,
    warmup: f64,
    customers: usize,
    products: usize,
    max_orders: u64,
    setup: Option<String>,
    state: Option<String>,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        base: String::new(),
        clients: vec![8, 32],
        duration: 10.0,
        warmup: 1.0,
        customers: 64,
        products: 200,
        max_orders: 0,
        setup: None,
        state: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--base" => a.base = value()?,
            "--clients" => {
                a.clients = value()?
                    .split(',')
                    .map(|c| c.trim().parse().map_err(|e| format!("--clients: {e}")))
                    .collect::<Result<_, _>>()?
            }
            "--duration" => {
                a.duration = value()?.parse().map_err(|e| format!("--duration: {e}"))?
            }
            "--warmup" => a.warmup = value()?.parse().map_err(|e| format!("--warmup: {e}"))?,
            "--customers" => {
                a.customers = value()?.parse().map_err(|e| format!("--customers: {e}"))?
            }
            "--products" => {
                a.products = value()?.parse().map_err(|e| format!("--products: {e}"))?
            }
            "--max-orders" => {
                a.max_orders = value()?.parse().map_err(|e| format!("--max-orders: {e}"))?
            }
            "--setup" => a.setup = Some(value()?),
            "--state" => a.state = Some(value()?),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if a.base.is_empty() {
        return Err("--base URL is required".into());
    }
    if a.customers == 0 || a.products < LINES {
        return Err(format!(
            "--customers must be >= 1 and --products >= {LINES}"
        ));
    }
    if a.duration <= 0.0 || a.warmup < 0.0 {
        return Err("--duration must be > 0 and --warmup >= 0".into());
    }
    Ok(a)
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    body: &Value,
) -> Result<(u16, Value), String> {
    let mut req = client.post(url).json(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.map_err(|e| e.to_string())?;
    let status = r.status().as_u16();
    let body = r.json().await.unwrap_or(Value::Null);
    Ok((status, body))
}

/// `ECAP_SETUP_TOKEN` of the server under test (bench/run.py sets the same):
/// the first admin's registration carries it.
const SETUP_TOKEN: &str = "bench-setup-token-0123456789";

async fn register(
    client: &reqwest::Client,
    base: &str,
    email: &str,
    role: &str,
) -> Result<String, String> {
    let (status, body) = post(
        client,
        &format!("{base}/api/auth/register"),
        None,
        &json!({"name": "Bench User", "email": email, "password": "Bench123!", "role": role,
            "setupToken": SETUP_TOKEN}),
    )
    .await?;
    if status != 201 {
        return Err(format!("register {email}: {status} {body}"));
    }
    body["data"]["token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("no token for {email}"))
}

async fn setup(
    client: &reqwest::Client,
    base: &str,
    n_customers: usize,
    n_products: usize,
) -> Result<(Vec<String>, Vec<String>), String> {
    let admin = register(client, base, "bench-admin@example.com", "admin").await?;
    let mut products = Vec::with_capacity(n_products);
    for i in 0..n_products {
        let (status, body) = post(
            client,
            &format!("{base}/api/products"),
            Some(&admin),
            &json!({"name": format!("Bench Product {i}"), "description": "benchmark stock",
                "price": 5 + (i % 50), "inventory": STOCK, "category": "sports"}),
        )
        .await?;
        if status != 201 {
            return Err(format!("product {i}: {status} {body}"));
        }
        match body["data"]["product"]["id"].as_str() {
            Some(id) if !id.is_empty() => products.push(id.to_owned()),
            _ => return Err(format!("product {i}: no id in {body}")),
        }
    }
    let mut customers = Vec::with_capacity(n_customers);
    for i in 0..n_customers {
        customers
            .push(register(client, base, &format!("bench-c{i}@example.com"), "customer").await?);
    }
    Ok((customers, products))
}

/// How long a phase runs: warm-up, then `duration` measured or `max_orders`
/// measured orders sent (0: no limit), whichever comes first.
#[derive(Clone, Copy)]
struct Bounds {
    warmup: Duration,
    duration: Duration,
    max_orders: u64,
}

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u64>,
    /// Orders placed during the warm-up (not in the figures).
    warmup_orders: u64,
    errors: u64,
    first_error: Option<String>,
}

async fn phase(
    client: &reqwest::Client,
    base: &str,
    customers: &Arc<Vec<String>>,
    products: &Arc<Vec<String>>,
    clients: usize,
    bounds: Bounds,
) -> Value {
    let Bounds {
        warmup,
        duration,
        max_orders,
    } = bounds;
    let tally = Arc::new(Mutex::new(Tally::default()));
    // Orders sent inside the measured window; stops every client at max_orders.
    let sent_measured = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let measure_from = start + warmup;
    let end = measure_from + duration;
    let mut tasks = Vec::new();
    for n in 0..clients {
        let (client, base) = (client.clone(), base.to_owned());
        let (customers, products, tally) = (customers.clone(), products.clone(), tally.clone());
        let sent_measured = sent_measured.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(n as u64);
            let url = format!("{base}/api/orders");
            let mut k = n;
            loop {
                let now = Instant::now();
                if now >= end {
                    break;
                }
                let token = &customers[k % customers.len()];
                k += clients;
                let mut picked: Vec<usize> = Vec::with_capacity(LINES);
                while picked.len() < LINES {
                    let p = rng.random_range(0..products.len());
                    if !picked.contains(&p) {
                        picked.push(p);
                    }
                }
                let items: Vec<Value> = picked
                    .iter()
                    .map(|p| json!({"productId": products[*p], "quantity": 1}))
                    .collect();
                let body = json!({"items": items, "paymentMethod": "cod",
                    "shippingAddress": {"street": "1 Bench Road", "city": "Pune"}});
                let sent = Instant::now();
                let measured = sent >= measure_from;
                if measured
                    && max_orders > 0
                    && sent_measured.fetch_add(1, Ordering::Relaxed) >= max_orders
                {
                    break;
                }
                let result = post(&client, &url, Some(token), &body).await;
                let took = sent.elapsed();
                if !measured {
                    if let (Ok((201, _)), Ok(mut t)) = (&result, tally.lock()) {
                        t.warmup_orders += 1;
                    }
                    continue;
                }
                let Ok(mut t) = tally.lock() else { break };
                match result {
                    Ok((201, _)) => t.latencies_us.push(took.as_micros() as u64),
                    Ok((status, body)) => {
                        t.errors += 1;
                        t.first_error
                            .get_or_insert_with(|| format!("{status}: {body}"));
                    }
                    Err(e) => {
                        t.errors += 1;
                        t.first_error.get_or_insert(e);
                    }
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    // The window the figures cover: `duration`, or less when max_orders ended it.
    let window = Instant::now()
        .saturating_duration_since(measure_from)
        .min(duration)
        .max(Duration::from_millis(1));
    let mut t = match Arc::try_unwrap(tally) {
        Ok(m) => m.into_inner().unwrap_or_default(),
        Err(_) => Tally::default(),
    };
    t.latencies_us.sort_unstable();
    let pct = |p: f64| {
        if t.latencies_us.is_empty() {
            return 0.0;
        }
        let i = ((t.latencies_us.len() as f64 - 1.0) * p).round() as usize;
        t.latencies_us[i] as f64 / 1000.0
    };
    json!({
        "clients": clients,
        "orders": t.latencies_us.len(),
        "warmup_orders": t.warmup_orders,
        "seconds": window.as_secs_f64(),
        "per_sec": t.latencies_us.len() as f64 / window.as_secs_f64(),
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "max_ms": pct(1.0),
        "errors": t.errors,
        "first_error": t.first_error,
    })
}

#[tokio::main]
async fn main() {
    let a = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("ecap-bench-orders: {e}");
            std::process::exit(2);
        }
    };
    let client = match reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ecap-bench-orders: {e}");
            std::process::exit(1);
        }
    };
    let (customers, products) = if let Some(path) = &a.state {
        match load_state(path) {
            Ok(x) => x,
            Err(e) => {
                eprintln!("ecap-bench-orders: --state {path}: {e}");
                std::process::exit(1);
            }
        }
    } else {
        match setup(&client, &a.base, a.customers, a.products).await {
            Ok(x) => x,
            Err(e) => {
                eprintln!("ecap-bench-orders: set-up failed: {e}");
                std::process::exit(1);
            }
        }
    };
    if let Some(path) = &a.setup {
        let state = json!({"customers": customers, "products": products});
        if let Err(e) = std::fs::write(path, state.to_string()) {
            eprintln!("ecap-bench-orders: --setup {path}: {e}");
            std::process::exit(1);
        }
        println!(
            "{}",
            json!({"customers": customers.len(), "products": products.len(), "phases": []})
        );
        return;
    }
    let (n_customers, n_products) = (customers.len(), products.len());
    let (customers, products) = (Arc::new(customers), Arc::new(products));
    let mut phases = Vec::new();
    for &c in &a.clients {
        eprintln!("ecap-bench-orders: {c} clients, {:.0} s", a.duration);
        phases.push(
            phase(
                &client,
                &a.base,
                &customers,
                &products,
                c,
                Bounds {
                    warmup: Duration::from_secs_f64(a.warmup),
                    duration: Duration::from_secs_f64(a.duration),
                    max_orders: a.max_orders,
                },
            )
            .await,
        );
    }
    println!(
        "{}",
        json!({"customers": n_customers, "products": n_products, "lines": LINES,
            "phases": phases})
    );
}

/// Tokens and product ids saved by `--setup`.
fn load_state(path: &str) -> Result<(Vec<String>, Vec<String>), String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let v: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let list = |key: &str| -> Result<Vec<String>, String> {
        v[key]
            .as_array()
            .ok_or(format!("no {key}"))?
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_owned)
                    .ok_or(format!("{key}: not a string"))
            })
            .collect()
    };
    let (customers, products) = (list("customers")?, list("products")?);
    if customers.is_empty() || products.len() < LINES {
        return Err(format!("needs >= 1 customer and >= {LINES} products"));
    }
    Ok((customers, products))
}
