//! Pomerium's key endpoints on a loopback port: `/.well-known/pomerium/jwks.json`
//! with the headers Pomerium sends (core `internal/handlers/jwks.go`), plus
//! knobs to make it slow, failing or odd.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use http::StatusCode;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, HeaderMap, HeaderValue, IF_NONE_MATCH};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::signer::Signer;

/// Where Pomerium serves its public keys, on every route host.
pub const JWKS_PATH: &str = "/.well-known/pomerium/jwks.json";
/// Pomerium's discovery document.
pub const WELL_KNOWN_PATH: &str = "/.well-known/pomerium";
/// The `Cache-Control: max-age` Pomerium sends with the JWKS.
pub const DEFAULT_MAX_AGE_SECS: u64 = 60;

#[derive(Debug, Clone)]
struct Knobs {
    status: Option<StatusCode>,
    delay: Duration,
    max_age: Option<u64>,
    body: Option<String>,
}

#[derive(Debug)]
struct Shared {
    signer: Signer,
    knobs: Mutex<Knobs>,
    requests: AtomicUsize,
    not_modified: AtomicUsize,
}

impl Shared {
    fn knobs(&self) -> MutexGuard<'_, Knobs> {
        self.knobs.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running fake of Pomerium's JWKS endpoint on `127.0.0.1:<random port>`.
/// It serves the [`Signer`]'s keys as they are at each request, so rotations
/// on the signer show up immediately. Stops on [`JwksServer::shutdown`] or drop.
#[derive(Debug)]
pub struct JwksServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl JwksServer {
    /// Binds `127.0.0.1:0` and starts serving. Must run inside a Tokio runtime.
    pub async fn start(signer: Signer) -> io::Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            signer,
            knobs: Mutex::new(Knobs {
                status: None,
                delay: Duration::ZERO,
                max_age: Some(DEFAULT_MAX_AGE_SECS),
                body: None,
            }),
            requests: AtomicUsize::new(0),
            not_modified: AtomicUsize::new(0),
        });
        let app = Router::new()
            .route(JWKS_PATH, get(jwks))
            .route(WELL_KNOWN_PATH, get(well_known))
            .with_state(Arc::clone(&shared));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    // Either an explicit stop or the server handle being dropped.
                    let _ = stopped.await;
                })
                .await
        });
        Ok(JwksServer {
            addr,
            shared,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The JWKS URL, e.g. `http://127.0.0.1:41234/.well-known/pomerium/jwks.json`.
    pub fn url(&self) -> String {
        format!("http://{}{JWKS_PATH}", self.addr)
    }

    /// The hostname Pomerium would put in `aud` and `iss` for this host:
    /// no scheme, no port.
    pub fn host(&self) -> String {
        self.addr.ip().to_string()
    }

    /// The bound socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The signer whose keys are served.
    pub fn signer(&self) -> &Signer {
        &self.shared.signer
    }

    /// Answer every JWKS request with this status (and no keys); `None` restores service.
    pub fn set_status(&self, status: Option<StatusCode>) {
        self.shared.knobs().status = status;
    }

    /// Wait this long before answering each JWKS request.
    pub fn set_delay(&self, delay: Duration) {
        self.shared.knobs().delay = delay;
    }

    /// The `Cache-Control: max-age` to send; `None` sends no `Cache-Control` at all.
    pub fn set_max_age(&self, max_age: Option<u64>) {
        self.shared.knobs().max_age = max_age;
    }

    /// Serve this body instead of the signer's JWKS (garbage, odd keys, huge
    /// documents); `None` goes back to the signer's keys.
    pub fn set_body(&self, body: Option<String>) {
        self.shared.knobs().body = body;
    }

    /// How many JWKS requests arrived so far (any outcome, 304s included).
    pub fn requests(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// How many JWKS requests were answered `304 Not Modified` (a matching `If-None-Match`).
    pub fn not_modified_responses(&self) -> usize {
        self.shared.not_modified.load(Ordering::SeqCst)
    }

    /// Stops accepting, lets in-flight requests finish, and waits for the server to end.
    pub async fn shutdown(mut self) -> io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await.map_err(io::Error::other)?,
            None => Ok(()),
        }
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn jwks(State(shared): State<Arc<Shared>>, request_headers: HeaderMap) -> Response {
    shared.requests.fetch_add(1, Ordering::SeqCst);
    let knobs = shared.knobs().clone();
    if !knobs.delay.is_zero() {
        tokio::time::sleep(knobs.delay).await;
    }
    if let Some(status) = knobs.status {
        return (status, "fake JWKS failure").into_response();
    }
    let body = knobs
        .body
        .unwrap_or_else(|| shared.signer.jwks().to_string());

    let etag = format!("\"{:x}\"", fnv1_64(body.as_bytes()));
    let mut headers = HeaderMap::new();
    if let Some(max_age) = knobs.max_age
        && let Ok(value) = HeaderValue::from_str(&format!("max-age={max_age}"))
    {
        headers.insert(CACHE_CONTROL, value);
    }
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(ETAG, value);
    }
    // Pomerium answers through Go's http.ServeContent, which honours If-None-Match.
    if if_none_match(&request_headers, &etag) {
        shared.not_modified.fetch_add(1, Ordering::SeqCst);
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    (StatusCode::OK, headers, body).into_response()
}

async fn well_known(State(_): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let host = headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let base = format!("http://{host}");
    Json(json!({
        "issuer": format!("{base}/"),
        "authentication_callback_endpoint": format!("{base}/oauth2/callback"),
        "jwks_uri": format!("{base}{JWKS_PATH}"),
        "frontchannel_logout_uri": format!("{base}/.pomerium/sign_out"),
    }))
    .into_response()
}

/// True when the request's `If-None-Match` lists `etag` (or `*`), comparing weakly.
fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|tag| tag.trim())
        .any(|tag| tag == "*" || tag.trim_start_matches("W/") == etag)
}

