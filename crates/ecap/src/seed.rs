//! Demo data: the demo accounts, a generated catalog and a year of order
//! history from synthetic customers (`ecap seed`, `ecap serve --demo`).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use ecap_catalog::{
    CatalogInventory, CatalogStore, ResponseCache, demo,
    store::{NewProduct, ProductQuery, ProductSort, StatusFilter},
};
use ecap_core::{
    config::{Config, Shape},
    db::Db,
    ports::{ReservedLine, ShippingAddress},
};
use ecap_orders::{
    OrderStore,
    bulk::{HistoricChange, HistoricOrder, HistoricStep},
    domain::{DAY_MS, PAYMENT_METHODS, Status},
    store::{Actor, Shipment},
};
use ecap_users::bulk::SeedCustomer;
use indicatif::{ProgressBar, ProgressStyle};
use rand::{Rng, SeedableRng, rngs::StdRng, seq::SliceRandom};

/// Products `serve --demo` creates on an empty catalog.
pub const DEMO_PRODUCTS: u64 = 300;
const CHUNK: usize = 1000;

/// The `index`-th generated product as the store takes it.
pub fn new_product(seed: u64, index: u64, owner_id: Option<i64>) -> NewProduct {
    let p = demo::product(seed, index);
    NewProduct {
        name: p.name,
        description: p.description,
        price_cents: p.price_cents,
        stock: p.stock,
        category: p.category.to_owned(),
        tags: p.tags,
        attributes: p.attributes,
        sku: Some(p.sku),
        owner_id,
        images: Vec::new(),
    }
}

/// The demo merchant's id, when `users` has it.
async fn merchant_in(users: &Db) -> Option<i64> {
    ecap_users::UserStore::new(users.clone())
        .by_email(crate::DEMO_ACCOUNTS[1].1)
        .await
        .ok()
        .flatten()
        .map(|u| u.id)
}

/// The demo merchant's id, when the users database answers and has it.
async fn demo_merchant(config: &Config) -> Option<i64> {
    let db = crate::users_database(config).await.ok()?;
    let id = merchant_in(&db).await;
    db.close().await;
    id
}

/// `serve --demo`: demo accounts on an empty users table, a demo catalog on an
/// empty catalog, and (all-in-one) an order history on an empty orders table.
pub async fn demo(config: &Config, shape: Shape) -> anyhow::Result<()> {
    let mut owner = None;
    if matches!(shape, Shape::AllInOne | Shape::Users) {
        let db = crate::users_database(config).await?;
        crate::seed_demo(&db).await?;
        owner = merchant_in(&db).await;
        db.close().await;
    }
    if matches!(shape, Shape::AllInOne | Shape::Catalog) {
        let db = crate::catalog_database(config, None).await?;
        let store = CatalogStore::new(db.clone());
        if store.count_products().await? == 0 {
            if shape == Shape::Catalog {
                owner = demo_merchant(config).await;
            }
            let n = insert(&store, 42, 0, DEMO_PRODUCTS, owner, false).await?;
            tracing::warn!(products = n, "demo catalog created");
        }
        db.close().await;
    }
    if shape == Shape::AllInOne {
        demo_orders(config).await?;
    }
    Ok(())
}

/// `ecap seed`: demo accounts when there are no users, then `count` generated
/// products after those already there (so repeated runs add new ones).
pub async fn catalog(config: &Config, count: u64, seed: u64, progress: bool) -> anyhow::Result<()> {
    let users = crate::users_database(config).await?;
    let accounts = crate::seed_demo(&users).await?;
    let owner = merchant_in(&users).await;
    users.close().await;
    let db = crate::catalog_database(config, None).await?;
    let store = CatalogStore::new(db.clone());
    let start = u64::try_from(store.count_products().await?).unwrap_or(0);
    let began = Instant::now();
    let n = insert(&store, seed, start, count, owner, progress).await?;
    db.close().await;
    // Catalog processes sharing a Redis cache serve the new products at once.
    if config.redis().is_some() {
        crate::response_cache(config).await?.invalidate().await?;
    }
    let secs = began.elapsed().as_secs_f64();
    println!(
        "seeded {n} products (seed {seed}) in {secs:.1} s ({:.0}/s); {accounts} demo accounts created",
        n as f64 / secs.max(1e-9)
    );
    Ok(())
}

