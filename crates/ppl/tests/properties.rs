//! Property tests over open-ended inputs: documents, emails, times.

use jit_ppl::eval::{Decision, Subject, evaluate};
use jit_ppl::jit::{
    DecodeOptions, JitRule, PplTime, json_from_parts, json_from_parts_is, json_from_parts_len,
    split,
};
use jit_ppl::{ParseError, Policy};
use proptest::prelude::*;
use proptest::sample::subsequence;
use serde_json::{Map, Value};
use time::{OffsetDateTime, UtcOffset};

/// Any JSON value, nested a few levels.
fn any_json() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((".{0,8}", inner), 0..4)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
        ]
    })
    .boxed()
}

fn criterion_name() -> BoxedStrategy<String> {
    prop_oneof![
        prop::sample::select(vec![
            "email",
            "user",
            "domain",
            "groups",
            "date",
            "accept",
            "reject",
            "http_path",
        ])
        .prop_map(str::to_owned),
        "[a-z_]{1,10}(/[a-z_~]{1,8}){0,2}",
        ".{0,10}",
    ]
    .boxed()
}

fn object<I: IntoIterator<Item = (String, Value)>>(entries: I) -> Value {
    Value::Object(entries.into_iter().collect::<Map<_, _>>())
}

/// A subset of `keys` in random order, each with a value from `value`.
fn keyed(keys: &'static [&'static str], value: BoxedStrategy<Value>) -> BoxedStrategy<Value> {
    subsequence(keys, 0..=keys.len())
        .prop_shuffle()
        .prop_flat_map(move |chosen| {
            let values = prop::collection::vec(value.clone(), chosen.len());
            (Just(chosen), values)
        })
        .prop_map(|(chosen, values)| object(chosen.into_iter().map(str::to_owned).zip(values)))
        .boxed()
}

fn valid_rule() -> BoxedStrategy<Value> {
    let criterion =
        (criterion_name(), any_json()).prop_map(|(name, value)| object([(name, value)]));
    let criteria = prop::collection::vec(criterion, 0..4)
        .prop_map(Value::Array)
        .boxed();
    let body = keyed(&["and", "or", "not", "nor"], criteria);
    keyed(&["allow", "deny"], body)
}

fn valid_document() -> impl Strategy<Value = Value> {
    prop_oneof![
        valid_rule(),
        prop::collection::vec(valid_rule(), 0..6).prop_map(Value::Array),
    ]
}

/// Documents that are often almost valid, so errors happen deep inside.
fn near_document() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        prop::sample::select(vec![
            "allow", "deny", "and", "or", "not", "nor", "email", "date"
        ])
        .prop_map(str::to_owned),
        ".{0,6}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        ".{0,6}".prop_map(Value::String)
    ];
    leaf.prop_recursive(5, 40, 4, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..3).prop_map(object),
        ]
    })
}

proptest! {
    #[test]
    fn valid_documents_render_back_exactly(doc in valid_document()) {
        let policy = Policy::parse(&doc).unwrap();
        prop_assert_eq!(&policy.to_value(), &doc);
        prop_assert_eq!(serde_json::to_string(&policy).unwrap(), serde_json::to_string(&doc).unwrap());
        let text = serde_json::to_string(&doc).unwrap();
        let reread = Policy::from_json_str(&text).unwrap();
        prop_assert_eq!(&reread, &policy);
        prop_assert_eq!(serde_json::to_string(&reread).unwrap(), text);
    }

    #[test]
    fn parsing_never_panics_and_errors_point_into_the_document(
        doc in prop_oneof![any_json(), near_document()],
    ) {
        match Policy::parse(&doc) {
            Ok(policy) => {
                // Whatever parses renders back to itself (`null` reads as the empty list).
                let expected = if doc.is_null() { Value::Array(vec![]) } else { doc.clone() };
                prop_assert_eq!(serde_json::to_string(&policy).unwrap(), serde_json::to_string(&expected).unwrap());
                let options = DecodeOptions::default();
                let _ = split(&policy, &options);
                let _ = evaluate(&policy, &Subject { user: "u".into(), ..Subject::default() }, OffsetDateTime::UNIX_EPOCH, &options);
            }
            Err(ParseError::Invalid { path, problem }) => {
                prop_assert!(doc.pointer(&path).is_some(), "{path} is not in the document ({problem})");
            }
            Err(ParseError::Json(error)) => prop_assert!(false, "a value cannot be bad JSON: {error}"),
        }
    }

    #[test]
    fn text_and_value_inputs_read_the_same(doc in prop_oneof![valid_document(), near_document()]) {
        let text = serde_json::to_string(&doc).unwrap();
        let from_value = Policy::parse(&doc);
        let from_text = Policy::from_json_str(&text);
        match (&from_value, &from_text) {
            (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
            (
                Err(ParseError::Invalid { path: p1, problem: e1 }),
                Err(ParseError::Invalid { path: p2, problem: e2 }),
            ) => prop_assert_eq!((p1, e1), (p2, e2)),
            _ => prop_assert!(false, "{:?} vs {:?}", from_value, from_text),
        }
        prop_assert_eq!(from_value.is_ok(), Policy::from_value(doc).is_ok());
    }

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,64}") {
        let _ = Policy::from_json_str(&text);
    }
}

/// The text of an `email` criterion: addresses, addresses with white space around them
/// (which Pomerium's exact `is` does not match to the bare address), any text at all.
fn email() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9._+-]{1,12}@[a-zA-Z0-9.-]{1,12}",
        "[ \t\n]{0,2}[a-zA-Z0-9._+-]{1,12}@[a-zA-Z0-9.-]{1,12}[ \t\n]{0,2}",
        ".{0,16}",
    ]
}

