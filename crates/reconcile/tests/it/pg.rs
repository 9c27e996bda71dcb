//! A fresh PostgreSQL database per test on the server at
//! `TEST_DATABASE_URL`; in CI a missing server fails the test.

use jit_store::Store;
use sqlx::{Connection, Executor, PgConnection};

pub struct TestDb {
    server: String,
    name: String,
    url: String,
}

impl TestDb {
    pub async fn new() -> Self {
        let server = std::env::var("TEST_DATABASE_URL")
            .ok()
            .filter(|u| !u.trim().is_empty())
            .unwrap_or_else(|| {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "CI is set but TEST_DATABASE_URL is not: the PostgreSQL tests must run"
                );
                "postgres://postgres@127.0.0.1:5432/test".into()
            });
        let name = format!("jit_reconcile_{}", rand::random::<u64>());
        let mut admin = PgConnection::connect(&server)
            .await
            .expect("PostgreSQL at TEST_DATABASE_URL");
        admin
            .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .await
            .expect("create a test database");
        let (base, _) = server.rsplit_once('/').expect("a database URL");
        let url = format!("{base}/{name}");
        Self { server, name, url }
    }

    pub async fn store(&self) -> Store {
        Store::connect(&self.url).await.expect("connect")
    }

    pub async fn drop(self) {
        let mut admin = PgConnection::connect(&self.server).await.expect("connect");
        let _ = admin
            .execute(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.name
            )))
            .await;
    }
}
