//! The just-in-time access encoding: one PPL rule per user.
//!
//! Canonical form (what the Go `jit-example` writes, plus the scheduled grant):
//!
//! | entry | rule |
//! | --- | --- |
//! | pending request | `{"allow":{"and":[{"email":E},{"reject":true}]}}` |
//! | grant | `{"allow":{"and":[{"email":E},{"date":{"before":B}}]}}` |
//! | scheduled grant | `{"allow":{"and":[{"email":E},{"date":{"after":A,"before":B}}]}}` |
//!
//! Dates are written as RFC 3339 UTC with `Z` and whole seconds. Decoding also accepts
//! what the console and docs produce (see [`JitRule::decode`]); every other rule is
//! *foreign* and must be carried over verbatim (see [`split`]).
//!
//! The email is text, kept byte-exact both ways: Pomerium's `is` compares it exactly,
//! so ` bob@x ` or `Bob@X` in a rule is not `bob@x`. This crate does not judge whether the
//! text is a usable address; the caller does (the app parses it with its one email type and
//! keeps a rule whose text it cannot use verbatim, as a foreign rule).

use std::fmt;

use serde_json::{Map, Value};
use time::{Duration, OffsetDateTime, UtcOffset};

use crate::date;
pub use crate::date::DecodeOptions;
use crate::model::{Action, Body, Criterion, Operator, Policy, Rule};

/// An instant as this crate writes it into a `date` matcher: UTC, whole seconds, and a
/// year within 0000–9999, so it always renders as `YYYY-MM-DDTHH:MM:SSZ` and a grant
/// decodes back to exactly what was encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PplTime(OffsetDateTime);

/// An instant whose UTC year is outside 0000–9999 cannot be written as RFC 3339.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0} cannot be written as a PPL date: its UTC year is outside 0000-9999")]
pub struct TimeOutOfRange(pub OffsetDateTime);

impl PplTime {
    /// Rounds down to the whole second: use it for an end (`before`), so access ends no later.
    pub fn floor(instant: OffsetDateTime) -> Result<Self, TimeOutOfRange> {
        Self::round(instant, false)
    }

    /// Rounds up to the whole second: use it for a start (`after`), so access starts no earlier.
    pub fn ceil(instant: OffsetDateTime) -> Result<Self, TimeOutOfRange> {
        Self::round(instant, true)
    }

    fn round(instant: OffsetDateTime, up: bool) -> Result<Self, TimeOutOfRange> {
        let out_of_range = TimeOutOfRange(instant);
        let utc = instant
            .checked_to_offset(UtcOffset::UTC)
            .ok_or(out_of_range)?;
        let whole = utc.replace_nanosecond(0).map_err(|_| out_of_range)?;
        let rounded = if up && whole != utc {
            whole.checked_add(Duration::SECOND).ok_or(out_of_range)?
        } else {
            whole
        };
        if (0..=9999).contains(&rounded.year()) {
            Ok(Self(rounded))
        } else {
            Err(out_of_range)
        }
    }

    /// The instant.
    pub fn get(self) -> OffsetDateTime {
        self.0
    }

    /// As written in a policy: `2026-11-28T15:04:05Z` (what `Display` writes, without the
    /// reallocations of `to_string`, which a 10,000-grant render would pay for each date).
    pub fn rfc3339(self) -> String {
        let mut text = String::with_capacity(20);
        // Writing to a String cannot fail, and the invariant keeps the year four digits.
        let _ = date::write_canonical(self.0, &mut text);
        text
    }
}

impl fmt::Display for PplTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        date::write_canonical(self.0, f)
    }
}

/// One JIT entry, as stored in one PPL rule.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum JitRule {
    /// A request awaiting review; the rule grants nothing (`reject`).
    Pending {
        /// Who asked, exactly as the rule has it.
        email: String,
    },
    /// Access while `after < now < before` (strict, as the PPL `date` matcher compares);
    /// without `after` it starts at once. Once `before` passes, Pomerium stops allowing
    /// the user with no policy change.
    Grant {
        /// Who has access, exactly as the rule has it.
        email: String,
        /// Start of a scheduled grant.
        after: Option<PplTime>,
        /// End of the grant.
        before: PplTime,
    },
}

