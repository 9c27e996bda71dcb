//! The lossless PPL document model: parsing, rendering and serde.

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// What a rule does when its body matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// `allow`
    Allow,
    /// `deny` (wins over any `allow`)
    Deny,
}

impl Action {
    /// The PPL key.
    pub const fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Deny => "deny",
        }
    }

    fn from_key(key: &str) -> Option<Self> {
        match key {
            "allow" => Some(Action::Allow),
            "deny" => Some(Action::Deny),
            _ => None,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How an operator combines its criteria.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operator {
    /// All criteria hold.
    And,
    /// At least one criterion holds.
    Or,
    /// No criterion holds (Boolean NOR, despite the name).
    Not,
    /// Not all criteria hold (Boolean NAND, despite the name).
    Nor,
}

impl Operator {
    /// The PPL key.
    pub const fn as_str(self) -> &'static str {
        match self {
            Operator::And => "and",
            Operator::Or => "or",
            Operator::Not => "not",
            Operator::Nor => "nor",
        }
    }

    fn from_key(key: &str) -> Option<Self> {
        match key {
            "and" => Some(Operator::And),
            "or" => Some(Operator::Or),
            "not" => Some(Operator::Not),
            "nor" => Some(Operator::Nor),
            _ => None,
        }
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One criterion: a single-key object such as `{"email": "a@b.c"}` or
/// `{"claim/family_name": "Smith"}`. The value is kept as written, whatever it is,
/// so that rules this crate does not understand survive a round trip unchanged.
#[derive(Debug, Clone, PartialEq)]
pub struct Criterion {
    /// The whole key, sub-path included (`claim/family_name`). Well-known names are
    /// borrowed, not allocated: a large policy repeats them thousands of times.
    pub name: Cow<'static, str>,
    /// The value, as written.
    pub value: Value,
}

impl Criterion {
    /// A criterion with this key and value.
    pub fn new(name: impl Into<Cow<'static, str>>, value: impl Into<Value>) -> Self {
        Self {
            name: name.into(),
            value: value.into(),
        }
    }

    /// The criterion name without its sub-path (`claim` for `claim/family_name`);
    /// Pomerium splits the key at the first `/`.
    pub fn base_name(&self) -> &str {
        self.name
            .split_once('/')
            .map_or(&*self.name, |(base, _)| base)
    }

    /// The sub-path after the first `/`, if any (`family_name` for `claim/family_name`).
    pub fn sub_path(&self) -> Option<&str> {
        self.name.split_once('/').map(|(_, sub)| sub)
    }
}

/// The body of an action: operators in document order, each with its criteria.
/// Each operator appears at most once (it is a JSON object key).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Body {
    operators: Vec<(Operator, Vec<Criterion>)>,
}

impl Body {
    /// A body with a single operator.
    pub fn new(operator: Operator, criteria: Vec<Criterion>) -> Self {
        Self {
            operators: vec![(operator, criteria)],
        }
    }

    /// The operators in document order.
    pub fn operators(&self) -> &[(Operator, Vec<Criterion>)] {
        &self.operators
    }
}

/// A rule object: actions in document order, each with its body. Each action appears
/// at most once. `{}` (no action at all) is a valid rule; the Go original creates it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Rule {
    actions: Vec<(Action, Body)>,
}

impl Rule {
    /// A rule with a single action.
    pub fn new(action: Action, body: Body) -> Self {
        Self {
            actions: vec![(action, body)],
        }
    }

    /// The actions in document order.
    pub fn actions(&self) -> &[(Action, Body)] {
        &self.actions
    }
}

/// A whole PPL document. The form (one rule object or an array) is part of the model
/// so that a document renders back exactly as it was read.
#[derive(Debug, Clone, PartialEq)]
pub enum Policy {
    /// The document is one rule object.
    Single(Rule),
    /// The document is an array of rule objects (possibly empty).
    List(Vec<Rule>),
}

impl Default for Policy {
    /// The empty policy, `[]`; it allows nothing.
    fn default() -> Self {
        Policy::List(Vec::new())
    }
}

impl Policy {
    /// The rules in document order, whatever the form.
    pub fn rules(&self) -> &[Rule] {
        match self {
            Policy::Single(rule) => std::slice::from_ref(rule),
            Policy::List(rules) => rules,
        }
    }

    /// Reads a document. `null` reads as the empty policy (rendered as `[]`), because the
    /// Zero API may send `null` for a policy that has none.
    pub fn parse(value: &Value) -> Result<Self, ParseError> {
        drive(value).map_err(json_failure)
    }

    /// Like [`Policy::parse`], consuming the value.
    pub fn from_value(value: Value) -> Result<Self, ParseError> {
        drive(value).map_err(json_failure)
    }

    /// Reads a document from JSON text without building a JSON tree first.
    pub fn from_json_str(json: &str) -> Result<Self, ParseError> {
        let mut deserializer = serde_json::Deserializer::from_str(json);
        let policy = drive(&mut deserializer).map_err(json_failure)?;
        deserializer.end().map_err(ParseError::Json)?;
        Ok(policy)
    }

    /// Reads a document from JSON text one rule at a time, handing each to
    /// `each` in document order, so that a large policy is never held as a
    /// whole: a 10,000-rule document is about 1 MB of text, and several
    /// times that as rules. Errors as [`Policy::from_json_str`]; rules
    /// before the error have been handed over by then.
    pub fn scan_json_str(json: &str, mut each: impl FnMut(Rule)) -> Result<(), ParseError> {
        let mut deserializer = serde_json::Deserializer::from_str(json);
        let state = ParseState::default();
        let scan = ScanVisitor(Cursor::root(&state), &mut each);
        drive_with(&mut deserializer, &state, scan).map_err(json_failure)?;
        deserializer.end().map_err(ParseError::Json)
    }

    /// Renders the document; it equals the value that was read, key order included.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("a policy serializes: every map key is a string")
    }
}

