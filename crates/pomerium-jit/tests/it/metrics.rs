//! Prometheus metrics on `METRICS_ADDR`: off by default, never on the main
//! port, and labelled by route, policy, resource and outcome (never by
//! email or raw path).

use std::time::{Duration, Instant};

use jit_fakes::pomerium::TestUser;
use serde_json::Value;

use crate::harness::{App, Env, POLICY};

/// The address the app logged for its metrics listener, if any.
fn metrics_address(app: &App) -> Option<String> {
    app.logs.lock().unwrap().iter().find_map(|line| {
        let v: Value = serde_json::from_str(line).ok()?;
        (v["message"] == "metrics listening").then(|| v["address"].as_str().unwrap().to_owned())
    })
}

/// A sample to find: name, some of its labels, and maybe its value.
type Expect<'a> = (&'a str, Vec<(&'a str, &'a str)>, Option<&'a str>);

/// Whether `text` has a sample of `name` carrying every one of `labels`
/// (and, when given, this value).
fn has(text: &str, name: &str, labels: &[(&str, &str)], value: Option<&str>) -> bool {
    text.lines().any(|line| {
        let Some(rest) = line.strip_prefix(name) else {
            return false;
        };
        if !(rest.starts_with('{') || rest.starts_with(' ')) {
            return false;
        }
        labels
            .iter()
            .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
            && value.is_none_or(|want| rest.rsplit(' ').next() == Some(want))
    })
}

#[tokio::test]
async fn metrics_are_served_on_their_own_listener() {
    let env = Env::new().await;
    let app = env.spawn(&[("METRICS_ADDR", "127.0.0.1:0")]);
    let metrics = metrics_address(&app).expect("the metrics address is logged at start-up");
    assert_ne!(format!("http://{metrics}"), app.base);
    let (alice, admin) = (TestUser::alice(), TestUser::admin());

    let (status, _) = app.get("/", Some(&env.token(&alice))).await;
    assert_eq!(status, 200);
    let (status, _) = app.get("/no/such/page", Some(&env.token(&alice))).await;
    assert_eq!(status, 404);
    let (status, _) = app.get("/requests/987654", Some(&env.token(&alice))).await;
    assert_eq!(status, 404);
    let (status, _) = app.get("/", Some("not-a-token")).await;
    assert_eq!(status, 403);
    let (status, _) = app.post("/request-access", &env.token(&alice), &[]).await;
    assert_eq!(status, 303);
    let (status, _) = app
        .post(
            "/admin/approve-access",
            &env.token(&admin),
            &[("email", "alice@example.com")],
        )
        .await;
    assert_eq!(status, 303);

    let policy = ("policy", POLICY);
    let resource = ("resource", "default");
    let expected: Vec<Expect> = vec![
        (
            "pomerium_jit_http_requests_total",
            vec![("route", "/"), ("method", "GET"), ("status", "200")],
            None,
        ),
        (
            "pomerium_jit_http_requests_total",
            vec![
                ("route", "/request-access"),
                ("method", "POST"),
                ("status", "303"),
            ],
            Some("1"),
        ),
        (
            "pomerium_jit_http_requests_total",
            vec![("route", "/requests/{id}"), ("status", "404")],
            Some("1"),
        ),
        (
            "pomerium_jit_http_requests_total",
            vec![("route", "unmatched"), ("status", "404")],
            Some("1"),
        ),
        // Refused before routing: which route it named is not told.
        (
            "pomerium_jit_http_requests_total",
            vec![("route", "unmatched"), ("method", "GET"), ("status", "403")],
            Some("1"),
        ),
        (
            "pomerium_jit_http_request_duration_seconds_bucket",
            vec![("route", "/admin/approve-access"), ("le", "+Inf")],
            Some("1"),
        ),
        (
            "pomerium_jit_syncs_total",
            vec![policy, ("result", "ok")],
            None,
        ),
        (
            "pomerium_jit_sync_duration_seconds_count",
            vec![policy],
            None,
        ),
        (
            "pomerium_jit_sync_last_success_timestamp_seconds",
            vec![policy],
            None,
        ),
        (
            "pomerium_jit_upstream_requests_total",
            vec![("operation", "exchange_token"), ("status", "200")],
            None,
        ),
        (
            "pomerium_jit_upstream_requests_total",
            vec![("operation", "update_policy"), ("status", "200")],
            None,
        ),
        (
            "pomerium_jit_upstream_request_duration_seconds_count",
            vec![("operation", "list_policies")],
            None,
        ),
        ("pomerium_jit_requests_pending", vec![resource], Some("0")),
        ("pomerium_jit_grants_active", vec![resource], Some("1")),
        (
            "pomerium_jit_decision_latency_seconds_count",
            vec![resource, ("decision", "approved")],
            Some("1"),
        ),
        ("pomerium_jit_lease_held", vec![policy], Some("1")),
        (
            "pomerium_jit_policy_overdue_grants",
            vec![policy],
            Some("0"),
        ),
        (
            "pomerium_jit_jwks_fetches_total",
            vec![("result", "ok")],
            None,
        ),
        (
            "pomerium_jit_assertion_failures_total",
            vec![("reason", "malformed")],
            Some("1"),
        ),
    ];

    // The sync that applied the approval may still be finishing its count.
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    let text = loop {
        let resp = http
            .get(format!("http://{metrics}/metrics"))
            .send()
            .await
            .expect("scrape");
        assert_eq!(resp.status(), 200);
        let content_type = resp.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(content_type.starts_with("text/plain"), "{content_type}");
        let text = resp.text().await.unwrap();
        let missing: Vec<_> = expected
            .iter()
            .filter(|(name, labels, value)| !has(&text, name, labels, *value))
            .collect();
        if missing.is_empty() {
            break text;
        }
        assert!(Instant::now() < deadline, "missing {missing:?} in:\n{text}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(has(
        &text,
        "pomerium_jit_http_request_duration_seconds_bucket",
        &[("le", "0.005")],
        None
    ));
    // No person and no raw path in any label.
    assert!(!text.contains("alice@"), "{text}");
    assert!(!text.contains("987654"), "{text}");
    assert!(!text.contains("/no/such/page"), "{text}");

    documented_and_charted(&text);

    // Not on the main port, whoever asks.
    let (status, body) = app.get("/metrics", Some(&env.token(&admin))).await;
    assert_eq!(status, 404);
    assert!(!body.contains("pomerium_jit_"), "{body}");
}