impl JitRule {
    /// The user this entry is about.
    pub fn email(&self) -> &str {
        match self {
            JitRule::Pending { email } | JitRule::Grant { email, .. } => email,
        }
    }

    /// The canonical rule for this entry.
    pub fn to_rule(&self) -> Rule {
        let condition = match self {
            JitRule::Pending { .. } => Criterion::new("reject", true),
            JitRule::Grant { after, before, .. } => {
                let mut matcher = Map::with_capacity(2);
                if let Some(after) = after {
                    matcher.insert("after".into(), after.rfc3339().into());
                }
                matcher.insert("before".into(), before.rfc3339().into());
                Criterion::new("date", matcher)
            }
        };
        Rule::new(
            Action::Allow,
            Body::new(
                Operator::And,
                vec![Criterion::new("email", self.email()), condition],
            ),
        )
    }

    /// Reads a rule as a JIT entry, or `None` if it is foreign (anything this crate did not
    /// or could not have written; the caller must keep it verbatim).
    ///
    /// Accepted: a single `allow` action whose body is a single `and` of exactly two
    /// criteria, in either order:
    /// - `{"email": E}` or `{"email": {"is": E}}` with `E` any string, kept exactly, and
    /// - `{"reject": true}` (pending), or `{"date": {...}}` with a string `before` and an
    ///   optional string `after` and no other key (grant). Dates may be RFC 3339 with any
    ///   offset and fraction, or offset-less (read at [`DecodeOptions::naive_offset`]).
    ///   Fractions are rounded towards less access: `before` down, `after` up.
    ///
    /// Everything else is foreign: a `deny`, two actions, `or`/`not`/`nor`, extra criteria,
    /// other email matchers, `date` with only `after`, a date that does not parse, ...
    pub fn decode(rule: &Rule, options: &DecodeOptions) -> Option<Self> {
        let [(Action::Allow, body)] = rule.actions() else {
            return None;
        };
        let [(Operator::And, criteria)] = body.operators() else {
            return None;
        };
        let [first, second] = criteria.as_slice() else {
            return None;
        };
        let (email, condition) = if first.name == "email" {
            (first, second)
        } else {
            (second, first)
        };
        if email.name != "email" {
            return None;
        }
        let email = decode_email(&email.value)?;
        match (&*condition.name, &condition.value) {
            ("reject", Value::Bool(true)) => Some(JitRule::Pending { email }),
            ("date", Value::Object(matcher)) => {
                let (after, before) = decode_window(matcher, options)?;
                Some(JitRule::Grant {
                    email,
                    after,
                    before,
                })
            }
            _ => None,
        }
    }
}

fn decode_email(value: &Value) -> Option<String> {
    let text = match value {
        Value::String(text) => text,
        Value::Object(matcher) if matcher.len() == 1 => matcher.get("is")?.as_str()?,
        _ => return None,
    };
    Some(text.to_owned())
}

fn decode_window(
    matcher: &Map<String, Value>,
    options: &DecodeOptions,
) -> Option<(Option<PplTime>, PplTime)> {
    let (mut after, mut before) = (None, None);
    for (key, value) in matcher {
        let slot = match key.as_str() {
            "after" => &mut after,
            "before" => &mut before,
            _ => return None,
        };
        *slot = Some(date::parse(value.as_str()?, options)?);
    }
    let after = after.map(PplTime::ceil).transpose().ok()?;
    let before = PplTime::floor(before?).ok()?;
    Some((after, before))
}

/// A policy taken apart: the JIT entries and the rules that are not.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// JIT entries with their index in the policy, in document order. Several entries for
    /// the same email are all kept: deciding what they mean is the caller's job.
    pub jit: Vec<(usize, JitRule)>,
    /// Every other rule, verbatim and in document order.
    pub foreign: Vec<Rule>,
}

