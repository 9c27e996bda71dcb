//! Evaluates a policy for one user at one instant, the way Pomerium does, failing safe
//! wherever this crate cannot know the answer.
//!
//! Semantics (Pomerium core `pkg/policy/generator`, docs "Policy Language"):
//! - every non-empty operator of every rule body is one *term*; the terms of all `allow`
//!   bodies are OR-ed, and so are those of all `deny` bodies. Several operators in one
//!   body are therefore OR-ed, not AND-ed (the docs' "Multiple Operators in a Rule").
//! - an operator with no criteria is no term at all (core skips it), so it never matches.
//! - the result is allow iff some allow term holds and no deny term holds; deny wins,
//!   and without allow terms the answer is deny.
//! - `and`: all criteria hold; `or`: any; `not`: none; `nor`: not all.
//!
//! Criteria this evaluator cannot decide (request-dependent ones such as `http_path` or
//! `device`, unknown names, malformed matchers) are *unknown*. Unknown values propagate
//! through the operators with three-valued (Kleene) logic, so `not` of an unknown is still
//! unknown; an unknown allow term is taken as not matching and an unknown deny term as
//! matching. The evaluation can thus deny where Pomerium would allow, never the reverse.

use std::fmt;

use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::date;
use crate::jit::DecodeOptions;
use crate::model::{Action, Body, Criterion, Operator, Policy};

/// Who is asking. An empty `user` means not signed in: then only `accept`, `reject`, `date`
/// and the negation of `authenticated_user` can hold, as in Pomerium, where every
/// identity criterion needs a session.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Subject {
    /// User ID (the JWT `sub`/`user`).
    pub user: String,
    /// Email; `domain` is read from it.
    pub email: String,
    /// Group IDs and names.
    pub groups: Vec<String>,
    /// Other claims, for `claim/<name>`; a list claim matches if any element does.
    pub claims: Map<String, Value>,
}

/// The outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Access granted.
    Allow,
    /// Access refused.
    Deny,
}

/// A rule's action, by the rule's index in the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleRef {
    /// Index of the rule in [`Policy::rules`].
    pub index: usize,
    /// Which of its actions.
    pub action: Action,
}

/// The decision, the rule that made it, and why, for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    /// Allow or deny.
    pub decision: Decision,
    /// The allow rule that matched, or the deny rule that matched (or could not be
    /// evaluated); `None` when access is denied because no allow rule matched.
    pub decided_by: Option<RuleRef>,
    /// E.g. `allowed by rule 2 (allow): email is "alice@x" and date before "2026-…"`.
    pub reason: String,
}

/// Evaluates `policy` for `subject` at `now`; see the module docs for the semantics.
/// `options` is how offset-less `date` values are read, as in the JIT decoder.
pub fn evaluate(
    policy: &Policy,
    subject: &Subject,
    now: OffsetDateTime,
    options: &DecodeOptions,
) -> Evaluation {
    let context = Context {
        session: (!subject.user.is_empty()).then_some(subject),
        now,
        options,
    };
    let mut allowed = None;
    let mut allow_unknown = None;
    let mut deny_unknown = None;
    for (index, rule) in policy.rules().iter().enumerate() {
        for (action, body) in rule.actions() {
            let at = RuleRef {
                index,
                action: *action,
            };
            if *action == Action::Allow && allowed.is_some() {
                continue;
            }
            match (action, context.body(body)) {
                (Action::Deny, Outcome::Matched(operator, criteria)) => {
                    return Evaluation {
                        decision: Decision::Deny,
                        decided_by: Some(at),
                        reason: format!(
                            "denied by {}: {}",
                            Label(at),
                            context.explain(operator, criteria)
                        ),
                    };
                }
                (Action::Deny, Outcome::Unknown(why)) => {
                    deny_unknown.get_or_insert((at, why));
                }
                (Action::Allow, Outcome::Matched(operator, criteria)) => {
                    allowed = Some((at, operator, criteria));
                }
                (Action::Allow, Outcome::Unknown(why)) => {
                    allow_unknown.get_or_insert((at, why));
                }
                (_, Outcome::NoMatch) => {}
            }
        }
    }
    if let Some((at, why)) = deny_unknown {
        return Evaluation {
            decision: Decision::Deny,
            decided_by: Some(at),
            reason: format!("denied by {}: {why}, so it is assumed to match", Label(at)),
        };
    }
    match (allowed, allow_unknown) {
        (Some((at, operator, criteria)), _) => Evaluation {
            decision: Decision::Allow,
            decided_by: Some(at),
            reason: format!(
                "allowed by {}: {}",
                Label(at),
                context.explain(operator, criteria)
            ),
        },
        (None, Some((at, why))) => Evaluation {
            decision: Decision::Deny,
            decided_by: None,
            reason: format!(
                "denied: no allow rule matched ({why} in {}, so it is assumed not to match)",
                Label(at)
            ),
        },
        (None, None) => Evaluation {
            decision: Decision::Deny,
            decided_by: None,
            reason: "denied: no allow rule matched".to_owned(),
        },
    }
}

