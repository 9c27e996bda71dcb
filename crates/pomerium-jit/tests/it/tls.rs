//! Outbound HTTPS as production uses it: the JWKS behind TLS, with a
//! certificate for `localhost` from a private CA (`tests/tls-fixtures`,
//! made once with openssl, valid until 2126). The app's one TLS
//! configuration (crate `jit-http`) must trust exactly the roots it is given.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jit_fakes::pomerium::TestUser;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use crate::harness::Env;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/tls-fixtures")
        .join(name)
}

/// Terminates TLS for `localhost` and passes the bytes on to `backend`.
async fn tls_front(backend: String) -> u16 {
    let certs = CertificateDer::pem_file_iter(fixture("localhost.pem"))
        .expect("certificate")
        .collect::<Result<Vec<_>, _>>()
        .expect("certificate");
    let key = PrivateKeyDer::from_pem_file(fixture("localhost.key")).expect("key");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .expect("server config");
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, backend) = (acceptor.clone(), backend.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                if let Ok(mut plain) = TcpStream::connect(&backend).await {
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                }
            });
        }
    });
    port
}

#[tokio::test]
async fn https_upstreams_are_checked_against_the_trusted_roots() {
    let env = Env::new().await;
    let url = reqwest::Url::parse(&env.jwks.url()).expect("jwks url");
    let backend = format!("127.0.0.1:{}", url.port().expect("port"));
    let port = tls_front(backend).await;
    let jwks = format!("https://localhost:{port}{}", url.path());
    // Tokens are minted for the fake's own host; the endpoint moved.
    let host = env.jwks.host();
    let spawn_trusting = |roots: PathBuf| {
        env.spawn(&[
            ("JWKS_ENDPOINT", &jwks),
            ("EXPECTED_JWT_AUDIENCE", &host),
            ("EXPECTED_JWT_ISSUER", &host),
            ("SSL_CERT_FILE", roots.to_str().expect("path")),
            ("SSL_CERT_DIR", "/nonexistent"),
        ])
    };
    let token = env.token(&TestUser::alice());

    // The private CA trusted: keys fetched over TLS, the caller verified.
    let app = spawn_trusting(fixture("ca.pem"));
    let (status, page) = app.get("/", Some(&token)).await;
    assert_eq!(status, 200, "{page}");
    drop(app);

    // Roots without it (the server's certificate is not a CA): refused, and
    // the log says why (the log reaches the test through a pipe: waited for).
    let app = spawn_trusting(fixture("localhost.pem"));
    let (status, page) = app.get("/", Some(&token)).await;
    assert_eq!(status, 503, "{page}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !app.log_text().contains("JWKS fetch failed") && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let log = app.log_text();
    assert!(log.contains("JWKS fetch failed"), "{log}");
    assert!(log.contains("certificate"), "the cause is named: {log}");
}