/// Sorts every rule of `policy` into JIT entries and foreign rules.
pub fn split(policy: &Policy, options: &DecodeOptions) -> Split {
    let mut jit = Vec::new();
    let mut foreign = Vec::new();
    for (index, rule) in policy.rules().iter().enumerate() {
        match JitRule::decode(rule, options) {
            Some(entry) => jit.push((index, entry)),
            None => foreign.push(rule.clone()),
        }
    }
    Split { jit, foreign }
}

impl Policy {
    /// Rebuilds a policy as the foreign rules (verbatim, first) followed by the JIT entries
    /// in their canonical form. Always the array form, which any number of rules fits.
    pub fn from_parts<'a>(
        foreign: impl IntoIterator<Item = Rule>,
        jit: impl IntoIterator<Item = &'a JitRule>,
    ) -> Policy {
        Policy::List(
            foreign
                .into_iter()
                .chain(jit.into_iter().map(JitRule::to_rule))
                .collect(),
        )
    }
}

/// The JSON text of [`Policy::from_parts`], written rule by rule without
/// building the policy: a large policy is far smaller as text than as rules.
/// `capacity` is how long the text is expected to be (the length of the
/// document it replaces serves): a buffer grown by doubling holds up to
/// twice the text, and three times while it grows.
pub fn json_from_parts<'a>(
    foreign: impl IntoIterator<Item = &'a Rule>,
    jit: impl IntoIterator<Item = JitRule>,
    capacity: usize,
) -> String {
    let mut out = Vec::with_capacity(capacity.max(2));
    write_parts(&mut out, foreign, jit).expect("a rule serializes: every map key is a string");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// Whether [`json_from_parts`] would write exactly `text`, found as it is
/// written: no copy of the document is made, and the first byte that
/// differs ends the comparison.
pub fn json_from_parts_is<'a>(
    foreign: impl IntoIterator<Item = &'a Rule>,
    jit: impl IntoIterator<Item = JitRule>,
    text: &str,
) -> bool {
    let mut rest = Expect(text.as_bytes());
    write_parts(&mut rest, foreign, jit).is_ok() && rest.0.is_empty()
}

/// How long the text of [`json_from_parts`] is, found without writing it:
/// the capacity that holds it exactly.
pub fn json_from_parts_len<'a>(
    foreign: impl IntoIterator<Item = &'a Rule>,
    jit: impl IntoIterator<Item = JitRule>,
) -> usize {
    let mut count = Count(0);
    write_parts(&mut count, foreign, jit).expect("a rule serializes: every map key is a string");
    count.0
}

fn write_parts<'a, W: std::io::Write>(
    mut out: W,
    foreign: impl IntoIterator<Item = &'a Rule>,
    jit: impl IntoIterator<Item = JitRule>,
) -> Result<(), serde_json::Error> {
    out.write_all(b"[").map_err(serde_json::Error::io)?;
    let mut first = true;
    let mut write = |rule: &Rule| {
        if !std::mem::take(&mut first) {
            out.write_all(b",").map_err(serde_json::Error::io)?;
        }
        serde_json::to_writer(&mut out, rule)
    };
    foreign.into_iter().try_for_each(&mut write)?;
    jit.into_iter()
        .try_for_each(|entry| write(&entry.to_rule()))?;
    out.write_all(b"]").map_err(serde_json::Error::io)
}

/// A writer that counts what it is given.
struct Count(usize);

impl std::io::Write for Count {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A writer that accepts only the bytes it expects, in order; what is left
/// of them is `.0`.
struct Expect<'a>(&'a [u8]);

impl std::io::Write for Expect<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.0.strip_prefix(buf) {
            Some(rest) => {
                self.0 = rest;
                Ok(buf.len())
            }
            None => Err(std::io::ErrorKind::InvalidData.into()),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::macros::{datetime, offset};

    fn rule(value: Value) -> Rule {
        match Policy::parse(&value).unwrap() {
            Policy::Single(rule) => rule,
            Policy::List(_) => panic!("test rules are single objects"),
        }
    }

    fn email(text: &str) -> String {
        text.to_owned()
    }