async fn insert(
    store: &CatalogStore,
    seed: u64,
    start: u64,
    count: u64,
    owner: Option<i64>,
    progress: bool,
) -> anyhow::Result<u64> {
    let bar = if progress {
        let bar = ProgressBar::new(count);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} products {bar:40} {pos}/{len} ({per_sec}, {eta} left)",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut done = 0u64;
    while done < count {
        let take = (count - done).min(CHUNK as u64);
        let batch: Vec<NewProduct> = (start + done..start + done + take)
            .map(|i| new_product(seed, i, owner.filter(|_| i % 3 == 0)))
            .collect();
        store
            .insert_many(&batch)
            .await
            .context("inserting demo products")?;
        done += take;
        bar.set_position(done);
    }
    bar.finish_and_clear();
    Ok(done)
}

// ---- order history ------------------------------------------------------------

/// Orders `serve --demo` writes on an empty orders table.
pub const DEMO_ORDERS: u64 = 3000;
const DEMO_ORDERS_SEED: u64 = 42;
const HOUR_MS: i64 = 3_600_000;
/// The shop keeps Indian time (UTC+05:30): its days, weekends and busy hours.
const LOCAL_OFFSET_MS: i64 = 19_800_000;
const YEAR_DAYS: i64 = 365;

/// Orders per hour of the local day, relative: quiet nights, a lunch bump,
/// the evening peak.
const HOUR_WEIGHTS: [u32; 24] = [
    350, 200, 120, 80, 70, 100, 250, 450, 650, 800, 950, 1050, 1150, 1100, 1000, 950, 950, 1000,
    1100, 1300, 1450, 1500, 1200, 700,
];
/// Monday to Sunday: weekends are busiest.
const WEEKDAY_WEIGHTS: [f64; 7] = [0.92, 0.9, 0.92, 0.95, 1.05, 1.3, 1.25];
/// January to December: the festive season (November, December) peaks.
const MONTH_WEIGHTS: [f64; 12] = [
    0.85, 0.8, 0.9, 0.9, 0.95, 0.9, 0.95, 1.0, 1.05, 1.15, 1.5, 1.6,
];
/// The last day of the year sells this much more than the first.
const YEARLY_GROWTH: f64 = 1.8;
/// Share of orders per payment method, in the order of `PAYMENT_METHODS`
/// (credit_card, debit_card, paypal, cash, cod, card, upi, netbanking, wallet).
const PAYMENT_WEIGHTS: [u32; 9] = [8, 7, 2, 2, 20, 16, 33, 6, 6];
/// Orders with 1…5 lines.
const LINE_WEIGHTS: [u32; 5] = [45, 27, 15, 8, 5];
/// Lines of quantity 1…5.
const QUANTITY_WEIGHTS: [u32; 5] = [78, 15, 4, 2, 1];
const COURIERS: [(&str, &str); 6] = [
    ("Delhivery", "DL"),
    ("Blue Dart", "BD"),
    ("Ekart", "EK"),
    ("DTDC", "DT"),
    ("Xpressbees", "XB"),
    ("India Post", "IP"),
];
const CITIES: [(&str, &str, u32); 16] = [
    ("Mumbai", "Maharashtra", 400),
    ("Pune", "Maharashtra", 411),
    ("Delhi", "Delhi", 110),
    ("Bengaluru", "Karnataka", 560),
    ("Mysuru", "Karnataka", 570),
    ("Chennai", "Tamil Nadu", 600),
    ("Coimbatore", "Tamil Nadu", 641),
    ("Hyderabad", "Telangana", 500),
    ("Kolkata", "West Bengal", 700),
    ("Ahmedabad", "Gujarat", 380),
    ("Surat", "Gujarat", 395),
    ("Jaipur", "Rajasthan", 302),
    ("Lucknow", "Uttar Pradesh", 226),
    ("Kochi", "Kerala", 682),
    ("Bhopal", "Madhya Pradesh", 462),
    ("Chandigarh", "Chandigarh", 160),
];
const STREETS: [&str; 12] = [
    "MG Road",
    "Station Road",
    "Nehru Nagar",
    "Gandhi Marg",
    "Park Street",
    "Lake View Road",
    "Temple Street",
    "Sector 12",
    "Civil Lines",
    "Residency Road",
    "Church Street",
    "Market Road",
];
const ADDRESS_LABELS: [&str; 3] = ["Home", "Work", "Parents"];
const ADMIN_CANCEL_REASONS: [&str; 5] = [
    "Payment not received",
    "Out of stock",
    "Address not serviceable",
    "Customer unreachable",
    "Suspected fraud",
];
const CUSTOMER_CANCEL_REASONS: [&str; 4] = [
    "Ordered by mistake",
    "Found a better price",
    "Delivery takes too long",
    "Changed my mind",
];
const RETURN_REASONS: [&str; 5] = [
    "Item damaged",
    "Wrong item received",
    "Quality not as expected",
    "Size does not fit",
    "No longer needed",
];
const DELETE_REASONS: [&str; 3] = ["Duplicate order", "Test order", "Fraudulent order"];

