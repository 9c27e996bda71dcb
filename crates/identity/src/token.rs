//! The assertion's header and claims: parsed strictly and judged here, in one
//! place. A value of the wrong JSON type is an error, never "absent"
//! (the CVE-2026-25537 class); duplicate members are refused by serde.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::{Error as _, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use time::OffsetDateTime;

use crate::identity::Person;
use crate::{Algorithm, Identity, VerifyError};

/// What the header tells us before any key is chosen.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) alg: Algorithm,
    pub(crate) kid: String,
}

/// Header members we look at. `Some(Value::Null)` means "present as null",
/// which is not the same as absent.
#[derive(Deserialize)]
struct RawHeader {
    #[serde(default, deserialize_with = "present")]
    alg: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    kid: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    typ: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    crit: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    jku: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    jwk: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    x5u: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    x5c: Option<Value>,
}

/// Keeps an explicit JSON `null` as `Some(Value::Null)`; `#[serde(default)]` gives `None` for absence.
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

/// Splits the compact JWS and judges its header: ES256/RS256 only, a `kid`
/// required, no `crit`, no key or key location (`jku`, `jwk`, `x5u`, `x5c`),
/// `typ` absent or `JWT`.
pub(crate) fn parse_header(token: &str) -> Result<Header, VerifyError> {
    let mut segments = token.split('.');
    let (Some(header), Some(_), Some(_), None) = (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) else {
        return Err(VerifyError::Malformed("not three dot-separated segments"));
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| VerifyError::Malformed("header is not base64url"))?;
    let raw: RawHeader = serde_json::from_slice(&bytes)
        .map_err(|_| VerifyError::Malformed("header is not a JSON object"))?;

    let alg = match raw.alg {
        None => return Err(VerifyError::Malformed("header has no alg")),
        Some(Value::String(alg)) => Algorithm::from_jose(&alg)
            .ok_or_else(|| VerifyError::AlgorithmNotAllowed(alg.chars().take(32).collect()))?,
        Some(_) => return Err(VerifyError::Malformed("header alg is not a string")),
    };
    if raw.crit.is_some() {
        return Err(VerifyError::CriticalHeader);
    }
    for (name, value) in [
        ("jku", &raw.jku),
        ("jwk", &raw.jwk),
        ("x5u", &raw.x5u),
        ("x5c", &raw.x5c),
    ] {
        if value.is_some() {
            return Err(VerifyError::KeyInHeader(name));
        }
    }
    match raw.typ {
        None => {}
        Some(Value::String(typ)) if typ.eq_ignore_ascii_case("JWT") => {}
        Some(_) => return Err(VerifyError::Malformed("header typ is not JWT")),
    }
    let kid = match raw.kid {
        None => return Err(VerifyError::MissingKeyId),
        Some(Value::String(kid)) if kid.is_empty() => return Err(VerifyError::MissingKeyId),
        Some(Value::String(kid)) => kid,
        Some(_) => return Err(VerifyError::Malformed("header kid is not a string")),
    };
    Ok(Header { alg, kid })
}

/// The claims we read, each kept as raw JSON until judged by [`RawClaims::judge`].
#[derive(Deserialize)]
pub(crate) struct RawClaims {
    #[serde(default, deserialize_with = "present")]
    exp: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    iat: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    nbf: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    iss: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    aud: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    sub: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    user: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    email: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    name: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    groups: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    sid: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    jti: Option<Value>,
    /// Every other claim.
    #[serde(flatten)]
    other: OtherClaims,
}

/// The claims not read above that are a string or a list of strings (an IdP's
/// `team`, `department`, …), for rules that match on them. Claims of other
/// types are left out: nothing here judges them. A repeated claim is refused,
/// as for the claims above.
#[derive(Default)]
struct OtherClaims(BTreeMap<String, Vec<String>>);

