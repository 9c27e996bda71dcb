//! The reconciler's hot path on a large policy: 10,000 grants plus a few foreign rules.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use jit_ppl::Policy;
use jit_ppl::eval::{Subject, evaluate};
use jit_ppl::jit::{DecodeOptions, JitRule, PplTime, split};
use serde_json::json;
use time::{Duration, OffsetDateTime};

const GRANTS: usize = 10_000;

fn base() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_780_000_000).expect("a valid timestamp")
}

/// The remote policy as Zero would return it: foreign rules first, then the grants.
fn remote() -> String {
    let foreign = [
        json!({"deny": {"or": [{"groups": "suspended"}, {"email": {"ends_with": "@evil.example"}}]}}),
        json!({"allow": {"and": [{"domain": "example.com"}, {"groups": {"has": "admins"}}]}}),
        json!({"allow": {"or": [{"claim/department": "sre"}], "not": [{"device": {"type": "any"}}]}}),
    ];
    let grants = (0..GRANTS).map(|i| JitRule::Grant {
        email: format!("user{i}@example.com"),
        after: None,
        before: PplTime::floor(base() + Duration::seconds(i as i64)).expect("in range"),
    });
    let grants: Vec<JitRule> = grants.collect();
    let foreign = Policy::parse(&json!(foreign)).expect("valid foreign rules");
    let policy = Policy::from_parts(foreign.rules().iter().cloned(), &grants);
    serde_json::to_string(&policy).expect("serializes")
}

/// Parse, split, rebuild with grant `changed` moved, render, compare.
fn round_trip(remote: &str, changed: Option<usize>) -> bool {
    let options = DecodeOptions::default();
    let policy = Policy::from_json_str(remote).expect("valid remote");
    let parts = split(&policy, &options);
    let mut entries: Vec<JitRule> = parts.jit.into_iter().map(|(_, entry)| entry).collect();
    if let Some(JitRule::Grant { before, .. }) = changed.and_then(|i| entries.get_mut(i)) {
        *before = PplTime::floor(before.get() + Duration::hours(1)).expect("in range");
    }
    let desired = Policy::from_parts(parts.foreign, &entries);
    let rendered = serde_json::to_string(&desired).expect("serializes");
    rendered == remote
}

fn benches(c: &mut Criterion) {
    let remote = remote();
    assert!(
        round_trip(&remote, None),
        "an unchanged rebuild must reproduce the remote exactly"
    );
    assert!(!round_trip(&remote, Some(GRANTS / 2)));

    c.bench_function("roundtrip_10k_grants", |b| {
        b.iter(|| round_trip(black_box(&remote), Some(GRANTS / 2)))
    });
    c.bench_function("parse_10k_grants", |b| {
        b.iter(|| Policy::from_json_str(black_box(&remote)).expect("valid"))
    });

    let policy = Policy::from_json_str(&remote).expect("valid");
    let options = DecodeOptions::default();
    c.bench_function("split_10k_grants", |b| {
        b.iter(|| split(black_box(&policy), &options))
    });
    c.bench_function("render_10k_grants", |b| {
        b.iter(|| serde_json::to_string(black_box(&policy)).expect("serializes"))
    });

    let now = base() + Duration::seconds(GRANTS as i64 / 2 - 10);
    let last = Subject {
        user: "u-last".into(),
        email: format!("user{}@example.com", GRANTS - 1),
        ..Subject::default()
    };
    let stranger = Subject {
        user: "u-stranger".into(),
        email: "stranger@example.org".into(),
        ..Subject::default()
    };
    c.bench_function("evaluate_10k_grants_last_rule_matches", |b| {
        b.iter(|| evaluate(black_box(&policy), &last, now, &options))
    });
    c.bench_function("evaluate_10k_grants_no_match", |b| {
        b.iter(|| evaluate(black_box(&policy), &stranger, now, &options))
    });
}

criterion_group!(roundtrip, benches);
criterion_main!(roundtrip);