struct Label(RuleRef);

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rule {} ({})", self.0.index, self.0.action)
    }
}

/// A criterion that cannot be decided here, and why.
#[derive(Debug)]
struct Unknown<'p> {
    criterion: &'p Criterion,
    why: Why,
}

#[derive(Debug)]
enum Why {
    Unsupported,
    Malformed(String),
}

impl fmt::Display for Unknown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = &self.criterion.name;
        match &self.why {
            Why::Unsupported => write!(
                f,
                "criterion `{name}` cannot be evaluated here (unsupported criterion)"
            ),
            Why::Malformed(problem) => write!(f, "criterion `{name}` is malformed: {problem}"),
        }
    }
}

fn malformed<T>(problem: impl Into<String>) -> Result<T, Why> {
    Err(Why::Malformed(problem.into()))
}

/// Three-valued truth.
enum Truth<'p> {
    True,
    False,
    Unknown(Unknown<'p>),
}

impl Truth<'_> {
    fn negate(self) -> Self {
        match self {
            Truth::True => Truth::False,
            Truth::False => Truth::True,
            unknown => unknown,
        }
    }
}

enum Outcome<'p> {
    /// The first operator of the body that holds.
    Matched(Operator, &'p [Criterion]),
    /// No operator holds, and at least one is unknown (the first is kept).
    Unknown(Unknown<'p>),
    NoMatch,
}

struct Context<'s> {
    /// The subject if signed in.
    session: Option<&'s Subject>,
    now: OffsetDateTime,
    options: &'s DecodeOptions,
}

impl Context<'_> {
    fn body<'p>(&self, body: &'p Body) -> Outcome<'p> {
        let mut unknown = None;
        for (operator, criteria) in body.operators() {
            if criteria.is_empty() {
                continue;
            }
            match self.operator(*operator, criteria) {
                Truth::True => return Outcome::Matched(*operator, criteria),
                Truth::Unknown(why) => {
                    unknown.get_or_insert(why);
                }
                Truth::False => {}
            }
        }
        unknown.map_or(Outcome::NoMatch, Outcome::Unknown)
    }

    fn operator<'p>(&self, operator: Operator, criteria: &'p [Criterion]) -> Truth<'p> {
        let negated = matches!(operator, Operator::Not | Operator::Nor);
        let conjunctive = matches!(operator, Operator::And | Operator::Not);
        let mut unknown = None;
        for criterion in criteria {
            let truth = self.criterion(criterion);
            match if negated { truth.negate() } else { truth } {
                Truth::True if !conjunctive => return Truth::True,
                Truth::False if conjunctive => return Truth::False,
                Truth::Unknown(why) => {
                    unknown.get_or_insert(why);
                }
                Truth::True | Truth::False => {}
            }
        }
        match unknown {
            Some(why) => Truth::Unknown(why),
            None if conjunctive => Truth::True,
            None => Truth::False,
        }
    }

    fn criterion<'p>(&self, criterion: &'p Criterion) -> Truth<'p> {
        let session = self.session;
        let value = &criterion.value;
        let result = match (criterion.base_name(), criterion.sub_path()) {
            ("accept", None) => Ok(true),
            ("reject", None) => Ok(false),
            ("authenticated_user", None) => Ok(session.is_some()),
            ("email", None) => string_matcher(value, session.map(|s| s.email.as_str())),
            ("user", None) => string_matcher(value, session.map(|s| s.user.as_str())),
            // Pomerium takes `split(email, "@")[1]`: no `@`, no domain, no match.
            ("domain", None) => {
                string_matcher(value, session.and_then(|s| s.email.split('@').nth(1)))
            }
            ("groups", None) => list_matcher(value, session.map(|s| Elements::Strings(&s.groups))),
            ("claim", Some(name)) if !name.is_empty() && !name.contains('/') => list_matcher(
                value,
                session.map(|s| Elements::of_claim(s.claims.get(name))),
            ),
            ("date", None) => date_matcher(value, self.now, self.options),
            _ => Err(Why::Unsupported),
        };
        match result {
            Ok(true) => Truth::True,
            Ok(false) => Truth::False,
            Err(why) => Truth::Unknown(Unknown { criterion, why }),
        }
    }

    /// Says why an operator that holds holds.
    fn explain(&self, operator: Operator, criteria: &[Criterion]) -> String {
        let all = || criteria.iter().map(describe).collect::<Vec<_>>().join(", ");
        let first_that = |wanted: bool| {
            criteria
                .iter()
                .find(|c| matches!(self.criterion(c), Truth::True) == wanted)
                .map_or_else(all, describe)
        };
        match operator {
            Operator::And => criteria
                .iter()
                .map(describe)
                .collect::<Vec<_>>()
                .join(" and "),
            Operator::Or => first_that(true),
            Operator::Not => format!("none of: {}", all()),
            Operator::Nor => format!("not {}", first_that(false)),
        }
    }
}

