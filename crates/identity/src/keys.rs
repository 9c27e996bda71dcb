//! Published keys, decoded once when the JWKS arrives, and the signature check.

use std::fmt;

use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{DecodingKey, Validation};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::VerifyError;

/// The algorithms Pomerium signs with; the key type decides which
/// (EC P-256 → ES256, RSA → RS256). Nothing else is ever accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// ECDSA P-256 with SHA-256 (Pomerium's default).
    Es256,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
}

impl Algorithm {
    /// The JOSE name (`ES256`, `RS256`).
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Es256 => "ES256",
            Algorithm::Rs256 => "RS256",
        }
    }

    /// Exact, case-sensitive match of a JOSE `alg` value (RFC 7515 §4.1.1).
    pub(crate) fn from_jose(alg: &str) -> Option<Self> {
        match alg {
            "ES256" => Some(Algorithm::Es256),
            "RS256" => Some(Algorithm::Rs256),
            _ => None,
        }
    }

    fn jsonwebtoken(self) -> jsonwebtoken::Algorithm {
        match self {
            Algorithm::Es256 => jsonwebtoken::Algorithm::ES256,
            Algorithm::Rs256 => jsonwebtoken::Algorithm::RS256,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A published public key, checked and decoded once, pinned to one algorithm.
pub(crate) struct VerifyingKey {
    alg: Algorithm,
    decoding: DecodingKey,
    /// jsonwebtoken checks only the algorithm and the signature; every claim
    /// rule lives in `claims.rs`, in one place, because jsonwebtoken accepts an
    /// `iss` array, rounds fractional times and ignores `iat`.
    validation: Validation,
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// The JWK members we read. Unknown members are ignored; a known member of
/// the wrong type makes the whole key unusable.
#[derive(Deserialize)]
struct JwkMembers {
    kty: String,
    kid: Option<String>,
    #[serde(rename = "use")]
    key_use: Option<String>,
    key_ops: Option<Vec<String>>,
    alg: Option<String>,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
    n: Option<String>,
    e: Option<String>,
    d: Option<Value>,
}

impl VerifyingKey {
    /// Decodes one JWKS entry into `(kid, key)`, or says why it is unusable
    /// (the caller skips it).
    pub(crate) fn from_jwk(jwk: Value) -> Result<(String, VerifyingKey), &'static str> {
        let jwk: JwkMembers = serde_json::from_value(jwk).map_err(|_| "not a JWK object")?;
        let kid = jwk.kid.ok_or("no kid")?;
        if jwk.d.is_some() {
            return Err("private key material published");
        }
        if jwk.key_use.as_deref().is_some_and(|u| u != "sig") {
            return Err("use is not sig");
        }
        if jwk
            .key_ops
            .as_ref()
            .is_some_and(|ops| !ops.iter().any(|op| op == "verify"))
        {
            return Err("key_ops does not allow verify");
        }
        let (alg, decoding) = match jwk.kty.as_str() {
            "EC" => {
                if jwk.crv.as_deref() != Some("P-256") {
                    return Err("EC key not on P-256");
                }
                let (x, y) = (jwk.x.unwrap_or_default(), jwk.y.unwrap_or_default());
                let mut point = Vec::with_capacity(65);
                point.push(0x04);
                point.extend_from_slice(&decode_coordinate(&x)?);
                point.extend_from_slice(&decode_coordinate(&y)?);
                ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point)
                    .map_err(|_| "EC point not on the curve")?;
                let decoding = DecodingKey::from_ec_components(&x, &y)
                    .map_err(|_| "EC coordinate not base64url")?;
                (Algorithm::Es256, decoding)
            }
            "RSA" => {
                let n = decode_member(jwk.n.as_deref()).ok_or("bad RSA n")?;
                let e = decode_member(jwk.e.as_deref()).ok_or("bad RSA e")?;
                if !(256..=1024).contains(&n.len()) || n[0] == 0 {
                    return Err("RSA modulus not 2048–8192 bits");
                }
                RsaPublicKeyComponents { n: &n, e: &e }
                    .to_parsed_public_key(&RSA_PKCS1_2048_8192_SHA256)
                    .map_err(|_| "RSA key rejected")?;
                (
                    Algorithm::Rs256,
                    DecodingKey::from_rsa_raw_components(&n, &e),
                )
            }
            _ => return Err("key type is not EC or RSA"),
        };
        if jwk.alg.as_deref().is_some_and(|a| a != alg.as_str()) {
            return Err("alg member does not match the key type");
        }
        let mut validation = Validation::new(alg.jsonwebtoken());
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.leeway = 0;
        Ok((
            kid,
            VerifyingKey {
                alg,
                decoding,
                validation,
            },
        ))
    }

    /// The algorithm this key verifies.
    pub(crate) fn alg(&self) -> Algorithm {
        self.alg
    }

    /// Checks the signature (and that the header `alg` is this key's), then
    /// decodes the claims. Claims are not judged here.
    pub(crate) fn verify<T: DeserializeOwned>(&self, token: &str) -> Result<T, VerifyError> {
        jsonwebtoken::decode::<T>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| match e.into_kind() {
                ErrorKind::InvalidSignature
                | ErrorKind::InvalidEcdsaKey
                | ErrorKind::InvalidRsaKey(_)
                | ErrorKind::InvalidKeyFormat => VerifyError::BadSignature,
                ErrorKind::InvalidToken => VerifyError::Malformed("not a valid compact JWS"),
                ErrorKind::Base64(_) => VerifyError::Malformed("a segment is not base64url"),
                ErrorKind::Json(_) => VerifyError::Malformed("payload is not a JSON claims object"),
                ErrorKind::Utf8(_) => VerifyError::Malformed("a segment is not UTF-8"),
                _ => VerifyError::Malformed("refused by the JWS decoder"),
            })
    }
}

