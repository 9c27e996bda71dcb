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
    a == b
        || match (canonical(a), canonical(b)) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        }
}

/// Compact JSON with every object's keys sorted (the last of duplicate
/// keys kept, as a parse into `Value` keeps it); arrays keep their order.
/// Numbers and strings are written back by `serde_json`, so two texts of
/// one value give one form. Only one object's members are held at a time
/// beside the output.
fn canonical(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut de = serde_json::Deserializer::from_str(text);
    Canon(&mut out).deserialize(&mut de).ok()?;
    de.end().ok()?;
    Some(out)
}

struct Canon<'a>(&'a mut String);

impl Canon<'_> {
    fn scalar<T: Serialize, E: de::Error>(self, value: T) -> Result<(), E> {
        self.0
            .push_str(&serde_json::to_string(&value).map_err(E::custom)?);
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for Canon<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Canon<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.0.push_str("null");
        Ok(())
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
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.0.push('[');
        let mut first = true;
        loop {
            let mark = self.0.len();
            if !first {
                self.0.push(',');
            }
            if seq.next_element_seed(Canon(self.0))?.is_none() {
                self.0.truncate(mark);
                break;
            }
            first = false;
        }
        self.0.push(']');
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut members: Vec<(String, String)> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            let mut value = String::new();
            map.next_value_seed(Canon(&mut value))?;
            members.push((key, value));
        }
        // Stable: among equal keys, the last read stays last.
        members.sort_by(|a, b| a.0.cmp(&b.0));
        self.0.push('{');
        let mut first = true;
        for (i, (key, value)) in members.iter().enumerate() {
            if members.get(i + 1).is_some_and(|next| next.0 == *key) {
                continue;
            }
            if !first {
                self.0.push(',');
            }
            first = false;
            self.0
                .push_str(&serde_json::to_string(key).map_err(de::Error::custom)?);
            self.0.push(':');
            self.0.push_str(value);
        }
        self.0.push('}');
        Ok(())
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
        // As Value compares them: 1 and 1.0 differ; the last duplicate key wins.
        assert_ne!(ppl("1"), ppl("1.0"));
        assert_eq!(ppl(r#"{"a":1,"a":2}"#), json!({"a": 2}));
        assert_ne!(ppl(r#"{"a":1,"a":2}"#), json!({"a": 1}));
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
