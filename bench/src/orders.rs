//! The order benchmark's client: sets a running ecap up (an admin, customers,
//! products with plenty of stock), then places orders of three lines over HTTP
//! with N concurrent clients for a fixed time, and prints one JSON line:
//! orders/s, p50/p99/max latency, errors, for each client count.
//!
//! `ecap-bench-orders --base http://127.0.0.1:PORT --clients 8,32 --duration 10`

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use rand::{Rng, SeedableRng, rngs::StdRng};
use serde_json::{Value, json};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CUSTOMERS: usize = 64;
const PRODUCTS: usize = 200;
const STOCK: i64 = 10_000_000;
const LINES: usize = 3;

struct Args {
    base: String,
    clients: Vec<usize>,
    duration: f64,
    warmup: f64,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        base: String::new(),
        clients: vec![8, 32],
        duration: 10.0,
        warmup: 1.0,
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
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if a.base.is_empty() {
        return Err("--base URL is required".into());
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
        &json!({"name": "Bench User", "email": email, "password": "Bench123!", "role": role}),
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

async fn setup(client: &reqwest::Client, base: &str) -> Result<(Vec<String>, Vec<String>), String> {
    let admin = register(client, base, "bench-admin@example.com", "admin").await?;
    let mut products = Vec::with_capacity(PRODUCTS);
    for i in 0..PRODUCTS {
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
        products.push(
            body["data"]["product"]["id"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
    }
    let mut customers = Vec::with_capacity(CUSTOMERS);
    for i in 0..CUSTOMERS {
        customers
            .push(register(client, base, &format!("bench-c{i}@example.com"), "customer").await?);
    }
    Ok((customers, products))
}

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u64>,
    errors: u64,
    first_error: Option<String>,
}

async fn phase(
    client: &reqwest::Client,
    base: &str,
    customers: &Arc<Vec<String>>,
    products: &Arc<Vec<String>>,
    clients: usize,
    warmup: Duration,
    duration: Duration,
) -> Value {
    let tally = Arc::new(Mutex::new(Tally::default()));
    let start = Instant::now();
    let measure_from = start + warmup;
    let end = measure_from + duration;
    let mut tasks = Vec::new();
    for n in 0..clients {
        let (client, base) = (client.clone(), base.to_owned());
        let (customers, products, tally) = (customers.clone(), products.clone(), tally.clone());
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
                let result = post(&client, &url, Some(token), &body).await;
                let took = sent.elapsed();
                if sent < measure_from {
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
        "per_sec": t.latencies_us.len() as f64 / duration.as_secs_f64(),
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
    let (customers, products) = match setup(&client, &a.base).await {
        Ok(x) => x,
        Err(e) => {
            eprintln!("ecap-bench-orders: set-up failed: {e}");
            std::process::exit(1);
        }
    };
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
                Duration::from_secs_f64(a.warmup),
                Duration::from_secs_f64(a.duration),
            )
            .await,
        );
    }
    println!(
        "{}",
        json!({"customers": CUSTOMERS, "products": PRODUCTS, "lines": LINES, "phases": phases})
    );
}
