//! Failover: three replicas on one PostgreSQL database, one fake Zero. The
//! replica holding the reconciler's lease is killed with SIGKILL during a
//! burst of approvals; every decision still lands in the store and, within
//! 30 s of the kill, in Zero, and the audit trail stays one intact chain.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jit_fakes::pomerium::TestUser;
use serde_json::Value;
use sqlx::{Connection, PgConnection};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::Semaphore;

use crate::harness::{App, Env, POLICY, PgDatabase};

const USERS: usize = 100;
/// The first this many users are revoked right after their approval: the
/// grants that must leave the policy (grants cannot be shorter than a
/// minute, too long to wait for an expiry here).
const REVOKED: usize = 10;
/// Requests in flight at once, so that the burst outlasts the kill.
const IN_FLIGHT: usize = 10;
/// Approvals answered before the hunt for the lease holder starts.
const KILL_AFTER: usize = 25;
const CONVERGE_WITHIN: Duration = Duration::from_secs(30);

/// What the policy says, or should say, about one person.
#[derive(Debug, PartialEq, Eq)]
enum Rule {
    Pending,
    /// Granted until this Unix second (PPL dates are whole seconds).
    GrantedUntil(i64),
    /// A rule of another shape, or a second rule for the same person.
    Unexpected(String),
}

/// The three replicas, and which one was killed (`usize::MAX`: none yet).
struct Replicas {
    apps: Vec<App>,
    dead: AtomicUsize,
}

impl Replicas {
    /// Posts to replica `first`, or to the next one while `first` is the
    /// killed one (also when the kill cut the request off). Returns the
    /// status and whether the request had to move to another replica.
    async fn post(
        &self,
        first: usize,
        path: &str,
        token: &str,
        form: &[(&str, &str)],
    ) -> (u16, bool) {
        let n = self.apps.len();
        let mut moved = false;
        for k in (0..n).map(|i| (first + i) % n) {
            if self.dead.load(Ordering::SeqCst) == k {
                moved = true;
                continue;
            }
            match self.apps[k].try_post(path, token, form).await {
                Ok((status, _)) => return (status, moved),
                Err(_) if self.dead.load(Ordering::SeqCst) == k => moved = true,
                Err(e) => panic!("replica {k} (still alive) failed {path}: {e}"),
            }
        }
        panic!("no replica answered {path}")
    }
}

/// The reconciler lease's row: holder, expiry (Unix ms) and epoch.
async fn lease(db: &mut PgConnection) -> Option<(String, i64, i64)> {
    sqlx::query_as("SELECT holder, expires_at, epoch FROM leases WHERE name = $1")
        .bind(format!("reconcile:{POLICY}"))
        .fetch_optional(db)
        .await
        .expect("read the leases table")
}

/// The process id in a reconciler holder name, `pomerium-jit-{pid}-{random}`.
fn pid_of(holder: &str) -> u32 {
    holder
        .strip_prefix("pomerium-jit-")
        .and_then(|rest| rest.split('-').next())
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| panic!("lease holder {holder:?} names no process id"))
}

fn now_millis() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// Every request's status by email, from the store.
async fn statuses(db: &mut PgConnection) -> BTreeMap<String, String> {
    let rows: Vec<(String, String)> = sqlx::query_as("SELECT email, status FROM requests")
        .fetch_all(db)
        .await
        .expect("read requests");
    let mut by_email = BTreeMap::new();
    for (email, status) in rows {
        assert!(
            by_email.insert(email.clone(), status).is_none(),
            "{email} has more than one request"
        );
    }
    by_email
}

/// The policy the store calls for: a rule per open request.
async fn desired(db: &mut PgConnection) -> BTreeMap<String, Rule> {
    let rows: Vec<(String, String, Option<i64>)> = sqlx::query_as(
        "SELECT email, status, expires_at FROM requests WHERE status IN ('pending', 'active')",
    )
    .fetch_all(db)
    .await
    .expect("read open requests");
    rows.into_iter()
        .map(|(email, status, expires_at)| {
            let rule = match (status.as_str(), expires_at) {
                ("pending", None) => Rule::Pending,
                ("active", Some(ms)) => Rule::GrantedUntil(ms.div_euclid(1000)),
                other => panic!("{email}: an open request in an impossible state {other:?}"),
            };
            (email, rule)
        })
        .collect()
}