    fn at(instant: OffsetDateTime) -> PplTime {
        PplTime::floor(instant).unwrap()
    }

    fn decode(value: Value) -> Option<JitRule> {
        JitRule::decode(&rule(value), &DecodeOptions::default())
    }

    #[test]
    fn go_original_output_decodes() {
        let pending = r#"{"allow":{"and":[{"email":"Alice@Example.com"},{"reject":true}]}}"#;
        let grant = r#"{"allow":{"and":[{"email":"bob@example.com"},{"date":{"before":"2026-11-28T15:04:05Z"}}]}}"#;
        assert_eq!(
            decode(serde_json::from_str(pending).unwrap()),
            Some(JitRule::Pending {
                email: email("Alice@Example.com")
            })
        );
        assert_eq!(
            decode(serde_json::from_str(grant).unwrap()),
            Some(JitRule::Grant {
                email: email("bob@example.com"),
                after: None,
                before: at(datetime!(2026-11-28 15:04:05 UTC)),
            })
        );
    }

    #[test]
    fn encoding_matches_the_go_original_byte_for_byte() {
        let pending = JitRule::Pending {
            email: email("Alice@Example.com"),
        };
        assert_eq!(
            serde_json::to_string(&pending.to_rule()).unwrap(),
            r#"{"allow":{"and":[{"email":"Alice@Example.com"},{"reject":true}]}}"#
        );
        let grant = JitRule::Grant {
            email: email("bob@example.com"),
            after: None,
            before: at(datetime!(2026-11-28 16:04:05 +01:00)),
        };
        assert_eq!(
            serde_json::to_string(&grant.to_rule()).unwrap(),
            r#"{"allow":{"and":[{"email":"bob@example.com"},{"date":{"before":"2026-11-28T15:04:05Z"}}]}}"#
        );
        let scheduled = JitRule::Grant {
            email: email("bob@example.com"),
            after: Some(at(datetime!(2026-11-28 14:00:00 UTC))),
            before: at(datetime!(2026-11-28 15:04:05 UTC)),
        };
        assert_eq!(
            serde_json::to_string(&scheduled.to_rule()).unwrap(),
            r#"{"allow":{"and":[{"email":"bob@example.com"},{"date":{"after":"2026-11-28T14:00:00Z","before":"2026-11-28T15:04:05Z"}}]}}"#
        );
    }

    #[test]
    fn console_and_docs_variants_decode() {
        let bob = || email("bob@example.com");
        let before = at(datetime!(2150-01-02 16:20:00 UTC));
        let cases = [
            (
                json!({"allow":{"and":[{"email":{"is":"bob@example.com"}},{"reject":true}]}}),
                JitRule::Pending { email: bob() },
            ),
            (
                json!({"allow":{"and":[{"reject":true},{"email":"bob@example.com"}]}}),
                JitRule::Pending { email: bob() },
            ),
            (
                json!({"allow":{"and":[{"date":{"before":"2150-01-02T16:20:00Z"}},{"email":{"is":"bob@example.com"}}]}}),
                JitRule::Grant {
                    email: bob(),
                    after: None,
                    before,
                },
            ),
            (
                json!({"allow":{"and":[{"email":"bob@example.com"},{"date":{"before":"2150-01-02T16:20:00"}}]}}),
                JitRule::Grant {
                    email: bob(),
                    after: None,
                    before,
                },
            ),
            (
                json!({"allow":{"and":[{"email":"bob@example.com"},{"date":{"before":"2150-01-02T17:20:00+01:00"}}]}}),
                JitRule::Grant {
                    email: bob(),
                    after: None,
                    before,
                },
            ),
            (
                json!({"allow":{"and":[{"email":"bob@example.com"},{"date":{"before":"2150-01-02T16:20:00.999Z","after":"2020-01-02T16:19:59.001"}}]}}),
                JitRule::Grant {
                    email: bob(),
                    after: Some(at(datetime!(2020-01-02 16:20:00 UTC))),
                    before,
                },
            ),
        ];
        for (value, want) in cases {
            assert_eq!(decode(value.clone()), Some(want), "{value}");
        }
    }

