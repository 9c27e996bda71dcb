//! Mints `X-Pomerium-Jwt-Assertion` tokens the way Pomerium does
//! (`docs/pomerium.md` §1.2–1.4), and forgeries for negative tests.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use aws_lc_rs::hmac;
use rand::RngCore;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::keys::{Alg, KeyGenError, SigningKey, b64};

/// How long Pomerium's assertions live: `exp` = `iat` + 5 minutes.
pub const ASSERTION_LIFETIME_SECS: i64 = 5 * 60;

/// Pomerium's `jwt_issuer_format`: `iss` is the bare hostname by default, or
/// `https://<hostname>/` with `uri`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IssuerFormat {
    /// `iss` = `example.com` (Pomerium's default, `hostOnly`).
    #[default]
    HostOnly,
    /// `iss` = `https://example.com/` (`jwt_issuer_format: uri`).
    Uri,
}

/// A user as Pomerium would describe them in an assertion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestUser {
    /// The IdP user ID, sent as both `sub` and `user`.
    pub id: String,
    /// May be empty: Pomerium then sends `"email": ""`.
    pub email: String,
    /// Display name (`name`, `""` when unknown).
    pub name: String,
    /// Group IDs and names; sent as `[]` when empty, never `null`.
    pub groups: Vec<String>,
    /// The Pomerium session ID (`sid`), stable for the user's session.
    pub session_id: String,
}

impl TestUser {
    /// A user with no name and no groups, in a new session.
    pub fn new(id: impl Into<String>, email: impl Into<String>) -> Self {
        TestUser {
            id: id.into(),
            email: email.into(),
            name: String::new(),
            groups: Vec::new(),
            session_id: random_uuid(),
        }
    }

    /// An ordinary requester.
    pub fn alice() -> Self {
        Self::new("user-alice", "alice@example.com").with_name("Alice Example")
    }

    /// A second ordinary user.
    pub fn bob() -> Self {
        Self::new("user-bob", "bob@example.com").with_name("Bob Example")
    }

    /// A user in an `admins` group.
    pub fn admin() -> Self {
        Self::new("user-carol", "carol@example.com")
            .with_name("Carol Admin")
            .with_groups(["admins"])
    }

    /// A service account: Pomerium sends an empty `email` for it.
    pub fn service_account() -> Self {
        Self::new("sa-robot", "")
    }

    /// Sets the display name.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Replaces the groups.
    pub fn with_groups<I, S>(mut self, groups: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.groups = groups.into_iter().map(Into::into).collect();
        self
    }
}

/// What [`Signer::mint_raw`] signs with.
#[derive(Debug, Clone)]
pub enum SignWith {
    /// The current signing key (the first published key), as Pomerium would.
    Current,
    /// Any key, published or not (e.g. an attacker's).
    Key(SigningKey),
    /// HMAC-SHA256 with these bytes as the secret (algorithm-confusion forgeries).
    Hmac(Vec<u8>),
    /// This exact signature (garbage, truncated, empty for `alg: none`).
    Signature(Vec<u8>),
}

/// The signer state shared by all clones; the first key signs, all are published.
struct State {
    keys: Vec<SigningKey>,
    issuer_format: IssuerFormat,
}

/// A fake Pomerium signer. Cheap to clone; clones share keys and settings, so
/// a [`super::JwksServer`] always publishes the signer's current keys.
#[derive(Clone)]
pub struct Signer(Arc<Mutex<State>>);

/// A rotation step that does not apply to the current key list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RotationError {
    /// No published key has this `kid`.
    #[error("no published key has kid {0:?}")]
    UnknownKid(String),
    /// The key is already published.
    #[error("a key with kid {0:?} is already published")]
    DuplicateKid(String),
    /// Pomerium always has a signing key; the last one cannot go.
    #[error("cannot remove the only signing key")]
    LastKey,
}

impl Signer {
    /// A signer with one freshly generated key.
    pub fn new(alg: Alg) -> Result<Self, KeyGenError> {
        Ok(Self::from_key(SigningKey::generate(alg)?))
    }