impl Serialize for Policy {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Policy::Single(rule) => rule.serialize(serializer),
            Policy::List(rules) => {
                let mut seq = serializer.serialize_seq(Some(rules.len()))?;
                for rule in rules {
                    seq.serialize_element(rule)?;
                }
                seq.end()
            }
        }
    }
}

impl Serialize for Rule {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.actions.len()))?;
        for (action, body) in &self.actions {
            map.serialize_entry(action.as_str(), body)?;
        }
        map.end()
    }
}

impl Serialize for Body {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.operators.len()))?;
        for (operator, criteria) in &self.operators {
            map.serialize_entry(operator.as_str(), criteria)?;
        }
        map.end()
    }
}

impl Serialize for Criterion {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry(&self.name, &self.value)?;
        map.end()
    }
}

impl<'de> Deserialize<'de> for Policy {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        drive(deserializer).map_err(|failure| match failure {
            Failure::Ppl(error) => de::Error::custom(error),
            Failure::Deserializer(error) => error,
        })
    }
}

/// Why a document could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// The text is not JSON at all.
    #[error("PPL is not valid JSON: {0}")]
    Json(serde_json::Error),
    /// The JSON is not a PPL document.
    #[error("invalid PPL at {}: {problem}", PathDisplay(path))]
    Invalid {
        /// A JSON pointer (RFC 6901) to the offending value, e.g. `/2/allow/and/0`;
        /// empty for the document root.
        path: String,
        /// What is wrong there.
        problem: Problem,
    },
}

struct PathDisplay<'a>(&'a str);

impl fmt::Display for PathDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("the document root")
        } else {
            write!(f, "`{}`", self.0)
        }
    }
}

/// What is wrong at the place a [`ParseError::Invalid`] points to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// The document is neither a rule object, an array of them, nor `null`.
    #[error("a policy must be a rule object, an array of rule objects or null, found {0}")]
    NotAPolicy(JsonKind),
    /// An array element is not an object.
    #[error("a rule must be an object, found {0}")]
    RuleNotObject(JsonKind),
    /// A rule key other than `allow`/`deny`.
    #[error("unknown action `{0}` (expected `allow` or `deny`)")]
    UnknownAction(String),
    /// An action's value is not an object.
    #[error("the body of an action must be an object, found {0}")]
    BodyNotObject(JsonKind),
    /// A body key other than `and`/`or`/`not`/`nor`.
    #[error("unknown operator `{0}` (expected `and`, `or`, `not` or `nor`)")]
    UnknownOperator(String),
    /// An operator's value is not an array.
    #[error("an operator must hold an array of criteria, found {0}")]
    OperatorNotArray(JsonKind),
    /// A criterion is not an object.
    #[error("a criterion must be an object, found {0}")]
    CriterionNotObject(JsonKind),
    /// A rule or body names the same action or operator twice; keeping either silently
    /// would lose the other.
    #[error("`{0}` appears twice")]
    DuplicateKey(String),
    /// A criterion object does not have exactly one key.
    #[error("a criterion must have exactly one key, found {0}")]
    CriterionKeyCount(usize),
}

