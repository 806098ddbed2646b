//! Persistence of the users service: one set of queries for SQLite, PostgreSQL
//! and MySQL/MariaDB, built with sea-query.

use ecap_core::{
    auth::Role,
    clock,
    db::{Backend, Db, DbError},
    retrying,
};
use sea_query::{
    Cond, Expr, ExprTrait, Func, Iden, LockType, OnConflict, Order, Query, SelectStatement,
};
use sqlx::{Any, AnyConnection, Transaction};
use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

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
    LockedUntil,
    CreatedAt,
    UpdatedAt,
}

#[derive(Iden, Clone, Copy)]
enum UserAddresses {
    Table,
    Id,
    UserId,
    Label,
    Street,
    City,
    State,
    ZipCode,
    Country,
    Phone,
    IsDefault,
    CreatedAt,
    UpdatedAt,
}

#[derive(Iden, Clone, Copy)]
enum RevokedTokens {
    Table,
    Jti,
    UserId,
    ExpiresAt,
}

#[derive(Iden, Clone, Copy)]
enum RevokedUsers {
    Table,
    UserId,
    MinVersion,
    RevokedAt,
}

#[derive(Iden, Clone, Copy)]
enum AdminBootstrap {
    Table,
    Id,
    UserEmail,
    CreatedAt,
}

const USER_COLUMNS: [Users; 11] = [
    Users::Id,
    Users::Email,
    Users::PasswordHash,
    Users::Name,
    Users::Phone,
    Users::Role,
    Users::TokenVersion,
    Users::FailedLogins,
    Users::LockedUntil,
    Users::CreatedAt,
    Users::UpdatedAt,
];

