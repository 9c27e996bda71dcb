//! A policy's PPL document, kept as the JSON text it travels as.

use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;

/// A PPL document as JSON text: exactly what the server sent, or what is
/// about to be sent. It is valid JSON; whether it is valid PPL is the
/// `jit-ppl` crate's question.
///
/// Text, not a [`Value`] tree, because policies get large and a sync holds
/// several: a policy with 10,000 JIT rules is about 1 MB as text and about
/// 26 MB as a `Value` (an ordered map per object).
///
/// Equality is JSON equality: whitespace and the order of object keys do
/// not count, array order and every value do. A server that stores the
/// document reformatted (as a JSONB column would) therefore does not look
/// like an edit, and a write is not repeated because of it.
#[derive(Clone)]
pub struct Ppl(Box<RawValue>);

impl Ppl {
    /// Takes JSON text as it is; an error if it is not JSON.
    pub fn from_json(text: String) -> Result<Self, serde_json::Error> {
        RawValue::from_string(text).map(Self)
    }

    /// The compact text of a JSON value.
    pub fn from_value(value: &Value) -> Self {
        Self(serde_json::value::to_raw_value(value).expect("a JSON value serializes"))
    }

    /// The text, as received or built.
    pub fn as_str(&self) -> &str {
        self.0.get()
    }

    /// The text, owned, without a copy.
    pub fn into_string(self) -> String {
        Box::<str>::from(self.0).into()
    }

    /// Whether `text` holds the same JSON value (as `==` compares).
    pub fn matches(&self, text: &str) -> bool {
        same_json(self.as_str(), text)
    }

    /// The document as a JSON tree (for tools and tests; large for large
    /// policies).
    pub fn to_value(&self) -> Value {
        serde_json::from_str(self.as_str()).expect("Ppl holds valid JSON")
    }
}

impl From<Value> for Ppl {
    fn from(value: Value) -> Self {
        Self::from_value(&value)
    }
}

impl fmt::Debug for Ppl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Ppl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq for Ppl {
    fn eq(&self, other: &Self) -> bool {
        same_json(self.as_str(), other.as_str())
    }
}

impl PartialEq<Value> for Ppl {
    fn eq(&self, other: &Value) -> bool {
        same_json(self.as_str(), &other.to_string())
    }
}

impl PartialEq<Ppl> for Value {
    fn eq(&self, other: &Ppl) -> bool {
        other == self
    }
}

impl Serialize for Ppl {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Ppl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Box::<RawValue>::deserialize(deserializer).map(Self)
    }
}

/// Whether two JSON texts hold equal values, as `serde_json::Value`
/// compares them, without building either tree: same text, or the same
/// canonical form. Text that is not JSON equals nothing but itself.
fn same_json(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    // The shorter text's canonical form is held; the longer one's is
    // compared with it as it is written and stops at the first difference.
    // Canonicalizing both held two documents beside the text being written
    // (a megabyte each at thousands of grants) when one is a small policy.
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let Some(expected) = canonical(short) else {
        return false;
    };
    let mut against = Against(&expected);
    write_canonical(long, &mut against).is_some() && against.0.is_empty()
}

/// Compact JSON with every object's keys sorted (the last of duplicate
/// keys kept, as a parse into `Value` keeps it); arrays keep their order.
/// Numbers and strings are written back by `serde_json`, so two texts of
/// one value give one form. Only one object's members are held at a time
/// beside the output.
fn canonical(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    write_canonical(text, &mut out)?;
    Some(out)
}

/// Writes the canonical form of `text` to `out`; `None` if `text` is not
/// one JSON value or `out` refused a piece.
fn write_canonical<S: Sink>(text: &str, out: &mut S) -> Option<()> {
    let mut de = serde_json::Deserializer::from_str(text);
    Canon { out, before: "" }.deserialize(&mut de).ok()?;
    de.end().ok()
}

/// Where a canonical form is written.
trait Sink {
    /// Takes the next piece; `Err` stops the writing.
    fn put(&mut self, piece: &str) -> Result<(), Differs>;
}

/// The form written differs from the one it is compared with.
struct Differs;

impl Sink for String {
    fn put(&mut self, piece: &str) -> Result<(), Differs> {
        self.push_str(piece);
        Ok(())
    }
}

/// Compares what is written with the rest of a canonical form.
struct Against<'a>(&'a str);

impl Sink for Against<'_> {
    fn put(&mut self, piece: &str) -> Result<(), Differs> {
        self.0 = self.0.strip_prefix(piece).ok_or(Differs)?;
        Ok(())
    }
}

/// One value's canonical form, written after `before` (a separator from
/// the value ahead of it in an array, known only once this one is there).
struct Canon<'a, S> {
    out: &'a mut S,
    before: &'static str,
}

impl<S: Sink> Canon<'_, S> {
    fn put<E: de::Error>(&mut self, piece: &str) -> Result<(), E> {
        self.out
            .put(piece)
            .map_err(|Differs| E::custom("the documents differ"))
    }

    /// Starts the value: its separator first.
    fn start<E: de::Error>(&mut self) -> Result<(), E> {
        let before = self.before;
        self.put(before)
    }

    fn scalar<T: Serialize, E: de::Error>(mut self, value: T) -> Result<(), E> {
        self.start()?;
        self.put(&serde_json::to_string(&value).map_err(E::custom)?)
    }
}

