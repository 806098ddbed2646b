//! The users store, one story per behaviour, run on SQLite, PostgreSQL and
//! MariaDB (modules `sqlite`, `postgres`, `mysql`; each test its own database).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use ecap_core::{
    auth::Role,
    db::{Backend, Db},
    testing::TestDb,
};
use ecap_users::store::{
    AddressFields, NewUser, StoreError, UserChanges, UserListQuery, UserSort, UserStore,
};

async fn setup(backend: Backend) -> (TestDb, UserStore) {
    let tdb = TestDb::create(backend).await;
    let db = Db::connect(&tdb.url, 5).await.expect("connect");
    ecap_users::migrate(&db).await.expect("migrate");
    (tdb, UserStore::new(db))
}

fn new_user(email: &str, role: Role) -> NewUser {
    NewUser {
        email: email.into(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA".into(),
        name: format!("User {email}"),
        phone: None,
        role,
    }
}

fn address(label: &str) -> AddressFields {
    AddressFields {
        label: Some(label.into()),
        street: Some("1 Main St".into()),
        city: Some("Pune".into()),
        state: Some("MH".into()),
        zip_code: Some("411001".into()),
        country: None,
        phone: Some("+91 98765 43210".into()),
    }
}

async fn migrations_are_idempotent_and_safe_in_parallel(backend: Backend) {
    let tdb = TestDb::create(backend).await;
    let db = Db::connect(&tdb.url, 5).await.unwrap();
    let (a, b) = tokio::join!(ecap_users::migrate(&db), ecap_users::migrate(&db));
    assert_eq!(a.unwrap() + b.unwrap(), 1, "the migration ran exactly once");
    assert_eq!(ecap_users::migrate(&db).await.unwrap(), 0);
}

async fn create_find_and_duplicate(backend: Backend) {
    let (_t, store) = setup(backend).await;
    let u = store
        .create(new_user("ann@example.com", Role::Customer), false)
        .await
        .unwrap();
    assert!(u.id > 0);
    assert_eq!(u.role(), Role::Customer);
    assert_eq!(
        store.by_email("ann@example.com").await.unwrap().unwrap().id,
        u.id
    );
    assert_eq!(
        store.by_id(u.id).await.unwrap().unwrap().email,
        "ann@example.com"
    );
    assert!(store.by_id(u.id + 1000).await.unwrap().is_none());
    let dup = store
        .create(new_user("ann@example.com", Role::Merchant), false)
        .await;
    assert!(matches!(dup, Err(StoreError::EmailTaken)), "{dup:?}");
}

async fn admin_bootstrap_happens_once_under_concurrency(backend: Backend) {
    let (_t, store) = setup(backend).await;
    let attempts = (0..6).map(|i| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .create(
                    new_user(&format!("admin{i}@example.com"), Role::Admin),
                    true,
                )
                .await
        })
    });
    let results = futures::future::join_all(attempts).await;
    let ok = results.iter().filter(|r| matches!(r, Ok(Ok(_)))).count();
    let closed = results
        .iter()
        .filter(|r| matches!(r, Ok(Err(StoreError::BootstrapClosed))))
        .count();
    assert_eq!((ok, closed), (1, 5), "{results:?}");
    // Later attempts are closed too, even through a new admin made by an admin.
    store
        .create(new_user("made@example.com", Role::Admin), false)
        .await
        .unwrap();
    assert!(matches!(
        store
            .create(new_user("late@example.com", Role::Admin), true)
            .await,
        Err(StoreError::BootstrapClosed)
    ));
}

async fn list_searches_sorts_and_pages(backend: Backend) {
    let (_t, store) = setup(backend).await;
    for (i, name) in ["zed", "amy", "bob_x", "bobby%y", "carl"]
        .iter()
        .enumerate()
    {
        let mut u = new_user(
            &format!("{name}{i}@example.com").replace('%', "p"),
            Role::Customer,
        );
        u.name = (*name).into();
        if i == 4 {
            u.role = Role::Merchant;
        }
        store.create(u, false).await.unwrap();
    }
    let q = |search: Option<&str>, sort, descending, page, limit| UserListQuery {
        page,
        limit,
        role: None,
        search: search.map(Into::into),
        sort,
        descending,
    };
    let (rows, total) = store
        .list(&q(None, UserSort::Name, false, 1, 2))
        .await
        .unwrap();
    assert_eq!(total, 5);
    assert_eq!(
        rows.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
        ["amy", "bob_x"]
    );
    let (rows, _) = store
        .list(&q(None, UserSort::Name, false, 3, 2))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].name, "zed");
    // LIKE wildcards in the search are literal.
    let (rows, total) = store
        .list(&q(Some("B_X"), UserSort::Name, false, 1, 10))
        .await
        .unwrap();
    assert_eq!((rows.len(), total), (1, 1));
    assert_eq!(rows[0].name, "bob_x");
    let (_, total) = store
        .list(&q(Some("%"), UserSort::Name, false, 1, 10))
        .await
        .unwrap();
    assert_eq!(total, 1);
    let (_, total) = store
        .list(&q(Some("b_b"), UserSort::Name, false, 1, 10))
        .await
        .unwrap();
    assert_eq!(total, 0, "an unescaped _ would match bobby");
    let mut by_role = q(None, UserSort::CreatedAt, true, 1, 10);
    by_role.role = Some(Role::Merchant);
    let (rows, total) = store.list(&by_role).await.unwrap();
    assert_eq!((total, rows[0].name.as_str()), (1, "carl"));
}