    #[test]
    fn naive_dates_use_the_configured_offset() {
        let value =
            json!({"allow":{"and":[{"email":"bob@x"},{"date":{"before":"2150-01-02T16:20:00"}}]}});
        let options = DecodeOptions {
            naive_offset: offset!(-5),
        };
        let decoded = JitRule::decode(&rule(value), &options);
        assert_eq!(
            decoded,
            Some(JitRule::Grant {
                email: email("bob@x"),
                after: None,
                before: at(datetime!(2150-01-02 21:20:00 UTC)),
            })
        );
    }

    #[test]
    fn foreign_variants_stay_foreign() {
        let foreign = [
            json!({}),
            json!({"allow":{}}),
            json!({"deny":{"and":[{"email":"bob@x"},{"reject":true}]}}),
            json!({"allow":{"and":[{"email":"bob@x"},{"reject":true}]},"deny":{"and":[{"reject":true}]}}),
            json!({"allow":{"or":[{"email":"bob@x"},{"reject":true}]}}),
            json!({"allow":{"and":[{"email":"bob@x"},{"reject":true}],"or":[{"accept":true}]}}),
            json!({"allow":{"and":[{"email":"bob@x"},{"reject":true},{"accept":true}]}}),
            json!({"allow":{"and":[{"email":"bob@x"}]}}),
            json!({"allow":{"and":[{"email":"bob@x"},{"email":"bob@x"}]}}),
            json!({"allow":{"and":[{"reject":true},{"date":{"before":"2150-01-02T16:20:00Z"}}]}}),
            json!({"allow":{"and":[{"email":{"ends_with":"@x"}},{"reject":true}]}}),
            json!({"allow":{"and":[{"email":{"is":"bob@x","not":"eve@x"}},{"reject":true}]}}),
            json!({"allow":{"and":[{"email":{"is":7}},{"reject":true}]}}),
            json!({"allow":{"and":[{"email":["bob@x"]},{"reject":true}]}}),
            json!({"allow":{"and":[{"email":"bob@x"},{"reject":false}]}}),
            json!({"allow":{"and":[{"email":"bob@x"},{"accept":true}]}}),
            json!({"allow":{"and":[{"email":"bob@x"},{"date":{"after":"2150-01-02T16:20:00Z"}}]}}),
            json!({"allow":{"and":[{"email":"bob@x"},{"date":{}}]}}),
            json!({"allow":{"and":[{"email":"bob@x"},{"date":{"before":1767225600}}]}}),
            json!({"allow":{"and":[{"email":"bob@x"},{"date":{"before":"tomorrow"}}]}}),
            json!({"allow":{"and":[{"email":"bob@x"},{"date":{"before":"2150-01-02"}}]}}),
            json!({"allow":{"and":[{"email":"bob@x"},{"date":{"before":"2150-01-02T16:20:00Z","timezone":"UTC"}}]}}),
            json!({"allow":{"and":[{"email":"bob@x"},{"date":"2150-01-02T16:20:00Z"}]}}),
            json!({"allow":{"and":[{"email":"bob@x"},{"date":{"before":"9999-12-31T23:59:59-01:00"}}]}}),
            json!({"allow":{"and":[{"email/sub":"bob@x"},{"reject":true}]}}),
        ];
        for value in foreign {
            assert_eq!(decode(value.clone()), None, "{value}");
        }
    }

    #[test]
    fn date_without_before_is_foreign_not_a_panic() {
        // The Go original panicked here (`m["before"].(string)` without `ok`).
        let value = json!([{"allow":{"and":[{"email":"bob@x"},{"date":{"after":"2020-01-01T00:00:00Z"}}]}}]);
        let policy = Policy::parse(&value).unwrap();
        let parts = split(&policy, &DecodeOptions::default());
        assert!(parts.jit.is_empty());
        assert_eq!(parts.foreign, policy.rules());
    }

