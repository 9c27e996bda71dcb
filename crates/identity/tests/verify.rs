//! End-to-end verification against the fake Pomerium signer and JWKS server.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jit_fakes::pomerium::{
    Alg, IssuerFormat, JwksServer, SignWith, Signer, SigningKey, TestUser, encode_part,
};
use jit_identity::{Algorithm, Identity, JwksError, Verifier, VerifierConfig, VerifyError};
use reqwest::StatusCode;
use serde_json::{Value, json};

struct Fixture {
    signer: Signer,
    server: JwksServer,
    verifier: Verifier,
}

impl Fixture {
    async fn new(alg: Alg) -> Self {
        Self::with(alg, |config| config).await
    }

    async fn with(alg: Alg, configure: impl FnOnce(VerifierConfig) -> VerifierConfig) -> Self {
        let signer = Signer::new(alg).unwrap();
        let server = JwksServer::start(signer.clone()).await.unwrap();
        let config = configure(VerifierConfig::new(&server.url()).unwrap());
        let verifier = Verifier::new(config).unwrap();
        Fixture {
            signer,
            server,
            verifier,
        }
    }

    fn host(&self) -> String {
        self.server.host()
    }

    fn mint(&self, user: &TestUser) -> String {
        self.signer.mint(&self.host(), user)
    }

