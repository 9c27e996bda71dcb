//! The durable truth of pomerium-jit: access requests, the hash-chained audit
//! trail, the reconciler's memory of what it applied, and leases, in SQLite
//! or PostgreSQL behind one [`Store`].
//!
//! Every change of request state goes through [`Store::decide`] (or
//! [`Store::decide_all`]): one write transaction loads the open request(s),
//! asks the pure domain decision what to do, writes the new state, appends
//! one audit event per move and bumps the desired *generation*. Writers are
//! serialized (SQLite `BEGIN IMMEDIATE`, PostgreSQL a row lock on the head
//! row), so there are no lost updates and the audit chain never forks; if
//! any part fails, nothing is written (fail closed).
//!
//! Both backends run the same SQL through sqlx's `Any` driver; only the
//! schema files and two statements ([`Backend`]) differ.

#![forbid(unsafe_code)]

mod audit;
mod error;
mod history;
mod listing;
mod location;
mod outbox;
mod packed;
mod read_only;
mod requests;
mod rows;
mod sync;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::migrate::Migrator;
use sqlx::{AnyConnection, AnyPool, Connection, Executor};

pub use audit::{
    AuditQuery, AuditRecord, ChainBreak, ChainProblem, ChainReport, MismatchProblem, StateMismatch,
};
pub use error::StoreError;
pub use history::{HistoryCursor, HistoryEntry, HistoryFilter, HistoryPage};
pub use listing::{RequestCursor, RequestFilter, RequestPage};
pub use location::Backend;
pub use outbox::{
    Attempt, ChannelStatus, Delivery, NewDelivery, Notice, OutboxId, OutboxItem, expiry_still_due,
};
pub use requests::Committed;
pub use sync::{Applied, Fence, INTENT_RETENTION, Intent, IntentId, SyncState, TextDigest};

use location::Location;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// The store. Cheap to clone (all clones share one pool); `Debug` shows the
/// database URL with any password redacted.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    pool: AnyPool,
    backend: Backend,
    /// The URL, password redacted.
    shown: String,
    /// Writers of this process queue here rather than in the database:
    /// SQLite's busy handler polls with sleeps, which is slow and unfair
    /// under contention. Other processes are still excluded by the database.
    writer: tokio::sync::Mutex<()>,
    /// For an in-memory database, a connection outside the pool, never
    /// used: the database dies with its last connection, and the pool
    /// closes its own whenever one fails its check on release (after a
    /// query cancelled mid-flight, say), then opens an empty one.
    _keeper: Option<std::sync::Mutex<AnyConnection>>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.inner.backend)
            .field("database", &self.inner.shown)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the store at `url` and brings its schema up to date.
    ///
    /// `sqlite://path/to/file.db` creates missing directories and the file;
    /// it runs in WAL mode with `synchronous=FULL`, since grants and audit
    /// must survive a power loss. `sqlite::memory:` is for tests.
    /// `postgres://…` (or `postgresql://…`) needs an existing database;
    /// replicas starting together are safe, as migrations take an advisory
    /// lock.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        let location = Location::parse(url)?;
        install_default_drivers();
        let backend = location.backend;
        let in_memory = backend == Backend::Sqlite && location.sqlite_file.is_none();
        let mut options = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(10));
        options = match backend {
            Backend::Sqlite if in_memory => {
                // One: shared-cache connections lock each other's tables.
                options
                    .max_connections(1)
                    .min_connections(1)
                    .idle_timeout(None)
                    .max_lifetime(None)
            }
            // Two: writes are serialized anyway (one writer per process,
            // and SQLite's own lock), and pages read from memory. Each
            // connection is a thread with its own page cache and malloc
            // arena: with four, the load test's whole-run peak was 53-55 MB;
            // with two, 45-49 MB, at the same page rates.
            Backend::Sqlite => options.max_connections(2),
            Backend::Postgres => options.max_connections(8),
        };
        if backend == Backend::Sqlite {
            options = options.after_connect(|conn, _meta| {
                Box::pin(async move {
                    conn.execute(SQLITE_PRAGMAS).await?;
                    Ok(())
                })
            });
        }
        // One plain attempt first: the pool would retry a refused
        // connection until its acquire timeout, hiding the cause meanwhile.
        let probe = AnyConnection::connect(&location.connect_url)
            .await
            .map_err(|source| StoreError::Connect {
                target: location.shown.clone(),
                source,
            })?;
        let pool = options
            .connect(&location.connect_url)
            .await
            .map_err(|source| StoreError::Connect {
                target: location.shown.clone(),
                source,
            })?;
        let keeper = if in_memory {
            Some(std::sync::Mutex::new(probe))
        } else {
            probe.close().await.map_err(StoreError::from)?;
            None
        };
        let migrator = match backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        // sqlx locks PostgreSQL while migrating, but not SQLite; there a
        // file lock keeps processes opening the same new file apart.
        let _migrating = match &location.sqlite_file {
            Some(file) => Some(lock_migrations(file).await?),
            None => None,
        };
        migrator
            .run(&pool)
            .await
            .map_err(|source| StoreError::Migrate {
                target: location.shown.clone(),
                source,
            })?;
        let store = Store {
            inner: Arc::new(Inner {
                pool,
                backend,
                shown: location.shown,
                writer: tokio::sync::Mutex::new(()),
                _keeper: keeper,
            }),
        };
        store.seal_unrecorded_states().await?;
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.inner.pool).await?;
        Ok(())
    }

    /// The desired generation: bumped by every committed change of request
    /// state, so "has the policy caught up with the store?" is a comparison.
    pub async fn generation(&self) -> Result<u64, StoreError> {
        let head = self.head(&self.inner.pool).await?;
        Ok(head.generation.unsigned_abs())
    }

    /// Closes every connection, waiting for those in use to be returned.
    pub async fn close(&self) {
        self.inner.pool.close().await;
    }

    async fn head<'e, E>(&self, executor: E) -> Result<Head, StoreError>
    where
        E: sqlx::Executor<'e, Database = sqlx::Any>,
    {
        Head::read(
            executor,
            "SELECT audit_seq, audit_hash, generation FROM store_head WHERE id = 1",
        )
        .await
    }
}