    #[test]
    fn fractions_round_towards_less_access() {
        let instant = datetime!(2026-01-01 00:00:00.4 UTC);
        assert_eq!(
            PplTime::floor(instant).unwrap().get(),
            datetime!(2026-01-01 00:00:00 UTC)
        );
        assert_eq!(
            PplTime::ceil(instant).unwrap().get(),
            datetime!(2026-01-01 00:00:01 UTC)
        );
        let whole = datetime!(2026-01-01 00:00:00 UTC);
        assert_eq!(PplTime::ceil(whole).unwrap().get(), whole);
        assert_eq!(
            PplTime::floor(whole).unwrap().to_string(),
            "2026-01-01T00:00:00Z"
        );
    }

    #[test]
    fn unwritable_times_are_errors() {
        let late = datetime!(9999-12-31 23:59:59 -01:00);
        assert_eq!(PplTime::floor(late), Err(TimeOutOfRange(late)));
        let negative = datetime!(-0001-06-01 00:00:00 UTC);
        assert_eq!(PplTime::floor(negative), Err(TimeOutOfRange(negative)));
        let edge = datetime!(9999-12-31 23:59:59.5 UTC);
        assert_eq!(PplTime::ceil(edge), Err(TimeOutOfRange(edge)));
        assert!(PplTime::floor(edge).is_ok());
    }

    #[test]
    fn emails_keep_their_exact_text() {
        for text in ["", " Bob@X ", "bob@x\n", "Bob@Example.com"] {
            for value in [json!(text), json!({ "is": text })] {
                let decoded = decode(json!({"allow":{"and":[{"email":value},{"reject":true}]}}));
                assert_eq!(decoded, Some(JitRule::Pending { email: email(text) }));
            }
        }
    }

    #[test]
    fn split_keeps_order_indices_and_duplicates() {
        let doc = json!([
            {"allow":{"and":[{"email":"a@x"},{"reject":true}]}},
            {"deny":{"or":[{"http_path":{"starts_with":"/admin"}}]}},
            {"allow":{"and":[{"email":"a@x"},{"date":{"before":"2026-01-01T00:00:00Z"}}]}},
            {},
            {"allow":{"and":[{"email":"a@x"},{"date":{"before":"2027-01-01T00:00:00Z"}}]}},
        ]);
        let policy = Policy::parse(&doc).unwrap();
        let parts = split(&policy, &DecodeOptions::default());
        let indices: Vec<usize> = parts.jit.iter().map(|(i, _)| *i).collect();
        assert_eq!(indices, [0, 2, 4]);
        assert!(parts.jit.iter().all(|(_, e)| e.email() == "a@x"));
        assert_eq!(
            parts.foreign,
            [policy.rules()[1].clone(), policy.rules()[3].clone()]
        );

        let entries: Vec<JitRule> = parts.jit.iter().map(|(_, e)| e.clone()).collect();
        let text = json_from_parts(&parts.foreign, entries.iter().cloned(), 0);
        // The capacity is a hint only.
        assert_eq!(
            json_from_parts(&parts.foreign, entries.iter().cloned(), 1 << 20),
            text
        );
        let rebuilt = Policy::from_parts(parts.foreign, &entries);
        assert_eq!(text, serde_json::to_string(&rebuilt).unwrap());
        assert_eq!(json_from_parts([], [], 0), "[]");
        assert_eq!(
            rebuilt.to_value(),
            json!([
                {"deny":{"or":[{"http_path":{"starts_with":"/admin"}}]}},
                {},
                {"allow":{"and":[{"email":"a@x"},{"reject":true}]}},
                {"allow":{"and":[{"email":"a@x"},{"date":{"before":"2026-01-01T00:00:00Z"}}]}},
                {"allow":{"and":[{"email":"a@x"},{"date":{"before":"2027-01-01T00:00:00Z"}}]}},
            ])
        );
    }

    #[test]
    fn single_form_policy_splits_too() {
        let policy =
            Policy::parse(&json!({"allow":{"and":[{"email":"a@x"},{"reject":true}]}})).unwrap();
        let parts = split(&policy, &DecodeOptions::default());
        assert_eq!(parts.jit.len(), 1);
        assert!(parts.foreign.is_empty());
    }
}
