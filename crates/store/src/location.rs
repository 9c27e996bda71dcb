use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::ConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;

use crate::StoreError;

/// Which database engine holds the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A parsed database URL. `connect_url` may hold a password, so this type
/// has no `Debug` and is dropped once connected; only `shown` is kept.
pub(crate) struct Location {
    pub backend: Backend,
    /// The URL handed to the driver.
    pub connect_url: String,
    /// The URL with any password replaced, for messages and `Debug`.
    pub shown: String,
    /// The database file, for SQLite on disk; `None` for PostgreSQL and
    /// in-memory SQLite.
    pub sqlite_file: Option<PathBuf>,
}

impl Location {
    /// Parses `url`, and for a SQLite file creates its missing parent
    /// directories, so a fresh deployment needs no manual setup.
    pub fn parse(url: &str) -> Result<Self, StoreError> {
        let url = url.trim();
        let shown = redact(url);
        let Some((scheme, _)) = url.split_once(':') else {
            return Err(StoreError::InvalidUrl {
                url: shown,
                reason: "it has no scheme".into(),
            });
        };
        match scheme.to_ascii_lowercase().as_str() {
            "sqlite" => Self::sqlite(url, shown),
            "postgres" | "postgresql" => Ok(Self {
                backend: Backend::Postgres,
                connect_url: url.to_owned(),
                shown,
                sqlite_file: None,
            }),
            _ => Err(StoreError::UnsupportedScheme {
                scheme: scheme.chars().take(32).collect(),
            }),
        }
    }

    /// Parses `url` to read an existing database: creates nothing, and a
    /// SQLite file must exist; it is opened read-only.
    pub fn parse_existing(url: &str) -> Result<Self, StoreError> {
        let url = url.trim();
        let is_sqlite = url
            .get(.."sqlite:".len())
            .is_some_and(|s| s.eq_ignore_ascii_case("sqlite:"));
        if !is_sqlite {
            return Self::parse(url);
        }
        let shown = redact(url);
        let invalid = |reason: String| StoreError::InvalidUrl {
            url: shown.clone(),
            reason,
        };
        let options = SqliteConnectOptions::from_str(url).map_err(|e| invalid(e.to_string()))?;
        if is_memory(url) {
            return Err(invalid(
                "an in-memory database is always empty; name the file `serve` uses".into(),
            ));
        }
        let file = options.get_filename().to_path_buf();
        let path = match file.canonicalize() {
            Ok(path) if path.is_file() => path,
            _ => return Err(StoreError::Missing { path: file }),
        };
        let options = options
            .filename(&path)
            .read_only(true)
            .create_if_missing(false);
        Ok(Self {
            backend: Backend::Sqlite,
            connect_url: options.to_url_lossy().to_string(),
            shown: sqlite_shown(&path),
            sqlite_file: Some(path),
        })
    }

    fn sqlite(url: &str, shown: String) -> Result<Self, StoreError> {
        let invalid = |reason: String| StoreError::InvalidUrl {
            url: shown.clone(),
            reason,
        };
        let options = SqliteConnectOptions::from_str(url).map_err(|e| invalid(e.to_string()))?;
        let rest = url["sqlite:".len()..].trim_start_matches("//");
        let database = rest.split_once('?').map_or(rest, |(d, _)| d);
        let memory = |connect_url: String| {
            Ok(Self {
                backend: Backend::Sqlite,
                connect_url,
                shown: shown.clone(),
                sqlite_file: None,
            })
        };
        if database == ":memory:" {
            // The driver would give every new connection its own database
            // for `:memory:`; a fixed name keeps one, shared by the pool.
            static NEXT: AtomicU64 = AtomicU64::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            return memory(format!(
                "sqlite:file:pomerium-jit-memory-{n}?mode=memory&cache=shared"
            ));
        }
        if is_memory(url) {
            return memory(url.to_owned());
        }
        let file = options.get_filename();
        let Some(name) = file.file_name() else {
            return Err(invalid("it names no database file".into()));
        };
        let dir = match file.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&dir).map_err(|source| StoreError::CreateDirectory {
            path: dir.clone(),
            source,
        })?;
        // An absolute path survives the driver's URL round trip unchanged (a
        // relative one would be read as a host name).
        let dir = dir
            .canonicalize()
            .map_err(|source| StoreError::CreateDirectory { path: dir, source })?;
        let path = dir.join(name);
        let options = options.filename(&path).create_if_missing(true);
        Ok(Self {
            backend: Backend::Sqlite,
            connect_url: options.to_url_lossy().to_string(),
            shown: sqlite_shown(&path),
            sqlite_file: Some(path),
        })
    }
}