#[tokio::test]
async fn no_metrics_listener_without_metrics_addr() {
    let env = Env::new().await;
    let app = env.spawn(&[]);
    assert_eq!(metrics_address(&app), None, "{}", app.log_text());
    let (status, _) = app.get("/", Some(&env.token(&TestUser::alice()))).await;
    assert_eq!(status, 200);
    let (status, _) = app
        .get("/metrics", Some(&env.token(&TestUser::admin())))
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_bad_metrics_addr_stops_start_up_before_listening() {
    let env = Env::new().await;
    let out = env
        .command(&[("METRICS_ADDR", "localhost")])
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("run pomerium-jit");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("METRICS_ADDR: `localhost`"), "{stderr}");
    assert!(!stderr.contains("listening"), "{stderr}");
}

/// Every metric exported is in the README's table, and every metric the
/// sample dashboard and alert rules query is one the app exports.
fn documented_and_charted(scrape: &str) {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let read = |path: &str| std::fs::read_to_string(repo.join(path)).expect(path);
    let exported: std::collections::BTreeSet<&str> = scrape
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.split(' ').next())
        .collect();
    assert!(exported.len() >= 14, "{exported:?}");
    let readme = read("README.md");
    for name in &exported {
        assert!(
            readme.contains(&format!("| `{name}` |")),
            "{name} is not in the README's metrics table"
        );
    }

    let alerts: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&read("deploy/prometheus/alerts.yaml")).expect("alerts parse");
    let rules = alerts["groups"][0]["rules"].as_sequence().expect("rules");
    assert_eq!(rules.len(), 2);
    let dashboard: Value =
        serde_json::from_str(&read("deploy/grafana/pomerium-jit.json")).expect("dashboard parses");
    let queries: Vec<String> = dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|p| p["targets"].as_array().expect("targets").clone())
        .map(|t| t["expr"].as_str().expect("expr").to_owned())
        .chain(
            rules
                .iter()
                .map(|r| r["expr"].as_str().expect("expr").to_owned()),
        )
        .collect();
    for query in &queries {
        let mut rest = query.as_str();
        while let Some(at) = rest.find("pomerium_jit_") {
            let name: String = rest[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .unwrap_or(&name);
            assert!(
                exported.contains(base),
                "`{name}` in `{query}` is not a metric the app exports"
            );
            rest = &rest[at + name.len()..];
        }
    }
}