/// FNV-1 64-bit, the hash Go's `hash/fnv.New64` computes for Pomerium's ETag.
fn fnv1_64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash: u64, &b| {
        hash.wrapping_mul(0x0000_0100_0000_01b3) ^ u64::from(b)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pomerium::{Alg, SigningKey};

    #[test]
    fn fnv1_64_matches_go_reference_values() {
        // Go: fnv.New64() over "" and "a".
        assert_eq!(fnv1_64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1_64(b"a"), 0xaf63bd4c8601b7be);
    }

    #[tokio::test]
    async fn serves_the_signer_keys_with_pomerium_headers() {
        let signer = Signer::new(Alg::Es256).unwrap();
        let server = JwksServer::start(signer.clone()).await.unwrap();
        let client = reqwest::Client::new();

        let response = client.get(server.url()).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let headers = response.headers().clone();
        assert_eq!(headers[CACHE_CONTROL], "max-age=60");
        assert_eq!(headers[CONTENT_TYPE], "application/json");
        let etag = headers[ETAG].to_str().unwrap().to_owned();
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body, signer.jwks());
        assert_eq!(server.host(), "127.0.0.1");

        let not_modified = client
            .get(server.url())
            .header(IF_NONE_MATCH, &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(not_modified.status(), 304);
        assert_eq!(server.not_modified_responses(), 1);

        signer
            .add_key(SigningKey::generate(Alg::Es256).unwrap())
            .unwrap();
        let rotated = client
            .get(server.url())
            .header(IF_NONE_MATCH, &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(rotated.status(), 200, "a rotation changes the ETag");
        let body: serde_json::Value = rotated.json().await.unwrap();
        assert_eq!(body["keys"].as_array().unwrap().len(), 2);
        assert_eq!(server.requests(), 3);
        server.shutdown().await.unwrap();
    }

    #[tokio::test]
    async fn knobs_fail_delay_and_reshape_responses() {
        let server = JwksServer::start(Signer::new(Alg::Es256).unwrap())
            .await
            .unwrap();
        let client = reqwest::Client::new();

        server.set_status(Some(StatusCode::SERVICE_UNAVAILABLE));
        assert_eq!(client.get(server.url()).send().await.unwrap().status(), 503);
        server.set_status(None);

        server.set_max_age(None);
        server.set_body(Some("not json".into()));
        let response = client.get(server.url()).send().await.unwrap();
        assert!(response.headers().get(CACHE_CONTROL).is_none());
        assert_eq!(response.text().await.unwrap(), "not json");

        server.set_delay(Duration::from_millis(300));
        let slow = client
            .get(server.url())
            .timeout(Duration::from_millis(50))
            .send()
            .await;
        assert!(slow.unwrap_err().is_timeout());
        assert_eq!(server.requests(), 3);

        let well_known: serde_json::Value = client
            .get(format!("http://{}{WELL_KNOWN_PATH}", server.addr()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(well_known["jwks_uri"], server.url());
        assert_eq!(server.requests(), 3, "only JWKS requests are counted");
    }

    #[tokio::test]
    async fn dropping_the_server_frees_the_port() {
        let server = JwksServer::start(Signer::new(Alg::Es256).unwrap())
            .await
            .unwrap();
        let url = server.url();
        drop(server);
        let client = reqwest::Client::new();
        let mut refused = false;
        for _ in 0..50 {
            if client.get(&url).send().await.is_err() {
                refused = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(refused, "server still answering after drop");
    }
}