/// The JIT rules in the policy Zero holds, by email.
fn actual(ppl: Option<Value>) -> BTreeMap<String, Rule> {
    let mut rules = BTreeMap::new();
    for r in ppl.as_ref().and_then(Value::as_array).into_iter().flatten() {
        let and = &r["allow"]["and"];
        let email = and[0]["email"].as_str().unwrap_or_default().to_owned();
        let rule = if and[1]["reject"] == true {
            Rule::Pending
        } else if let Some(before) = and[1]["date"]["before"].as_str()
            && and[1]["date"]["after"].is_null()
            && let Ok(at) = OffsetDateTime::parse(before, &Rfc3339)
        {
            Rule::GrantedUntil(at.unix_timestamp())
        } else {
            Rule::Unexpected(r.to_string())
        };
        if rules.insert(email.clone(), rule).is_some() {
            rules.insert(email, Rule::Unexpected("a second rule".into()));
        }
    }
    rules
}

/// Stops the replica holding the lease, checks it still holds it (a stopped
/// process cannot release it), then kills it with SIGKILL. Returns the
/// killed replica's index and its lease epoch.
async fn kill_the_lease_holder(replicas: &Replicas, db: &mut PgConnection) -> (usize, i64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        assert!(
            Instant::now() < deadline,
            "no replica was seen holding the lease"
        );
        if let Some((holder, expires_at, epoch)) = lease(db).await
            && expires_at > now_millis()
        {
            let pid = pid_of(&holder);
            let k = replicas
                .apps
                .iter()
                .position(|a| a.pid() == pid)
                .unwrap_or_else(|| panic!("lease holder {holder} is none of the replicas"));
            let app = &replicas.apps[k];
            app.signal("STOP");
            // Let a release it sent just before the stop reach the database.
            tokio::time::sleep(Duration::from_millis(50)).await;
            match lease(db).await {
                Some((h, e, ep)) if h == holder && ep == epoch && e > now_millis() => {
                    replicas.dead.store(k, Ordering::SeqCst);
                    app.signal("KILL");
                    return (k, epoch);
                }
                _ => app.signal("CONT"),
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_lease_holder_mid_burst_loses_nothing() {
    let Some(pg) = PgDatabase::create().await else {
        return;
    };
    let env = Env::new().await;
    // Zero answers slowly enough that a sync run is there to be caught.
    env.zero.set_latency(Duration::from_millis(20));
    let settings = [("DATABASE_URL", pg.url.as_str()), ("APPLY_WAIT", "1s")];
    let replicas = Arc::new(Replicas {
        apps: (0..3).map(|_| env.spawn(&settings)).collect(),
        dead: AtomicUsize::new(usize::MAX),
    });
    let mut db = PgConnection::connect(&pg.url).await.expect("connect");
    let users: Vec<TestUser> = (0..USERS)
        .map(|i| TestUser::new(format!("u{i}"), format!("u{i}@example.com")))
        .collect();
    let started = Instant::now();

    // 100 requests over the three replicas.
    let gate = Arc::new(Semaphore::new(IN_FLIGHT));
    let requests: Vec<_> = users
        .iter()
        .enumerate()
        .map(|(i, u)| {
            let (replicas, gate, token) = (replicas.clone(), gate.clone(), env.token(u));
            tokio::spawn(async move {
                let _slot = gate.acquire().await.unwrap();
                replicas.post(i, "/request-access", &token, &[]).await
            })
        })
        .collect();
    for t in requests {
        let (status, _) = t.await.unwrap();
        assert!(
            status == 303 || status == 503,
            "a request answered {status}"
        );
    }
    env.wait_ppl("all 100 pending", |p| {
        actual(Some(p.clone()))
            .values()
            .filter(|r| **r == Rule::Pending)
            .count()
            == USERS
    })
    .await;
    println!("requests: {:?}", started.elapsed());

    // The burst: 100 approvals over the replicas, the first ten then revoked.
    let admin = env.token(&TestUser::admin());
    let answered = Arc::new(AtomicUsize::new(0));
    let log = Arc::new(Mutex::new(Vec::<(String, &str, u16, bool)>::new()));
    let burst: Vec<_> = users
        .iter()
        .enumerate()
        .map(|(i, u)| {
            let (replicas, gate, admin) = (replicas.clone(), gate.clone(), admin.clone());
            let (answered, log, email) = (answered.clone(), log.clone(), u.email.clone());
            tokio::spawn(async move {
                let _slot = gate.acquire().await.unwrap();
                let form = [("email", email.as_str())];
                let (status, moved) = replicas
                    .post(i, "/admin/approve-access", &admin, &form)
                    .await;
                log.lock()
                    .unwrap()
                    .push((email.clone(), "approve", status, moved));
                answered.fetch_add(1, Ordering::SeqCst);
                if i < REVOKED {
                    let (status, moved) = replicas
                        .post(i + 1, "/admin/revoke-access", &admin, &form)
                        .await;
                    log.lock().unwrap().push((email, "revoke", status, moved));
                }
            })
        })
        .collect();
    while answered.load(Ordering::SeqCst) < KILL_AFTER {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (killed, killed_epoch) = kill_the_lease_holder(&replicas, &mut db).await;
    let killed_at = Instant::now();
    let answered_at_kill = answered.load(Ordering::SeqCst);
    assert!(
        answered_at_kill < USERS,
        "the burst was over before the kill"
    );
    println!(
        "killed replica {killed} (pid {}) holding the lease, {answered_at_kill} approvals answered, at {:?}",
        replicas.apps[killed].pid(),
        started.elapsed()
    );
    for t in burst {
        t.await.unwrap();
    }

    // Every decision answered is one the store holds.
    let log = log.lock().unwrap().clone();
    for (email, action, status, moved) in &log {
        // A decision resent after the kill may find the killed replica's
        // copy already saved: an approval is then refused as stale (409), a
        // revoke finds nothing left to end (404). The states checked below
        // show each landed once.
        let resent_found_it_done =
            *moved && (*status == 409 || (*action == "revoke" && *status == 404));
        assert!(
            *status == 303 || *status == 503 || resent_found_it_done,
            "{action} {email} answered {status} (moved by the kill: {moved})"
        );
    }
    let count = |f: &dyn Fn(u16, bool) -> bool| log.iter().filter(|e| f(e.2, e.3)).count();
    println!(
        "decisions: {} applied (303), {} saved not applied (503), {} moved to a survivor by the kill",
        count(&|s, _| s == 303),
        count(&|s, _| s == 503),
        count(&|_, moved| moved)
    );
    let statuses = statuses(&mut db).await;
    assert_eq!(statuses.len(), USERS);
    for (i, u) in users.iter().enumerate() {
        let want = if i < REVOKED { "revoked" } else { "active" };
        assert_eq!(statuses[&u.email], want, "{}", u.email);
    }

    // Zero converges on the store within 30 s of the kill.
    let converged = loop {
        let (want, have) = (desired(&mut db).await, actual(env.ppl()));
        if want == have {
            break killed_at.elapsed();
        }
        assert!(
            killed_at.elapsed() < CONVERGE_WITHIN,
            "Zero's policy did not converge within {CONVERGE_WITHIN:?} of the kill: \
             {} rules differ; store wants {want:?}, policy is {have:?}",
            want.iter().filter(|(e, r)| have.get(*e) != Some(r)).count()
                + have.keys().filter(|e| !want.contains_key(*e)).count()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    println!(
        "policy converged {converged:?} after the kill (total {:?})",
        started.elapsed()
    );
    let have = actual(env.ppl());
    assert_eq!(have.len(), USERS - REVOKED);
    assert!(have.values().all(|r| matches!(r, Rule::GrantedUntil(_))));

    // A survivor took the lease over; one policy, one intact audit chain.
    let (holder, _, epoch) = lease(&mut db).await.expect("the lease row");
    let survivor = replicas
        .apps
        .iter()
        .position(|a| a.pid() == pid_of(&holder));
    assert!(
        survivor.is_some_and(|k| k != killed) && epoch > killed_epoch,
        "the lease did not pass to a survivor: {holder} epoch {epoch}"
    );
    let named = env
        .zero
        .policies()
        .into_iter()
        .filter(|p| p["name"] == POLICY)
        .count();
    assert_eq!(named, 1, "policies named {POLICY}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pomerium-jit"))
        .args(["audit", "verify"])
        .env_clear()
        .env("DATABASE_URL", &pg.url)
        .output()
        .expect("run pomerium-jit audit verify");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events = USERS * 2 + REVOKED;
    assert!(
        stdout.contains(&format!("intact: {events} events, {USERS} requests match")),
        "{stdout}"
    );
}