async fn update_refuses_a_taken_email(backend: Backend) {
    let (_t, store) = setup(backend).await;
    let a = store
        .create(new_user("a@example.com", Role::Customer), false)
        .await
        .unwrap();
    store
        .create(new_user("b@example.com", Role::Customer), false)
        .await
        .unwrap();
    let r = store
        .update(
            a.id,
            UserChanges {
                email: Some("b@example.com".into()),
                ..Default::default()
            },
        )
        .await;
    assert!(matches!(r, Err(StoreError::EmailTaken)), "{r:?}");
    let u = store
        .update(
            a.id,
            UserChanges {
                name: Some("Ann".into()),
                phone: Some(Some("123".into())),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (u.name.as_str(), u.phone.as_deref(), u.email.as_str()),
        ("Ann", Some("123"), "a@example.com")
    );
    let u = store
        .update(
            a.id,
            UserChanges {
                phone: Some(None),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(u.phone, None);
}

async fn the_last_admin_keeps_the_role(backend: Backend) {
    let (_t, store) = setup(backend).await;
    let a = store
        .create(new_user("a@example.com", Role::Admin), false)
        .await
        .unwrap();
    assert!(matches!(
        store.set_role(a.id, Role::Customer).await,
        Err(StoreError::LastAdmin)
    ));
    let b = store
        .create(new_user("b@example.com", Role::Admin), false)
        .await
        .unwrap();
    // Two demotions at once: one must fail, so an admin always remains.
    let (r1, r2) = tokio::join!(
        store.set_role(a.id, Role::Customer),
        store.set_role(b.id, Role::Customer)
    );
    assert!(r1.is_ok() ^ r2.is_ok(), "{r1:?} {r2:?}");
    let demoted = r1.or(r2).unwrap();
    assert_eq!(demoted.role(), Role::Customer);
    assert_eq!(
        demoted.token_version, 1,
        "a role change revokes the user's tokens"
    );
}

async fn revocations_survive_a_restart(backend: Backend) {
    let (_t, store) = setup(backend).await;
    let u = store
        .create(new_user("a@example.com", Role::Customer), false)
        .await
        .unwrap();
    let far = 4_000_000_000u64;
    assert!(store.revoke_token("jti-1", u.id, far).await.unwrap());
    assert!(
        !store.revoke_token("jti-1", u.id, far).await.unwrap(),
        "second revoke reports a replay"
    );
    store.revoke_token("jti-old", u.id, 1).await.unwrap();
    let v = store.set_password(u.id, "new-hash", true).await.unwrap();
    assert_eq!(v, 1);
    let gone = store
        .create(new_user("gone@example.com", Role::Customer), false)
        .await
        .unwrap();
    store.delete(gone.id).await.unwrap();
    let (tokens, floors) = store.load_revocations().await.unwrap();
    assert_eq!(
        tokens,
        vec![("jti-1".to_owned(), far as i64)],
        "expired rows are purged"
    );
    assert!(floors.contains(&(u.id, 1)));
    assert!(floors.contains(&(gone.id, i64::MAX)));
}

async fn failed_logins_lock_the_account(backend: Backend) {
    let (_t, store) = setup(backend).await;
    let u = store
        .create(new_user("a@example.com", Role::Customer), false)
        .await
        .unwrap();
    for _ in 0..2 {
        assert_eq!(
            store.record_login_failure(u.id, 3, 60_000).await.unwrap(),
            None
        );
    }
    let until = store.record_login_failure(u.id, 3, 60_000).await.unwrap();
    assert!(until.is_some());
    let row = store.by_id(u.id).await.unwrap().unwrap();
    assert_eq!(row.locked_until, until);
    store.clear_login_failures(u.id).await.unwrap();
    let row = store.by_id(u.id).await.unwrap().unwrap();
    assert_eq!((row.failed_logins, row.locked_until), (0, None));
}

async fn delete_all_keeps_the_caller_and_admins(backend: Backend) {
    let (_t, store) = setup(backend).await;
    let me = store
        .create(new_user("me@example.com", Role::Admin), false)
        .await
        .unwrap();
    let other_admin = store
        .create(new_user("boss@example.com", Role::Admin), false)
        .await
        .unwrap();
    let c = store
        .create(new_user("c@example.com", Role::Customer), false)
        .await
        .unwrap();
    store
        .create_address(c.id, address("Home"), false)
        .await
        .unwrap();
    let deleted = store.delete_all(me.id, false, None).await.unwrap();
    assert_eq!(deleted.iter().map(|r| r.id).collect::<Vec<_>>(), vec![c.id]);
    assert!(store.by_id(other_admin.id).await.unwrap().is_some());
    assert!(store.addresses(c.id).await.unwrap().is_empty());
    let deleted = store.delete_all(me.id, true, None).await.unwrap();
    assert_eq!(deleted.len(), 1);
    assert!(store.by_id(me.id).await.unwrap().is_some());
}

/// A bulk deletion with a confirmation deletes only when the count still
/// matches; two admins deleting each other at once leave one admin.
async fn confirmed_bulk_deletes_never_leave_the_shop_without_an_admin(backend: Backend) {
    let (_t, store) = setup(backend).await;
    let a = store
        .create(new_user("a@example.com", Role::Admin), false)
        .await
        .unwrap();
    let b = store
        .create(new_user("b@example.com", Role::Admin), false)
        .await
        .unwrap();
    for i in 0..3 {
        store
            .create(
                new_user(&format!("c{i}@example.com"), Role::Customer),
                false,
            )
            .await
            .unwrap();
    }
    let preview = store.delete_all_preview(a.id, true).await.unwrap();
    assert_eq!(
        preview,
        vec![("admin".to_owned(), 1), ("customer".to_owned(), 3)]
    );
    // A stale count deletes nothing.
    let stale = store.delete_all(a.id, true, Some(3)).await;
    assert!(
        matches!(stale, Err(StoreError::CountChanged(4))),
        "{stale:?}"
    );
    assert_eq!(
        store.delete_all_preview(a.id, false).await.unwrap().len(),
        1
    );
    // Only customers, confirmed.
    assert_eq!(
        store.delete_all(a.id, false, Some(3)).await.unwrap().len(),
        3
    );

    // Each admin deletes everyone else, at the same time: one of them wins,
    // the other finds themself gone; one admin remains.
    let (ra, rb) = tokio::join!(
        store.delete_all(a.id, true, Some(1)),
        store.delete_all(b.id, true, Some(1))
    );
    let wins = [&ra, &rb].iter().filter(|r| r.is_ok()).count();
    assert_eq!(wins, 1, "{ra:?} {rb:?}");
    for r in [&ra, &rb] {
        assert!(matches!(r, Ok(_) | Err(StoreError::NotAdmin)), "{r:?}");
    }
    let left = store
        .list(&UserListQuery {
            page: 1,
            limit: 10,
            role: Some(Role::Admin),
            search: None,
            sort: UserSort::CreatedAt,
            descending: false,
        })
        .await
        .unwrap();
    assert_eq!(left.1, 1);
    // A caller who is not an admin (any more) deletes nothing.
    let c = store
        .create(new_user("late@example.com", Role::Customer), false)
        .await
        .unwrap();
    assert!(matches!(
        store.delete_all(c.id, true, None).await,
        Err(StoreError::NotAdmin)
    ));
}

async fn first_address_is_default_and_default_is_unique(backend: Backend) {
    let (_t, store) = setup(backend).await;
    let u = store
        .create(new_user("a@example.com", Role::Customer), false)
        .await
        .unwrap();
    let home = store
        .create_address(u.id, address("Home"), false)
        .await
        .unwrap();
    assert_eq!(home.is_default, 1);
    assert_eq!(home.country, "India");
    let work = store
        .create_address(u.id, address("Work"), false)
        .await
        .unwrap();
    assert_eq!(work.is_default, 0);
    let gym = store
        .create_address(u.id, address("Gym"), true)
        .await
        .unwrap();
    assert_eq!(gym.is_default, 1);
    assert_eq!(store.default_count(u.id).await.unwrap(), 1);
    let list = store.addresses(u.id).await.unwrap();
    assert_eq!(list[0].id, gym.id, "default first");
    store.set_default_address(u.id, work.id).await.unwrap();
    assert_eq!(store.addresses(u.id).await.unwrap()[0].id, work.id);
    // Deleting the default promotes the newest remaining address.
    store.delete_address(u.id, work.id).await.unwrap();
    let list = store.addresses(u.id).await.unwrap();
    assert_eq!(list[0].id, gym.id);
    assert_eq!(list[0].is_default, 1);
    assert_eq!(store.default_count(u.id).await.unwrap(), 1);
    // Unsetting the default hands it on; the only address stays default.
    store
        .update_address(u.id, gym.id, AddressFields::default(), Some(false))
        .await
        .unwrap();
    assert_eq!(store.addresses(u.id).await.unwrap()[0].id, home.id);
    store.delete_address(u.id, gym.id).await.unwrap();
    let only = store
        .update_address(u.id, home.id, AddressFields::default(), Some(false))
        .await
        .unwrap();
    assert_eq!(only.is_default, 1);
    // Another user's address is not found.
    let v = store
        .create(new_user("v@example.com", Role::Customer), false)
        .await
        .unwrap();
    assert!(matches!(
        store.address(v.id, home.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.delete_address(v.id, home.id).await,
        Err(StoreError::NotFound)
    ));
}

async fn concurrent_address_writes_keep_one_default(backend: Backend) {
    let (_t, store) = setup(backend).await;
    let u = store
        .create(new_user("a@example.com", Role::Customer), false)
        .await
        .unwrap();
    let creates = (0..8).map(|i| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .create_address(u.id, address(&format!("A{i}")), i % 3 == 0)
                .await
        })
    });
    for r in futures::future::join_all(creates).await {
        r.unwrap().unwrap();
    }
    assert_eq!(store.default_count(u.id).await.unwrap(), 1);
    let ids: Vec<i64> = store
        .addresses(u.id)
        .await
        .unwrap()
        .iter()
        .map(|a| a.id)
        .collect();
    let switches = ids.iter().map(|id| {
        let store = store.clone();
        let id = *id;
        tokio::spawn(async move { store.set_default_address(u.id, id).await })
    });
    for r in futures::future::join_all(switches).await {
        r.unwrap().unwrap();
    }
    assert_eq!(store.default_count(u.id).await.unwrap(), 1);
    let deletes = ids.iter().take(7).map(|id| {
        let store = store.clone();
        let id = *id;
        tokio::spawn(async move { store.delete_address(u.id, id).await })
    });
    for r in futures::future::join_all(deletes).await {
        r.unwrap().unwrap();
    }
    let rest = store.addresses(u.id).await.unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].is_default, 1);
}

