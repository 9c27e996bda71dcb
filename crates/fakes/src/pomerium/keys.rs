//! Signing keys shaped like Pomerium's: ES256 (P-256) or RS256 (RSA 2048),
//! `kid` = hex SHA-256 JWK thumbprint (RFC 7638), public JWK members in the
//! order go-jose writes them.

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair, RSA_PKCS1_SHA256, RsaKeyPair,
    RsaPublicKeyComponents,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

/// The two algorithms Pomerium signs with; the key type decides which
/// (core `pkg/cryptutil/jose.go` `SignatureAlgorithmForKey`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alg {
    /// ECDSA P-256 with SHA-256: Pomerium's default (key derived from the shared secret).
    Es256,
    /// RSASSA-PKCS1-v1_5 with SHA-256, for an RSA `signing_key`.
    Rs256,
}

impl Alg {
    /// The JOSE name, as written in the `alg` header and JWK member.
    pub fn as_str(self) -> &'static str {
        match self {
            Alg::Es256 => "ES256",
            Alg::Rs256 => "RS256",
        }
    }
}

impl fmt::Display for Alg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// aws-lc-rs refused to generate a key pair (it reports no detail).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("aws-lc-rs could not generate a {0} key pair")]
pub struct KeyGenError(pub Alg);

/// A private signing key with its Pomerium-style `kid` and public JWK.
/// Cheap to clone (shared); `Debug` shows only the public parts.
#[derive(Clone)]
pub struct SigningKey(Arc<KeyInner>);

struct KeyInner {
    kid: String,
    pair: Pair,
    public_jwk: Value,
    public_key_bytes: Vec<u8>,
}

enum Pair {
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

impl SigningKey {
    /// Generates a fresh key pair: P-256 for ES256, RSA 2048 for RS256.
    pub fn generate(alg: Alg) -> Result<Self, KeyGenError> {
        let fail = |_| KeyGenError(alg);
        let (pair, public_jwk, public_key_bytes, kid) = match alg {
            Alg::Es256 => {
                let pair =
                    EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).map_err(fail)?;
                // SEC1 uncompressed point: 0x04 ‖ x (32 bytes) ‖ y (32 bytes).
                let point = pair.public_key().as_ref().to_vec();
                let (x, y) = (b64(&point[1..33]), b64(&point[33..65]));
                let kid = thumbprint(&json!({"crv": "P-256", "kty": "EC", "x": x, "y": y}));
                let jwk = json!({
                    "use": "sig", "kty": "EC", "kid": kid, "crv": "P-256", "alg": "ES256",
                    "x": x, "y": y,
                });
                (Pair::Ec(pair), jwk, point, kid)
            }
            Alg::Rs256 => {
                let pair = RsaKeyPair::generate(KeySize::Rsa2048).map_err(fail)?;
                let parts = RsaPublicKeyComponents::<Vec<u8>>::from(pair.public_key());
                let (n, e) = (b64(&parts.n), b64(&parts.e));
                let kid = thumbprint(&json!({"e": e, "kty": "RSA", "n": n}));
                let jwk = json!({
                    "use": "sig", "kty": "RSA", "kid": kid, "alg": "RS256", "n": n, "e": e,
                });
                let der = pair.public_key().as_ref().to_vec();
                (Pair::Rsa(pair), jwk, der, kid)
            }
        };
        Ok(SigningKey(Arc::new(KeyInner {
            kid,
            pair,
            public_jwk,
            public_key_bytes,
        })))
    }

    /// The algorithm this key signs with.
    pub fn alg(&self) -> Alg {
        match self.0.pair {
            Pair::Ec(_) => Alg::Es256,
            Pair::Rsa(_) => Alg::Rs256,
        }
    }

    /// Hex SHA-256 JWK thumbprint, as Pomerium computes its `kid`.
    pub fn kid(&self) -> &str {
        &self.0.kid
    }

    /// The public JWK exactly as Pomerium publishes it.
    pub fn public_jwk(&self) -> Value {
        self.0.public_jwk.clone()
    }

    /// Raw public key bytes (SEC1 point for EC, PKCS#1 DER for RSA): what an
    /// attacker would use as an HMAC secret in an algorithm-confusion forgery.
    pub fn public_key_bytes(&self) -> &[u8] {
        &self.0.public_key_bytes
    }

    /// Signs `message` in JWS form (ES256: fixed-width r‖s; RS256: PKCS#1 v1.5).
    ///
    /// # Panics
    /// Only if aws-lc-rs itself fails to sign (its RNG or an internal error);
    /// no input can cause it.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match &self.0.pair {
            Pair::Ec(pair) => pair
                .sign(&rng, message)
                .expect("aws-lc-rs ECDSA signing failed")
                .as_ref()
                .to_vec(),
            Pair::Rsa(pair) => {
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &rng, message, &mut signature)
                    .expect("aws-lc-rs RSA signing failed");
                signature
            }
        }
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("alg", &self.alg())
            .field("kid", &self.kid())
            .finish_non_exhaustive()
    }
}

/// Base64url without padding, the JOSE encoding.
pub(crate) fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// RFC 7638: SHA-256 over the required members in lexicographic order with no
/// whitespace (serde_json's compact form of an object built in that order),
/// hex-encoded as Pomerium does (`hex.EncodeToString(thumbprint)`).
fn thumbprint(required_members: &Value) -> String {
    let digest = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        required_members.to_string().as_bytes(),
    );
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7638 §3.1 example key; its thumbprint is given in the RFC (base64url).
    #[test]
    fn thumbprint_matches_rfc7638_example() {
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        let members = json!({"e": "AQAB", "kty": "RSA", "n": n});
        let expected_b64 = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";
        let expected_hex: String = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(expected_b64)
            .unwrap()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(thumbprint(&members), expected_hex);
    }

    #[test]
    fn es256_key_publishes_pomerium_shaped_jwk() {
        let key = SigningKey::generate(Alg::Es256).unwrap();
        let jwk = key.public_jwk();
        let names: Vec<&str> = jwk
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(names, ["use", "kty", "kid", "crv", "alg", "x", "y"]);
        assert_eq!(jwk["kid"], key.kid());
        assert_eq!(key.kid().len(), 64);
        assert!(
            key.kid()
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_eq!(
            key.sign(b"m").len(),
            64,
            "ES256 signatures are fixed-width r||s"
        );
    }

    #[test]
    fn rs256_key_publishes_pomerium_shaped_jwk() {
        let key = SigningKey::generate(Alg::Rs256).unwrap();
        let jwk = key.public_jwk();
        let names: Vec<&str> = jwk
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(names, ["use", "kty", "kid", "alg", "n", "e"]);
        assert_eq!(jwk["e"], "AQAB");
        assert_eq!(key.sign(b"m").len(), 256);
    }

    #[test]
    fn debug_shows_no_key_material() {
        let key = SigningKey::generate(Alg::Es256).unwrap();
        let debug = format!("{key:?}");
        assert!(debug.contains(key.kid()));
        assert!(!debug.contains(key.public_jwk()["x"].as_str().unwrap()));
    }
}