/// A criterion as people read it: `email is "a@x"`, `date before "2026-…"`.
fn describe(criterion: &Criterion) -> String {
    let name = &criterion.name;
    match &criterion.value {
        Value::Object(matcher) if !matcher.is_empty() => {
            let parts: Vec<String> = matcher.iter().map(|(k, v)| format!("{k} {v}")).collect();
            format!("{name} {}", parts.join(", "))
        }
        value => match criterion.base_name() {
            "accept" | "reject" | "authenticated_user" => name.to_string(),
            "email" | "user" | "domain" => format!("{name} is {value}"),
            "groups" | "claim" => format!("{name} has {value}"),
            _ => format!("{name} {value}"),
        },
    }
}

/// String matcher: a bare value means `is`; an object's keys must all hold. Comparisons are
/// JSON equality, as in Rego, so a non-string `is` never matches a string.
fn string_matcher(spec: &Value, subject: Option<&str>) -> Result<bool, Why> {
    let Value::Object(conditions) = spec else {
        return Ok(subject.is_some_and(|s| spec.as_str() == Some(s)));
    };
    if conditions.is_empty() {
        return malformed("the string matcher has no condition");
    }
    let text = subject.unwrap_or_default();
    let is = |candidate: &Value| candidate.as_str() == Some(text);
    let mut all = true;
    for (condition, argument) in conditions {
        all &= match condition.as_str() {
            "is" => is(argument),
            "not" => !is(argument),
            "contains" => text.contains(text_argument(condition, argument)?),
            "starts_with" => text.starts_with(text_argument(condition, argument)?),
            "ends_with" => text.ends_with(text_argument(condition, argument)?),
            "in" => list_argument(condition, argument)?.iter().any(is),
            "not_in" => !list_argument(condition, argument)?.iter().any(is),
            other => return malformed(format!("unknown string matcher `{other}`")),
        };
    }
    Ok(subject.is_some() && all)
}

fn text_argument<'v>(condition: &str, argument: &'v Value) -> Result<&'v str, Why> {
    argument
        .as_str()
        .ok_or_else(|| Why::Malformed(format!("`{condition}` needs a string")))
}

fn list_argument<'v>(condition: &str, argument: &'v Value) -> Result<&'v [Value], Why> {
    argument
        .as_array()
        .map(Vec::as_slice)
        .ok_or_else(|| Why::Malformed(format!("`{condition}` needs an array")))
}

