//! The HTTP/1 server behind every listener of the process (the app's, the
//! metrics', the demo's proxy): `axum::serve`'s accept loop and graceful
//! shutdown, with hyper's connection settings in reach.
//!
//! The one setting changed is `half_close`. Without it hyper reads the
//! socket again while each request is in flight, to notice a client that
//! hangs up mid-request, and that read first makes room in the connection's
//! read buffer. The request's headers still share that buffer, so the room
//! is a new 8 KiB block, allocated and freed on every request (the largest
//! allocation of a `GET /`, and 5% of its user time in perf). With it, a
//! request runs to its end even when its client has gone: every handler
//! here ends within the deadline layer's limit, and one that writes to the
//! store then finishes its write rather than being dropped at an `.await`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::{Future, poll_fn};
use std::io;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Context;
use std::time::Duration;

use atomic_waker::AtomicWaker;
use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tower::{Service, ServiceExt as _};

/// What [`serve`] serves: the app [`crate::router`] builds, or any router.
/// A clone per connection shares it.
pub trait App:
    Service<Request, Response = Response, Error = Infallible, Future: Send + 'static>
    + Clone
    + Send
    + Sync
    + 'static
{
}

impl<S> App for S where
    S: Service<Request, Response = Response, Error = Infallible, Future: Send + 'static>
        + Clone
        + Send
        + Sync
        + 'static
{
}

/// Serves `app` on `listener` until `shutdown` completes, then lets the
/// requests in flight finish (each connection closes after its current
/// response) and returns once every connection has closed.
pub async fn serve(listener: TcpListener, app: impl App, shutdown: impl Future<Output = ()>) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.half_close(true);
    let closing = Arc::new(Closing::default());
    let mut shutdown = pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // A clone shares the routes. (`axum::serve` given a `Router` built
        // them again for each connection: 37 KB and some 300 allocations.)
        let service = app
            .clone()
            .map_request(|request: Request<Incoming>| request.map(Body::new));
        let connection =
            http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        // Held by the connection's task: its slot goes when the task ends.
        let watcher = Closing::watch(&closing);
        tokio::spawn(async move {
            let mut connection = pin!(connection);
            let mut asked = false;
            // Ended, or broken by the peer: nothing more to do for it.
            let _ = poll_fn(|cx| {
                if !asked && watcher.closing(cx) {
                    connection.as_mut().graceful_shutdown();
                    asked = true;
                }
                connection.as_mut().poll(cx)
            })
            .await;
        });
    }
    drop(listener);
    closing.close();
    closing.all_closed().await;
}

/// The open connections: tells them to close, and says when the last has.
/// A connection polled reads a flag and leaves its task's waker in a slot
/// of its own; only closing goes over every slot. (A `watch` receiver polled beside each connection, as
/// `tokio::select!` polls every branch, locked the channel's one list of
/// waiters on every poll of every connection: each request, on either
/// worker.)
#[derive(Debug, Default)]
struct Closing {
    closing: AtomicBool,
    waiting: Mutex<Slots>,
    /// Told when the last slot is given back.
    none_open: Notify,
}

/// The slots of the connections open, each under a number of its own.
#[derive(Debug, Default)]
struct Slots {
    next: u64,
    by_key: HashMap<u64, Arc<AtomicWaker>>,
}

impl Closing {
    /// A new connection's slot, given back when the watcher is dropped.
    fn watch(closing: &Arc<Closing>) -> Watcher {
        let slot = Arc::new(AtomicWaker::new());
        let mut waiting = closing.waiting();
        let key = waiting.next;
        waiting.next += 1;
        waiting.by_key.insert(key, Arc::clone(&slot));
        drop(waiting);
        Watcher {
            closing: Arc::clone(closing),
            key,
            slot,
        }
    }

    /// Raises the flag, then wakes every connection's task to read it.
    fn close(&self) {
        self.closing.store(true, Ordering::SeqCst);
        for slot in self.waiting().by_key.values() {
            slot.wake();
        }
    }

    /// Returns once no connection holds a slot.
    async fn all_closed(&self) {
        loop {
            // Made before the check, so a slot given back after it wakes it.
            let notified = self.none_open.notified();
            if self.waiting().by_key.is_empty() {
                return;
            }
            notified.await;
        }
    }

