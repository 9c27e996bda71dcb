//! Property tests: no single-character change to a valid assertion survives,
//! and no input makes the verifier panic.

use std::time::Duration;

use jit_fakes::pomerium::{Alg, JwksServer, Signer, TestUser};
use jit_identity::{Verifier, VerifierConfig};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{Config, TestRunner};
use tokio::runtime::Runtime;

const BASE64URL: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

struct Fixture {
    runtime: Runtime,
    // Kept alive for the verifier's first fetch; dropped with the fixture.
    _server: JwksServer,
    verifier: Verifier,
    token: String,
}

fn fixture(alg: Alg) -> Fixture {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (server, verifier, token) = runtime.block_on(async {
        let signer = Signer::new(alg).unwrap();
        let server = JwksServer::start(signer.clone()).await.unwrap();
        // A short interval: each mutated kid costs a quick local fetch, not a wait.
        let config = VerifierConfig::new(&server.url())
            .unwrap()
            .with_min_fetch_interval(Duration::from_millis(1));
        let verifier = Verifier::new(config).unwrap();
        let token = signer.mint(&server.host(), &TestUser::admin());
        verifier
            .verify(&token)
            .await
            .expect("the unmodified token verifies");
        (server, verifier, token)
    });
    Fixture {
        runtime,
        _server: server,
        verifier,
        token,
    }
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

/// Any ASCII byte, or (more often useful) any base64url character.
fn replacement() -> impl Strategy<Value = u8> {
    prop_oneof![select(BASE64URL.as_bytes().to_vec()), 0u8..0x80]
}

fn single_character_changes_are_refused(alg: Alg, cases: u32) {
    let f = fixture(alg);
    let strategy = (0..f.token.len(), replacement());
    runner(cases)
        .run(&strategy, |(index, byte)| {
            let mut mutated = f.token.clone().into_bytes();
            prop_assume!(mutated[index] != byte);
            mutated[index] = byte;
            let mutated = String::from_utf8(mutated).expect("ASCII stays UTF-8");
            let result = f.runtime.block_on(f.verifier.verify(&mutated));
            prop_assert!(result.is_err(), "accepted a token changed at byte {index}");
            Ok(())
        })
        .unwrap();
    // The original still verifies after all that.
    assert!(f.runtime.block_on(f.verifier.verify(&f.token)).is_ok());
}

#[test]
fn any_single_character_change_breaks_an_es256_assertion() {
    single_character_changes_are_refused(Alg::Es256, 3000);
}

#[test]
fn any_single_character_change_breaks_an_rs256_assertion() {
    single_character_changes_are_refused(Alg::Rs256, 1000);
}

#[test]
fn arbitrary_input_is_refused_without_panicking() {
    let f = fixture(Alg::Es256);
    let segment = || proptest::string::string_regex("[A-Za-z0-9_=+/-]{0,120}").unwrap();
    let inputs = prop_oneof![
        any::<String>(),
        (segment(), segment(), segment()).prop_map(|(a, b, c)| format!("{a}.{b}.{c}")),
        // A real header with arbitrary payload and signature.
        (segment(), segment()).prop_map({
            let header = f.token.split('.').next().unwrap().to_owned();
            move |(b, c)| format!("{header}.{b}.{c}")
        }),
    ];
    runner(2000)
        .run(&inputs, |input| {
            prop_assert!(f.runtime.block_on(f.verifier.verify(&input)).is_err());
            Ok(())
        })
        .unwrap();
}