/// Whether a `sqlite:` URL names an in-memory database.
fn is_memory(url: &str) -> bool {
    let rest = url["sqlite:".len()..].trim_start_matches("//");
    let (database, params) = rest.split_once('?').unwrap_or((rest, ""));
    database == ":memory:" || params.split('&').any(|p| p == "mode=memory")
}

fn sqlite_shown(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

/// `url` with any password (in the user info or a `password` query
/// parameter) replaced by `***`; an unparseable URL is not shown at all,
/// since it might hold a password in a form not recognised here.
pub(crate) fn redact(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return "<an unparseable URL>".into();
    };
    if parsed.password().is_some() && parsed.set_password(Some("***")).is_err() {
        return "<an unparseable URL>".into();
    }
    if parsed.query().is_some() {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| {
                let secret = k.to_ascii_lowercase().contains("password");
                (
                    k.into_owned(),
                    if secret { "***".into() } else { v.into_owned() },
                )
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn schemes() {
        let pg = Location::parse("postgres://u:pw@h:5432/db").unwrap();
        assert_eq!(pg.backend, Backend::Postgres);
        assert_eq!(pg.shown, "postgres://u:***@h:5432/db");
        let pg = Location::parse("postgresql://h/db?password=pw&sslmode=require").unwrap();
        assert_eq!(pg.shown, "postgresql://h/db?password=***&sslmode=require");
        let memory = Location::parse("sqlite::memory:").unwrap();
        assert_eq!(
            (memory.backend, memory.sqlite_file),
            (Backend::Sqlite, None)
        );
        match Location::parse("mysql://root:pw@h/db") {
            Err(StoreError::UnsupportedScheme { scheme }) => assert_eq!(scheme, "mysql"),
            other => panic!("expected UnsupportedScheme, got {:?}", other.err()),
        }
        assert!(matches!(
            Location::parse("just-a-file.db"),
            Err(StoreError::InvalidUrl { .. })
        ));
        assert!(matches!(
            Location::parse("sqlite://x.db?bogus=1"),
            Err(StoreError::InvalidUrl { .. })
        ));
    }

    #[test]
    fn sqlite_file_gets_directories_and_an_absolute_path() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("a/b c/jit#1.db");
        let loc = Location::parse(&format!("sqlite://{}", file.display())).unwrap();
        let dir = tmp.path().join("a/b c");
        assert!(dir.is_dir());
        let expected = dir.canonicalize().unwrap().join("jit#1.db");
        let back = SqliteConnectOptions::from_str(&loc.connect_url).unwrap();
        assert_eq!(back.get_filename(), expected);
        assert_eq!(loc.shown, format!("sqlite://{}", expected.display()));
    }

    proptest! {
        /// The fixed `S3cr` prefix cannot occur in the rest of these URLs, so
        /// any occurrence would be a leak.
        #[test]
        fn passwords_never_shown(tail in "[A-Za-z0-9!$&'()*+,;=._~@:/?#%-]{0,24}", user in "[a-z]{1,8}") {
            let pw = format!("S3cr{tail}");
            let encoded: String = url::form_urlencoded::byte_serialize(pw.as_bytes()).collect();
            for url in [
                format!("postgres://{user}:{encoded}@db.internal:5432/jit"),
                format!("postgres://{user}@db.internal/jit?sslmode=prefer&password={encoded}"),
            ] {
                let shown = redact(&url);
                prop_assert!(!shown.contains("S3cr"), "{shown}");
                prop_assert!(shown.contains("***"), "{shown}");
            }
        }
    }
}
