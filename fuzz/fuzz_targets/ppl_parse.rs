//! Arbitrary bytes into the PPL parser, then everything downstream of a successful parse.
//! Properties: nothing panics; what parses from text parses the same from a JSON value and
//! renders back to that value; every JIT entry re-encodes to itself.

#![no_main]

use jit_ppl::Policy;
use jit_ppl::eval::{Subject, evaluate};
use jit_ppl::jit::{DecodeOptions, JitRule, split};
use libfuzzer_sys::fuzz_target;
use time::OffsetDateTime;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(policy) = Policy::from_json_str(text) else {
        return;
    };
    let value: serde_json::Value = serde_json::from_str(text).expect("the parser accepted it");
    let from_value = Policy::parse(&value).expect("text and value inputs agree");
    assert_eq!(from_value, policy);
    let rendered = if value.is_null() {
        serde_json::json!([])
    } else {
        value
    };
    assert_eq!(
        serde_json::to_string(&policy).expect("serializes"),
        serde_json::to_string(&rendered).expect("serializes")
    );

    let options = DecodeOptions::default();
    let parts = split(&policy, &options);
    for (_, entry) in &parts.jit {
        assert_eq!(
            JitRule::decode(&entry.to_rule(), &options).as_ref(),
            Some(entry)
        );
    }
    let entries: Vec<JitRule> = parts.jit.into_iter().map(|(_, entry)| entry).collect();
    let rebuilt = Policy::from_parts(parts.foreign, &entries);
    assert_eq!(rebuilt.rules().len(), policy.rules().len());

    let subject = Subject {
        user: "u-1".into(),
        email: "alice@example.com".into(),
        groups: vec!["admins".into()],
        ..Subject::default()
    };
    for now in [OffsetDateTime::UNIX_EPOCH, OffsetDateTime::now_utc()] {
        let _ = evaluate(&policy, &subject, now, &options);
    }
});