/// The type of a JSON value, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonKind {
    /// `null`
    Null,
    /// `true`/`false`
    Bool,
    /// a number
    Number,
    /// a string
    String,
    /// an array
    Array,
    /// an object
    Object,
}

impl fmt::Display for JsonKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JsonKind::Null => "null",
            JsonKind::Bool => "a boolean",
            JsonKind::Number => "a number",
            JsonKind::String => "a string",
            JsonKind::Array => "an array",
            JsonKind::Object => "an object",
        })
    }
}

/// A location in the document, kept as a chain of stack frames so that the happy
/// path builds no strings; it is rendered only when there is an error.
struct Path<'a> {
    parent: Option<&'a Path<'a>>,
    segment: Segment<'a>,
}

#[derive(Clone, Copy)]
enum Segment<'a> {
    Index(usize),
    Key(&'a str),
}

impl<'a> Path<'a> {
    fn child(parent: Option<&'a Path<'a>>, segment: Segment<'a>) -> Self {
        Self { parent, segment }
    }
}

/// Renders a path as an RFC 6901 JSON pointer (`~` → `~0`, `/` → `~1` in keys).
fn pointer(path: Option<&Path<'_>>) -> String {
    let mut segments = Vec::new();
    let mut at = path;
    while let Some(p) = at {
        segments.push(p.segment);
        at = p.parent;
    }
    let mut out = String::new();
    for segment in segments.into_iter().rev() {
        out.push('/');
        match segment {
            Segment::Index(i) => out.push_str(&i.to_string()),
            Segment::Key(key) => out.push_str(&key.replace('~', "~0").replace('/', "~1")),
        }
    }
    out
}

fn invalid(path: Option<&Path<'_>>, problem: Problem) -> ParseError {
    ParseError::Invalid {
        path: pointer(path),
        problem,
    }
}

/// One parse: records the first typed error, which a visitor reports to serde as an opaque
/// custom error (serde errors cannot carry it) and the driver then takes back out.
#[derive(Default)]
struct ParseState {
    error: Cell<Option<ParseError>>,
}

enum Failure<E> {
    Ppl(ParseError),
    Deserializer(E),
}

/// The one PPL parser, streaming from any serde deserializer (JSON text, a `Value`, a
/// `&Value`), so no intermediate JSON tree is built for the structure.
fn drive<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Policy, Failure<D::Error>> {
    let state = ParseState::default();
    drive_with(deserializer, &state, PolicyVisitor(Cursor::root(&state)))
}

/// Runs `seed` (which starts at the root of `state`), taking a PPL error
/// back out of `state`.
fn drive_with<'de, D, S>(
    deserializer: D,
    state: &ParseState,
    seed: S,
) -> Result<S::Value, Failure<D::Error>>
where
    D: Deserializer<'de>,
    S: DeserializeSeed<'de>,
{
    seed.deserialize(deserializer)
        .map_err(|error| match state.error.take() {
            Some(ppl) => Failure::Ppl(ppl),
            None => Failure::Deserializer(error),
        })
}

fn json_failure(failure: Failure<serde_json::Error>) -> ParseError {
    match failure {
        Failure::Ppl(error) => error,
        Failure::Deserializer(error) => ParseError::Json(error),
    }
}

/// Where a visitor is in the document.
#[derive(Clone, Copy)]
struct Cursor<'a> {
    state: &'a ParseState,
    at: Option<&'a Path<'a>>,
}

impl<'a> Cursor<'a> {
    fn root(state: &'a ParseState) -> Self {
        Self { state, at: None }
    }

    fn fail<E: de::Error>(self, problem: Problem) -> E {
        let error = invalid(self.at, problem);
        let opaque = E::custom(&error);
        self.state.error.set(Some(error));
        opaque
    }

    fn moved_to(self, here: &'a Path<'a>) -> Self {
        Self {
            state: self.state,
            at: Some(here),
        }
    }
}

/// Caps preallocation by an untrusted length hint.
fn capacity(hint: Option<usize>) -> usize {
    hint.unwrap_or(0).min(4096)
}