/// A product customers can order.
struct Product {
    id: String,
    name: String,
    category: String,
    price_cents: i64,
    sku: String,
}

/// One local day of the year: its part inside the year and its orders.
struct Day {
    /// Local midnight, UTC epoch ms.
    midnight: i64,
    from: i64,
    until: i64,
    orders: u64,
}

/// How many customers place `n` orders: about one in eight, at least 10.
pub fn customers_for(n: u64) -> u64 {
    (n / 8).max(10)
}

/// `ecap seed --orders`: `n` orders over the 365 days before now, by about
/// n/8 synthetic customers (created when missing), over the catalog's active
/// products (the demo catalog first when the catalog is empty).
pub async fn orders(config: &Config, n: u64, seed: u64, progress: bool) -> anyhow::Result<u64> {
    let began = Instant::now();
    let written = orders_until(config, n, seed, ecap_core::clock::now_ms(), progress).await?;
    let secs = began.elapsed().as_secs_f64();
    println!(
        "seeded {written} orders (seed {seed}) for {} customers in {secs:.1} s ({:.0}/s)",
        customers_for(n),
        written as f64 / secs.max(1e-9)
    );
    Ok(written)
}

/// `serve --demo`: a modest order history when the orders table is empty.
pub async fn demo_orders(config: &Config) -> anyhow::Result<u64> {
    let catalog = crate::catalog_database(config, None).await?;
    let db =
        crate::orders_database(config, &[(config.catalog_database(), catalog.clone())]).await?;
    let store = order_store(&db, &catalog);
    let (_, total) = store
        .list(&ecap_orders::store::OrderQuery {
            viewer: Actor { id: 0, admin: true },
            customer: None,
            status: None,
            from: None,
            to: None,
            search: None,
            page: 1,
            limit: 1,
            hidden: false,
        })
        .await?;
    db.close().await;
    catalog.close().await;
    if total > 0 {
        return Ok(0);
    }
    let n = orders_until(
        config,
        DEMO_ORDERS,
        DEMO_ORDERS_SEED,
        ecap_core::clock::now_ms(),
        false,
    )
    .await?;
    tracing::warn!(orders = n, "demo order history created");
    Ok(n)
}

fn order_store(orders: &Db, catalog: &Db) -> OrderStore {
    let inventory = Arc::new(CatalogInventory {
        store: CatalogStore::new(catalog.clone()),
        cache: ResponseCache::off(),
    });
    OrderStore::new(orders.clone(), inventory)
}

