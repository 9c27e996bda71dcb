//! What reaches the logs, with a global subscriber: alone in this binary,
//! so no other test's threads race it for tracing's callsite cache.

#[allow(dead_code)]
#[path = "it/harness.rs"]
mod harness;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use jit_fakes::pomerium::TestUser;

use harness::{App, HOST};

/// Collects formatted log lines.
#[derive(Clone, Default)]
struct Logs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn logs_hold_no_tokens_and_no_emails_at_info() {
    let logs = Logs::default();
    let sink = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let app = App::start().await;
    let alice = TestUser::alice();
    let forged = jit_fakes::pomerium::Signer::new(jit_fakes::pomerium::Alg::Es256)
        .unwrap()
        .mint(HOST, &alice);
    let request = Request::get("/")
        .header(header::HOST, HOST)
        .header("x-pomerium-jwt-assertion", &forged);
    assert_eq!(
        app.send(request.body(Body::empty()).unwrap()).await.status,
        StatusCode::FORBIDDEN
    );
    let token = app.token(&alice);
    let request = Request::get("/?notice=approved&email=alice%40example.com")
        .header(header::HOST, HOST)
        .header("x-pomerium-jwt-assertion", &token);
    assert_eq!(
        app.send(request.body(Body::empty()).unwrap()).await.status,
        StatusCode::OK
    );
    app.request(&alice).await;
    app.approve(&alice).await;
    app.get("/admin", Some(&TestUser::admin())).await;

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        text.contains("assertion refused") && text.contains("signing key not found"),
        "{text}"
    );
    assert!(
        text.contains(r#"path="/admin""#) && text.contains("status=200"),
        "access log: {text}"
    );
    assert!(
        !text.contains(&forged) && !text.contains(&token),
        "no token in the logs"
    );
    assert!(
        !text.contains("alice@example.com") && !text.contains("alice%40example.com"),
        "no email: {text}"
    );
}
