use serde_json::json;
use time::macros::datetime;

use super::*;

fn obs(v: serde_json::Value) -> Observed {
    Observed::of(&Policy::parse(&v).unwrap(), &DecodeOptions::default())
}

fn email(s: &str) -> Email {
    Email::parse(s).unwrap()
}

const T: time::OffsetDateTime = datetime!(2026-11-28 13:00 UTC);

#[test]
fn reads_the_original_format_and_keeps_foreign_rules() {
    let o = obs(json!([
        {"allow":{"and":[{"email":"a@x.test"},{"reject":true}]}},
        {"allow":{"and":[{"email":"b@x.test"},{"date":{"before":"2026-11-28T13:00:00Z"}}]}},
        {"deny":{"or":[{"email":"evil@x.test"}]}},
        {"allow":{"and":[{"email":"not-an-email"},{"reject":true}]}}
    ]));
    assert_eq!(o.entries[&email("a@x.test")], RemoteEntry::Pending);
    assert_eq!(
        o.entries[&email("b@x.test")],
        RemoteEntry::Grant {
            starts_at: None,
            expires_at: T
        }
    );
    assert_eq!(
        o.foreign.len(),
        2,
        "the deny rule and the unrepresentable one stay foreign"
    );
}

#[test]
fn conflicting_duplicates_are_ambiguous_identical_ones_collapse() {
    let o = obs(json!([
        {"allow":{"and":[{"email":"a@x.test"},{"reject":true}]}},
        {"allow":{"and":[{"email":{"is":"a@x.test"}},{"reject":true}]}},
        {"allow":{"and":[{"email":"b@x.test"},{"reject":true}]}},
        {"allow":{"and":[{"email":"b@x.test"},{"date":{"before":"2026-11-28T13:00:00Z"}}]}}
    ]));
    assert_eq!(o.entries.len(), 1);
    assert!(o.ambiguous.contains(&email("b@x.test")));
}

#[test]
fn three_way_merge() {
    let grant = RemoteEntry::Grant {
        starts_at: None,
        expires_at: T,
    };
    let a = email("a@x.test");
    let b = email("b@x.test");
    let c = email("c@x.test");
    let base = Observed {
        entries: [(a.clone(), RemoteEntry::Pending), (b.clone(), grant)].into(),
        ..Default::default()
    };
    // Console: a approved by hand, b removed, c added.
    let remote = Observed {
        entries: [(a.clone(), grant), (c.clone(), RemoteEntry::Pending)].into(),
        ..Default::default()
    };
    // Store unchanged since base.
    let desired: BTreeMap<_, _> = base.entries.clone();
    let changes = outside_changes(&base, &remote, &desired);
    assert_eq!(
        changes,
        vec![
            (a.clone(), Some(grant)),
            (b.clone(), None),
            (c.clone(), Some(RemoteEntry::Pending))
        ]
    );

    // The store revoked b since the base: the app's decision wins, nothing to adopt for b.
    let desired: BTreeMap<_, _> = [(a.clone(), RemoteEntry::Pending)].into();
    let changes = outside_changes(&base, &remote, &desired);
    assert_eq!(
        changes,
        vec![(a, Some(grant)), (c, Some(RemoteEntry::Pending))]
    );

    // Nothing changed outside: nothing to adopt.
    assert!(outside_changes(&base, &base, &base.entries).is_empty());
}

#[test]
fn render_puts_foreign_first_in_the_original_encoding() {
    let o = obs(json!({"deny":{"or":[{"email":"evil@x.test"}]}}));
    let p = render(
        &o.foreign,
        &[
            (email("a@x.test"), RemoteEntry::Pending),
            (
                email("b@x.test"),
                RemoteEntry::Grant {
                    starts_at: None,
                    expires_at: T,
                },
            ),
        ],
    );
    assert_eq!(
        p.to_value(),
        json!([
            {"deny":{"or":[{"email":"evil@x.test"}]}},
            {"allow":{"and":[{"email":"a@x.test"},{"reject":true}]}},
            {"allow":{"and":[{"email":"b@x.test"},{"date":{"before":"2026-11-28T13:00:00Z"}}]}}
        ])
    );
}