/// [`orders`] for the 365 days before `end` (epoch ms): the same seed and
/// end give the same orders.
pub async fn orders_until(
    config: &Config,
    n: u64,
    seed: u64,
    end: i64,
    progress: bool,
) -> anyhow::Result<u64> {
    if n == 0 {
        return Ok(0);
    }
    let catalog = crate::catalog_database(config, None).await?;
    let catalog_store = CatalogStore::new(catalog.clone());
    if catalog_store.count_products().await? == 0 {
        self::catalog(config, DEMO_PRODUCTS, seed, progress).await?;
    }
    let products = active_products(&catalog_store).await?;
    if products.is_empty() {
        bail!("the catalog has no active products to order");
    }

    let mut rng = StdRng::seed_from_u64(seed ^ 0x5EED_0DE5);
    let days = plan_days(n, end, &mut rng);
    let customers = usize::try_from(customers_for(n)).context("too many customers")?;
    let buyers = plan_buyers(n, customers, &mut rng);
    let joined = joined_at(&days, &buyers, customers, end, &mut rng);

    let users = crate::users_database(config).await?;
    crate::seed_demo(&users).await?;
    let admin = ecap_users::UserStore::new(users.clone())
        .by_email(crate::DEMO_ACCOUNTS[0].1)
        .await?
        .map(|u| u.id);
    let hash = ecap_users::bulk::seed_password_hash().await?;
    let accounts: Vec<SeedCustomer> = joined
        .iter()
        .enumerate()
        .map(|(i, &joined_at)| SeedCustomer {
            k: i as u64 + 1,
            joined_at,
        })
        .collect();
    let accounts = ecap_users::bulk::seed_customers(&users, &accounts, &hash)
        .await
        .context("creating the customers")?;
    users.close().await;

    let db =
        crate::orders_database(config, &[(config.catalog_database(), catalog.clone())]).await?;
    let store = order_store(&db, &catalog);
    let bar = if progress {
        let bar = ProgressBar::new(n);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} orders {bar:40} {pos}/{len} ({per_sec}, {eta} left)",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    } else {
        ProgressBar::hidden()
    };

    // Orders are made on a thread of their own while the database writes
    // the batch before (one transaction each); one more batch waits at most.
    let chunk = ecap_orders::bulk::orders_per_transaction(db.backend());
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<HistoricOrder>>(1);
    let history = History {
        seed,
        end,
        days,
        buyers,
        customers: accounts,
        admin,
        products: Popularity::new(products, &mut rng),
    };
    let maker = tokio::task::spawn_blocking(move || history.make(rng, chunk, &tx));
    let mut written = 0u64;
    let mut import = store.history_import().await?;
    let result = async {
        while let Some(batch) = rx.recv().await {
            import.write(&batch).await.context("writing orders")?;
            written += batch.len() as u64;
            bar.set_position(written);
        }
        anyhow::Ok(())
    }
    .await;
    import.finish().await;
    drop(rx);
    maker.await.context("the order generator stopped")?;
    bar.finish_and_clear();
    db.close().await;
    catalog.close().await;
    result?;
    Ok(written)
}

/// Every active product, in a fixed order (SKU, then name) so a seed picks
/// the same ones again.
async fn active_products(store: &CatalogStore) -> anyhow::Result<Vec<Product>> {
    const PAGE: u64 = 1000;
    let mut out = Vec::new();
    for page in 1.. {
        let (rows, _) = store
            .list(&ProductQuery {
                page,
                limit: PAGE,
                category: None,
                search: None,
                min_price_cents: None,
                max_price_cents: None,
                in_stock: false,
                sort: ProductSort::CreatedAt,
                descending: false,
                status: StatusFilter::Active,
                owner_id: None,
            })
            .await?;
        let got = rows.len() as u64;
        out.extend(rows.into_iter().map(|p| Product {
            id: p.id,
            name: p.name,
            category: p.category,
            price_cents: p.price_cents,
            sku: p.sku.unwrap_or_default(),
        }));
        if got < PAGE {
            break;
        }
    }
    out.sort_by(|a, b| (&a.sku, &a.name, &a.id).cmp(&(&b.sku, &b.name, &b.id)));
    Ok(out)
}

fn weighted(rng: &mut StdRng, weights: &[u32]) -> usize {
    let total: u32 = weights.iter().sum();
    let mut pick = rng.random_range(0..total.max(1));
    for (i, w) in weights.iter().enumerate() {
        if pick < *w {
            return i;
        }
        pick -= w;
    }
    weights.len() - 1
}

/// The month (1…12) of a day counted from 1970-01-01 (Hinnant's civil_from_days).
fn month_of(day: i64) -> usize {
    let z = day + 719_468;
    let doe = z - z.div_euclid(146_097) * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    usize::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1)
}

/// Spreads `n` orders over the local days of the year before `end`: growth,
/// season, weekday, a little noise, and the hours of the first and last day
/// that fall inside the year.
fn plan_days(n: u64, end: i64, rng: &mut StdRng) -> Vec<Day> {
    let start = end - YEAR_DAYS * DAY_MS;
    let first = (start + LOCAL_OFFSET_MS).div_euclid(DAY_MS);
    let last = (end - 1 + LOCAL_OFFSET_MS).div_euclid(DAY_MS);
    let hour_total = f64::from(HOUR_WEIGHTS.iter().sum::<u32>());
    let mut days = Vec::new();
    let mut weights = Vec::new();
    for d in first..=last {
        let midnight = d * DAY_MS - LOCAL_OFFSET_MS;
        let (from, until) = (midnight.max(start), (midnight + DAY_MS).min(end));
        let covered: f64 = HOUR_WEIGHTS
            .iter()
            .enumerate()
            .map(|(h, w)| {
                let h0 = midnight + h as i64 * HOUR_MS;
                let inside = (until.min(h0 + HOUR_MS) - from.max(h0)).max(0);
                f64::from(*w) * inside as f64 / HOUR_MS as f64
            })
            .sum::<f64>()
            / hour_total;
        let progress = (d - first) as f64 / YEAR_DAYS as f64;
        let weight = YEARLY_GROWTH.powf(progress)
            * MONTH_WEIGHTS[month_of(d) - 1]
            * WEEKDAY_WEIGHTS[(d + 3).rem_euclid(7) as usize]
            * rng.random_range(0.85..1.15)
            * covered;
        days.push(Day {
            midnight,
            from,
            until,
            orders: 0,
        });
        weights.push(weight);
    }
    // Cumulative rounding: the counts add up to exactly n.
    let total: f64 = weights.iter().sum();
    let (mut sum, mut given) = (0.0, 0u64);
    for (day, w) in days.iter_mut().zip(&weights) {
        sum += w;
        let upto = ((sum / total) * n as f64).round() as u64;
        let upto = upto.min(n);
        day.orders = upto.saturating_sub(given);
        given = given.max(upto);
    }
    if let Some(day) = days.last_mut() {
        day.orders += n - given;
    }
    days
}