/// Takes an exclusive lock on `<database>-migrate.lock`, waiting for
/// another process's migration to finish; released when the file is dropped.
async fn lock_migrations(database: &Path) -> Result<std::fs::File, StoreError> {
    let mut path = database.as_os_str().to_owned();
    path.push("-migrate.lock");
    let path = PathBuf::from(path);
    let locked = {
        let path = path.clone();
        tokio::task::spawn_blocking(move || {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)?;
            file.lock()?;
            Ok(file)
        })
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)))
    };
    locked.map_err(|source| StoreError::LockFile { path, source })
}

/// Set on every SQLite connection. WAL lets readers run beside the writer;
/// `FULL` syncs the WAL on every commit, so a committed grant or audit event
/// survives a power loss; a writer waits up to 10 s for another process's.
const SQLITE_PRAGMAS: &str = concat!(
    "PRAGMA journal_mode = WAL; ",
    "PRAGMA synchronous = FULL; ",
    "PRAGMA foreign_keys = ON; ",
    "PRAGMA busy_timeout = 10000; ",
    // 256 KiB of page cache per connection (SQLite's default is 2 MiB):
    // hot reads are served from memory above the store, a sync or a reload
    // reads every open request once (more than any cache this size holds),
    // and what a decision touches (the indexes' upper pages, a few rows)
    // fits. Pages read again come from the system's file cache.
    "PRAGMA cache_size = -256;"
);

/// The head row: the end of the audit chain and the generation, both
/// checked to be non-negative when read.
#[derive(Debug, Clone)]
struct Head {
    audit_seq: i64,
    audit_hash: String,
    generation: i64,
}

impl Head {
    async fn read<'e, E>(executor: E, sql: &'static str) -> Result<Head, StoreError>
    where
        E: sqlx::Executor<'e, Database = sqlx::Any>,
    {
        let (audit_seq, audit_hash, generation): (i64, String, i64) =
            sqlx::query_as(sql).fetch_one(executor).await?;
        for (column, v) in [("audit_seq", audit_seq), ("generation", generation)] {
            if v < 0 {
                return Err(head_corrupt(column, v, "is negative"));
            }
        }
        Ok(Head {
            audit_seq,
            audit_hash,
            generation,
        })
    }
}

/// `v + 1` for a head counter.
fn next_count(column: &'static str, v: i64) -> Result<i64, StoreError> {
    v.checked_add(1)
        .ok_or_else(|| head_corrupt(column, v, "cannot grow any further"))
}

fn head_corrupt(column: &'static str, v: i64, problem: &str) -> StoreError {
    StoreError::Corrupt {
        table: "store_head",
        key: "1".into(),
        column,
        value: v.to_string(),
        problem: problem.into(),
    }
}

#[cfg(test)]
mod tests;
