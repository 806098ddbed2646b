//! Synthetic customer accounts in bulk, for demo data (`ecap seed --orders`):
//! `customer<k>@seed.ecap.local`, the same name and phone for the same `k`,
//! all with one password.

use std::collections::HashMap;

use ecap_core::{auth::Role, db::Db, retrying};
use sea_query::{Expr, ExprTrait, Iden, OnConflict, Query};

use crate::{
    password::{HashError, Hasher},
    store::{StoreError, StoreResult},
};

/// The password of every seeded customer account. Demo data only: anyone who
/// reads this can sign in as any of them.
pub const SEED_PASSWORD: &str = "Customer123!";

/// Accounts per statement: nine columns each stays under every backend's
/// bind-parameter limit (SQLite's 32,766 the lowest).
const BATCH: usize = 2000;

#[derive(Iden, Clone, Copy)]
enum Users {
    Table,
    Id,
    Email,
    PasswordHash,
    Name,
    Phone,
    Role,
    TokenVersion,
    FailedLogins,
    CreatedAt,
    UpdatedAt,
}

const FIRST_NAMES: [&str; 48] = [
    "Aarav",
    "Aditi",
    "Aditya",
    "Ananya",
    "Arjun",
    "Diya",
    "Ishaan",
    "Kavya",
    "Krishna",
    "Meera",
    "Neha",
    "Nikhil",
    "Pooja",
    "Priya",
    "Rahul",
    "Riya",
    "Rohan",
    "Saanvi",
    "Sahil",
    "Sanjay",
    "Shreya",
    "Siddharth",
    "Sneha",
    "Tanvi",
    "Varun",
    "Vikram",
    "Vivaan",
    "Zara",
    "Amit",
    "Anjali",
    "Deepak",
    "Divya",
    "Farhan",
    "Gaurav",
    "Harini",
    "Imran",
    "Jyoti",
    "Karan",
    "Lakshmi",
    "Manish",
    "Nisha",
    "Omkar",
    "Pallavi",
    "Rajesh",
    "Sunita",
    "Tarun",
    "Usha",
    "Yash",
];

const LAST_NAMES: [&str; 32] = [
    "Sharma",
    "Verma",
    "Patel",
    "Reddy",
    "Iyer",
    "Nair",
    "Gupta",
    "Singh",
    "Kumar",
    "Das",
    "Mehta",
    "Joshi",
    "Rao",
    "Menon",
    "Chopra",
    "Kapoor",
    "Banerjee",
    "Mukherjee",
    "Pillai",
    "Desai",
    "Shah",
    "Agarwal",
    "Bose",
    "Chatterjee",
    "Khan",
    "Malhotra",
    "Naidu",
    "Pandey",
    "Saxena",
    "Thakur",
    "Fernandes",
    "D'Souza",
];

/// The e-mail address of seeded customer `k`.
pub fn seed_email(k: u64) -> String {
    format!("customer{k}@seed.ecap.local")
}

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The name of seeded customer `k`.
pub fn seed_name(k: u64) -> String {
    let h = mix(k);
    let first = FIRST_NAMES[(h % FIRST_NAMES.len() as u64) as usize];
    let last = LAST_NAMES[((h >> 16) % LAST_NAMES.len() as u64) as usize];
    format!("{first} {last}")
}

/// The mobile number of seeded customer `k`.
pub fn seed_phone(k: u64) -> String {
    let h = mix(k ^ 0x5EED);
    format!("+91 {}{:09}", 6 + h % 4, (h >> 8) % 1_000_000_000)
}

/// The hash of [`SEED_PASSWORD`], computed once for all the accounts.
pub async fn seed_password_hash() -> Result<String, HashError> {
    Hasher::new(1)?.hash(SEED_PASSWORD).await
}

/// A seeded customer to create: number `k`, signed up at `joined_at`.
#[derive(Debug, Clone, Copy)]
pub struct SeedCustomer {
    pub k: u64,
    pub joined_at: i64,
}

/// Creates the seeded customer accounts that do not exist yet (role
/// customer, e-mail [`seed_email`], name [`seed_name`], phone [`seed_phone`],
/// password [`SEED_PASSWORD`] whose hash the caller passes, see
/// [`seed_password_hash`]); existing addresses are kept as they are, so runs
/// can be repeated. Returns every account's `(id, email)`, in the order given.
pub async fn seed_customers(
    db: &Db,
    customers: &[SeedCustomer],
    password_hash: &str,
) -> StoreResult<Vec<(i64, String)>> {
    let mut out = Vec::with_capacity(customers.len());
    for batch in customers.chunks(BATCH) {
        out.extend(retrying!(insert_batch(db, batch, password_hash).await)?);
    }
    Ok(out)
}

async fn insert_batch(
    db: &Db,
    batch: &[SeedCustomer],
    password_hash: &str,
) -> StoreResult<Vec<(i64, String)>> {
    let emails: Vec<String> = batch.iter().map(|c| seed_email(c.k)).collect();
    let mut insert = Query::insert();
    insert
        .into_table(Users::Table)
        .columns([
            Users::Email,
            Users::PasswordHash,
            Users::Name,
            Users::Phone,
            Users::Role,
            Users::TokenVersion,
            Users::FailedLogins,
            Users::CreatedAt,
            Users::UpdatedAt,
        ])
        // `id = id` on MySQL, which has no DO NOTHING: the row stays as it is.
        .on_conflict(
            OnConflict::column(Users::Email)
                .do_nothing_on([Users::Id])
                .to_owned(),
        );
    for (c, email) in batch.iter().zip(&emails) {
        insert.values_panic([
            email.clone().into(),
            password_hash.into(),
            seed_name(c.k).into(),
            seed_phone(c.k).into(),
            Role::Customer.as_str().into(),
            0i64.into(),
            0i64.into(),
            c.joined_at.into(),
            c.joined_at.into(),
        ]);
    }
    let mut tx = db.begin().await?;
    db.execute(&mut *tx, &insert).await?;
    let found: Vec<(i64, String)> = db
        .fetch_all(
            &mut *tx,
            &Query::select()
                .columns([Users::Id, Users::Email])
                .from(Users::Table)
                .and_where(Expr::col(Users::Email).is_in(emails.iter().cloned()))
                .to_owned(),
        )
        .await?;
    tx.commit().await?;
    // MySQL compares e-mails without regard to case; seeded ones are lower case.
    let by_email: HashMap<String, i64> = found
        .into_iter()
        .map(|(id, email)| (email.to_lowercase(), id))
        .collect();
    emails
        .into_iter()
        .map(|email| match by_email.get(&email) {
            Some(&id) => Ok((id, email)),
            None => Err(StoreError::NotFound),
        })
        .collect()
}
