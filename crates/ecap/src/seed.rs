//! Demo data: the demo accounts and a generated catalog (`ecap seed`,
//! `ecap serve --demo`).

use std::time::{Duration, Instant};

use anyhow::Context;
use ecap_catalog::{CatalogStore, demo, store::NewProduct};
use ecap_core::{
    config::{Config, Shape},
    db::Db,
};
use indicatif::{ProgressBar, ProgressStyle};

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
/// empty catalog.
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