/// The customer (index) of each of the `n` orders in time order. Everyone
/// buys at least once while there are orders enough; about half buy once,
/// a sixth twice, and a heavy tail (a Lomax distribution, capped) buys
/// dozens or hundreds of times.
fn plan_buyers(n: u64, customers: usize, rng: &mut StdRng) -> Vec<u32> {
    let n = usize::try_from(n).unwrap_or(usize::MAX);
    if n <= customers {
        return (0..n as u32).collect();
    }
    let extra: Vec<f64> = (0..customers)
        .map(|_| {
            let u: f64 = rng.random();
            if u < 0.52 {
                0.0
            } else if u < 0.74 {
                1.0
            } else {
                let v: f64 = rng.random_range(f64::MIN_POSITIVE..1.0);
                (2.0 + (18.0 * (v.powf(-1.0 / 1.8) - 1.0)).floor()).min(400.0)
            }
        })
        .collect();
    // Scale the extra orders to add up to exactly n - customers.
    let scale = (n - customers) as f64 / extra.iter().sum::<f64>().max(1.0);
    let mut buyers = Vec::with_capacity(n);
    let (mut sum, mut given) = (0.0, 0usize);
    for (c, e) in extra.iter().enumerate() {
        sum += e;
        let upto = ((sum * scale).round() as usize).min(n - customers);
        let count = 1 + upto.saturating_sub(given);
        given = given.max(upto);
        buyers.extend(std::iter::repeat_n(c as u32, count));
    }
    buyers.resize(n, 0);
    buyers.shuffle(rng);
    buyers
}

/// When each customer signed up: before their first order (weeks at most),
/// or some time in the year for those without one.
fn joined_at(
    days: &[Day],
    buyers: &[u32],
    customers: usize,
    end: i64,
    rng: &mut StdRng,
) -> Vec<i64> {
    let mut first = vec![None; customers];
    let mut slot = 0usize;
    for day in days {
        let until = slot + day.orders as usize;
        for &c in &buyers[slot..until.min(buyers.len())] {
            first[c as usize].get_or_insert(day.from);
        }
        slot = until;
    }
    first
        .into_iter()
        .map(|f| match f {
            Some(t) => t - rng.random_range(HOUR_MS..45 * DAY_MS),
            None => end - rng.random_range(HOUR_MS..YEAR_DAYS * DAY_MS),
        })
        .collect()
}

/// The catalog with a popularity for each product: a few sell a lot, most a
/// little (Zipf-like, over a seeded shuffle).
struct Popularity {
    products: Vec<Product>,
    cumulative: Vec<f64>,
}

impl Popularity {
    fn new(products: Vec<Product>, rng: &mut StdRng) -> Self {
        let mut rank: Vec<usize> = (0..products.len()).collect();
        rank.shuffle(rng);
        let mut weights = vec![0.0; products.len()];
        for (r, &i) in rank.iter().enumerate() {
            weights[i] = 1.0 / (r as f64 + 8.0).powf(0.95);
        }
        let mut sum = 0.0;
        let cumulative = weights
            .iter()
            .map(|w| {
                sum += w;
                sum
            })
            .collect();
        Self {
            products,
            cumulative,
        }
    }

    fn pick(&self, rng: &mut StdRng) -> usize {
        let total = self.cumulative.last().copied().unwrap_or(0.0);
        let x = rng.random_range(0.0..total.max(f64::MIN_POSITIVE));
        self.cumulative
            .partition_point(|&c| c <= x)
            .min(self.products.len() - 1)
    }
}