impl<'de> Deserialize<'de> for OtherClaims {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> Visitor<'de> for Visit {
            type Value = OtherClaims;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("claims")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OtherClaims, A::Error> {
                let mut claims = BTreeMap::new();
                let mut seen = BTreeSet::new();
                while let Some((name, value)) = map.next_entry::<String, Value>()? {
                    if !seen.insert(name.clone()) {
                        return Err(A::Error::custom(format!("duplicate claim `{name}`")));
                    }
                    let strings = match value {
                        Value::String(s) => vec![s],
                        Value::Array(items) => match items
                            .into_iter()
                            .map(|v| match v {
                                Value::String(s) => Some(s),
                                _ => None,
                            })
                            .collect::<Option<Vec<_>>>()
                        {
                            Some(strings) => strings,
                            None => continue,
                        },
                        _ => continue,
                    };
                    claims.insert(name, strings);
                }
                Ok(OtherClaims(claims))
            }
        }
        deserializer.deserialize_map(Visit)
    }
}

/// What the claims must say for this service.
#[derive(Debug, Clone)]
pub(crate) struct Expected {
    pub(crate) audience: String,
    /// The issuer as a bare hostname (Pomerium's default `iss`).
    pub(crate) issuer_host: String,
    /// The same issuer as `https://host/` (`jwt_issuer_format: uri`).
    pub(crate) issuer_uri: String,
    pub(crate) leeway_secs: i64,
}

impl Expected {
    pub(crate) fn new(audience: String, issuer_host: String, leeway_secs: i64) -> Self {
        let issuer_uri = format!("https://{issuer_host}/");
        Expected {
            audience,
            issuer_host,
            issuer_uri,
            leeway_secs,
        }
    }
}