ecap_core::on_every_backend!(
    migrations_are_idempotent_and_safe_in_parallel,
    create_find_and_duplicate,
    admin_bootstrap_happens_once_under_concurrency,
    list_searches_sorts_and_pages,
    update_refuses_a_taken_email,
    the_last_admin_keeps_the_role,
    revocations_survive_a_restart,
    failed_logins_lock_the_account,
    delete_all_keeps_the_caller_and_admins,
    confirmed_bulk_deletes_never_leave_the_shop_without_an_admin,
    first_address_is_default_and_default_is_unique,
    concurrent_address_writes_keep_one_default,
    reads_after_writes_are_fresh,
);

/// Reads by id (cached in memory on SQLite) never return a row older than the
/// last committed write.
async fn reads_after_writes_are_fresh(backend: Backend) {
    let (_t, store) = setup(backend).await;
    let admin = store
        .create(new_user("root@example.com", Role::Admin), false)
        .await
        .unwrap();
    let u = store
        .create(new_user("fresh@example.com", Role::Customer), false)
        .await
        .unwrap();
    assert_eq!(store.by_id(u.id).await.unwrap().unwrap().name, u.name);
    store
        .update(
            u.id,
            UserChanges {
                name: Some("Renamed".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(store.by_id(u.id).await.unwrap().unwrap().name, "Renamed");
    store.set_role(u.id, Role::Merchant).await.unwrap();
    let row = store.by_id(u.id).await.unwrap().unwrap();
    assert_eq!((row.role(), row.token_version), (Role::Merchant, 1));
    store.set_password(u.id, "h2", true).await.unwrap();
    assert_eq!(store.by_id(u.id).await.unwrap().unwrap().token_version, 2);
    store.record_login_failure(u.id, 1, 60_000).await.unwrap();
    assert!(
        store
            .by_id(u.id)
            .await
            .unwrap()
            .unwrap()
            .locked_until
            .is_some()
    );
    store.clear_login_failures(u.id).await.unwrap();
    assert!(
        store
            .by_id(u.id)
            .await
            .unwrap()
            .unwrap()
            .locked_until
            .is_none()
    );
    store.delete(u.id).await.unwrap();
    assert!(store.by_id(u.id).await.unwrap().is_none());
    let v = store
        .create(new_user("v@example.com", Role::Customer), false)
        .await
        .unwrap();
    store.by_id(v.id).await.unwrap();
    store.delete_all(admin.id, false, None).await.unwrap();
    assert!(store.by_id(v.id).await.unwrap().is_none());
}