/// What an order ends as (before the end of the year cuts its path short).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Delivered,
    Cancelled,
    RefundProcessing,
    Refunded,
    CancelRequested,
    Deleted,
}

/// An order's path being written: steps with growing times.
struct Path {
    at: i64,
    status: Status,
    admin: Option<Actor>,
    customer: Actor,
    steps: Vec<HistoricStep>,
}

impl Path {
    fn push(&mut self, after: i64, actor: Option<Actor>, change: HistoricChange) {
        self.at += after.max(60_000);
        self.steps.push(HistoricStep {
            at: self.at,
            actor,
            change,
        });
    }

    fn admin(&mut self, after: i64, to: Status, reason: Option<String>) {
        self.status = to;
        self.push(
            after,
            self.admin,
            HistoricChange::Status {
                to,
                shipment: Shipment::default(),
                reason,
            },
        );
    }

    /// The admin moves the order along the delivery path up to `target`.
    fn advance(&mut self, rng: &mut StdRng, target: Status) {
        while self.status != target {
            match self.status {
                Status::Pending => {
                    let after = hours(rng, 0.3, 18.0, 2.0);
                    self.admin(after, Status::Processing, None);
                }
                Status::Processing => {
                    let after = hours(rng, 4.0, 60.0, 1.5);
                    self.at += after;
                    let (courier, code) = COURIERS[rng.random_range(0..COURIERS.len())];
                    let shipment = Shipment {
                        tracking_number: Some(format!(
                            "{code}{:011}",
                            rng.random_range(0..100_000_000_000u64)
                        )),
                        courier_name: Some(courier.to_owned()),
                        estimated_delivery: Some(self.at + rng.random_range(2..7) * DAY_MS),
                    };
                    self.status = Status::Shipped;
                    self.push(
                        0,
                        self.admin,
                        HistoricChange::Status {
                            to: Status::Shipped,
                            shipment,
                            reason: None,
                        },
                    );
                }
                Status::Shipped => {
                    let after = hours(rng, 12.0, 96.0, 1.3);
                    self.admin(after, Status::OutForDelivery, None);
                }
                Status::OutForDelivery => {
                    let after = hours(rng, 1.0, 10.0, 1.0);
                    self.admin(after, Status::Delivered, None);
                }
                _ => return,
            }
        }
    }

    fn request(&mut self, after: i64, reason: &str) {
        self.status = Status::CancelRequested;
        let customer = Some(self.customer);
        self.push(
            after,
            customer,
            HistoricChange::RequestCancellation {
                reason: reason.to_owned(),
            },
        );
    }
}

/// Between `lo` and `hi` hours, in ms, leaning to `lo` (`skew` > 1).
fn hours(rng: &mut StdRng, lo: f64, hi: f64, skew: f64) -> i64 {
    let u: f64 = rng.random();
    ((lo + (hi - lo) * u.powf(skew)) * HOUR_MS as f64) as i64
}

fn pick_str(rng: &mut StdRng, items: &[&str]) -> String {
    items[rng.random_range(0..items.len())].to_owned()
}

/// Everything the order generator needs; it runs on a blocking thread.
struct History {
    seed: u64,
    end: i64,
    days: Vec<Day>,
    buyers: Vec<u32>,
    customers: Vec<(i64, String)>,
    admin: Option<i64>,
    products: Popularity,
}