    /// A signer whose only (and signing) key is `key`.
    pub fn from_key(key: SigningKey) -> Self {
        Signer(Arc::new(Mutex::new(State {
            keys: vec![key],
            issuer_format: IssuerFormat::default(),
        })))
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The state is a plain list; a panic elsewhere cannot leave it half-written.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The key that signs new assertions.
    pub fn signing_key(&self) -> SigningKey {
        self.state().keys[0].clone()
    }

    /// All published keys, signing key first.
    pub fn keys(&self) -> Vec<SigningKey> {
        self.state().keys.clone()
    }

    /// The JWKS body Pomerium serves: every published key, public parts only.
    pub fn jwks(&self) -> Value {
        let keys: Vec<Value> = self
            .state()
            .keys
            .iter()
            .map(SigningKey::public_jwk)
            .collect();
        json!({ "keys": keys })
    }

    /// Rotation step 1: publish `key` after the others, without signing with it.
    pub fn add_key(&self, key: SigningKey) -> Result<(), RotationError> {
        let mut state = self.state();
        if state.keys.iter().any(|k| k.kid() == key.kid()) {
            return Err(RotationError::DuplicateKid(key.kid().to_owned()));
        }
        state.keys.push(key);
        Ok(())
    }

    /// Rotation step 2: move the key to the front, making it the signing key.
    pub fn promote(&self, kid: &str) -> Result<(), RotationError> {
        let mut state = self.state();
        let index = position(&state.keys, kid)?;
        let key = state.keys.remove(index);
        state.keys.insert(0, key);
        Ok(())
    }

    /// Rotation step 3: stop publishing the key. Returns it.
    pub fn remove(&self, kid: &str) -> Result<SigningKey, RotationError> {
        let mut state = self.state();
        let index = position(&state.keys, kid)?;
        if state.keys.len() == 1 {
            return Err(RotationError::LastKey);
        }
        Ok(state.keys.remove(index))
    }

    /// Chooses the `iss` form for subsequent [`Signer::claims`] and [`Signer::mint`].
    pub fn set_issuer_format(&self, format: IssuerFormat) {
        self.state().issuer_format = format;
    }

    /// The JWS header Pomerium writes for the current signing key.
    pub fn header(&self) -> Value {
        header_for(&self.signing_key())
    }

    /// The claim set Pomerium would sign for `user` on a request to `host`
    /// (hostname, no scheme or port), issued now. Keys in Go's sorted order.
    pub fn claims(&self, host: &str, user: &TestUser) -> Value {
        let iss = match self.state().issuer_format {
            IssuerFormat::HostOnly => host.to_owned(),
            IssuerFormat::Uri => format!("https://{host}/"),
        };
        let iat = OffsetDateTime::now_utc().unix_timestamp();
        json!({
            "aud": host,
            "email": user.email,
            "exp": iat + ASSERTION_LIFETIME_SECS,
            "groups": user.groups,
            "iat": iat,
            "iss": iss,
            "jti": random_uuid(),
            "name": user.name,
            "sid": user.session_id,
            "sub": user.id,
            "user": user.id,
        })
    }

    /// An assertion exactly as Pomerium mints it, signed with the current key.
    pub fn mint(&self, host: &str, user: &TestUser) -> String {
        let key = self.signing_key();
        self.mint_raw(
            &header_for(&key),
            &self.claims(host, user),
            SignWith::Key(key),
        )
    }

    /// Signs any header and claims into a compact JWS, for forged and
    /// malformed tokens. Nothing is checked; the header is used as given.
    pub fn mint_raw(&self, header: &Value, claims: &Value, with: SignWith) -> String {
        let signing_input = format!("{}.{}", encode_part(header), encode_part(claims));
        let signature = match with {
            SignWith::Current => self.signing_key().sign(signing_input.as_bytes()),
            SignWith::Key(key) => key.sign(signing_input.as_bytes()),
            SignWith::Hmac(secret) => {
                let key = hmac::Key::new(hmac::HMAC_SHA256, &secret);
                hmac::sign(&key, signing_input.as_bytes()).as_ref().to_vec()
            }
            SignWith::Signature(bytes) => bytes,
        };
        format!("{signing_input}.{}", b64(&signature))
    }
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state();
        f.debug_struct("Signer")
            .field("keys", &state.keys)
            .field("issuer_format", &state.issuer_format)
            .finish()
    }
}

fn position(keys: &[SigningKey], kid: &str) -> Result<usize, RotationError> {
    keys.iter()
        .position(|k| k.kid() == kid)
        .ok_or_else(|| RotationError::UnknownKid(kid.to_owned()))
}

/// Pomerium's header (go-jose, JSON keys sorted): `alg`, `kid`, `typ: JWT`.
fn header_for(key: &SigningKey) -> Value {
    json!({ "alg": key.alg().as_str(), "kid": key.kid(), "typ": "JWT" })
}

/// Base64url of the compact JSON of `value`: one JWS segment.
pub fn encode_part(value: &Value) -> String {
    b64(value.to_string().as_bytes())
}