impl RawClaims {
    /// Applies every claim rule at Unix time `now` and builds the identity.
    /// Runs only after the signature has verified.
    pub(crate) fn judge(self, expected: &Expected, now: i64) -> Result<Identity, VerifyError> {
        let leeway = expected.leeway_secs;

        let expires_at = numeric_date(self.exp, "exp")?.ok_or(VerifyError::MissingClaim("exp"))?;
        if now > expires_at.unix_timestamp().saturating_add(leeway) {
            return Err(VerifyError::Expired);
        }
        if let Some(nbf) = numeric_date(self.nbf, "nbf")?
            && nbf.unix_timestamp() > now.saturating_add(leeway)
        {
            return Err(VerifyError::NotYetValid);
        }
        let issued_at = numeric_date(self.iat, "iat")?.ok_or(VerifyError::MissingClaim("iat"))?;
        if issued_at.unix_timestamp() > now.saturating_add(leeway) {
            return Err(VerifyError::IssuedInFuture);
        }

        let iss = string(self.iss, "iss")?.ok_or(VerifyError::MissingClaim("iss"))?;
        if iss != expected.issuer_host && iss != expected.issuer_uri {
            return Err(VerifyError::WrongIssuer);
        }
        // Pomerium sends one string; an array is accepted if it names us (RFC 7519 §4.1.3).
        let audience_ok = match self.aud {
            None => return Err(VerifyError::MissingClaim("aud")),
            Some(Value::String(aud)) => aud == expected.audience,
            Some(Value::Array(items)) => {
                let mut found = false;
                for item in items {
                    match item {
                        Value::String(aud) => found |= aud == expected.audience,
                        _ => return Err(VerifyError::InvalidClaim("aud")),
                    }
                }
                found
            }
            Some(_) => return Err(VerifyError::InvalidClaim("aud")),
        };
        if !audience_ok {
            return Err(VerifyError::WrongAudience);
        }

        let sub = string(self.sub, "sub")?.filter(|s| !s.is_empty());
        let user = string(self.user, "user")?.filter(|s| !s.is_empty());
        let user = sub.or(user).ok_or(VerifyError::MissingClaim("sub"))?;

        let groups = match self.groups {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|item| match item {
                    Value::String(group) => Ok(group),
                    _ => Err(VerifyError::InvalidClaim("groups")),
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(VerifyError::InvalidClaim("groups")),
        };

        let email = string(self.email, "email")?.unwrap_or_default();
        let person = Arc::new(Person::new(
            user,
            email,
            string(self.name, "name")?.unwrap_or_default(),
            groups.into(),
            Arc::new(self.other.0),
        ));
        let sid = string(self.sid, "sid")?.unwrap_or_default();
        let jti = string(self.jti, "jti")?.unwrap_or_default();
        Identity::new(person, &sid, &jti, issued_at, expires_at)
            .ok_or(VerifyError::InvalidClaim("sid"))
    }
}

/// A NumericDate as Pomerium writes it: integer Unix seconds. Fractions,
/// strings and `null` are refused rather than coerced or ignored.
fn numeric_date(
    value: Option<Value>,
    claim: &'static str,
) -> Result<Option<OffsetDateTime>, VerifyError> {
    match value {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .and_then(|secs| OffsetDateTime::from_unix_timestamp(secs).ok())
            .map(Some)
            .ok_or(VerifyError::InvalidClaim(claim)),
        Some(_) => Err(VerifyError::InvalidClaim(claim)),
    }
}

fn string(value: Option<Value>, claim: &'static str) -> Result<Option<String>, VerifyError> {
    match value {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(VerifyError::InvalidClaim(claim)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_800_000_000;

    fn expected() -> Expected {
        Expected::new("jit.example.com".into(), "jit.example.com".into(), 60)
    }

    fn pomerium_claims() -> Value {
        json!({
            "aud": "jit.example.com", "email": "a@example.com", "exp": NOW + 300,
            "groups": ["g1", "admins"], "iat": NOW, "iss": "jit.example.com",
            "jti": "3f1e0c7a-0000-4000-8000-000000000000", "name": "A", "sid": "s1",
            "sub": "u1", "user": "u1",
        })
    }

    fn judge(claims: Value) -> Result<Identity, VerifyError> {
        serde_json::from_value::<RawClaims>(claims)
            .unwrap()
            .judge(&expected(), NOW)
    }

    fn with(
        edit: impl FnOnce(&mut serde_json::Map<String, Value>),
    ) -> Result<Identity, VerifyError> {
        let mut claims = pomerium_claims();
        edit(claims.as_object_mut().unwrap());
        judge(claims)
    }

    fn header(value: Value) -> Result<Header, VerifyError> {
        parse_header(&format!(
            "{}.e30.sig",
            URL_SAFE_NO_PAD.encode(value.to_string())
        ))
    }

    #[test]
    fn pomerium_claims_make_an_identity() {
        let id = judge(pomerium_claims()).unwrap();
        assert_eq!(id.user(), "u1");
        assert_eq!(id.email(), Ok("a@example.com"));
        assert_eq!(id.groups()[..], ["g1", "admins"]);
        assert_eq!(id.session_id(), "s1");
        assert_eq!(id.token_id(), "3f1e0c7a-0000-4000-8000-000000000000");
        assert_eq!(id.issued_at().unix_timestamp(), NOW);
        assert_eq!(id.expires_at().unix_timestamp(), NOW + 300);
    }

    #[test]
    fn time_claims_respect_the_leeway() {
        assert!(
            with(|c| {
                c.insert("exp".into(), json!(NOW - 60));
            })
            .is_ok()
        );
        assert_eq!(
            with(|c| {
                c.insert("exp".into(), json!(NOW - 61));
            }),
            Err(VerifyError::Expired)
        );
        assert!(
            with(|c| {
                c.insert("nbf".into(), json!(NOW + 60));
            })
            .is_ok()
        );
        assert_eq!(
            with(|c| {
                c.insert("nbf".into(), json!(NOW + 61));
            }),
            Err(VerifyError::NotYetValid)
        );
        assert!(
            with(|c| {
                c.insert("iat".into(), json!(NOW + 60));
            })
            .is_ok()
        );
        assert_eq!(
            with(|c| {
                c.insert("iat".into(), json!(NOW + 61));
            }),
            Err(VerifyError::IssuedInFuture)
        );
    }

    #[test]
    fn required_claims() {
        for (claim, error) in [
            ("exp", VerifyError::MissingClaim("exp")),
            ("iat", VerifyError::MissingClaim("iat")),
            ("iss", VerifyError::MissingClaim("iss")),
            ("aud", VerifyError::MissingClaim("aud")),
        ] {
            assert_eq!(
                with(|c| {
                    c.remove(claim);
                }),
                Err(error),
                "{claim}"
            );
        }
        assert_eq!(
            with(|c| {
                c.remove("sub");
                c.remove("user");
            }),
            Err(VerifyError::MissingClaim("sub"))
        );
        let id = with(|c| {
            c.remove("sub");
        })
        .unwrap();
        assert_eq!(id.user(), "u1", "falls back to the user claim");
        let id = with(|c| {
            for optional in ["email", "name", "groups", "sid", "jti", "user"] {
                c.remove(optional);
            }
        })
        .unwrap();
        assert_eq!(id.email(), Err(VerifyError::MissingEmail));
        assert!(id.groups().is_empty());
    }

    #[test]
    fn wrong_types_are_refused_not_ignored() {
        for (claim, value) in [
            ("exp", json!("1900000000")),
            ("exp", json!(null)),
            ("exp", json!(1_800_000_300.5)),
            ("exp", json!(u64::MAX)),
            ("exp", json!(i64::MAX)),
            ("nbf", json!("0")),
            ("iat", json!([NOW])),
            ("iss", json!(["jit.example.com"])),
            ("aud", json!(7)),
            ("aud", json!(["jit.example.com", 7])),
            ("sub", json!(1)),
            ("user", json!(null)),
            ("email", json!(null)),
            ("email", json!(["a@example.com"])),
            ("name", json!(false)),
            ("groups", json!(null)),
            ("groups", json!("admins")),
            ("groups", json!(["ok", 1])),
            ("sid", json!({})),
            ("jti", json!(1)),
        ] {
            assert_eq!(
                with(|c| {
                    c.insert(claim.into(), value.clone());
                }),
                Err(VerifyError::InvalidClaim(claim)),
                "{claim} = {value}"
            );
        }
    }

    #[test]
    fn audience_and_issuer() {
        assert_eq!(
            with(|c| {
                c.insert("aud".into(), json!("other.example.com"));
            }),
            Err(VerifyError::WrongAudience)
        );
        assert!(
            with(|c| {
                c.insert("aud".into(), json!(["x", "jit.example.com"]));
            })
            .is_ok()
        );
        assert_eq!(
            with(|c| {
                c.insert("aud".into(), json!([]));
            }),
            Err(VerifyError::WrongAudience)
        );
        assert!(
            with(|c| {
                c.insert("iss".into(), json!("https://jit.example.com/"));
            })
            .is_ok()
        );
        for bad in [
            "http://jit.example.com/",
            "https://jit.example.com",
            "JIT.example.com",
            "evil",
        ] {
            assert_eq!(
                with(|c| {
                    c.insert("iss".into(), json!(bad));
                }),
                Err(VerifyError::WrongIssuer),
                "{bad}"
            );
        }
    }

    #[test]
    fn duplicate_claims_are_refused() {
        let payload = br#"{"exp":1,"exp":99999999999}"#;
        assert!(serde_json::from_slice::<RawClaims>(payload).is_err());
        let payload = br#"{"exp":1,"team":"a","team":"b"}"#;
        assert!(serde_json::from_slice::<RawClaims>(payload).is_err());
    }

    #[test]
    fn other_string_claims_are_kept() {
        let id = with(|c| {
            c.insert("team".into(), json!("sre"));
            c.insert("roles".into(), json!(["db", "web"]));
            c.insert("level".into(), json!(3));
            c.insert("mixed".into(), json!(["a", 1]));
            c.insert("nested".into(), json!({"a": "b"}));
            c.insert("empty".into(), json!([]));
        })
        .unwrap();
        let claims: Vec<(&str, Vec<&str>)> = id
            .claims()
            .iter()
            .map(|(k, v)| (k.as_str(), v.iter().map(String::as_str).collect()))
            .collect();
        assert_eq!(
            claims,
            [
                ("empty", vec![]),
                ("roles", vec!["db", "web"]),
                ("team", vec!["sre"]),
            ]
        );
        // The claims read above are not repeated here.
        assert!(judge(pomerium_claims()).unwrap().claims().is_empty());
    }

    #[test]
    fn header_rules() {
        let ok = header(json!({"alg": "ES256", "kid": "k", "typ": "JWT"}));
        assert_eq!(
            ok,
            Ok(Header {
                alg: Algorithm::Es256,
                kid: "k".into()
            })
        );
        assert!(
            header(json!({"alg": "RS256", "kid": "k"})).is_ok(),
            "typ is optional"
        );
        for alg in ["none", "HS256", "PS256", "EdDSA", "ES384", "es256", ""] {
            assert_eq!(
                header(json!({"alg": alg, "kid": "k"})),
                Err(VerifyError::AlgorithmNotAllowed(alg.into()))
            );
        }
        assert_eq!(
            header(json!({"alg": "ES256", "kid": "k", "crit": ["exp"]})),
            Err(VerifyError::CriticalHeader)
        );
        for name in ["jku", "jwk", "x5u", "x5c"] {
            assert_eq!(
                header(json!({"alg": "ES256", "kid": "k", name: "x"})),
                Err(VerifyError::KeyInHeader(name))
            );
        }
        assert_eq!(
            header(json!({"alg": "ES256"})),
            Err(VerifyError::MissingKeyId)
        );
        assert_eq!(
            header(json!({"alg": "ES256", "kid": ""})),
            Err(VerifyError::MissingKeyId)
        );
        assert!(matches!(
            header(json!({"alg": "ES256", "kid": 1})),
            Err(VerifyError::Malformed(_))
        ));
        assert!(matches!(
            header(json!({"alg": "ES256", "kid": "k", "typ": "at+jwt"})),
            Err(VerifyError::Malformed(_))
        ));
        assert!(matches!(
            header(json!({"kid": "k"})),
            Err(VerifyError::Malformed(_))
        ));
        assert!(matches!(
            header(json!({"alg": null, "kid": "k"})),
            Err(VerifyError::Malformed(_))
        ));
        assert!(matches!(header(json!([1])), Err(VerifyError::Malformed(_))));
        let long = "X".repeat(1000);
        let Err(VerifyError::AlgorithmNotAllowed(shown)) = header(json!({"alg": long, "kid": "k"}))
        else {
            panic!("expected AlgorithmNotAllowed");
        };
        assert_eq!(shown.len(), 32, "attacker-chosen alg is truncated");
    }

    #[test]
    fn duplicate_header_members_are_refused() {
        let token = format!(
            "{}.e30.sig",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"ES256","alg":"none","kid":"k"}"#)
        );
        assert_eq!(
            parse_header(&token),
            Err(VerifyError::Malformed("header is not a JSON object"))
        );
    }

    #[test]
    fn structure_rules() {
        for token in ["", "a", "a.b", "a.b.c.d", "e30.e30.e30."] {
            assert_eq!(
                parse_header(token),
                Err(VerifyError::Malformed("not three dot-separated segments")),
                "{token:?}"
            );
        }
        assert_eq!(
            parse_header("e30=.e30.x"),
            Err(VerifyError::Malformed("header is not base64url"))
        );
        assert_eq!(
            parse_header("bm90IGpzb24.e30.x"),
            Err(VerifyError::Malformed("header is not a JSON object"))
        );
    }
}