const ADDRESS_COLUMNS: [UserAddresses; 12] = [
    UserAddresses::Id,
    UserAddresses::UserId,
    UserAddresses::Label,
    UserAddresses::Street,
    UserAddresses::City,
    UserAddresses::State,
    UserAddresses::ZipCode,
    UserAddresses::Country,
    UserAddresses::Phone,
    UserAddresses::IsDefault,
    UserAddresses::CreatedAt,
    UserAddresses::UpdatedAt,
];

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    pub id: i64,
    pub email: String,
    pub password_hash: String,
    pub name: String,
    pub phone: Option<String>,
    pub role: String,
    pub token_version: i64,
    pub failed_logins: i64,
    pub locked_until: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl UserRow {
    /// The stored role; an unknown value (edited by hand) reads as the least privileged.
    pub fn role(&self) -> Role {
        Role::parse(&self.role).unwrap_or(Role::Customer)
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AddressRow {
    pub id: i64,
    pub user_id: i64,
    pub label: String,
    pub street: String,
    pub city: String,
    pub state: String,
    pub zip_code: String,
    pub country: String,
    pub phone: String,
    pub is_default: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("email already in use")]
    EmailTaken,
    #[error("an admin already exists")]
    BootstrapClosed,
    #[error("the last admin cannot lose the role")]
    LastAdmin,
    /// The caller of an admin-only change is no longer an admin.
    #[error("the caller is no longer an admin")]
    NotAdmin,
    /// A confirmed bulk change would now touch this many rows instead.
    #[error("{0} rows match now")]
    CountChanged(i64),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        Self::Db(DbError::Sqlx(e))
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

impl ecap_core::db::Retryable for StoreError {
    fn is_retryable(&self) -> bool {
        matches!(self, Self::Db(e) if e.is_retryable())
    }
}

pub struct NewUser {
    pub email: String,
    pub password_hash: String,
    pub name: String,
    pub phone: Option<String>,
    pub role: Role,
}

/// Sort keys the admin user list accepts (`-` prefix for descending).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserSort {
    CreatedAt,
    Name,
    Email,
    Role,
}

pub struct UserListQuery {
    pub page: u64,
    pub limit: u64,
    pub role: Option<Role>,
    pub search: Option<String>,
    pub sort: UserSort,
    pub descending: bool,
}

/// A partial profile change; `None` keeps the stored value.
#[derive(Default)]
pub struct UserChanges {
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<Option<String>>,
}

/// Address fields after validation; `None` keeps the stored value on update.
#[derive(Default, Clone)]
pub struct AddressFields {
    pub label: Option<String>,
    pub street: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub zip_code: Option<String>,
    pub country: Option<String>,
    pub phone: Option<String>,
}

/// Users by id, kept in this process. Only used where this process is the only
/// writer (SQLite: one file, one server); writers invalidate after commit, and
/// a read that raced a write is not cached (the write epoch moved).
#[derive(Debug)]
struct UserCache {
    rows: moka::sync::Cache<i64, Arc<UserRow>>,
    epoch: AtomicU64,
}

#[derive(Clone, Debug)]
pub struct UserStore {
    db: Db,
    cache: Option<Arc<UserCache>>,
}

impl UserStore {
    /// A store over `db`; on SQLite users read by id are cached in memory.
    pub fn new(db: Db) -> Self {
        let cache = (db.backend() == Backend::Sqlite).then(|| {
            Arc::new(UserCache {
                rows: moka::sync::Cache::builder()
                    .max_capacity(100_000)
                    .time_to_live(std::time::Duration::from_secs(600))
                    .build(),
                epoch: AtomicU64::new(0),
            })
        });
        Self { db, cache }
    }

    /// The database this store runs on.
    pub fn backend(&self) -> Backend {
        self.db.backend()
    }

    /// Called after a committed change to a user row (`None`: several rows).
    fn changed(&self, id: Option<i64>) {
        if let Some(c) = &self.cache {
            c.epoch.fetch_add(1, Ordering::AcqRel);
            match id {
                Some(id) => c.rows.invalidate(&id),
                None => c.rows.invalidate_all(),
            }
        }
    }

    fn select_user() -> SelectStatement {
        Query::select()
            .columns(USER_COLUMNS)
            .from(Users::Table)
            .to_owned()
    }

    /// `FOR UPDATE` where the backend has row locks; SQLite's `BEGIN IMMEDIATE`
    /// already holds the only write lock.
    fn for_update(&self, stmt: &mut SelectStatement) {
        if self.db.backend() != Backend::Sqlite {
            stmt.lock(LockType::Update);
        }
    }

    /// Serialises changes to one user's rows (addresses, role) across transactions.
    async fn lock_user(&self, conn: &mut AnyConnection, user_id: i64) -> StoreResult<()> {
        let touched = self
            .db
            .execute(
                &mut *conn,
                &Query::update()
                    .table(Users::Table)
                    .value(Users::UpdatedAt, Expr::col(Users::UpdatedAt))
                    .and_where(Expr::col(Users::Id).eq(user_id))
                    .to_owned(),
            )
            .await?;
        // MySQL counts only changed rows; an unchanged row is still locked.
        if touched == 0 && self.db.backend() != Backend::MySql {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    pub async fn by_id(&self, id: i64) -> StoreResult<Option<UserRow>> {
        let epoch = self
            .cache
            .as_ref()
            .map(|c| (c.rows.get(&id), c.epoch.load(Ordering::Acquire)));
        if let Some((Some(row), _)) = &epoch {
            return Ok(Some(UserRow::clone(row)));
        }
        let row: Option<UserRow> = self
            .db
            .fetch_optional(
                self.db.pool(),
                &Self::select_user()
                    .and_where(Expr::col(Users::Id).eq(id))
                    .to_owned(),
            )
            .await?;
        if let (Some(c), Some((_, before)), Some(r)) = (&self.cache, epoch, &row)
            && c.epoch.load(Ordering::Acquire) == before
        {
            c.rows.insert(id, Arc::new(r.clone()));
        }
        Ok(row)
    }

    pub async fn by_email(&self, email: &str) -> StoreResult<Option<UserRow>> {
        Ok(self
            .db
            .fetch_optional(
                self.db.pool(),
                &Self::select_user()
                    .and_where(Expr::col(Users::Email).eq(email))
                    .to_owned(),
            )
            .await?)
    }

    async fn by_id_in(&self, conn: &mut AnyConnection, id: i64) -> StoreResult<UserRow> {
        self.db
            .fetch_optional(
                &mut *conn,
                &Self::select_user()
                    .and_where(Expr::col(Users::Id).eq(id))
                    .to_owned(),
            )
            .await?
            .ok_or(StoreError::NotFound)
    }

    async fn admin_count(&self, conn: &mut AnyConnection, lock: bool) -> StoreResult<i64> {
        let mut stmt = Query::select()
            .column(Users::Id)
            .from(Users::Table)
            .and_where(Expr::col(Users::Role).eq(Role::Admin.as_str()))
            .to_owned();
        if lock {
            self.for_update(&mut stmt);
        }
        let ids: Vec<(i64,)> = self.db.fetch_all(&mut *conn, &stmt).await?;
        Ok(ids.len() as i64)
    }

    /// Whether any account holds the admin role.
    pub async fn admin_exists(&self) -> StoreResult<bool> {
        let row: Option<(i64,)> = self
            .db
            .fetch_optional(
                self.db.pool(),
                &Query::select()
                    .column(Users::Id)
                    .from(Users::Table)
                    .and_where(Expr::col(Users::Role).eq(Role::Admin.as_str()))
                    .limit(1)
                    .to_owned(),
            )
            .await?;
        Ok(row.is_some())
    }

    /// Creates a user. With `bootstrap`, an admin is created only while none
    /// exists, once: the `admin_bootstrap` row makes a second attempt conflict.
    pub async fn create(&self, new: NewUser, bootstrap: bool) -> StoreResult<UserRow> {
        retrying!(self.create_once(&new, bootstrap).await)
    }

    async fn create_once(&self, new: &NewUser, bootstrap: bool) -> StoreResult<UserRow> {
        let mut tx = self.db.begin().await?;
        let now = clock::now_ms();
        if bootstrap && new.role == Role::Admin {
            // The bootstrap row's key decides races; the count only closes the
            // door once an admin exists by other means (CLI, admin API).
            if self.admin_count(&mut tx, false).await? > 0 {
                return Err(StoreError::BootstrapClosed);
            }
            let claim = Query::insert()
                .into_table(AdminBootstrap::Table)
                .columns([
                    AdminBootstrap::Id,
                    AdminBootstrap::UserEmail,
                    AdminBootstrap::CreatedAt,
                ])
                .values_panic([1.into(), new.email.clone().into(), now.into()])
                .to_owned();
            if let Err(e) = self.db.execute(&mut *tx, &claim).await {
                return Err(if e.is_unique_violation() {
                    StoreError::BootstrapClosed
                } else {
                    e.into()
                });
            }
        }
        let insert = Query::insert()
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
            .values_panic([
                new.email.clone().into(),
                new.password_hash.clone().into(),
                new.name.clone().into(),
                new.phone.clone().into(),
                new.role.as_str().into(),
                0i64.into(),
                0i64.into(),
                now.into(),
                now.into(),
            ])
            .to_owned();
        let id = match self.db.insert_returning_id(&mut tx, insert).await {
            Ok(id) => id,
            Err(e) if e.is_unique_violation() => return Err(StoreError::EmailTaken),
            Err(e) => return Err(e.into()),
        };
        let row = self.by_id_in(&mut tx, id).await?;
        tx.commit().await?;
        Ok(row)
    }

    pub async fn list(&self, q: &UserListQuery) -> StoreResult<(Vec<UserRow>, i64)> {
        let mut cond = Cond::all();
        if let Some(role) = q.role {
            cond = cond.add(Expr::col(Users::Role).eq(role.as_str()));
        }
        if let Some(search) = q.search.as_deref().filter(|s| !s.trim().is_empty()) {
            let pattern = ecap_core::db::contains_pattern(search.trim());
            cond = cond.add(
                Cond::any()
                    .add(
                        Expr::expr(Func::lower(Expr::col(Users::Name)))
                            .like(sea_query::LikeExpr::new(pattern.clone()).escape('\\')),
                    )
                    .add(
                        Expr::col(Users::Email)
                            .like(sea_query::LikeExpr::new(pattern).escape('\\')),
                    ),
            );
        }
        let (count,): (i64,) = self
            .db
            .fetch_one(
                self.db.pool(),
                &Query::select()
                    .expr(Func::count(Expr::col(Users::Id)))
                    .from(Users::Table)
                    .cond_where(cond.clone())
                    .to_owned(),
            )
            .await?;
        let order = if q.descending {
            Order::Desc
        } else {
            Order::Asc
        };
        let column = match q.sort {
            UserSort::CreatedAt => Users::CreatedAt,
            UserSort::Name => Users::Name,
            UserSort::Email => Users::Email,
            UserSort::Role => Users::Role,
        };
        let rows = self
            .db
            .fetch_all(
                self.db.pool(),
                &Self::select_user()
                    .cond_where(cond)
                    .order_by(column, order.clone())
                    .order_by(Users::Id, order)
                    .limit(q.limit)
                    .offset((q.page - 1) * q.limit)
                    .to_owned(),
            )
            .await?;
        Ok((rows, count))
    }

    pub async fn update(&self, id: i64, changes: UserChanges) -> StoreResult<UserRow> {
        let mut stmt = Query::update();
        stmt.table(Users::Table)
            .value(Users::UpdatedAt, clock::now_ms())
            .and_where(Expr::col(Users::Id).eq(id));
        if let Some(name) = changes.name {
            stmt.value(Users::Name, name);
        }
        if let Some(email) = changes.email {
            stmt.value(Users::Email, email);
        }
        if let Some(phone) = changes.phone {
            stmt.value(Users::Phone, phone);
        }
        let mut tx = self.db.begin().await?;
        match self.db.execute(&mut *tx, &stmt).await {
            Ok(_) => {}
            Err(e) if e.is_unique_violation() => return Err(StoreError::EmailTaken),
            Err(e) => return Err(e.into()),
        }
        let row = self.by_id_in(&mut tx, id).await?;
        tx.commit().await?;
        self.changed(Some(id));
        Ok(row)
    }

    /// Raises the user's token generation and records the floor; returns the new generation.
    async fn bump_version(&self, tx: &mut Transaction<'static, Any>, id: i64) -> StoreResult<i64> {
        let now = clock::now_ms();
        self.db
            .execute(
                &mut **tx,
                &Query::update()
                    .table(Users::Table)
                    .value(Users::TokenVersion, Expr::col(Users::TokenVersion).add(1))
                    .value(Users::UpdatedAt, now)
                    .and_where(Expr::col(Users::Id).eq(id))
                    .to_owned(),
            )
            .await?;
        let version = self.by_id_in(tx, id).await?.token_version;
        self.record_floor(tx, id, version).await?;
        Ok(version)
    }

    async fn record_floor(
        &self,
        conn: &mut AnyConnection,
        user_id: i64,
        min_version: i64,
    ) -> StoreResult<()> {
        self.db
            .execute(
                conn,
                &Query::insert()
                    .into_table(RevokedUsers::Table)
                    .columns([
                        RevokedUsers::UserId,
                        RevokedUsers::MinVersion,
                        RevokedUsers::RevokedAt,
                    ])
                    .values_panic([user_id.into(), min_version.into(), clock::now_ms().into()])
                    .on_conflict(
                        OnConflict::column(RevokedUsers::UserId)
                            .update_columns([RevokedUsers::MinVersion, RevokedUsers::RevokedAt])
                            .to_owned(),
                    )
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    /// Stores a new password hash. With `revoke_sessions`, every token issued
    /// before is refused from now on; returns the generation new tokens carry.
    pub async fn set_password(
        &self,
        id: i64,
        hash: &str,
        revoke_sessions: bool,
    ) -> StoreResult<i64> {
        let mut tx = self.db.begin().await?;
        self.db
            .execute(
                &mut *tx,
                &Query::update()
                    .table(Users::Table)
                    .value(Users::PasswordHash, hash)
                    .value(Users::UpdatedAt, clock::now_ms())
                    .and_where(Expr::col(Users::Id).eq(id))
                    .to_owned(),
            )
            .await?;
        let version = if revoke_sessions {
            self.bump_version(&mut tx, id).await?
        } else {
            self.by_id_in(&mut tx, id).await?.token_version
        };
        tx.commit().await?;
        self.changed(Some(id));
        Ok(version)
    }

    /// Changes a role, refusing to demote the last admin; revokes the user's tokens.
    pub async fn set_role(&self, id: i64, role: Role) -> StoreResult<UserRow> {
        retrying!(self.set_role_once(id, role).await)
    }

    async fn set_role_once(&self, id: i64, role: Role) -> StoreResult<UserRow> {
        let mut tx = self.db.begin().await?;
        let admins = self.admin_count(&mut tx, true).await?;
        let current = self.by_id_in(&mut tx, id).await?;
        if current.role() == role {
            tx.commit().await?;
            return Ok(current);
        }
        if current.role() == Role::Admin && admins <= 1 {
            return Err(StoreError::LastAdmin);
        }
        self.db
            .execute(
                &mut *tx,
                &Query::update()
                    .table(Users::Table)
                    .value(Users::Role, role.as_str())
                    .and_where(Expr::col(Users::Id).eq(id))
                    .to_owned(),
            )
            .await?;
        self.bump_version(&mut tx, id).await?;
        let row = self.by_id_in(&mut tx, id).await?;
        tx.commit().await?;
        self.changed(Some(id));
        Ok(row)
    }

    /// Deletes a user (addresses cascade) and refuses their tokens for good.
    pub async fn delete(&self, id: i64) -> StoreResult<UserRow> {
        let mut tx = self.db.begin().await?;
        let row = self.by_id_in(&mut tx, id).await?;
        if row.role() == Role::Admin && self.admin_count(&mut tx, true).await? <= 1 {
            return Err(StoreError::LastAdmin);
        }
        self.delete_rows(&mut tx, &[id]).await?;
        tx.commit().await?;
        self.changed(Some(id));
        Ok(row)
    }

    async fn delete_rows(
        &self,
        tx: &mut Transaction<'static, Any>,
        ids: &[i64],
    ) -> StoreResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        // Addresses go explicitly too: SQLite enforces the cascade only with the
        // foreign_keys pragma, and being explicit costs nothing.
        self.db
            .execute(
                &mut **tx,
                &Query::delete()
                    .from_table(UserAddresses::Table)
                    .and_where(Expr::col(UserAddresses::UserId).is_in(ids.iter().copied()))
                    .to_owned(),
            )
            .await?;
        self.db
            .execute(
                &mut **tx,
                &Query::delete()
                    .from_table(Users::Table)
                    .and_where(Expr::col(Users::Id).is_in(ids.iter().copied()))
                    .to_owned(),
            )
            .await?;
        for id in ids {
            self.record_floor(tx, *id, i64::MAX).await?;
        }
        Ok(())
    }

    fn bulk_delete_filter(caller: i64, include_admins: bool) -> Cond {
        let mut cond = Cond::all().add(Expr::col(Users::Id).ne(caller));
        if !include_admins {
            cond = cond.add(Expr::col(Users::Role).ne(Role::Admin.as_str()));
        }
        cond
    }

    /// What [`UserStore::delete_all`] would delete now: accounts per role.
    pub async fn delete_all_preview(
        &self,
        caller: i64,
        include_admins: bool,
    ) -> StoreResult<Vec<(String, i64)>> {
        Ok(self
            .db
            .fetch_all(
                self.db.pool(),
                &Query::select()
                    .column(Users::Role)
                    .expr(Func::count(Expr::col(Users::Id)))
                    .from(Users::Table)
                    .cond_where(Self::bulk_delete_filter(caller, include_admins))
                    .group_by_col(Users::Role)
                    .order_by(Users::Role, Order::Asc)
                    .to_owned(),
            )
            .await?)
    }

    /// Deletes every user but the caller; admins only with `include_admins`.
    /// `confirm`: the number of accounts the caller expects to delete; any
    /// other number deletes nothing (`CountChanged`). The caller must still
    /// be an admin, and stays one until the deletion commits (their row is
    /// locked), so the shop is never left without an admin.
    pub async fn delete_all(
        &self,
        caller: i64,
        include_admins: bool,
        confirm: Option<i64>,
    ) -> StoreResult<Vec<UserRow>> {
        retrying!(self.delete_all_once(caller, include_admins, confirm).await)
    }

    async fn delete_all_once(
        &self,
        caller: i64,
        include_admins: bool,
        confirm: Option<i64>,
    ) -> StoreResult<Vec<UserRow>> {
        let mut tx = self.db.begin().await?;
        let mut me = Self::select_user()
            .and_where(Expr::col(Users::Id).eq(caller))
            .to_owned();
        self.for_update(&mut me);
        let me: Option<UserRow> = self.db.fetch_optional(&mut *tx, &me).await?;
        if me.is_none_or(|u| u.role() != Role::Admin) {
            return Err(StoreError::NotAdmin);
        }
        let mut select = Self::select_user()
            .cond_where(Self::bulk_delete_filter(caller, include_admins))
            .to_owned();
        self.for_update(&mut select);
        let rows: Vec<UserRow> = self.db.fetch_all(&mut *tx, &select).await?;
        if let Some(expected) = confirm
            && expected != rows.len() as i64
        {
            return Err(StoreError::CountChanged(rows.len() as i64));
        }
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        for chunk in ids.chunks(500) {
            self.delete_rows(&mut tx, chunk).await?;
        }
        tx.commit().await?;
        self.changed(None);
        Ok(rows)
    }

    /// Counts a failed login; at `max` failures in a row the account locks until
    /// `now + lockout_ms`. Returns the lock's end when this failure set it.
    pub async fn record_login_failure(
        &self,
        id: i64,
        max: u32,
        lockout_ms: i64,
    ) -> StoreResult<Option<i64>> {
        let mut tx = self.db.begin().await?;
        self.db
            .execute(
                &mut *tx,
                &Query::update()
                    .table(Users::Table)
                    .value(Users::FailedLogins, Expr::col(Users::FailedLogins).add(1))
                    .and_where(Expr::col(Users::Id).eq(id))
                    .to_owned(),
            )
            .await?;
        let until = clock::now_ms() + lockout_ms;
        let locked = self
            .db
            .execute(
                &mut *tx,
                &Query::update()
                    .table(Users::Table)
                    .value(Users::LockedUntil, until)
                    .value(Users::FailedLogins, 0i64)
                    .and_where(Expr::col(Users::Id).eq(id))
                    .and_where(Expr::col(Users::FailedLogins).gte(i64::from(max)))
                    .to_owned(),
            )
            .await?;
        tx.commit().await?;
        self.changed(Some(id));
        Ok((locked > 0).then_some(until))
    }

    pub async fn clear_login_failures(&self, id: i64) -> StoreResult<()> {
        self.db
            .execute(
                self.db.pool(),
                &Query::update()
                    .table(Users::Table)
                    .value(Users::FailedLogins, 0i64)
                    .value(Users::LockedUntil, Option::<i64>::None)
                    .and_where(Expr::col(Users::Id).eq(id))
                    .to_owned(),
            )
            .await?;
        self.changed(Some(id));
        Ok(())
    }

    /// Records a revoked token; `false` when it was already recorded.
    pub async fn revoke_token(&self, jti: &str, user_id: i64, exp: u64) -> StoreResult<bool> {
        // A plain insert (not an upsert): the key conflict is the answer, and it
        // reads the same on all three databases.
        let stmt = Query::insert()
            .into_table(RevokedTokens::Table)
            .columns([
                RevokedTokens::Jti,
                RevokedTokens::UserId,
                RevokedTokens::ExpiresAt,
            ])
            .values_panic([jti.into(), user_id.into(), (exp as i64).into()])
            .to_owned();
        match self.db.execute(self.db.pool(), &stmt).await {
            Ok(_) => Ok(true),
            Err(e) if e.is_unique_violation() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Unexpired revoked tokens and every user floor, for reloading on start;
    /// expired token rows are deleted on the way.
    pub async fn load_revocations(&self) -> StoreResult<(Vec<(String, i64)>, Vec<(i64, i64)>)> {
        let now_secs = clock::now_ms() / 1000;
        self.db
            .execute(
                self.db.pool(),
                &Query::delete()
                    .from_table(RevokedTokens::Table)
                    .and_where(Expr::col(RevokedTokens::ExpiresAt).lt(now_secs))
                    .to_owned(),
            )
            .await?;
        let tokens = self
            .db
            .fetch_all(
                self.db.pool(),
                &Query::select()
                    .columns([RevokedTokens::Jti, RevokedTokens::ExpiresAt])
                    .from(RevokedTokens::Table)
                    .to_owned(),
            )
            .await?;
        let users = self
            .db
            .fetch_all(
                self.db.pool(),
                &Query::select()
                    .columns([RevokedUsers::UserId, RevokedUsers::MinVersion])
                    .from(RevokedUsers::Table)
                    .to_owned(),
            )
            .await?;
        Ok((tokens, users))
    }

    // ---- address book -------------------------------------------------------

    fn select_address() -> SelectStatement {
        Query::select()
            .columns(ADDRESS_COLUMNS)
            .from(UserAddresses::Table)
            .to_owned()
    }

    /// Default first, then newest.
    pub async fn addresses(&self, user_id: i64) -> StoreResult<Vec<AddressRow>> {
        Ok(self
            .db
            .fetch_all(
                self.db.pool(),
                &Self::select_address()
                    .and_where(Expr::col(UserAddresses::UserId).eq(user_id))
                    .order_by(UserAddresses::IsDefault, Order::Desc)
                    .order_by(UserAddresses::CreatedAt, Order::Desc)
                    .order_by(UserAddresses::Id, Order::Desc)
                    .to_owned(),
            )
            .await?)
    }

    pub async fn address(&self, user_id: i64, id: i64) -> StoreResult<AddressRow> {
        let mut conn = self.db.pool().acquire().await?;
        self.address_in(&mut conn, user_id, id).await
    }

    async fn address_in(
        &self,
        conn: &mut AnyConnection,
        user_id: i64,
        id: i64,
    ) -> StoreResult<AddressRow> {
        self.db
            .fetch_optional(
                conn,
                &Self::select_address()
                    .and_where(Expr::col(UserAddresses::Id).eq(id))
                    .and_where(Expr::col(UserAddresses::UserId).eq(user_id))
                    .to_owned(),
            )
            .await?
            .ok_or(StoreError::NotFound)
    }

    async fn set_only_default(
        &self,
        conn: &mut AnyConnection,
        user_id: i64,
        id: i64,
    ) -> StoreResult<()> {
        let now = clock::now_ms();
        self.db
            .execute(
                &mut *conn,
                &Query::update()
                    .table(UserAddresses::Table)
                    .value(UserAddresses::IsDefault, 0i64)
                    .value(UserAddresses::UpdatedAt, now)
                    .and_where(Expr::col(UserAddresses::UserId).eq(user_id))
                    .and_where(Expr::col(UserAddresses::IsDefault).eq(1i64))
                    .and_where(Expr::col(UserAddresses::Id).ne(id))
                    .to_owned(),
            )
            .await?;
        self.db
            .execute(
                &mut *conn,
                &Query::update()
                    .table(UserAddresses::Table)
                    .value(UserAddresses::IsDefault, 1i64)
                    .value(UserAddresses::UpdatedAt, now)
                    .and_where(Expr::col(UserAddresses::Id).eq(id))
                    .and_where(Expr::col(UserAddresses::UserId).eq(user_id))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    /// Makes the newest remaining address the default, if any remains.
    async fn promote_newest(
        &self,
        conn: &mut AnyConnection,
        user_id: i64,
        except: i64,
    ) -> StoreResult<()> {
        let next: Option<(i64,)> = self
            .db
            .fetch_optional(
                &mut *conn,
                &Query::select()
                    .column(UserAddresses::Id)
                    .from(UserAddresses::Table)
                    .and_where(Expr::col(UserAddresses::UserId).eq(user_id))
                    .and_where(Expr::col(UserAddresses::Id).ne(except))
                    .order_by(UserAddresses::CreatedAt, Order::Desc)
                    .order_by(UserAddresses::Id, Order::Desc)
                    .limit(1)
                    .to_owned(),
            )
            .await?;
        if let Some((id,)) = next {
            self.set_only_default(conn, user_id, id).await?;
        }
        Ok(())
    }

    /// Adds an address; the first one, or one asked to be, becomes the only default.
    pub async fn create_address(
        &self,
        user_id: i64,
        fields: AddressFields,
        make_default: bool,
    ) -> StoreResult<AddressRow> {
        let mut tx = self.db.begin().await?;
        self.lock_user(&mut tx, user_id).await?;
        let (existing,): (i64,) = self
            .db
            .fetch_one(
                &mut *tx,
                &Query::select()
                    .expr(Func::count(Expr::col(UserAddresses::Id)))
                    .from(UserAddresses::Table)
                    .and_where(Expr::col(UserAddresses::UserId).eq(user_id))
                    .to_owned(),
            )
            .await?;
        let now = clock::now_ms();
        let text = |v: Option<String>| v.unwrap_or_default();
        let insert = Query::insert()
            .into_table(UserAddresses::Table)
            .columns([
                UserAddresses::UserId,
                UserAddresses::Label,
                UserAddresses::Street,
                UserAddresses::City,
                UserAddresses::State,
                UserAddresses::ZipCode,
                UserAddresses::Country,
                UserAddresses::Phone,
                UserAddresses::IsDefault,
                UserAddresses::CreatedAt,
                UserAddresses::UpdatedAt,
            ])
            .values_panic([
                user_id.into(),
                text(fields.label).into(),
                text(fields.street).into(),
                text(fields.city).into(),
                text(fields.state).into(),
                text(fields.zip_code).into(),
                fields.country.unwrap_or_else(|| "India".into()).into(),
                text(fields.phone).into(),
                0i64.into(),
                now.into(),
                now.into(),
            ])
            .to_owned();
        let id = self.db.insert_returning_id(&mut tx, insert).await?;
        if make_default || existing == 0 {
            self.set_only_default(&mut tx, user_id, id).await?;
        }
        let row = self.address_in(&mut tx, user_id, id).await?;
        tx.commit().await?;
        Ok(row)
    }

    /// Changes the given fields. `make_default: Some(false)` on the default hands
    /// the default to the newest other address (the only address stays default).
    pub async fn update_address(
        &self,
        user_id: i64,
        id: i64,
        fields: AddressFields,
        make_default: Option<bool>,
    ) -> StoreResult<AddressRow> {
        let mut tx = self.db.begin().await?;
        self.lock_user(&mut tx, user_id).await?;
        let current = self.address_in(&mut tx, user_id, id).await?;
        let mut stmt = Query::update();
        stmt.table(UserAddresses::Table)
            .value(UserAddresses::UpdatedAt, clock::now_ms())
            .and_where(Expr::col(UserAddresses::Id).eq(id));
        let pairs = [
            (UserAddresses::Label, fields.label),
            (UserAddresses::Street, fields.street),
            (UserAddresses::City, fields.city),
            (UserAddresses::State, fields.state),
            (UserAddresses::ZipCode, fields.zip_code),
            (UserAddresses::Country, fields.country),
            (UserAddresses::Phone, fields.phone),
        ];
        for (col, value) in pairs {
            if let Some(v) = value {
                stmt.value(col, v);
            }
        }
        self.db.execute(&mut *tx, &stmt).await?;
        match make_default {
            Some(true) => self.set_only_default(&mut tx, user_id, id).await?,
            Some(false) if current.is_default == 1 => {
                self.promote_newest(&mut tx, user_id, id).await?;
            }
            _ => {}
        }
        let row = self.address_in(&mut tx, user_id, id).await?;
        tx.commit().await?;
        Ok(row)
    }

    pub async fn delete_address(&self, user_id: i64, id: i64) -> StoreResult<()> {
        let mut tx = self.db.begin().await?;
        self.lock_user(&mut tx, user_id).await?;
        let current = self.address_in(&mut tx, user_id, id).await?;
        self.db
            .execute(
                &mut *tx,
                &Query::delete()
                    .from_table(UserAddresses::Table)
                    .and_where(Expr::col(UserAddresses::Id).eq(id))
                    .to_owned(),
            )
            .await?;
        if current.is_default == 1 {
            self.promote_newest(&mut tx, user_id, id).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn set_default_address(&self, user_id: i64, id: i64) -> StoreResult<()> {
        let mut tx = self.db.begin().await?;
        self.lock_user(&mut tx, user_id).await?;
        self.address_in(&mut tx, user_id, id).await?;
        self.set_only_default(&mut tx, user_id, id).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Number of default addresses of a user (an invariant check: 0 or 1, 1 when any exist).
    pub async fn default_count(&self, user_id: i64) -> StoreResult<i64> {
        let (n,): (i64,) = self
            .db
            .fetch_one(
                self.db.pool(),
                &Query::select()
                    .expr(Func::count(Expr::col(UserAddresses::Id)))
                    .from(UserAddresses::Table)
                    .and_where(Expr::col(UserAddresses::UserId).eq(user_id))
                    .and_where(Expr::col(UserAddresses::IsDefault).eq(1i64))
                    .to_owned(),
            )
            .await?;
        Ok(n)
    }
}
