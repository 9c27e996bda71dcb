use proptest::prelude::*;
use serde_json::json;
use time::Duration;
use time::macros::datetime;

use super::*;

fn obs(v: serde_json::Value) -> Observed {
    Observed::scan(&v.to_string(), &DecodeOptions::default()).unwrap()
}

/// What `render` wrote, as rules.
fn parsed(ppl: Ppl) -> Policy {
    Policy::from_json_str(ppl.as_str()).unwrap()
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
    let changes = outside_changes(&base, &[], &remote, &desired);
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
    let changes = outside_changes(&base, &[], &remote, &desired);
    assert_eq!(
        changes,
        vec![(a, Some(grant)), (c, Some(RemoteEntry::Pending))]
    );

    // Nothing changed outside: nothing to adopt.
    assert!(outside_changes(&base, &[], &base, &base.entries).is_empty());
}

#[test]
fn what_the_app_intended_is_never_a_console_edit() {
    let until = datetime!(2026-11-28 13:00 UTC);
    let grant = RemoteEntry::Grant {
        starts_at: None,
        expires_at: until,
    };
    let alice = email("alice@x.test");
    let observed = |entries: Vec<(Email, RemoteEntry)>| Observed {
        entries: entries.into_iter().collect(),
        ..Default::default()
    };
    // Two writes landed but their answers were lost: the base knows neither.
    let base = observed(vec![]);
    let intents = [
        observed(vec![(alice.clone(), RemoteEntry::Pending)]),
        observed(vec![(alice.clone(), grant)]),
    ];
    let remote = observed(vec![(alice.clone(), grant)]);
    // Then the admin revoked: the store holds nothing for Alice.
    let desired = BTreeMap::new();
    assert_eq!(
        outside_changes(&base, &[], &remote, &desired),
        vec![(alice.clone(), Some(grant))],
        "without intents the lost write looks like a console grant"
    );
    assert!(
        outside_changes(&base, &intents, &remote, &desired).is_empty(),
        "the app's own write is not adopted"
    );
    // A console extension on top of the app's write is still an edit.
    let extended = RemoteEntry::Grant {
        starts_at: None,
        expires_at: until + time::Duration::HOUR,
    };
    let remote = observed(vec![(alice.clone(), extended)]);
    let decided = BTreeMap::from([(alice.clone(), grant)]);
    let base = observed(vec![(alice.clone(), grant)]);
    assert_eq!(
        outside_changes(&base, &intents, &remote, &decided),
        vec![(alice, Some(extended))]
    );
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

#[test]
fn a_scan_for_foreign_rules_keeps_them_and_hands_over_every_entry() {
    let doc = json!([
        {"allow":{"and":[{"email":"a@x.test"},{"reject":true}]}},
        {"deny":{"or":[{"email":"evil@x.test"}]}},
        {"allow":{"and":[{"email":"b@x.test"},{"date":{"before":"2026-11-28T13:00:00Z"}}]}},
        {"allow":{"and":[{"email":" c@x.test "},{"reject":true}]}},
    ])
    .to_string();
    let options = DecodeOptions::default();
    let mut handed = Vec::new();
    let foreign = Observed::scan_foreign(&doc, &options, |e| handed.push(e)).unwrap();
    let full = Observed::scan(&doc, &options).unwrap();
    assert_eq!(foreign.foreign, full.foreign);
    assert!(foreign.entries.is_empty() && foreign.ambiguous.is_empty());
    assert_eq!(handed, full.entries.into_values().collect::<Vec<_>>());
    assert!(Observed::scan_foreign("[{", &options, |_| {}).is_err());
}

#[test]
fn a_document_is_recognised_as_the_render_only_byte_for_byte() {
    let o = obs(json!({"deny":{"or":[{"email":"evil@x.test"}]}}));
    let grant = |expires_at| RemoteEntry::Grant {
        starts_at: None,
        expires_at,
    };
    let desired = [
        (email("a@x.test"), RemoteEntry::Pending),
        (email("b@x.test"), grant(T)),
    ];
    let text = render(&o.foreign, &desired);
    assert!(renders_as(&o.foreign, &desired, text.as_str()));
    // A grant ending a second later, an entry fewer, the foreign rule gone.
    let later = [
        desired[0].clone(),
        (email("b@x.test"), grant(T + Duration::seconds(1))),
    ];
    assert!(!renders_as(&o.foreign, &later, text.as_str()));
    assert!(!renders_as(&o.foreign, &desired[..1], text.as_str()));
    assert!(!renders_as(&[], &desired, text.as_str()));
    // The same document reformatted is equal as JSON, but not this.
    let spaced = text.as_str().replace(',', ", ");
    assert_eq!(Ppl::from_json(spaced.clone()).unwrap(), text);
    assert!(!renders_as(&o.foreign, &desired, &spaced));
}

/// The JIT-shaped rules' email texts of a policy, in document order.
fn jit_emails(policy: &Policy) -> Vec<String> {
    let options = DecodeOptions::default();
    policy
        .rules()
        .iter()
        .filter_map(|r| JitRule::decode(r, &options))
        .map(|r| r.email().to_string())
        .collect()
}

fn rule(v: serde_json::Value) -> Rule {
    Policy::parse(&json!([v])).unwrap().rules()[0].clone()
}

const SPACED_BOB: &str = r#"{"allow":{"and":[{"email":" bob@example.com "},{"date":{"before":"2026-11-28T13:00:00Z"}}]}}"#;

fn grant(expires_at: time::OffsetDateTime) -> RemoteEntry {
    RemoteEntry::Grant {
        starts_at: None,
        expires_at,
    }
}

#[test]
fn a_console_grant_for_a_spaced_email_is_nobodys_and_kept_verbatim() {
    // Pomerium's `is` is exact: this rule matches nobody. Reading it as
    // bob@example.com would give bob access that the console never gave.
    let spaced: serde_json::Value = serde_json::from_str(SPACED_BOB).unwrap();
    let alice = email("alice@example.com");
    let base = obs(json!([{"allow":{"and":[{"email":"alice@example.com"},{"reject":true}]}}]));
    let remote = obs(json!([
        {"allow":{"and":[{"email":"alice@example.com"},{"reject":true}]}},
        spaced.clone()
    ]));
    assert!(remote.entries.keys().all(|e| e == &alice), "{remote:?}");
    assert_eq!(remote.foreign, [rule(spaced.clone())]);

    // The next run, after alice is approved: nothing to adopt, the rule stays.
    let desired: BTreeMap<_, _> = [(alice.clone(), grant(T))].into();
    assert!(outside_changes(&base, &[], &remote, &desired).is_empty());
    let written = parsed(render(&remote.foreign, &[(alice, grant(T))]));
    assert_eq!(
        serde_json::to_string(&written.rules()[0]).unwrap(),
        SPACED_BOB
    );
    assert_eq!(
        jit_emails(&written),
        [" bob@example.com ", "alice@example.com"]
    );
}

#[test]
fn approving_bob_keeps_the_spaced_console_rule_beside_his_grant() {
    let spaced: serde_json::Value = serde_json::from_str(SPACED_BOB).unwrap();
    let bob = email("bob@example.com");
    let base = obs(json!([{"allow":{"and":[{"email":"bob@example.com"},{"reject":true}]}}]));
    let remote = obs(json!([
        {"allow":{"and":[{"email":"bob@example.com"},{"reject":true}]}},
        spaced.clone()
    ]));
    // Not two conflicting entries for bob: one entry, and one rule for nobody.
    assert!(remote.ambiguous.is_empty());
    assert_eq!(remote.entries, [(bob.clone(), RemoteEntry::Pending)].into());

    let approved = grant(datetime!(2026-11-28 14:00 UTC));
    let desired: BTreeMap<_, _> = [(bob.clone(), approved)].into();
    assert!(outside_changes(&base, &[], &remote, &desired).is_empty());
    let written = parsed(render(&remote.foreign, &[(bob, approved)]));
    assert_eq!(written.rules()[0], rule(spaced));
    assert_eq!(
        jit_emails(&written),
        [" bob@example.com ", "bob@example.com"]
    );
}

#[test]
fn case_is_part_of_the_address() {
    // `is` is case-sensitive: Bob@Example.com is not bob@example.com's grant.
    let remote = obs(json!([
        {"allow":{"and":[{"email":"bob@example.com"},{"reject":true}]}},
        {"allow":{"and":[{"email":"Bob@Example.com"},{"date":{"before":"2026-11-28T13:00:00Z"}}]}}
    ]));
    assert!(remote.ambiguous.is_empty());
    assert_eq!(
        remote.entries,
        [
            (email("Bob@Example.com"), grant(T)),
            (email("bob@example.com"), RemoteEntry::Pending)
        ]
        .into()
    );
}

#[test]
fn foreign_and_unusable_rules_keep_their_order() {
    let rules = [
        json!({"deny":{"or":[{"email":"evil@x.test"}]}}),
        json!({"allow":{"and":[{"email":" bob@x.test"},{"reject":true}]}}),
        json!({"allow":{"and":[{"email":"a@x.test"},{"reject":true}]}}),
        json!({}),
        json!({"allow":{"and":[{"email":"not-an-email"},{"reject":true}]}}),
        json!({"allow":{"or":[{"domain":"x.test"}]}}),
        json!({"allow":{"and":[{"email":{"is":"bob@x.test\n"}},{"reject":true}]}}),
    ];
    let o = obs(json!(rules));
    let kept: Vec<Rule> = [0, 1, 3, 4, 5, 6]
        .into_iter()
        .map(|i| rule(rules[i].clone()))
        .collect();
    assert_eq!(o.foreign, kept);
    assert_eq!(o.entries.len(), 1);
}

/// Text an `email` criterion may hold: addresses, addresses with white space
/// around or inside them, other case, anything.
fn email_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9._+-]{1,8}@[a-zA-Z0-9.-]{1,8}",
        "[ \t\n]{0,2}[a-zA-Z0-9._+ -]{1,8}@[a-zA-Z0-9.-]{1,8}[ \t\n]{0,2}",
        ".{0,12}",
    ]
}

proptest! {
    /// Whatever email text a JIT rule holds, the policy the app writes back
    /// holds exactly that text: verbatim if the app cannot use it, in its
    /// canonical rule if it can (keyed by exactly that text).
    #[test]
    fn a_jit_rules_email_text_round_trips_exactly(text in email_text(), pending in any::<bool>()) {
        let condition = if pending {
            json!({"reject": true})
        } else {
            json!({"date": {"before": "2026-11-28T13:00:00Z"}})
        };
        let o = obs(json!([{"allow":{"and":[{"email": text}, condition]}}]));
        match Email::parse(&text) {
            Ok(usable) => prop_assert_eq!(o.entries.keys().collect::<Vec<_>>(), [&usable]),
            Err(_) => prop_assert!(o.entries.is_empty()),
        }
        let desired: Vec<_> = o.entries.clone().into_iter().collect();
        prop_assert_eq!(jit_emails(&parsed(render(&o.foreign, &desired))), [text]);
    }
}
