use std::path::PathBuf;

use jit_domain::RequestId;
use sqlx::error::DatabaseError;
use sqlx::postgres::PgDatabaseError;
use sqlx::sqlite::SqliteError;

/// Why the store could not do what was asked. Each variant says what the
/// operator can do about it. No variant ever carries a database password:
/// URLs are shown redacted.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "unsupported database URL scheme `{scheme}`: use sqlite://PATH/TO/FILE.db (created if \
         missing), sqlite::memory: (tests only) or postgres://USER@HOST:PORT/DATABASE"
    )]
    UnsupportedScheme { scheme: String },

    #[error(
        "the database URL {url} is invalid: {reason}; write it like sqlite://PATH/TO/FILE.db or \
         postgres://USER@HOST:PORT/DATABASE"
    )]
    InvalidUrl { url: String, reason: String },

    #[error("cannot create the directory {} for the SQLite database: {source}", path.display())]
    CreateDirectory {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "cannot lock {} to migrate the SQLite database beside it: {source}; check the \
         directory's permissions",
        path.display()
    )]
    LockFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "there is no database at {}: check DATABASE_URL (or DATA_DIR); this command only reads \
         the database `serve` uses and never creates one",
        path.display()
    )]
    Missing { path: PathBuf },

    #[error(
        "the database at {target} {problem}: point DATABASE_URL at the database `serve` uses, or \
         start `pomerium-jit serve` on it once to bring its schema up to date; this command \
         never changes a database"
    )]
    Unmigrated { target: String, problem: String },

    #[error(
        "cannot connect to the database at {target}: {source}; check that it is running and \
         reachable and that the URL's host, port, user and database name are right"
    )]
    Connect {
        target: String,
        #[source]
        source: sqlx::Error,
    },

    #[error(
        "could not bring the schema of the database at {target} up to date: {source}; nothing \
         was changed by the failed step. If the database was migrated by a newer pomerium-jit, \
         run that version instead"
    )]
    Migrate {
        target: String,
        #[source]
        source: sqlx::migrate::MigrateError,
    },

    #[error(
        "the database is unavailable ({source}); nothing was changed. Check that it is running \
         and not overloaded, then retry"
    )]
    Unavailable {
        #[source]
        source: sqlx::Error,
    },

    #[error(
        "the database refused the write ({source}); nothing was changed. A constraint or the \
         append-only audit trail forbids it"
    )]
    Refused {
        #[source]
        source: sqlx::Error,
    },

    #[error("database error: {source}")]
    Query {
        #[source]
        source: sqlx::Error,
    },

    #[error(
        "row `{key}` of table `{table}` is corrupt: column `{column}` holds {value:?}, which {problem}; \
         restore the row from a backup (the audit trail records every change)"
    )]
    Corrupt {
        table: &'static str,
        key: String,
        column: &'static str,
        value: String,
        problem: String,
    },

    #[error("the {what} {value} is beyond what the store can hold")]
    OutOfRange { what: &'static str, value: String },

    #[error(
        "this replica no longer holds the writer lease `{lease}` (epoch {epoch}): another replica took over; nothing was recorded"
    )]
    Fenced { lease: String, epoch: u64 },

    #[error(
        "the write intent {intent} of policy `{policy}` is no longer recorded, so the success that settles it was not recorded; the next sync reads Pomerium Zero again"
    )]
    IntentGone { policy: String, intent: i64 },

    #[error("refusing to write request {request_id}: {problem}; nothing was changed")]
    InvalidTransition {
        request_id: RequestId,
        problem: &'static str,
    },
}

impl From<sqlx::Error> for StoreError {
    /// Sorts a driver error by what the operator should do about it.
    fn from(source: sqlx::Error) -> Self {
        match &source {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable { source },
            sqlx::Error::Database(db) => match classify(db.as_ref()) {
                CodeClass::Refused => StoreError::Refused { source },
                CodeClass::Unavailable => StoreError::Unavailable { source },
                CodeClass::Other => StoreError::Query { source },
            },
            _ => StoreError::Query { source },
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum CodeClass {
    Refused,
    Unavailable,
    Other,
}

fn classify(db: &dyn DatabaseError) -> CodeClass {
    let code = db.code().unwrap_or_default();
    if db.try_downcast_ref::<PgDatabaseError>().is_some() {
        classify_sqlstate(&code)
    } else if db.try_downcast_ref::<SqliteError>().is_some() {
        code.parse().map_or(CodeClass::Other, classify_sqlite)
    } else {
        CodeClass::Other
    }
}

/// SQLite's extended result codes keep the primary code in the low byte.
fn classify_sqlite(code: u32) -> CodeClass {
    match code & 0xff {
        19 => CodeClass::Refused, // SQLITE_CONSTRAINT_* (incl. RAISE(ABORT))
        5 | 6 | 10 | 13 => CodeClass::Unavailable, // BUSY, LOCKED, IOERR, FULL
        _ => CodeClass::Other,
    }
}

fn classify_sqlstate(code: &str) -> CodeClass {
    match code.get(..2) {
        Some("23") => CodeClass::Refused, // integrity constraint violation
        // connection exception, transaction rollback (serialization failure,
        // deadlock), insufficient resources, operator intervention (shutdown)
        Some("08" | "40" | "53" | "57") => CodeClass::Unavailable,
        _ => CodeClass::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_classified() {
        assert_eq!(classify_sqlite(1811), CodeClass::Refused); // SQLITE_CONSTRAINT_TRIGGER
        assert_eq!(classify_sqlite(2067), CodeClass::Refused); // SQLITE_CONSTRAINT_UNIQUE
        assert_eq!(classify_sqlite(5), CodeClass::Unavailable);
        assert_eq!(classify_sqlite(1), CodeClass::Other);
        assert_eq!(classify_sqlstate("23505"), CodeClass::Refused);
        assert_eq!(classify_sqlstate("23000"), CodeClass::Refused);
        assert_eq!(classify_sqlstate("40001"), CodeClass::Unavailable);
        assert_eq!(classify_sqlstate("57P01"), CodeClass::Unavailable);
        assert_eq!(classify_sqlstate("42P01"), CodeClass::Other);
    }
}