impl History {
    /// Makes the orders in time order and hands them over in batches; stops
    /// early when the writer is gone.
    fn make(
        self,
        mut rng: StdRng,
        chunk: usize,
        out: &tokio::sync::mpsc::Sender<Vec<HistoricOrder>>,
    ) {
        let mut batch = Vec::with_capacity(chunk);
        let mut slot = 0usize;
        let mut times = Vec::new();
        for day in &self.days {
            times.clear();
            times.extend((0..day.orders).map(|_| time_in(day, &mut rng)));
            times.sort_unstable();
            for &placed_at in &times {
                let Some(&c) = self.buyers.get(slot) else {
                    break;
                };
                slot += 1;
                batch.push(self.order(c as usize, placed_at, &mut rng));
                if batch.len() == chunk {
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(chunk));
                    if out.blocking_send(full).is_err() {
                        return;
                    }
                }
            }
        }
        if !batch.is_empty() {
            let _ = out.blocking_send(batch);
        }
    }

    fn order(&self, c: usize, placed_at: i64, rng: &mut StdRng) -> HistoricOrder {
        let (user_id, email) = &self.customers[c];
        let k = c as u64 + 1;
        let profile = mix(self.seed ^ mix(k));
        let payment = if rng.random_bool(0.65) {
            weighted_by(profile, &PAYMENT_WEIGHTS)
        } else {
            weighted(rng, &PAYMENT_WEIGHTS)
        };
        let addresses = 1 + profile % 3;
        let address = match rng.random_range(0..100) {
            0..75 => 0,
            75..95 => 1,
            _ => 2,
        }
        .min(addresses - 1);
        let count = (1 + weighted(rng, &LINE_WEIGHTS)).min(self.products.products.len());
        let mut chosen: Vec<usize> = Vec::with_capacity(count);
        for _ in 0..count * 4 {
            let p = self.products.pick(rng);
            if !chosen.contains(&p) {
                chosen.push(p);
                if chosen.len() == count {
                    break;
                }
            }
        }
        let lines: Vec<ReservedLine> = chosen
            .iter()
            .map(|&i| {
                let p = &self.products.products[i];
                ReservedLine {
                    product_id: p.id.clone(),
                    name: p.name.clone(),
                    category: p.category.clone(),
                    quantity: 1 + weighted(rng, &QUANTITY_WEIGHTS) as i64,
                    unit_price_cents: p.price_cents,
                }
            })
            .collect();
        let method = PAYMENT_METHODS[payment];
        let customer = Actor {
            id: *user_id,
            admin: false,
        };
        let mut steps = self.path(rng, placed_at, customer, method == "cod");
        steps.retain(|s| s.at <= self.end);
        HistoricOrder {
            user_id: *user_id,
            user_email: Some(email.clone()),
            lines,
            payment_method: method.to_owned(),
            shipping_address: shipping_address(self.seed, k, address),
            placed_at,
            steps,
        }
    }

    /// The order's whole intended path; the caller cuts what lies after the end.
    fn path(
        &self,
        rng: &mut StdRng,
        placed_at: i64,
        customer: Actor,
        cod: bool,
    ) -> Vec<HistoricStep> {
        // Cash on delivery is cancelled more often (≈ 11 % against 6 %):
        // 7 % of all orders end cancelled.
        let cancelled = 0.07 * if cod { 1.6 } else { 0.85 };
        let u: f64 = rng.random();
        let outcome = [
            (0.005, Outcome::Deleted),
            (0.01, Outcome::CancelRequested),
            (0.01, Outcome::RefundProcessing),
            (0.02, Outcome::Refunded),
            (cancelled, Outcome::Cancelled),
        ]
        .iter()
        .scan(0.0, |acc, &(p, o)| {
            *acc += p;
            Some((*acc, o))
        })
        .find(|&(upto, _)| u < upto)
        .map_or(Outcome::Delivered, |(_, o)| o);
        let mut path = Path {
            at: placed_at,
            status: Status::Pending,
            admin: self.admin.map(|id| Actor { id, admin: true }),
            customer,
            steps: Vec::with_capacity(6),
        };
        let before_shipping = |rng: &mut StdRng| {
            if rng.random_bool(0.5) {
                Status::Pending
            } else {
                Status::Processing
            }
        };
        match outcome {
            Outcome::Delivered => {
                // One in fifty customers asks to cancel and is turned down.
                if rng.random_bool(0.02) {
                    let (stage, asked, refused) = if rng.random_bool(0.7) {
                        let stage = before_shipping(rng);
                        (stage, &CUSTOMER_CANCEL_REASONS[..], "Order already packed")
                    } else {
                        (
                            Status::Delivered,
                            &RETURN_REASONS[..],
                            "Item shows signs of use",
                        )
                    };
                    path.advance(rng, stage);
                    let after = hours(rng, 1.0, 30.0, 1.5);
                    path.request(after, &pick_str(rng, asked));
                    path.status = stage;
                    let after = hours(rng, 1.0, 24.0, 1.5);
                    path.push(
                        after,
                        path.admin,
                        HistoricChange::RejectCancellation {
                            reason: refused.to_owned(),
                        },
                    );
                }
                path.advance(rng, Status::Delivered);
            }
            Outcome::Cancelled | Outcome::RefundProcessing | Outcome::Refunded => {
                let route: f64 = rng.random();
                if route < 0.55 {
                    let stage = match rng.random_range(0..100) {
                        0..40 => Status::Pending,
                        40..75 => Status::Processing,
                        75..90 => Status::Shipped,
                        _ => Status::OutForDelivery,
                    };
                    path.advance(rng, stage);
                    let after = hours(rng, 0.5, 36.0, 1.5);
                    let reason = pick_str(rng, &ADMIN_CANCEL_REASONS);
                    path.admin(after, Status::Cancelled, Some(reason));
                } else {
                    let (reason, after) = if route < 0.85 {
                        let stage = before_shipping(rng);
                        path.advance(rng, stage);
                        (
                            pick_str(rng, &CUSTOMER_CANCEL_REASONS),
                            hours(rng, 0.2, 20.0, 2.0),
                        )
                    } else {
                        path.advance(rng, Status::Delivered);
                        (pick_str(rng, &RETURN_REASONS), hours(rng, 2.0, 150.0, 1.5))
                    };
                    path.request(after, &reason);
                    let after = hours(rng, 1.0, 60.0, 1.5);
                    path.status = Status::Cancelled;
                    path.push(after, path.admin, HistoricChange::ApproveCancellation);
                }
                if outcome != Outcome::Cancelled {
                    let after = hours(rng, 2.0, 72.0, 1.5);
                    path.admin(after, Status::RefundProcessing, None);
                    if outcome == Outcome::Refunded {
                        let after = hours(rng, 24.0, 168.0, 1.2);
                        path.admin(after, Status::Refunded, None);
                    }
                }
            }
            Outcome::CancelRequested => {
                let (stage, reason) = if rng.random_bool(0.7) {
                    (
                        before_shipping(rng),
                        pick_str(rng, &CUSTOMER_CANCEL_REASONS),
                    )
                } else {
                    (Status::Delivered, pick_str(rng, &RETURN_REASONS))
                };
                path.advance(rng, stage);
                let after = if stage == Status::Delivered {
                    hours(rng, 2.0, 150.0, 1.5)
                } else {
                    hours(rng, 0.2, 20.0, 2.0)
                };
                path.request(after, &reason);
            }
            Outcome::Deleted => {
                if rng.random_bool(0.4) {
                    let after = hours(rng, 0.5, 24.0, 1.5);
                    let reason = pick_str(rng, &ADMIN_CANCEL_REASONS);
                    path.admin(after, Status::Cancelled, Some(reason));
                }
                let after = hours(rng, 0.5, 72.0, 1.5);
                let reason = Some(pick_str(rng, &DELETE_REASONS));
                path.status = Status::Deleted;
                path.push(after, path.admin, HistoricChange::Delete { reason });
            }
        }
        path.steps
    }
}