    /// Pomerium's claims for alice, edited.
    fn claims_with(&self, edit: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Value {
        let mut claims = self.signer.claims(&self.host(), &TestUser::alice());
        edit(claims.as_object_mut().unwrap());
        claims
    }

    /// Pomerium's header for the signing key, edited.
    fn header_with(&self, edit: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Value {
        let mut header = self.signer.header();
        edit(header.as_object_mut().unwrap());
        header
    }

    /// Asserts refusal with `expected`, and that no part of the token leaks
    /// into the error's `Display` or `Debug`.
    async fn refused(&self, token: &str, expected: VerifyError) {
        let error = self
            .verifier
            .verify(token)
            .await
            .expect_err("token must be refused");
        assert_eq!(error, expected);
        let shown = format!("{error} {error:?} {}", error.reason());
        for segment in token.split('.').filter(|s| s.len() >= 8) {
            assert!(
                !shown.contains(segment),
                "error text leaks the token: {shown}"
            );
        }
    }
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Re-joins a token with one segment replaced.
fn with_segment(token: &str, index: usize, segment: &str) -> String {
    let mut parts: Vec<&str> = token.split('.').collect();
    parts[index] = segment;
    parts.join(".")
}

/// Polls `condition` for up to 5 s (background work finishes asynchronously).
async fn wait_until(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn valid_es256_assertion_gives_the_identity() {
    let f = Fixture::new(Alg::Es256).await;
    let user = TestUser::admin();
    let token = f.mint(&user);
    let identity = f.verifier.verify(&token).await.unwrap();
    assert_eq!(identity.user(), user.id);
    assert_eq!(identity.email(), Ok(user.email.as_str()));
    assert_eq!(identity.name(), user.name);
    assert_eq!(identity.groups()[..], user.groups[..]);
    assert_eq!(identity.session_id(), user.session_id);
    assert_eq!(identity.token_id().len(), 36);
    assert_eq!(
        identity.expires_at() - identity.issued_at(),
        time::Duration::minutes(5)
    );
    assert_eq!(f.server.requests(), 1);

    let again = f.verifier.verify(&token).await.unwrap();
    assert!(
        Arc::ptr_eq(&identity, &again),
        "second verification is a cache hit"
    );
    assert_eq!(f.server.requests(), 1);
}

#[tokio::test]
async fn a_persons_assertions_share_who_they_are() {
    let f = Fixture::new(Alg::Es256).await;
    let admin = TestUser::admin();
    let first = f.verifier.verify(&f.mint(&admin)).await.unwrap();
    // The same person in another session, as the load test's admin is.
    let second = f
        .verifier
        .verify(&f.mint(&TestUser::admin()))
        .await
        .unwrap();
    assert_ne!(first.session_id(), second.session_id());
    assert!(
        Arc::ptr_eq(first.groups(), second.groups()),
        "the cache holds one copy of a person's claims, not one per assertion"
    );
    let profile =
        |i: &Identity| Arc::clone(i.profile().expect("an email").as_ref().expect("valid"));
    assert!(
        Arc::ptr_eq(&profile(&first), &profile(&second)),
        "and one copy of their profile"
    );
    let renamed = TestUser {
        name: "Carol Renamed".into(),
        ..admin
    };
    let third = f.verifier.verify(&f.mint(&renamed)).await.unwrap();
    assert!(!Arc::ptr_eq(first.groups(), third.groups()));
    assert_eq!(third.name(), "Carol Renamed");
}

#[tokio::test]
async fn only_judged_tokens_are_known_without_waiting() {
    let f = Fixture::with(Alg::Es256, |c| c.with_max_token_bytes(4096)).await;
    let token = f.mint(&TestUser::alice());
    assert!(
        f.verifier.verify_known(&token, Arc::clone).is_none(),
        "a token never seen must be checked"
    );
    assert_eq!(
        f.server.requests(),
        0,
        "asking what is known fetches nothing"
    );
    let identity = f.verifier.verify(&token).await.unwrap();
    let known = f
        .verifier
        .verify_known(&token, Arc::clone)
        .expect("known once judged");
    assert!(Arc::ptr_eq(&identity, &known.unwrap()));
    let other = f.mint(&TestUser::bob());
    assert!(f.verifier.verify_known(&other, Arc::clone).is_none());
    let huge = "x".repeat(5000);
    assert_eq!(
        f.verifier.verify_known(&huge, Arc::clone),
        Some(Err(VerifyError::TooLong {
            len: 5000,
            max: 4096
        })),
        "too long to judge is known refused"
    );
}

#[tokio::test]
async fn valid_rs256_assertion_is_accepted() {
    let f = Fixture::new(Alg::Rs256).await;
    let identity = f.verifier.verify(&f.mint(&TestUser::bob())).await.unwrap();
    assert_eq!(identity.user(), "user-bob");
}

#[tokio::test]
async fn uri_form_issuer_is_accepted() {
    let f = Fixture::new(Alg::Es256).await;
    f.signer.set_issuer_format(IssuerFormat::Uri);
    let token = f.mint(&TestUser::alice());
    assert!(f.verifier.verify(&token).await.is_ok());
}

#[tokio::test]
async fn expired_not_yet_valid_and_future_iat_are_refused() {
    let f = Fixture::new(Alg::Es256).await;
    let t = now();
    let expired = f.claims_with(|c| {
        c.insert("iat".into(), json!(t - 400));
        c.insert("exp".into(), json!(t - 100));
    });
    let sign = |claims: &Value| {
        f.signer
            .mint_raw(&f.signer.header(), claims, SignWith::Current)
    };
    f.refused(&sign(&expired), VerifyError::Expired).await;
    let nbf = f.claims_with(|c| {
        c.insert("nbf".into(), json!(t + 120));
    });
    f.refused(&sign(&nbf), VerifyError::NotYetValid).await;
    let future = f.claims_with(|c| {
        c.insert("iat".into(), json!(t + 120));
        c.insert("exp".into(), json!(t + 420));
    });
    f.refused(&sign(&future), VerifyError::IssuedInFuture).await;
}

#[tokio::test]
async fn a_cache_hit_still_respects_exp() {
    let f = Fixture::with(Alg::Es256, |c| c.with_leeway(Duration::ZERO)).await;
    let t = now();
    let claims = f.claims_with(|c| {
        c.insert("exp".into(), json!(t + 1));
    });
    let token = f
        .signer
        .mint_raw(&f.signer.header(), &claims, SignWith::Current);
    f.verifier.verify(&token).await.unwrap();
    while now() <= t + 1 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    f.refused(&token, VerifyError::Expired).await;
}

#[tokio::test]
async fn kid_problems() {
    let f = Fixture::new(Alg::Es256).await;
    let claims = f.claims_with(|_| {});
    let unknown = f.header_with(|h| {
        h.insert("kid".into(), json!("0".repeat(64)));
    });
    f.refused(
        &f.signer.mint_raw(&unknown, &claims, SignWith::Current),
        VerifyError::UnknownKeyId,
    )
    .await;
    let missing = f.header_with(|h| {
        h.remove("kid");
    });
    f.refused(
        &f.signer.mint_raw(&missing, &claims, SignWith::Current),
        VerifyError::MissingKeyId,
    )
    .await;
}

#[tokio::test]
async fn signed_by_another_key_is_refused() {
    let f = Fixture::new(Alg::Es256).await;
    let attacker = SigningKey::generate(Alg::Es256).unwrap();
    let token = f.signer.mint_raw(
        &f.signer.header(),
        &f.claims_with(|_| {}),
        SignWith::Key(attacker),
    );
    f.refused(&token, VerifyError::BadSignature).await;
}

#[tokio::test]
async fn alg_none_and_hmac_confusion_are_refused() {
    let f = Fixture::new(Alg::Es256).await;
    let claims = f.claims_with(|_| {});
    let none = f.header_with(|h| {
        h.insert("alg".into(), json!("none"));
    });
    f.refused(
        &f.signer
            .mint_raw(&none, &claims, SignWith::Signature(vec![])),
        VerifyError::AlgorithmNotAllowed("none".into()),
    )
    .await;

    let hs256 = f.header_with(|h| {
        h.insert("alg".into(), json!("HS256"));
    });
    let key = f.signer.signing_key();
    for secret in [
        key.public_key_bytes().to_vec(),
        f.signer.jwks().to_string().into_bytes(),
    ] {
        f.refused(
            &f.signer.mint_raw(&hs256, &claims, SignWith::Hmac(secret)),
            VerifyError::AlgorithmNotAllowed("HS256".into()),
        )
        .await;
    }
    for alg in ["PS256", "EdDSA", "ES384", "RS512"] {
        let header = f.header_with(|h| {
            h.insert("alg".into(), json!(alg));
        });
        f.refused(
            &f.signer.mint_raw(&header, &claims, SignWith::Current),
            VerifyError::AlgorithmNotAllowed(alg.into()),
        )
        .await;
    }
}

#[tokio::test]
async fn rs256_header_on_an_ec_key_is_refused() {
    let f = Fixture::new(Alg::Es256).await;
    let header = f.header_with(|h| {
        h.insert("alg".into(), json!("RS256"));
    });
    let rsa = SigningKey::generate(Alg::Rs256).unwrap();
    let token = f
        .signer
        .mint_raw(&header, &f.claims_with(|_| {}), SignWith::Key(rsa));
    f.refused(
        &token,
        VerifyError::AlgorithmMismatch {
            header: Algorithm::Rs256,
            key: Algorithm::Es256,
        },
    )
    .await;
}

#[tokio::test]
async fn tampered_payload_is_refused() {
    let f = Fixture::new(Alg::Es256).await;
    let token = f.mint(&TestUser::alice());
    let forged = f.claims_with(|c| {
        c.insert("email".into(), json!("admin@example.com"));
        c.insert("groups".into(), json!(["admins"]));
    });
    f.refused(
        &with_segment(&token, 1, &encode_part(&forged)),
        VerifyError::BadSignature,
    )
    .await;
}

#[tokio::test]
async fn key_bearing_and_critical_headers_are_refused() {
    let f = Fixture::new(Alg::Es256).await;
    let claims = f.claims_with(|_| {});
    let attacker = SigningKey::generate(Alg::Es256).unwrap();
    // The attacker's own kid and key, embedded; and the real kid with the attacker's key.
    for kid in [
        attacker.kid().to_owned(),
        f.signer.signing_key().kid().to_owned(),
    ] {
        let header =
            json!({"alg": "ES256", "kid": kid, "typ": "JWT", "jwk": attacker.public_jwk()});
        let token = f
            .signer
            .mint_raw(&header, &claims, SignWith::Key(attacker.clone()));
        f.refused(&token, VerifyError::KeyInHeader("jwk")).await;
    }
    for (name, value) in [
        (
            "jku",
            json!(format!("http://{}/evil-jwks.json", f.server.addr())),
        ),
        ("x5u", json!("http://127.0.0.1:1/cert.pem")),
        ("x5c", json!(["MIIB"])),
    ] {
        let header = f.header_with(|h| {
            h.insert(name.into(), value);
        });
        let token = f
            .signer
            .mint_raw(&header, &claims, SignWith::Key(attacker.clone()));
        let expected = VerifyError::KeyInHeader(match name {
            "jku" => "jku",
            "x5u" => "x5u",
            _ => "x5c",
        });
        f.refused(&token, expected).await;
    }
    for crit in [json!(["exp"]), json!(["b64"]), json!([])] {
        let header = f.header_with(|h| {
            h.insert("crit".into(), crit);
            h.insert("b64".into(), json!(true));
        });
        let token = f.signer.mint_raw(&header, &claims, SignWith::Current);
        f.refused(&token, VerifyError::CriticalHeader).await;
    }
}

#[tokio::test]
async fn bad_signatures_are_refused() {
    let f = Fixture::new(Alg::Es256).await;
    let token = f.mint(&TestUser::alice());
    let signature = token.rsplit('.').next().unwrap();

    let bytes = URL_SAFE_NO_PAD.decode(signature).unwrap();
    let short = URL_SAFE_NO_PAD.encode(&bytes[..bytes.len() - 1]);
    f.refused(&with_segment(&token, 2, &short), VerifyError::BadSignature)
        .await;
    // One base64 character fewer is not valid base64url at all.
    f.refused(
        &with_segment(&token, 2, &signature[..signature.len() - 1]),
        VerifyError::Malformed("a segment is not base64url"),
    )
    .await;
    f.refused(&with_segment(&token, 2, ""), VerifyError::BadSignature)
        .await;
    let garbage = URL_SAFE_NO_PAD.encode([0x5au8; 64]);
    f.refused(
        &with_segment(&token, 2, &garbage),
        VerifyError::BadSignature,
    )
    .await;
    let zero = URL_SAFE_NO_PAD.encode([0u8; 64]);
    f.refused(&with_segment(&token, 2, &zero), VerifyError::BadSignature)
        .await;
    // DER instead of the fixed-width r||s encoding JWS requires.
    let der = URL_SAFE_NO_PAD.encode([[0x30, 0x44, 0x02, 0x20].as_slice(), &[1u8; 68]].concat());
    f.refused(&with_segment(&token, 2, &der), VerifyError::BadSignature)
        .await;
    f.refused(
        &with_segment(&token, 2, "not*base64"),
        VerifyError::Malformed("a segment is not base64url"),
    )
    .await;
}

#[tokio::test]
async fn audience_and_issuer_must_be_ours() {
    let f = Fixture::new(Alg::Es256).await;
    let sign = |claims: &Value| {
        f.signer
            .mint_raw(&f.signer.header(), claims, SignWith::Current)
    };
    let aud = f.claims_with(|c| {
        c.insert("aud".into(), json!("other.example.com"));
    });
    f.refused(&sign(&aud), VerifyError::WrongAudience).await;
    let iss = f.claims_with(|c| {
        c.insert("iss".into(), json!("authenticate.example.com"));
    });
    f.refused(&sign(&iss), VerifyError::WrongIssuer).await;
    // A token Pomerium minted for another route host fails on both; iss is checked first.
    f.refused(
        &f.signer.mint("other.example.com", &TestUser::alice()),
        VerifyError::WrongIssuer,
    )
    .await;
    let array = f.claims_with(|c| {
        c.insert("aud".into(), json!(["other", "127.0.0.1"]));
    });
    assert!(f.verifier.verify(&sign(&array)).await.is_ok());
}

#[tokio::test]
async fn configured_audience_and_issuer_override_the_jwks_host() {
    let f = Fixture::with(Alg::Es256, |c| {
        c.with_audience("jit.example.com")
            .with_issuer("https://jit.example.com/")
    })
    .await;
    assert!(
        f.verifier
            .verify(&f.signer.mint("jit.example.com", &TestUser::alice()))
            .await
            .is_ok()
    );
    f.refused(&f.mint(&TestUser::alice()), VerifyError::WrongIssuer)
        .await;
}

#[tokio::test]
async fn exp_must_be_present_and_an_integer() {
    let f = Fixture::new(Alg::Es256).await;
    let sign = |claims: &Value| {
        f.signer
            .mint_raw(&f.signer.header(), claims, SignWith::Current)
    };
    let missing = f.claims_with(|c| {
        c.remove("exp");
    });
    f.refused(&sign(&missing), VerifyError::MissingClaim("exp"))
        .await;
    let t = now();
    let string = f.claims_with(|c| {
        c.insert("exp".into(), json!((t + 300).to_string()));
    });
    f.refused(&sign(&string), VerifyError::InvalidClaim("exp"))
        .await;
}

#[tokio::test]
async fn email_is_required_only_by_callers_that_need_it() {
    let f = Fixture::new(Alg::Es256).await;
    let identity = f
        .verifier
        .verify(&f.mint(&TestUser::service_account()))
        .await
        .unwrap();
    assert_eq!(identity.user(), "sa-robot");
    assert_eq!(identity.email(), Err(VerifyError::MissingEmail));
    assert_eq!(VerifyError::MissingEmail.reason(), "email missing");
}

#[tokio::test]
async fn oversized_token_is_refused_before_anything_else() {
    let f = Fixture::with(Alg::Es256, |c| c.with_max_token_bytes(4096)).await;
    let huge = f.claims_with(|c| {
        c.insert("pad".into(), json!("x".repeat(8192)));
    });
    let token = f
        .signer
        .mint_raw(&f.signer.header(), &huge, SignWith::Current);
    f.refused(
        &token,
        VerifyError::TooLong {
            len: token.len(),
            max: 4096,
        },
    )
    .await;
    assert_eq!(
        f.server.requests(),
        0,
        "no key fetched for an oversized token"
    );
}

#[tokio::test]
async fn key_rotation_in_three_steps() {
    let f = Fixture::with(Alg::Es256, |c| {
        c.with_min_fetch_interval(Duration::from_millis(100))
    })
    .await;
    let old_token = f.mint(&TestUser::alice());
    f.verifier.verify(&old_token).await.unwrap();
    let old_kid = f.signer.signing_key().kid().to_owned();
    // Pre-minted with the old key, never verified (so never cached).
    let old_unseen = f.mint(&TestUser::bob());

    // 1. Publish the new key; the old one still signs.
    let new = SigningKey::generate(Alg::Es256).unwrap();
    f.signer.add_key(new.clone()).unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    f.verifier
        .verify(&f.mint(&TestUser::alice()))
        .await
        .unwrap();

    // 2. Promote it: tokens now carry the new kid, fetched on first sight.
    f.signer.promote(new.kid()).unwrap();
    let new_token = f.mint(&TestUser::alice());
    let identity = f.verifier.verify(&new_token).await.unwrap();
    assert_eq!(identity.user(), "user-alice");
    f.verifier.verify(&old_token).await.unwrap();

    // 3. Withdraw the old key: once the verifier has the new set, the old key is gone,
    // including for tokens it had already cached.
    f.signer.remove(&old_kid).unwrap();
    assert_eq!(f.verifier.refresh_keys().await.unwrap(), 1);
    f.verifier.verify(&new_token).await.unwrap();
    f.refused(&old_unseen, VerifyError::UnknownKeyId).await;
    f.refused(&old_token, VerifyError::UnknownKeyId).await;
}

#[tokio::test]
async fn jwks_down_at_start_is_a_clear_error() {
    let f = Fixture::new(Alg::Es256).await;
    f.server.set_status(Some(StatusCode::SERVICE_UNAVAILABLE));
    let token = f.mint(&TestUser::alice());
    f.refused(&token, VerifyError::KeysUnavailable).await;
    assert!(VerifyError::KeysUnavailable.is_unavailable());
    assert!(matches!(
        f.verifier.refresh_keys().await,
        Err(JwksError::Status(StatusCode::SERVICE_UNAVAILABLE))
    ));

    f.server.set_status(None);
    assert_eq!(f.verifier.refresh_keys().await.unwrap(), 1);
    assert!(f.verifier.verify(&token).await.is_ok());
}

#[tokio::test]
async fn unreachable_jwks_is_a_clear_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/.well-known/pomerium/jwks.json",
        listener.local_addr().unwrap()
    );
    drop(listener);
    let verifier = Verifier::new(VerifierConfig::new(&url).unwrap()).unwrap();
    assert!(matches!(
        verifier.refresh_keys().await,
        Err(JwksError::Request(_))
    ));
    let signer = Signer::new(Alg::Es256).unwrap();
    let error = verifier
        .verify(&signer.mint("127.0.0.1", &TestUser::alice()))
        .await
        .unwrap_err();
    assert_eq!(error, VerifyError::KeysUnavailable);
}

#[tokio::test]
async fn jwks_down_later_keeps_the_last_good_keys() {
    let f = Fixture::with(Alg::Es256, |c| {
        c.with_min_fetch_interval(Duration::from_millis(50))
    })
    .await;
    f.verifier
        .verify(&f.mint(&TestUser::alice()))
        .await
        .unwrap();

    f.server.set_status(Some(StatusCode::INTERNAL_SERVER_ERROR));
    assert!(matches!(
        f.verifier.refresh_keys().await,
        Err(JwksError::Status(_))
    ));
    f.verifier.verify(&f.mint(&TestUser::bob())).await.unwrap();

    f.server.set_status(None);
    f.server.set_body(Some("<html>oops</html>".into()));
    assert!(matches!(
        f.verifier.refresh_keys().await,
        Err(JwksError::NotAKeySet)
    ));
    f.server.set_body(Some(
        json!({"keys": [{"kty": "EC", "kid": "x"}]}).to_string(),
    ));
    assert!(matches!(
        f.verifier.refresh_keys().await,
        Err(JwksError::NoUsableKeys { skipped: 1 })
    ));
    f.verifier
        .verify(&f.mint(&TestUser::admin()))
        .await
        .unwrap();

    // An unknown kid now costs a (failing) fetch and is reported as unknown, not unavailable.
    let header = f.header_with(|h| {
        h.insert("kid".into(), json!("feed"));
    });
    let token = f
        .signer
        .mint_raw(&header, &f.claims_with(|_| {}), SignWith::Current);
    f.refused(&token, VerifyError::UnknownKeyId).await;
}

#[tokio::test]
async fn fetch_limits_timeout_size_and_redirects() {
    let f = Fixture::with(Alg::Es256, |c| {
        c.with_fetch_timeout(Duration::from_millis(200))
            .with_max_jwks_bytes(2048)
    })
    .await;
    f.server.set_delay(Duration::from_millis(600));
    assert!(matches!(
        f.verifier.refresh_keys().await,
        Err(JwksError::Timeout)
    ));
    f.server.set_delay(Duration::ZERO);

    let mut keys = f.signer.jwks();
    keys["padding"] = json!("x".repeat(4096));
    f.server.set_body(Some(keys.to_string()));
    assert!(matches!(
        f.verifier.refresh_keys().await,
        Err(JwksError::TooLarge { max: 2048 })
    ));

    f.server.set_body(None);
    f.server.set_status(Some(StatusCode::FOUND));
    assert!(matches!(
        f.verifier.refresh_keys().await,
        Err(JwksError::Status(StatusCode::FOUND))
    ));
}

#[tokio::test]
async fn unusable_keys_in_the_set_are_skipped() {
    let f = Fixture::new(Alg::Es256).await;
    let mut keys = vec![json!({"kty": "RSA", "kid": "short", "n": "AQAB", "e": "AQAB"})];
    keys.push(json!({"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"}));
    keys.push(f.signer.jwks()["keys"][0].clone());
    f.server.set_body(Some(json!({ "keys": keys }).to_string()));
    assert_eq!(f.verifier.refresh_keys().await.unwrap(), 1);
    f.verifier
        .verify(&f.mint(&TestUser::alice()))
        .await
        .unwrap();
}

/// Tokens with random, unknown kids, all verified at once.
async fn storm(f: &Fixture, count: usize) {
    let claims = f.claims_with(|_| {});
    let tasks: Vec<_> = (0..count)
        .map(|i| {
            let header =
                json!({"alg": "ES256", "kid": format!("forged-{i}-{}", now()), "typ": "JWT"});
            let token = f.signer.mint_raw(&header, &claims, SignWith::Current);
            let verifier = f.verifier.clone();
            tokio::spawn(async move { verifier.verify(&token).await })
        })
        .collect();
    for task in tasks {
        let error = task.await.unwrap().unwrap_err();
        assert!(
            matches!(
                error,
                VerifyError::UnknownKeyId | VerifyError::KeysUnavailable
            ),
            "{error:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_published_right_after_a_fetch_is_accepted_at_once() {
    let f = Fixture::new(Alg::Es256).await;
    f.verifier
        .verify(&f.mint(&TestUser::alice()))
        .await
        .unwrap();
    assert_eq!(f.server.requests(), 1);

    // Pomerium rotates just after our fetch: a new key, published and signing.
    let new = SigningKey::generate(Alg::Es256).unwrap();
    f.signer.add_key(new.clone()).unwrap();
    f.signer.promote(new.kid()).unwrap();
    let started = Instant::now();
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let token = f.mint(&TestUser::new(
                format!("user-{i}"),
                format!("u{i}@example.com"),
            ));
            let verifier = f.verifier.clone();
            tokio::spawn(async move { verifier.verify(&token).await })
        })
        .collect();
    for task in tasks {
        task.await
            .unwrap()
            .expect("the new key is fetched and trusted");
    }
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "waited {:?}: more than the minimum fetch interval",
        started.elapsed()
    );
    assert_eq!(f.server.requests(), 2, "one fetch shared by every waiter");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_unknown_kids_costs_at_most_three_fetches() {
    let f = Fixture::new(Alg::Es256).await;
    f.verifier
        .verify(&f.mint(&TestUser::alice()))
        .await
        .unwrap();
    assert_eq!(f.server.requests(), 1);

    // Slow fetches, so forged tokens arrive while one is in flight.
    f.server.set_delay(Duration::from_millis(100));
    let started = Instant::now();
    storm(&f, 40).await;
    let fetches = f.server.requests() - 1;
    assert!(
        (1..=3).contains(&fetches),
        "{fetches} fetches for 40 forged kids"
    );
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "forged kids waited {:?}",
        started.elapsed()
    );

    // Sustained: fetches stay at least the minimum interval (1 s) apart.
    let before = f.server.requests();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(3) {
        storm(&f, 40).await;
    }
    let fetches = f.server.requests() - before;
    let seconds = started.elapsed().as_secs_f64();
    assert!(
        fetches as f64 <= seconds + 1.0,
        "{fetches} fetches in {seconds:.1} s"
    );

    // Legitimate tokens are unaffected.
    f.verifier.verify(&f.mint(&TestUser::bob())).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetches_stay_apart_while_no_keys_were_ever_loaded() {
    let f = Fixture::new(Alg::Es256).await;
    f.server.set_status(Some(StatusCode::BAD_GATEWAY));
    storm(&f, 200).await;
    let fetches = f.server.requests();
    assert!(
        (1..=2).contains(&fetches),
        "{fetches} fetches for 200 forged kids"
    );
}

#[tokio::test]
async fn cache_control_max_age_is_honoured() {
    let f = Fixture::with(Alg::Es256, |c| {
        c.with_min_fetch_interval(Duration::from_millis(50))
    })
    .await;
    f.server.set_max_age(Some(1));
    f.verifier
        .verify(&f.mint(&TestUser::alice()))
        .await
        .unwrap();
    f.verifier.verify(&f.mint(&TestUser::bob())).await.unwrap();
    assert_eq!(f.server.requests(), 1, "fresh set: no refetch");

    tokio::time::sleep(Duration::from_millis(1100)).await;
    // Stale: served from the old set while one background revalidation (a 304) runs.
    f.verifier
        .verify(&f.mint(&TestUser::admin()))
        .await
        .unwrap();
    wait_until("a 304 revalidation", || {
        f.server.not_modified_responses() == 1
    })
    .await;
    assert_eq!(f.server.requests(), 2);
    f.verifier
        .verify(&f.mint(&TestUser::alice()))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(f.server.requests(), 2, "revalidated set is fresh again");
}

#[tokio::test]
async fn the_default_max_age_keeps_keys_for_a_minute() {
    let f = Fixture::with(Alg::Es256, |c| {
        c.with_min_fetch_interval(Duration::from_millis(50))
    })
    .await;
    f.server.set_max_age(None);
    f.verifier
        .verify(&f.mint(&TestUser::alice()))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    f.verifier.verify(&f.mint(&TestUser::bob())).await.unwrap();
    assert_eq!(f.server.requests(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_verification_of_many_users() {
    let f = Fixture::new(Alg::Es256).await;
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let user = TestUser::new(format!("user-{i}"), format!("u{i}@example.com"));
            let token = f.mint(&user);
            let verifier = f.verifier.clone();
            tokio::spawn(async move {
                for _ in 0..3 {
                    assert_eq!(verifier.verify(&token).await.unwrap().user(), user.id);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(f.server.requests(), 1);
}

#[test]
fn verifier_is_cheap_to_share_across_tasks() {
    fn shareable<T: Clone + Send + Sync + 'static>() {}
    fn send<T: Send>(_: T) {}
    shareable::<Verifier>();
    let verifier =
        Verifier::new(VerifierConfig::new("http://127.0.0.1:9/jwks.json").unwrap()).unwrap();
    send(verifier.verify("x"));
    let debug = format!("{verifier:?}");
    assert!(debug.contains("127.0.0.1:9"));
}