impl<'de, S: Sink> DeserializeSeed<'de> for Canon<'_, S> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de, S: Sink> Visitor<'de> for Canon<'_, S> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E: de::Error>(mut self) -> Result<(), E> {
        self.start()?;
        self.put("null")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.scalar(v)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.scalar(v)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.scalar(v)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.scalar(v)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.scalar(v)
    }
    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        self.start()?;
        self.put("[")?;
        let mut before = "";
        while seq
            .next_element_seed(Canon {
                out: &mut *self.out,
                before,
            })?
            .is_some()
        {
            before = ",";
        }
        self.put("]")
    }
    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        let mut members: Vec<(String, String)> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            let mut value = String::new();
            map.next_value_seed(Canon {
                out: &mut value,
                before: "",
            })?;
            members.push((key, value));
        }
        // Stable: among equal keys, the last read stays last.
        members.sort_by(|a, b| a.0.cmp(&b.0));
        self.start()?;
        self.put("{")?;
        let mut first = true;
        for (i, (key, value)) in members.iter().enumerate() {
            if members.get(i + 1).is_some_and(|next| next.0 == *key) {
                continue;
            }
            if !first {
                self.put(",")?;
            }
            first = false;
            self.put(&serde_json::to_string(key).map_err(de::Error::custom)?)?;
            self.put(":")?;
            self.put(value)?;
        }
        self.put("}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ppl(text: &str) -> Ppl {
        Ppl::from_json(text.to_owned()).unwrap()
    }

    #[test]
    fn equality_is_json_equality() {
        let a = ppl(
            r#"[{"allow":{"and":[{"email":{"is":"a@x"}},{"date":{"after":"1","before":"2"}}]}}]"#,
        );
        let reformatted = ppl(
            "[ {\"allow\" : {\"and\": [ {\"email\":{\"is\":\"a\\u0040x\"}},\n {\"date\":{\"before\":\"2\",\"after\":\"1\"}} ] } } ]",
        );
        assert_eq!(a, reformatted);
        assert_eq!(a, a.to_value());
        assert_eq!(
            ppl(r#"{"b":1,"a":[1,2.5,null,true,"x"]}"#),
            json!({"a":[1,2.5,null,true,"x"],"b":1})
        );
        for different in [
            r#"[{"allow":{"and":[{"date":{"after":"1","before":"2"}},{"email":{"is":"a@x"}}]}}]"#,
            r#"[{"allow":{"and":[{"email":{"is":"b@x"}},{"date":{"after":"1","before":"2"}}]}}]"#,
            r#"{"allow":{"and":[{"email":{"is":"a@x"}},{"date":{"after":"1","before":"2"}}]}}"#,
            "[]",
            "null",
        ] {
            assert_ne!(a, ppl(different), "{different}");
        }
        // One canonical form a prefix of the other's, either way round.
        for (a, b) in [
            ("[1]", "[1,2]"),
            ("[[1]]", "[[1],2]"),
            (r#"{"a":1}"#, r#"{"a":1,"b":2}"#),
        ] {
            assert_ne!(ppl(a), ppl(b), "{a} {b}");
            assert_ne!(ppl(b), ppl(a), "{b} {a}");
        }
        assert_eq!(ppl("[ 1 , [ ] ]"), ppl("[1,[]]"));
        // As Value compares them: 1 and 1.0 differ; the last duplicate key wins.
        assert_ne!(ppl("1"), ppl("1.0"));
        assert_eq!(ppl(r#"{"a":1,"a":2}"#), json!({"a": 2}));
        assert_ne!(ppl(r#"{"a":1,"a":2}"#), json!({"a": 1}));
    }

    fn json() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            (-3i64..3).prop_map(Value::from),
            prop_oneof![Just(0.5f64), Just(-1.0)].prop_map(Value::from),
            "[ab\"é]{0,2}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                proptest::collection::btree_map("[ab]{1,2}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        /// Equal as `Value` compares them, whatever the formatting and
        /// whichever text is the longer.
        #[test]
        fn equality_is_value_equality(a in json(), b in json()) {
            let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap();
            proptest::prop_assert!(same_json(&a.to_string(), &pretty(&a)));
            proptest::prop_assert_eq!(same_json(&a.to_string(), &pretty(&b)), a == b);
            proptest::prop_assert_eq!(same_json(&pretty(&a), &b.to_string()), a == b);
        }
    }

    #[test]
    fn canonical_form_sorts_keys_and_compacts() {
        assert_eq!(
            canonical(r#" { "b" : [ {"d":null,"c":"\u00e9"}, [], {} ], "a" : -0.5 } "#).as_deref(),
            Some(r#"{"a":-0.5,"b":[{"c":"é","d":null},[],{}]}"#)
        );
        assert_eq!(canonical("[1,"), None);
    }

    #[test]
    fn text_is_kept_as_received_and_round_trips_through_serde() {
        let text = r#"[ {"allow": {"or": [{"accept": true}]}} ]"#;
        let p = ppl(text);
        assert_eq!(p.as_str(), text);
        assert_eq!(serde_json::to_string(&p).unwrap(), text);
        let back: Ppl = serde_json::from_str(text).unwrap();
        assert_eq!(back.as_str(), text);
        let from_tree: Ppl = serde_json::from_value(json!({"x": [1]})).unwrap();
        assert_eq!(from_tree.as_str(), r#"{"x":[1]}"#);
        assert!(Ppl::from_json("{".into()).is_err());
    }
}