/// A random version-4 UUID in its textual form, like Pomerium's `jti`.
fn random_uuid() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED, RSA_PKCS1_2048_8192_SHA256};
    use aws_lc_rs::signature::{RsaPublicKeyComponents, UnparsedPublicKey};
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn decode_json(segment: &str) -> Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segment).unwrap()).unwrap()
    }

    fn verify_with_jwk(token: &str, jwk: &Value) -> bool {
        let (input, sig) = token.rsplit_once('.').unwrap();
        let sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
        let field = |name: &str| URL_SAFE_NO_PAD.decode(jwk[name].as_str().unwrap()).unwrap();
        match jwk["kty"].as_str().unwrap() {
            "EC" => {
                let mut point = vec![4];
                point.extend(field("x"));
                point.extend(field("y"));
                UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
                    .verify(input.as_bytes(), &sig)
                    .is_ok()
            }
            _ => RsaPublicKeyComponents {
                n: field("n"),
                e: field("e"),
            }
            .verify(&RSA_PKCS1_2048_8192_SHA256, input.as_bytes(), &sig)
            .is_ok(),
        }
    }

    #[test]
    fn mint_matches_pomerium_header_and_claims() {
        let signer = Signer::new(Alg::Es256).unwrap();
        let user = TestUser::admin();
        let token = signer.mint("jit.example.com", &user);
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);

        let header = decode_json(parts[0]);
        assert_eq!(
            header,
            json!({"alg": "ES256", "kid": signer.signing_key().kid(), "typ": "JWT"})
        );

        let claims = decode_json(parts[1]);
        let names: Vec<&str> = claims
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            names,
            [
                "aud", "email", "exp", "groups", "iat", "iss", "jti", "name", "sid", "sub", "user"
            ]
        );
        assert_eq!(claims["aud"], "jit.example.com");
        assert_eq!(claims["iss"], "jit.example.com");
        assert_eq!(claims["sub"], user.id);
        assert_eq!(claims["user"], user.id);
        assert_eq!(claims["email"], user.email);
        assert_eq!(claims["groups"], json!(["admins"]));
        assert_eq!(claims["sid"], user.session_id);
        let (iat, exp) = (
            claims["iat"].as_i64().unwrap(),
            claims["exp"].as_i64().unwrap(),
        );
        assert_eq!(exp - iat, 300);
        assert!((OffsetDateTime::now_utc().unix_timestamp() - iat).abs() <= 1);

        assert!(verify_with_jwk(&token, &signer.jwks()["keys"][0]));
    }

    #[test]
    fn groups_are_an_empty_list_never_null_and_jti_is_unique() {
        let signer = Signer::new(Alg::Es256).unwrap();
        let user = TestUser::service_account();
        let a = signer.claims("h", &user);
        let b = signer.claims("h", &user);
        assert_eq!(a["groups"], json!([]));
        assert_eq!(a["email"], "");
        assert_ne!(a["jti"], b["jti"]);
        let jti = a["jti"].as_str().unwrap();
        assert_eq!(jti.len(), 36);
        assert_eq!(&jti[14..15], "4");
    }

    #[test]
    fn uri_issuer_format() {
        let signer = Signer::new(Alg::Es256).unwrap();
        signer.set_issuer_format(IssuerFormat::Uri);
        assert_eq!(
            signer.claims("h.example", &TestUser::bob())["iss"],
            "https://h.example/"
        );
    }

    #[test]
    fn rs256_mint_verifies_with_published_key() {
        let signer = Signer::new(Alg::Rs256).unwrap();
        let token = signer.mint("h", &TestUser::alice());
        assert_eq!(
            decode_json(token.split('.').next().unwrap())["alg"],
            "RS256"
        );
        assert!(verify_with_jwk(&token, &signer.jwks()["keys"][0]));
    }

    #[test]
    fn rotation_in_three_steps() {
        let signer = Signer::new(Alg::Es256).unwrap();
        let old = signer.signing_key();
        let new = SigningKey::generate(Alg::Es256).unwrap();

        signer.add_key(new.clone()).unwrap();
        assert_eq!(
            signer.signing_key().kid(),
            old.kid(),
            "added key is published, not signing"
        );
        assert_eq!(signer.jwks()["keys"].as_array().unwrap().len(), 2);
        assert_eq!(
            signer.add_key(new.clone()),
            Err(RotationError::DuplicateKid(new.kid().into()))
        );

        signer.promote(new.kid()).unwrap();
        assert_eq!(signer.signing_key().kid(), new.kid());
        assert_eq!(signer.jwks()["keys"][1]["kid"], old.kid());

        signer.remove(old.kid()).unwrap();
        assert_eq!(signer.jwks()["keys"].as_array().unwrap().len(), 1);
        assert_eq!(
            signer.remove(new.kid()).unwrap_err(),
            RotationError::LastKey
        );
        assert_eq!(
            signer.promote("nope"),
            Err(RotationError::UnknownKid("nope".into()))
        );
    }

    #[test]
    fn mint_raw_signs_what_it_is_given() {
        let signer = Signer::new(Alg::Es256).unwrap();
        let header = json!({"alg": "HS256", "typ": "JWT", "jku": "http://evil/"});
        let claims = json!({"sub": "x"});
        let secret = signer.signing_key().public_key_bytes().to_vec();
        let token = signer.mint_raw(&header, &claims, SignWith::Hmac(secret.clone()));
        let (input, sig) = token.rsplit_once('.').unwrap();
        let key = hmac::Key::new(hmac::HMAC_SHA256, &secret);
        hmac::verify(
            &key,
            input.as_bytes(),
            &URL_SAFE_NO_PAD.decode(sig).unwrap(),
        )
        .unwrap();
        assert_eq!(decode_json(input.split('.').next().unwrap()), header);

        let unsigned = signer.mint_raw(
            &json!({"alg": "none"}),
            &claims,
            SignWith::Signature(vec![]),
        );
        assert!(unsigned.ends_with('.'));

        let attacker = SigningKey::generate(Alg::Es256).unwrap();
        let forged = signer.mint_raw(&signer.header(), &claims, SignWith::Key(attacker.clone()));
        assert!(!verify_with_jwk(&forged, &signer.jwks()["keys"][0]));
        assert!(verify_with_jwk(&forged, &attacker.public_jwk()));
    }
}