/// Visit methods that reject the JSON kinds a visitor does not accept.
macro_rules! reject {
    ($problem:path; scalars) => {
        reject!($problem; visit_bool(bool) Bool, visit_i64(i64) Number, visit_u64(u64) Number,
            visit_f64(f64) Number, visit_str(&str) String);
    };
    ($problem:path; unit) => {
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Err(self.0.fail($problem(JsonKind::Null)))
        }
    };
    ($problem:path; seq) => {
        fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
            Err(self.0.fail($problem(JsonKind::Array)))
        }
    };
    ($problem:path; map) => {
        fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
            Err(self.0.fail($problem(JsonKind::Object)))
        }
    };
    ($problem:path; $($method:ident($arg:ty) $kind:ident),*) => {
        $(fn $method<E: de::Error>(self, _: $arg) -> Result<Self::Value, E> {
            Err(self.0.fail($problem(JsonKind::$kind)))
        })*
    };
}

/// Every visitor is also its own seed, read with `deserialize_any`.
macro_rules! seed {
    ($visitor:ident => $value:ty) => {
        impl<'de> DeserializeSeed<'de> for $visitor<'_> {
            type Value = $value;
            fn deserialize<D: Deserializer<'de>>(
                self,
                deserializer: D,
            ) -> Result<$value, D::Error> {
                deserializer.deserialize_any(self)
            }
        }
    };
}

/// A key of a rule (actions) or a body (operators): known, or the unknown text.
enum Key<T> {
    Known(T),
    Unknown(String),
}

struct KeyVisitor<T>(fn(&str) -> Option<T>);

impl<'de, T> DeserializeSeed<'de> for KeyVisitor<T> {
    type Value = Key<T>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Key<T>, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<T> Visitor<'_> for KeyVisitor<T> {
    type Value = Key<T>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E: de::Error>(self, key: &str) -> Result<Key<T>, E> {
        Ok((self.0)(key).map_or_else(|| Key::Unknown(key.to_owned()), Key::Known))
    }
}

/// Reads a map whose keys come from a fixed vocabulary (`T`), each at most once, and whose
/// values are read by `value`.
fn keyed_map<'de, A, T, V>(
    cursor: Cursor<'_>,
    mut map: A,
    from_key: fn(&str) -> Option<T>,
    as_str: fn(T) -> &'static str,
    unknown: fn(String) -> Problem,
    mut value: impl FnMut(Cursor<'_>, &mut A) -> Result<V, A::Error>,
) -> Result<Vec<(T, V)>, A::Error>
where
    A: MapAccess<'de>,
    T: Copy + PartialEq,
{
    let mut entries: Vec<(T, V)> = Vec::with_capacity(1);
    while let Some(key) = map.next_key_seed(KeyVisitor(from_key))? {
        let key = match key {
            Key::Known(key) => key,
            Key::Unknown(text) => {
                let here = Path::child(cursor.at, Segment::Key(&text));
                return Err(cursor.moved_to(&here).fail(unknown(text.clone())));
            }
        };
        let here = Path::child(cursor.at, Segment::Key(as_str(key)));
        if entries.iter().any(|(seen, _)| *seen == key) {
            let problem = Problem::DuplicateKey(as_str(key).to_owned());
            return Err(cursor.moved_to(&here).fail(problem));
        }
        let parsed = value(cursor.moved_to(&here), &mut map)?;
        entries.push((key, parsed));
    }
    Ok(entries)
}

/// Reads an array, each element with `element`.
fn array<'de, A, V>(
    cursor: Cursor<'_>,
    mut seq: A,
    mut element: impl FnMut(Cursor<'_>, &mut A) -> Result<Option<V>, A::Error>,
) -> Result<Vec<V>, A::Error>
where
    A: SeqAccess<'de>,
{
    let mut items = Vec::with_capacity(capacity(seq.size_hint()));
    loop {
        let here = Path::child(cursor.at, Segment::Index(items.len()));
        match element(cursor.moved_to(&here), &mut seq)? {
            Some(item) => items.push(item),
            None => return Ok(items),
        }
    }
}

/// Names of Pomerium's criteria, shared instead of allocated when read.
const WELL_KNOWN_CRITERIA: &[&str] = &[
    "email",
    "date",
    "reject",
    "accept",
    "authenticated_user",
    "user",
    "domain",
    "groups",
    "http_method",
    "http_path",
    "device",
    "source_ip",
    "pomerium_routes",
    "cors_preflight",
    "client_certificate",
    "invalid_client_certificate",
    "day_of_week",
    "time_of_day",
    "record",
    "mcp_tool",
];