fn decode_member(value: Option<&str>) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD
        .decode(value?)
        .ok()
        .filter(|bytes| !bytes.is_empty())
}

/// A P-256 coordinate: exactly 32 bytes (RFC 7518 §6.2.1.2).
fn decode_coordinate(value: &str) -> Result<Vec<u8>, &'static str> {
    decode_member(Some(value))
        .filter(|c| c.len() == 32)
        .ok_or("EC coordinate not 32 bytes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use jit_fakes::pomerium::{Alg, SigningKey};
    use serde_json::json;

    fn es256() -> Value {
        SigningKey::generate(Alg::Es256).unwrap().public_jwk()
    }

    #[test]
    fn pomerium_keys_decode() {
        let (kid, key) = VerifyingKey::from_jwk(es256()).unwrap();
        assert_eq!(kid.len(), 64);
        assert_eq!(key.alg(), Algorithm::Es256);
        let rsa = SigningKey::generate(Alg::Rs256).unwrap().public_jwk();
        assert_eq!(
            VerifyingKey::from_jwk(rsa).unwrap().1.alg(),
            Algorithm::Rs256
        );
    }

    #[test]
    fn unusable_keys_say_why() {
        let with = |edit: &dyn Fn(&mut Value)| {
            let mut jwk = es256();
            edit(&mut jwk);
            VerifyingKey::from_jwk(jwk).unwrap_err()
        };
        assert_eq!(
            with(&|j| j["alg"] = json!("RS256")),
            "alg member does not match the key type"
        );
        assert_eq!(
            with(&|j| j["alg"] = json!("ES384")),
            "alg member does not match the key type"
        );
        assert_eq!(with(&|j| j["crv"] = json!("P-384")), "EC key not on P-256");
        assert_eq!(with(&|j| j["use"] = json!("enc")), "use is not sig");
        assert_eq!(
            with(&|j| j["key_ops"] = json!(["sign"])),
            "key_ops does not allow verify"
        );
        assert_eq!(
            with(&|j| j["d"] = json!("AAAA")),
            "private key material published"
        );
        assert_eq!(with(&|j| j["kid"] = json!(7)), "not a JWK object");
        assert_eq!(
            with(&|j| {
                j.as_object_mut().unwrap().remove("kid");
            }),
            "no kid"
        );
        assert_eq!(
            with(&|j| j["kty"] = json!("oct")),
            "key type is not EC or RSA"
        );
        assert_eq!(
            with(&|j| j["x"] = json!("AAAA")),
            "EC coordinate not 32 bytes"
        );
        // A 32-byte x that is not on the curve with this y.
        assert_eq!(
            with(&|j| j["x"] = json!(URL_SAFE_NO_PAD.encode([1u8; 32]))),
            "EC point not on the curve"
        );
        let mut rsa = SigningKey::generate(Alg::Rs256).unwrap().public_jwk();
        rsa["n"] = json!(URL_SAFE_NO_PAD.encode([0xffu8; 128]));
        assert_eq!(
            VerifyingKey::from_jwk(rsa).unwrap_err(),
            "RSA modulus not 2048–8192 bits"
        );
    }
}