/// A time inside the day's part of the year, busier in the evening.
fn time_in(day: &Day, rng: &mut StdRng) -> i64 {
    for _ in 0..64 {
        let hour = weighted(rng, &HOUR_WEIGHTS) as i64;
        let t = day.midnight + hour * HOUR_MS + rng.random_range(0..HOUR_MS);
        if (day.from..day.until).contains(&t) {
            return t;
        }
    }
    rng.random_range(day.from..day.until.max(day.from + 1))
}

/// SplitMix64's finaliser: a customer's fixed traits from their number.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A weighted choice made by a hash instead of a generator.
fn weighted_by(hash: u64, weights: &[u32]) -> usize {
    let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
    let mut pick = (hash >> 11) % total.max(1);
    for (i, &w) in weights.iter().enumerate() {
        if pick < u64::from(w) {
            return i;
        }
        pick -= u64::from(w);
    }
    weights.len() - 1
}

/// Address `index` of seeded customer `k`, as an order copies a saved one.
fn shipping_address(seed: u64, k: u64, index: u64) -> serde_json::Value {
    let h = mix(seed ^ mix(k) ^ (index + 1).wrapping_mul(0x51_7CC1_B727_220A));
    let (city, state, zip) = CITIES[(h % CITIES.len() as u64) as usize];
    let street = STREETS[((h >> 8) % STREETS.len() as u64) as usize];
    let address = ShippingAddress {
        label: Some(ADDRESS_LABELS[index as usize % ADDRESS_LABELS.len()].to_owned()),
        street: format!("{}, {street}", 1 + (h >> 16) % 250),
        city: city.to_owned(),
        state: state.to_owned(),
        zip_code: format!("{zip}{:03}", (h >> 32) % 100),
        country: "India".to_owned(),
        phone: ecap_users::bulk::seed_phone(k),
    };
    serde_json::to_value(address).unwrap_or(serde_json::Value::Null)
}