struct NameVisitor;

impl<'de> DeserializeSeed<'de> for NameVisitor {
    type Value = Cow<'static, str>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for NameVisitor {
    type Value = Cow<'static, str>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a criterion name")
    }
    fn visit_str<E: de::Error>(self, name: &str) -> Result<Self::Value, E> {
        Ok(WELL_KNOWN_CRITERIA
            .iter()
            .find(|known| **known == name)
            .map_or_else(
                || Cow::Owned(name.to_owned()),
                |known| Cow::Borrowed(*known),
            ))
    }
}

struct PolicyVisitor<'a>(Cursor<'a>);
seed!(PolicyVisitor => Policy);

impl<'de> Visitor<'de> for PolicyVisitor<'_> {
    type Value = Policy;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a PPL policy: a rule object, an array of them, or null")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Policy, E> {
        Ok(Policy::default())
    }
    fn visit_none<E: de::Error>(self) -> Result<Policy, E> {
        Ok(Policy::default())
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Policy, A::Error> {
        RuleVisitor(self.0).visit_map(map).map(Policy::Single)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Policy, A::Error> {
        array(self.0, seq, |at, seq| {
            seq.next_element_seed(RuleVisitor(at))
        })
        .map(Policy::List)
    }
    reject!(Problem::NotAPolicy; scalars);
}

/// Reads a document like [`PolicyVisitor`], handing each rule on instead of
/// collecting them.
struct ScanVisitor<'a, 'f>(Cursor<'a>, &'f mut dyn FnMut(Rule));

impl<'de> DeserializeSeed<'de> for ScanVisitor<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ScanVisitor<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a PPL policy: a rule object, an array of them, or null")
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        (self.1)(RuleVisitor(self.0).visit_map(map)?);
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        for index in 0.. {
            let here = Path::child(self.0.at, Segment::Index(index));
            match seq.next_element_seed(RuleVisitor(self.0.moved_to(&here)))? {
                Some(rule) => (self.1)(rule),
                None => break,
            }
        }
        Ok(())
    }
    reject!(Problem::NotAPolicy; scalars);
}

struct RuleVisitor<'a>(Cursor<'a>);
seed!(RuleVisitor => Rule);

impl<'de> Visitor<'de> for RuleVisitor<'_> {
    type Value = Rule;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a PPL rule object")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Rule, A::Error> {
        let actions = keyed_map(
            self.0,
            map,
            Action::from_key,
            Action::as_str,
            Problem::UnknownAction,
            |at, map| map.next_value_seed(BodyVisitor(at)),
        )?;
        Ok(Rule { actions })
    }
    reject!(Problem::RuleNotObject; scalars);
    reject!(Problem::RuleNotObject; unit);
    reject!(Problem::RuleNotObject; seq);
}

struct BodyVisitor<'a>(Cursor<'a>);
seed!(BodyVisitor => Body);

impl<'de> Visitor<'de> for BodyVisitor<'_> {
    type Value = Body;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a PPL action body")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Body, A::Error> {
        let operators = keyed_map(
            self.0,
            map,
            Operator::from_key,
            Operator::as_str,
            Problem::UnknownOperator,
            |at, map| map.next_value_seed(CriteriaVisitor(at)),
        )?;
        Ok(Body { operators })
    }
    reject!(Problem::BodyNotObject; scalars);
    reject!(Problem::BodyNotObject; unit);
    reject!(Problem::BodyNotObject; seq);
}

struct CriteriaVisitor<'a>(Cursor<'a>);
seed!(CriteriaVisitor => Vec<Criterion>);

impl<'de> Visitor<'de> for CriteriaVisitor<'_> {
    type Value = Vec<Criterion>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of PPL criteria")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        array(self.0, seq, |at, seq| {
            seq.next_element_seed(CriterionVisitor(at))
        })
    }
    reject!(Problem::OperatorNotArray; scalars);
    reject!(Problem::OperatorNotArray; unit);
    reject!(Problem::OperatorNotArray; map);
}

struct CriterionVisitor<'a>(Cursor<'a>);
seed!(CriterionVisitor => Criterion);