    fn waiting(&self) -> MutexGuard<'_, Slots> {
        // The map is whole between statements: a panic cannot leave it torn.
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One connection's view of [`Closing`].
#[derive(Debug)]
struct Watcher {
    closing: Arc<Closing>,
    key: u64,
    slot: Arc<AtomicWaker>,
}

impl Watcher {
    /// Whether the connection is to close; if not yet, `cx`'s task is woken
    /// when it is. The waker goes in first, so a close between the two
    /// steps finds it.
    fn closing(&self, cx: &Context<'_>) -> bool {
        self.slot.register(cx.waker());
        self.closing.closing.load(Ordering::SeqCst)
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let mut waiting = self.closing.waiting();
        waiting.by_key.remove(&self.key);
        let none_open = waiting.by_key.is_empty();
        drop(waiting);
        if none_open {
            self.closing.none_open.notify_waiters();
        }
    }
}

/// As `axum::serve`: a connection the peer broke before it was accepted is
/// skipped; anything else (out of file descriptors, say) is logged and
/// retried after a second rather than spinning.
async fn accept_failed(e: io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accepting a connection failed; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use axum::Router;
    use axum::routing::get;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpStream;
    use tokio::sync::oneshot;

    use super::*;

    /// A route that answers after `ms` milliseconds, served until the
    /// returned sender fires; the task ends when `serve` returns.
    async fn slow_server(
        ms: u64,
    ) -> (SocketAddr, oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new().route(
            "/",
            get(move || async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                "done"
            }),
        );
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, app, async move {
            let _ = stopped.await;
        }));
        (addr, stop, server)
    }

    async fn send(addr: SocketAddr) -> TcpStream {
        let mut client = TcpStream::connect(addr).await.unwrap();
        client
            .write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        client
    }

    async fn answer(mut client: TcpStream) -> String {
        let mut answer = String::new();
        client.read_to_string(&mut answer).await.unwrap();
        answer
    }

    /// With `half_close` off, hyper reads the client's end of stream while
    /// the request is in flight, drops the request and answers nothing.
    #[tokio::test]
    async fn a_client_that_stops_sending_still_gets_its_answer() {
        let (addr, _stop, _server) = slow_server(100).await;
        let mut client = send(addr).await;
        client.shutdown().await.unwrap();
        let answer = answer(client).await;
        assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer:?}");
        assert!(answer.ends_with("done"), "{answer:?}");
    }

    #[tokio::test]
    async fn shutdown_finishes_the_request_in_flight_then_stops() {
        let (addr, stop, server) = slow_server(300).await;
        let client = send(addr).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        stop.send(()).unwrap();
        let answer = answer(client).await;
        assert!(answer.ends_with("done"), "{answer:?}");
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .expect("serve returns once its connections have closed")
            .unwrap();
        assert!(
            TcpStream::connect(addr).await.is_err(),
            "the listener is closed"
        );
    }

    /// Connections waiting for their next request are told to close too,
    /// each woken in its own task, and `serve` returns once they have.
    #[tokio::test]
    async fn shutdown_closes_the_connections_kept_alive() {
        let (addr, stop, server) = slow_server(0).await;
        let mut idle = Vec::new();
        for _ in 0..3 {
            let mut client = TcpStream::connect(addr).await.unwrap();
            client
                .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
                .await
                .unwrap();
            let mut head = [0; 512];
            let read = client.read(&mut head).await.unwrap();
            let head = String::from_utf8_lossy(&head[..read]).into_owned();
            assert!(head.ends_with("done"), "{head:?}");
            idle.push(client);
        }
        stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .expect("serve returns once the idle connections have closed")
            .unwrap();
        for mut client in idle {
            let mut rest = Vec::new();
            let read = tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut rest))
                .await
                .expect("the server closed the connection")
                .unwrap();
            assert_eq!(read, 0, "nothing more was sent: {rest:?}");
        }
    }

    /// `serve` waits on this for the requests in flight: it must not
    /// return while a connection still holds its slot.
    #[tokio::test]
    async fn all_closed_waits_for_the_last_connection() {
        let closing = Arc::new(Closing::default());
        let first = Closing::watch(&closing);
        let second = Closing::watch(&closing);
        closing.close();
        let mut waiting = pin!(closing.all_closed());
        let a_while = Duration::from_millis(50);
        let still = tokio::time::timeout(a_while, waiting.as_mut()).await;
        assert!(still.is_err(), "two open");
        drop(first);
        let still = tokio::time::timeout(a_while, waiting.as_mut()).await;
        assert!(still.is_err(), "one open");
        drop(second);
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("returns once the last slot is given back");
    }

    #[test]
    fn a_watcher_gives_its_slot_back() {
        let closing = Arc::new(Closing::default());
        let first = Closing::watch(&closing);
        let second = Closing::watch(&closing);
        assert_eq!(closing.waiting().by_key.len(), 2);
        drop(first);
        assert_eq!(closing.waiting().by_key.len(), 1);
        drop(second);
        assert!(closing.waiting().by_key.is_empty());
    }
}