/// The values a list matcher looks at.
enum Elements<'s> {
    Strings(&'s [String]),
    Values(&'s [Value]),
}

impl<'s> Elements<'s> {
    /// Pomerium stores claims as lists; a scalar claim is a list of one, a missing or
    /// `null` claim an empty list.
    fn of_claim(claim: Option<&'s Value>) -> Self {
        match claim {
            None | Some(Value::Null) => Elements::Values(&[]),
            Some(Value::Array(items)) => Elements::Values(items),
            Some(scalar) => Elements::Values(std::slice::from_ref(scalar)),
        }
    }

    fn len(&self) -> usize {
        match self {
            Elements::Strings(items) => items.len(),
            Elements::Values(items) => items.len(),
        }
    }

    fn has(&self, wanted: &Value) -> bool {
        match self {
            Elements::Strings(items) => items.iter().any(|item| wanted.as_str() == Some(item)),
            Elements::Values(items) => items.contains(wanted),
        }
    }
}

/// String-list matcher (`groups`, `claim/…`): a bare value means `has`; `is` means the
/// list is exactly that one value; `exclude` means it is absent.
fn list_matcher(spec: &Value, elements: Option<Elements<'_>>) -> Result<bool, Why> {
    let Value::Object(conditions) = spec else {
        return Ok(elements.is_some_and(|items| items.has(spec)));
    };
    if conditions.is_empty() {
        return malformed("the list matcher has no condition");
    }
    let signed_in = elements.is_some();
    let items = elements.unwrap_or(Elements::Values(&[]));
    let mut all = true;
    for (condition, argument) in conditions {
        all &= match condition.as_str() {
            "has" => items.has(argument),
            "is" => items.len() == 1 && items.has(argument),
            "exclude" => !items.has(argument),
            other => return malformed(format!("unknown list matcher `{other}`")),
        };
    }
    Ok(signed_in && all)
}

/// Date matcher: `after` and/or `before`, strict comparisons.
fn date_matcher(spec: &Value, now: OffsetDateTime, options: &DecodeOptions) -> Result<bool, Why> {
    let Value::Object(bounds) = spec else {
        return malformed("expected an object with `after` and/or `before`");
    };
    if bounds.is_empty() {
        return malformed("expected `after` and/or `before`");
    }
    let mut all = true;
    for (bound, value) in bounds {
        let after = match bound.as_str() {
            "after" => true,
            "before" => false,
            other => return malformed(format!("unknown date bound `{other}`")),
        };
        let Some(instant) = value.as_str().and_then(|text| date::parse(text, options)) else {
            return malformed(format!("`{bound}` is not a date: {value}"));
        };
        all &= if after { now > instant } else { now < instant };
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::macros::{datetime, offset};

    const NOW: OffsetDateTime = datetime!(2026-06-01 12:00:00 UTC);

    fn alice() -> Subject {
        let claims = json!({
            "family_name": "Smith",
            "roles": ["dev", "ops"],
            "verified": true,
            "nothing": null,
        });
        Subject {
            user: "u-alice".into(),
            email: "alice@example.com".into(),
            groups: vec!["eng".into(), "admins".into()],
            claims: claims.as_object().cloned().unwrap_or_default(),
        }
    }

    fn run(policy: Value, subject: &Subject) -> Evaluation {
        evaluate(
            &Policy::parse(&policy).unwrap(),
            subject,
            NOW,
            &DecodeOptions::default(),
        )
    }

    /// Evaluates `{"allow":{"and":[criterion]}}` and `{"deny":{"and":[criterion]}}`.
    fn check(criterion: Value, subject: &Subject) -> (Decision, Decision) {
        let allow = run(json!({"allow": {"and": [criterion]}}), subject).decision;
        let deny = run(
            json!([{"allow": {"and": [{"accept": true}]}}, {"deny": {"and": [criterion]}}]),
            subject,
        )
        .decision;
        (allow, deny)
    }

    use Decision::{Allow, Deny};
    const MATCH: (Decision, Decision) = (Allow, Deny);
    const NO_MATCH: (Decision, Decision) = (Deny, Allow);
    /// Unknown: not matching as allow, matching as deny.
    const UNKNOWN: (Decision, Decision) = (Deny, Deny);

    #[test]
    fn criteria_table() {
        let cases = [
            (json!({"accept": true}), MATCH),
            (json!({"accept": false}), MATCH),
            (json!({"reject": true}), NO_MATCH),
            (json!({"authenticated_user": true}), MATCH),
            // email: bare value is `is`, exact and case-sensitive
            (json!({"email": "alice@example.com"}), MATCH),
            (json!({"email": "Alice@example.com"}), NO_MATCH),
            (json!({"email": 7}), NO_MATCH),
            (json!({"email": ["alice@example.com"]}), NO_MATCH),
            (json!({"email": {"is": "alice@example.com"}}), MATCH),
            (json!({"email": {"not": "bob@example.com"}}), MATCH),
            (json!({"email": {"not": "alice@example.com"}}), NO_MATCH),
            (json!({"email": {"contains": "ce@ex"}}), MATCH),
            (json!({"email": {"starts_with": "alice@"}}), MATCH),
            (json!({"email": {"ends_with": "@example.com"}}), MATCH),
            (json!({"email": {"ends_with": "@example.org"}}), NO_MATCH),
            (
                json!({"email": {"in": ["x@y", "alice@example.com"]}}),
                MATCH,
            ),
            (json!({"email": {"in": ["x@y"]}}), NO_MATCH),
            (json!({"email": {"not_in": ["x@y"]}}), MATCH),
            (
                json!({"email": {"not_in": ["alice@example.com"]}}),
                NO_MATCH,
            ),
            (
                json!({"email": {"starts_with": "alice", "ends_with": ".com"}}),
                MATCH,
            ),
            (
                json!({"email": {"starts_with": "alice", "ends_with": ".org"}}),
                NO_MATCH,
            ),
            (json!({"email": {"regex": ".*"}}), UNKNOWN),
            (json!({"email": {}}), UNKNOWN),
            (json!({"email": {"contains": 1}}), UNKNOWN),
            (json!({"email": {"in": "alice@example.com"}}), UNKNOWN),
            (json!({"email/x": "alice@example.com"}), UNKNOWN),
            // user and domain
            (json!({"user": "u-alice"}), MATCH),
            (json!({"user": {"is": "u-bob"}}), NO_MATCH),
            (json!({"domain": "example.com"}), MATCH),
            (json!({"domain": {"is": "example.org"}}), NO_MATCH),
            // groups: bare is `has`
            (json!({"groups": "admins"}), MATCH),
            (json!({"groups": "root"}), NO_MATCH),
            (json!({"groups": {"has": "eng"}}), MATCH),
            (json!({"groups": {"is": "eng"}}), NO_MATCH),
            (json!({"groups": {"exclude": "root"}}), MATCH),
            (json!({"groups": {"exclude": "eng"}}), NO_MATCH),
            (json!({"groups": {"contains": "e"}}), UNKNOWN),
            // claims
            (json!({"claim/family_name": "Smith"}), MATCH),
            (json!({"claim/family_name": {"is": "Smith"}}), MATCH),
            (json!({"claim/family_name": "smith"}), NO_MATCH),
            (json!({"claim/roles": "ops"}), MATCH),
            (json!({"claim/roles": {"is": "ops"}}), NO_MATCH),
            (json!({"claim/roles": {"exclude": "root"}}), MATCH),
            (json!({"claim/verified": true}), MATCH),
            (json!({"claim/missing": "x"}), NO_MATCH),
            (json!({"claim/missing": {"exclude": "x"}}), MATCH),
            (json!({"claim/nothing": {"exclude": "x"}}), MATCH),
            (json!({"claim": "x"}), UNKNOWN),
            (json!({"claim/a/b": "x"}), UNKNOWN),
            // dates, strict on both ends
            (json!({"date": {"before": "2026-06-01T12:00:01Z"}}), MATCH),
            (
                json!({"date": {"before": "2026-06-01T12:00:00Z"}}),
                NO_MATCH,
            ),
            (json!({"date": {"after": "2026-06-01T11:59:59Z"}}), MATCH),
            (json!({"date": {"after": "2026-06-01T12:00:00Z"}}), NO_MATCH),
            (
                json!({"date": {"after": "2026-01-01T00:00:00", "before": "2150-01-02T16:20:00"}}),
                MATCH,
            ),
            (
                json!({"date": {"after": "2026-06-01T11:00:00.5-01:00"}}),
                NO_MATCH,
            ),
            (json!({"date": {"before": 1}}), UNKNOWN),
            (json!({"date": {"before": "soon"}}), UNKNOWN),
            (json!({"date": {"until": "2150-01-02T16:20:00Z"}}), UNKNOWN),
            (json!({"date": {}}), UNKNOWN),
            (json!({"date": "2150-01-02T16:20:00Z"}), UNKNOWN),
            // request-dependent and unknown criteria
            (json!({"http_path": "/admin"}), UNKNOWN),
            (json!({"device": {"type": "any"}}), UNKNOWN),
            (json!({"pomerium_routes": true}), UNKNOWN),
            (json!({"no_such_thing": true}), UNKNOWN),
        ];
        for (criterion, want) in cases {
            assert_eq!(check(criterion.clone(), &alice()), want, "{criterion}");
        }
    }

    #[test]
    fn signed_out_users_match_no_identity_criterion() {
        let anonymous = Subject {
            email: "alice@example.com".into(),
            groups: vec!["eng".into()],
            ..Subject::default()
        };
        let cases = [
            (json!({"accept": true}), MATCH),
            (json!({"authenticated_user": true}), NO_MATCH),
            (json!({"email": "alice@example.com"}), NO_MATCH),
            (json!({"email": {"not": "bob@x"}}), NO_MATCH),
            (json!({"domain": "example.com"}), NO_MATCH),
            (json!({"groups": {"exclude": "x"}}), NO_MATCH),
            (json!({"claim/x": {"exclude": "y"}}), NO_MATCH),
            (json!({"date": {"before": "2150-01-02T16:20:00Z"}}), MATCH),
            // malformed stays unknown even when signed out
            (json!({"email": {"regex": "x"}}), UNKNOWN),
        ];
        for (criterion, want) in cases {
            assert_eq!(check(criterion.clone(), &anonymous), want, "{criterion}");
        }
        let no_at = Subject {
            user: "u".into(),
            email: "not-an-email".into(),
            ..Subject::default()
        };
        assert_eq!(check(json!({"domain": {"not": "x"}}), &no_at), NO_MATCH);
    }

    #[test]
    fn operators_table() {
        let (t, f, u) = (
            json!({"accept": true}),
            json!({"reject": true}),
            json!({"http_path": "/"}),
        );
        let cases = [
            ("and", vec![&t, &t], MATCH),
            ("and", vec![&t, &f], NO_MATCH),
            ("and", vec![&f, &u], NO_MATCH),
            ("and", vec![&t, &u], UNKNOWN),
            ("or", vec![&f, &t], MATCH),
            ("or", vec![&f, &f], NO_MATCH),
            ("or", vec![&u, &t], MATCH),
            ("or", vec![&f, &u], UNKNOWN),
            ("not", vec![&f, &f], MATCH),
            ("not", vec![&f, &t], NO_MATCH),
            ("not", vec![&u, &t], NO_MATCH),
            ("not", vec![&f, &u], UNKNOWN),
            ("nor", vec![&t, &f], MATCH),
            ("nor", vec![&t, &t], NO_MATCH),
            ("nor", vec![&u, &f], MATCH),
            ("nor", vec![&t, &u], UNKNOWN),
        ];
        for (operator, criteria, want) in cases {
            let allow = run(json!({"allow": {operator: criteria}}), &alice()).decision;
            let deny = run(
                json!([{"allow": {"and": [{"accept": true}]}}, {"deny": {operator: criteria}}]),
                &alice(),
            )
            .decision;
            assert_eq!((allow, deny), want, "{operator} {criteria:?}");
        }
    }

    #[test]
    fn operators_in_one_body_are_ored_and_empty_ones_ignored() {
        // Pomerium docs: `and: [claim]` + `or: [domains]` grants to either.
        let policy = json!({"allow": {"and": [{"claim/family_name": "Jones"}], "or": [{"domain": "example.com"}]}});
        assert_eq!(run(policy, &alice()).decision, Allow);
        for empty in [
            json!({"allow": {"and": []}}),
            json!({"allow": {"or": []}}),
            json!({"allow": {}}),
            json!({}),
        ] {
            assert_eq!(run(empty.clone(), &alice()).decision, Deny, "{empty}");
        }
        let empty_deny =
            json!([{"allow": {"and": [{"accept": true}]}}, {"deny": {"and": [], "not": []}}]);
        assert_eq!(run(empty_deny, &alice()).decision, Allow);
    }

    #[test]
    fn deny_wins_and_reasons_name_the_rule() {
        let policy = json!([
            {"allow": {"and": [{"email": "alice@example.com"}, {"date": {"before": "2026-07-01T00:00:00Z"}}]}},
            {"allow": {"or": [{"groups": "eng"}]}},
            {"deny": {"or": [{"reject": true}, {"groups": "admins"}]}},
        ]);
        let result = run(policy, &alice());
        assert_eq!(result.decision, Deny);
        assert_eq!(
            result.decided_by,
            Some(RuleRef {
                index: 2,
                action: Action::Deny
            })
        );
        assert_eq!(
            result.reason,
            r#"denied by rule 2 (deny): groups has "admins""#
        );

        let policy = json!([
            {"allow": {"and": [{"reject": true}]}},
            {"allow": {"and": [{"email": "alice@example.com"}, {"date": {"before": "2026-07-01T00:00:00Z"}}]}},
            {"deny": {"or": [{"groups": "root"}]}},
        ]);
        let result = run(policy, &alice());
        assert_eq!(result.decision, Allow);
        assert_eq!(
            result.decided_by,
            Some(RuleRef {
                index: 1,
                action: Action::Allow
            })
        );
        assert_eq!(
            result.reason,
            r#"allowed by rule 1 (allow): email is "alice@example.com" and date before "2026-07-01T00:00:00Z""#
        );
    }

    #[test]
    fn unsupported_criteria_fail_safe_with_a_reason() {
        let deny = json!([{"allow": {"and": [{"accept": true}]}}, {"deny": {"not": [{"http_path": "/public"}]}}]);
        let result = run(deny, &alice());
        assert_eq!(result.decision, Deny);
        assert_eq!(
            result.decided_by,
            Some(RuleRef {
                index: 1,
                action: Action::Deny
            })
        );
        assert_eq!(
            result.reason,
            "denied by rule 1 (deny): criterion `http_path` cannot be evaluated here (unsupported criterion), so it is assumed to match"
        );

        // A definite deny is preferred as the reason over an unknown one.
        let both = json!([{"allow": {"and": [{"accept": true}]}}, {"deny": {"or": [{"device": {}}]}}, {"deny": {"or": [{"accept": true}]}}]);
        assert_eq!(
            run(both, &alice()).reason,
            "denied by rule 2 (deny): accept"
        );

        let allow = json!({"allow": {"not": [{"email": {"matches": "x"}}]}});
        let result = run(allow, &alice());
        assert_eq!(result.decision, Deny);
        assert_eq!(result.decided_by, None);
        assert_eq!(
            result.reason,
            "denied: no allow rule matched (criterion `email` is malformed: unknown string matcher `matches` in rule 0 (allow), so it is assumed not to match)"
        );
        assert_eq!(
            run(json!([]), &alice()).reason,
            "denied: no allow rule matched"
        );
    }

    #[test]
    fn explanations_for_each_operator() {
        let cases = [
            (
                json!({"allow": {"or": [{"reject": true}, {"groups": "eng"}]}}),
                r#"allowed by rule 0 (allow): groups has "eng""#,
            ),
            (
                json!({"allow": {"not": [{"groups": "root"}, {"user": "u-bob"}]}}),
                r#"allowed by rule 0 (allow): none of: groups has "root", user is "u-bob""#,
            ),
            (
                json!({"allow": {"nor": [{"accept": true}, {"email": {"ends_with": ".org"}}]}}),
                r#"allowed by rule 0 (allow): not email ends_with ".org""#,
            ),
        ];
        for (policy, want) in cases {
            assert_eq!(run(policy, &alice()).reason, want);
        }
    }

    #[test]
    fn naive_dates_follow_the_options() {
        let policy = Policy::parse(
            &json!({"allow": {"and": [{"date": {"before": "2026-06-01T13:30:00"}}]}}),
        )
        .unwrap();
        let utc = evaluate(&policy, &alice(), NOW, &DecodeOptions::default());
        assert_eq!(utc.decision, Allow);
        let plus2 = DecodeOptions {
            naive_offset: offset!(+2),
        };
        assert_eq!(evaluate(&policy, &alice(), NOW, &plus2).decision, Deny);
    }
}