impl<'de> Visitor<'de> for CriterionVisitor<'_> {
    type Value = Criterion;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a PPL criterion")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Criterion, A::Error> {
        let Some(name) = map.next_key_seed(NameVisitor)? else {
            return Err(self.0.fail(Problem::CriterionKeyCount(0)));
        };
        let value = map.next_value::<Value>()?;
        let mut keys = 1;
        while map.next_key::<IgnoredAny>()?.is_some() {
            map.next_value::<IgnoredAny>()?;
            keys += 1;
        }
        if keys == 1 {
            Ok(Criterion { name, value })
        } else {
            Err(self.0.fail(Problem::CriterionKeyCount(keys)))
        }
    }
    reject!(Problem::CriterionNotObject; scalars);
    reject!(Problem::CriterionNotObject; unit);
    reject!(Problem::CriterionNotObject; seq);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn problem_at(doc: Value) -> (String, Problem) {
        match Policy::parse(&doc) {
            Err(ParseError::Invalid { path, problem }) => (path, problem),
            other => panic!("expected an invalid-PPL error for {doc}, got {other:?}"),
        }
    }

    #[test]
    fn go_original_document_round_trips_exactly() {
        let text = r#"[{"allow":{"and":[{"email":"a@x.io"},{"reject":true}]}},{"allow":{"and":[{"email":"b@x.io"},{"date":{"before":"2026-11-28T15:04:05Z"}}]}}]"#;
        let policy = Policy::from_json_str(text).unwrap();
        assert_eq!(policy.rules().len(), 2);
        assert_eq!(serde_json::to_string(&policy).unwrap(), text);
    }

    #[test]
    fn scanning_hands_over_the_rules_a_parse_reads() {
        for text in [
            r#"[{"allow":{"and":[{"email":"a@x.io"},{"reject":true}]}},{},{"deny":{"or":[]}}]"#,
            r#"{"allow":{"or":[{"accept":true}]}}"#,
            "[]",
            "null",
        ] {
            let mut scanned = Vec::new();
            Policy::scan_json_str(text, |rule| scanned.push(rule)).unwrap();
            assert_eq!(
                scanned,
                Policy::from_json_str(text).unwrap().rules(),
                "{text}"
            );
        }
        for bad in [
            r#"[{}, {"permit":{}}]"#,
            "[{}] x",
            "7",
            r#"[{"allow":{"and":[3]}}]"#,
        ] {
            let scanned = Policy::scan_json_str(bad, |_| {}).unwrap_err();
            let parsed = Policy::from_json_str(bad).unwrap_err();
            assert_eq!(scanned.to_string(), parsed.to_string(), "{bad}");
        }
    }

    #[test]
    fn key_order_and_single_form_are_kept() {
        let text = r#"{"deny":{"or":[{"http_path":{"starts_with":"/x"}}],"and":[]},"allow":{"nor":[{"claim/family_name":"Smith"}]}}"#;
        let policy = Policy::from_json_str(text).unwrap();
        assert!(matches!(policy, Policy::Single(_)));
        assert_eq!(serde_json::to_string(&policy).unwrap(), text);
        let rule = &policy.rules()[0];
        assert_eq!(rule.actions()[0].0, Action::Deny);
        let ops: Vec<_> = rule.actions()[0]
            .1
            .operators()
            .iter()
            .map(|o| o.0)
            .collect();
        assert_eq!(ops, [Operator::Or, Operator::And]);
        let criterion = &rule.actions()[1].1.operators()[0].1[0];
        assert_eq!(criterion.base_name(), "claim");
        assert_eq!(criterion.sub_path(), Some("family_name"));
    }

    #[test]
    fn empty_forms_are_valid() {
        assert_eq!(
            Policy::parse(&json!({})).unwrap(),
            Policy::Single(Rule::default())
        );
        assert_eq!(Policy::parse(&json!([])).unwrap(), Policy::List(vec![]));
        assert_eq!(Policy::parse(&json!([{}])).unwrap().to_value(), json!([{}]));
        assert_eq!(
            Policy::parse(&json!({"allow":{}})).unwrap().to_value(),
            json!({"allow":{}})
        );
    }

    #[test]
    fn null_reads_as_the_empty_list() {
        let policy = Policy::parse(&Value::Null).unwrap();
        assert_eq!(policy, Policy::default());
        assert_eq!(policy.to_value(), json!([]));
        let via_serde: Policy = serde_json::from_str("null").unwrap();
        assert_eq!(via_serde, Policy::default());
    }

    #[test]
    fn errors_say_where_and_what() {
        let cases = [
            (json!(5), "", Problem::NotAPolicy(JsonKind::Number)),
            (json!("x"), "", Problem::NotAPolicy(JsonKind::String)),
            (
                json!([{}, 3]),
                "/1",
                Problem::RuleNotObject(JsonKind::Number),
            ),
            (
                json!({"permit": {}}),
                "/permit",
                Problem::UnknownAction("permit".into()),
            ),
            (
                json!([{}, {}, {"allow": []}]),
                "/2/allow",
                Problem::BodyNotObject(JsonKind::Array),
            ),
            (
                json!([{"allow": {"xor": []}}]),
                "/0/allow/xor",
                Problem::UnknownOperator("xor".into()),
            ),
            (
                json!([{"deny": {"or": {}}}]),
                "/0/deny/or",
                Problem::OperatorNotArray(JsonKind::Object),
            ),
            (
                json!([{"allow": {"and": ["email"]}}]),
                "/0/allow/and/0",
                Problem::CriterionNotObject(JsonKind::String),
            ),
            (
                json!([{}, {}, {"allow": {"and": [{"accept": true}, {}]}}]),
                "/2/allow/and/1",
                Problem::CriterionKeyCount(0),
            ),
            (
                json!({"allow": {"and": [{"email": "a", "user": "b"}]}}),
                "/allow/and/0",
                Problem::CriterionKeyCount(2),
            ),
            (
                json!({"a/b~c": {}}),
                "/a~1b~0c",
                Problem::UnknownAction("a/b~c".into()),
            ),
        ];
        for (doc, path, problem) in cases {
            assert_eq!(
                problem_at(doc.clone()),
                (path.to_string(), problem),
                "{doc}"
            );
        }
    }

    #[test]
    fn error_messages_are_readable() {
        let err =
            Policy::parse(&json!([{}, {}, {"allow": {"and": [{"a": 1, "b": 2}]}}])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid PPL at `/2/allow/and/0`: a criterion must have exactly one key, found 2"
        );
        let err = Policy::parse(&json!(true)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid PPL at the document root: a policy must be a rule object, an array of rule objects or null, found a boolean"
        );
        let err = Policy::from_json_str("[{").unwrap_err();
        assert!(matches!(err, ParseError::Json(_)), "{err}");
        assert!(err.to_string().starts_with("PPL is not valid JSON"));
    }

    #[test]
    fn duplicate_keys_are_errors_not_silent_losses() {
        let cases = [
            (r#"{"allow":{},"allow":{}}"#, "/allow", "allow"),
            (
                r#"[{"deny":{"or":[],"and":[],"or":[]}}]"#,
                "/0/deny/or",
                "or",
            ),
        ];
        for (text, path, key) in cases {
            match Policy::from_json_str(text) {
                Err(ParseError::Invalid { path: at, problem }) => {
                    assert_eq!(
                        (at.as_str(), problem),
                        (path, Problem::DuplicateKey(key.into()))
                    );
                }
                other => panic!("{text}: {other:?}"),
            }
        }
        // Two keys in a criterion, even the same one twice, is two keys.
        let err =
            Policy::from_json_str(r#"{"allow":{"and":[{"email":"a","email":"b"}]}}"#).unwrap_err();
        assert!(
            matches!(
                err,
                ParseError::Invalid {
                    problem: Problem::CriterionKeyCount(2),
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn trailing_text_is_a_json_error() {
        assert!(matches!(
            Policy::from_json_str("[] []"),
            Err(ParseError::Json(_))
        ));
        assert!(Policy::from_json_str(" [] \n").is_ok());
    }

    #[test]
    fn deserialize_reports_the_path() {
        let err = serde_json::from_str::<Policy>(r#"{"allow":{"and":[1]}}"#).unwrap_err();
        assert!(err.to_string().contains("`/allow/and/0`"), "{err}");
    }

    #[test]
    fn constructors_render_canonically() {
        let rule = Rule::new(
            Action::Allow,
            Body::new(
                Operator::And,
                vec![
                    Criterion::new("email", "a@x"),
                    Criterion::new("accept", true),
                ],
            ),
        );
        assert_eq!(
            Policy::List(vec![rule]).to_value(),
            json!([{"allow": {"and": [{"email": "a@x"}, {"accept": true}]}}])
        );
    }
}
