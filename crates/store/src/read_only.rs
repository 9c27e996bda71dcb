//! Opening a store only to read it, for the operator's `audit` commands:
//! nothing is created, migrated or written, and a database that is missing
//! or has no (or an older) pomerium-jit schema is refused by name.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use sqlx::Executor;
use sqlx::any::{AnyPoolOptions, install_default_drivers};

use crate::location::{Backend, Location};
use crate::{Inner, POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS, Store, StoreError};

impl Store {
    /// Opens the existing store at `url` read-only: SQLite with
    /// `mode=ro`, PostgreSQL with read-only transactions. Fails with
    /// [`StoreError::Missing`] if the SQLite file does not exist, and with
    /// [`StoreError::Unmigrated`] unless every migration of this version
    /// was applied.
    pub async fn open_read_only(url: &str) -> Result<Store, StoreError> {
        let location = Location::parse_existing(url)?;
        install_default_drivers();
        let backend = location.backend;
        let setup = match backend {
            Backend::Sqlite => "PRAGMA busy_timeout = 10000;",
            Backend::Postgres => "SET default_transaction_read_only = on;",
        };
        let pool = AnyPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    conn.execute(setup).await?;
                    Ok(())
                })
            })
            .connect(&location.connect_url)
            .await
            .map_err(|source| StoreError::Connect {
                target: location.shown.clone(),
                source,
            })?;
        let unmigrated = |problem: String| StoreError::Unmigrated {
            target: location.shown.clone(),
            problem,
        };
        let has_table = match backend {
            Backend::Sqlite => {
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'"
            }
            Backend::Postgres => {
                "SELECT COUNT(*) FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_name = '_sqlx_migrations'"
            }
        };
        let (tables,): (i64,) = sqlx::query_as(has_table).fetch_one(&pool).await?;
        if tables == 0 {
            return Err(unmigrated("has no pomerium-jit schema".into()));
        }
        let applied: Vec<(i64,)> =
            sqlx::query_as("SELECT version FROM _sqlx_migrations WHERE success")
                .fetch_all(&pool)
                .await?;
        let applied: BTreeSet<i64> = applied.into_iter().map(|(v,)| v).collect();
        let migrator = match backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        let missing = migrator
            .iter()
            .filter(|m| !applied.contains(&m.version))
            .count();
        if missing > 0 {
            return Err(unmigrated(format!(
                "has an older pomerium-jit schema ({missing} migration(s) of this version not applied)"
            )));
        }
        Ok(Store {
            inner: Arc::new(Inner {
                pool,
                backend,
                shown: location.shown,
                writer: tokio::sync::Mutex::new(()),
                // Read-only opening refuses in-memory databases.
                _keeper: None,
            }),
        })
    }
}