/// Whole-second instants between years 0000 and 9999 at any offset.
fn instant() -> impl Strategy<Value = OffsetDateTime> {
    let first = OffsetDateTime::parse(
        "0000-01-02T00:00:00Z",
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap()
    .unix_timestamp();
    let last = OffsetDateTime::parse(
        "9999-12-30T00:00:00Z",
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap()
    .unix_timestamp();
    (first..last, -86_399i32..86_400).prop_map(|(seconds, offset)| {
        let offset = UtcOffset::from_whole_seconds(offset - offset % 60).unwrap();
        OffsetDateTime::from_unix_timestamp(seconds)
            .unwrap()
            .to_offset(offset)
    })
}

fn jit_rule() -> impl Strategy<Value = JitRule> {
    prop_oneof![
        email().prop_map(|email| JitRule::Pending { email }),
        (email(), prop::option::of(instant()), instant()).prop_map(|(email, after, before)| {
            JitRule::Grant {
                email,
                after: after.map(|a| PplTime::ceil(a).unwrap()),
                before: PplTime::floor(before).unwrap(),
            }
        }),
    ]
}

proptest! {
    #[test]
    fn jit_encode_then_decode_is_identity(entry in jit_rule()) {
        let options = DecodeOptions::default();
        prop_assert_eq!(JitRule::decode(&entry.to_rule(), &options), Some(entry));
    }

    #[test]
    fn jit_email_text_round_trips_exactly(entry in jit_rule()) {
        let text = serde_json::to_string(&Policy::from_parts([], [&entry])).unwrap();
        let parts = split(&Policy::from_json_str(&text).unwrap(), &DecodeOptions::default());
        prop_assert_eq!(parts.jit.len(), 1);
        prop_assert_eq!(parts.jit[0].1.email(), entry.email());
    }

    #[test]
    fn jit_entries_survive_a_trip_through_json_text(
        entries in prop::collection::vec(jit_rule(), 0..8),
        foreign in prop::collection::vec(valid_rule(), 0..3),
    ) {
        let options = DecodeOptions::default();
        let foreign = Policy::parse(&Value::Array(foreign)).unwrap();
        let foreign_split = split(&foreign, &options);
        let policy = Policy::from_parts(foreign_split.foreign.clone(), &entries);
        let text = serde_json::to_string(&policy).unwrap();
        let parts = split(&Policy::from_json_str(&text).unwrap(), &options);
        let decoded: Vec<JitRule> = parts.jit.iter().map(|(_, entry)| entry.clone()).collect();
        // Foreign rules that happen to be JIT-shaped come back as JIT entries, first.
        let mut expected: Vec<JitRule> = foreign_split.jit.into_iter().map(|(_, e)| e).collect();
        expected.extend(entries);
        prop_assert_eq!(decoded, expected);
        prop_assert_eq!(parts.foreign, foreign_split.foreign);
    }

    #[test]
    fn a_document_is_recognised_exactly_as_it_would_be_written(
        entries in prop::collection::vec(jit_rule(), 0..6),
        foreign in prop::collection::vec(valid_rule(), 0..3),
        cut in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let foreign = split(&Policy::parse(&Value::Array(foreign)).unwrap(), &DecodeOptions::default()).foreign;
        let text = json_from_parts(&foreign, entries.iter().cloned(), 0);
        prop_assert!(json_from_parts_is(&foreign, entries.iter().cloned(), &text));
        prop_assert_eq!(json_from_parts_len(&foreign, entries.iter().cloned()), text.len());
        // Any other text is not it: shorter, longer, or one byte changed.
        let at = text.floor_char_boundary(cut.index(text.len()));
        prop_assert!(!json_from_parts_is(&foreign, entries.iter().cloned(), &text[..at]));
        let longer = format!("{text} ");
        prop_assert!(!json_from_parts_is(&foreign, entries.iter().cloned(), &longer));
        let mut changed = text.clone().into_bytes();
        changed[at.min(text.len() - 1)] = byte;
        let changed = String::from_utf8_lossy(&changed);
        if changed != text {
            prop_assert!(!json_from_parts_is(&foreign, entries.iter().cloned(), &changed));
        }
    }

    #[test]
    fn a_grant_allows_exactly_its_email_inside_its_window(
        grant_email in email(),
        other_email in email(),
        same in any::<bool>(),
        base in 0i64..4_000_000_000,
        start in prop::option::of(-1000i64..1000),
        end in -1000i64..1000,
        at in -1100i64..1100,
    ) {
        let time = |offset: i64| OffsetDateTime::from_unix_timestamp(base + offset).unwrap();
        let entry = JitRule::Grant {
            email: grant_email.clone(),
            after: start.map(|s| PplTime::ceil(time(s)).unwrap()),
            before: PplTime::floor(time(end)).unwrap(),
        };
        let subject = Subject {
            user: "u-1".into(),
            email: if same { &grant_email } else { &other_email }.clone(),
            ..Subject::default()
        };
        let policy = Policy::from_parts([], [&entry]);
        let result = evaluate(&policy, &subject, time(at), &DecodeOptions::default());
        let inside = start.is_none_or(|s| at > s) && at < end;
        let expected = subject.email == grant_email && inside;
        prop_assert_eq!(result.decision == Decision::Allow, expected, "{}", result.reason);
    }
}
