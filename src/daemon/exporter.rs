//! `/metrics` for Prometheus on `[metrics] listen`: a small HTTP/1.1
//! responder (one request per connection, `Connection: close`), enough for
//! a scraper and `curl`. The counters are [`crate::metrics`]'s; the queue
//! depth, the breakers and the store's size are read from the store at
//! each scrape, the upstreams as the config last (re)loaded names them.
//!
//! It answers `GET /metrics` (and `HEAD`), 404 for any other path, 405 for
//! any other method, and closes a connection that sends no request head
//! within 5 s or more than 8 KiB of one. No more than a few scrapes run at
//! once. Plain HTTP: listen on loopback or a private network.

// The exporter listens on its own socket (clippy.toml bans sockets elsewhere).
#![allow(clippy::disallowed_types)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

use crate::config::Config;
use crate::metrics::Gauges;
use crate::store::Store;

/// Longest a client may take to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest request head read.
const HEAD_LIMIT: usize = 8 * 1024;
/// Scrapes at once; more are closed unanswered.
const CONCURRENT: usize = 4;
/// Every state an outbox item can be in, reported even when empty.
const STATES: [&str; 8] = [
    "scheduled",
    "queued",
    "sending",
    "sent",
    "deferred",
    "failed",
    "cancelled",
    "bounced",
];

/// The bound metrics socket.
pub struct Exporter {
    socket: TcpListener,
    configs: watch::Receiver<Arc<Config>>,
}

impl Exporter {
    pub async fn bind(
        addr: SocketAddr,
        configs: watch::Receiver<Arc<Config>>,
    ) -> std::io::Result<Exporter> {
        Ok(Exporter {
            socket: TcpListener::bind(addr).await?,
            configs,
        })
    }

    /// Answers scrapes until shutdown.
    pub async fn serve(self, mut shutdown: watch::Receiver<bool>) {
        let store: Arc<Mutex<Option<Store>>> = Arc::new(Mutex::new(None));
        let limit = Arc::new(Semaphore::new(CONCURRENT));
        loop {
            tokio::select! {
                accepted = self.socket.accept() => {
                    let Ok((stream, _)) = accepted else {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    };
                    let Ok(permit) = limit.clone().try_acquire_owned() else {
                        continue;
                    };
                    let store = store.clone();
                    let config = self.configs.borrow().clone();
                    tokio::spawn(async move {
                        answer(stream, store, config).await;
                        drop(permit);
                    });
                }
                _ = shutdown.changed() => {
                    if *shutdown.borrow() {
                        return;
                    }
                }
            }
        }
    }
}

/// Reads one request head and answers it.
async fn answer(mut stream: TcpStream, store: Arc<Mutex<Option<Store>>>, config: Arc<Config>) {
    let mut head = Vec::with_capacity(512);
    let read = tokio::time::timeout(HEAD_TIMEOUT, async {
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() <= HEAD_LIMIT {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        head.len() <= HEAD_LIMIT
    })
    .await;
    if !matches!(read, Ok(true)) {
        return;
    }
    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let mut parts = line.split(|&b| b == b' ');
    let (method, target) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let path = target.split(|&b| b == b'?').next().unwrap_or_default();
    let response = match (method, path) {
        (b"GET" | b"HEAD", b"/metrics") => {
            let body = tokio::task::spawn_blocking(move || {
                crate::metrics::render(&gauges(&store, &config))
            })
            .await
            .unwrap_or_default();
            respond(
                "200 OK",
                "text/plain; version=0.0.4; charset=utf-8",
                &body,
                method == b"HEAD",
            )
        }
        (b"GET" | b"HEAD", _) => respond(
            "404 Not Found",
            "text/plain",
            "jobmail serves /metrics only\n",
            method == b"HEAD",
        ),
        _ => respond(
            "405 Method Not Allowed",
            "text/plain",
            "GET /metrics\n",
            false,
        ),
    };
    let _ = tokio::time::timeout(HEAD_TIMEOUT, async {
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

fn respond(status: &str, kind: &str, body: &str, head_only: bool) -> String {
    let allow = if status.starts_with("405") {
        "Allow: GET, HEAD\r\n"
    } else {
        ""
    };
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\n{allow}Connection: close\r\n\r\n{}",
        body.len(),
        if head_only { "" } else { body }
    )
}

/// What is read from the store at a scrape. A store that cannot be read
/// leaves its gauges out (the counters are still served); it is opened
/// again at the next scrape.
fn gauges(store: &Mutex<Option<Store>>, config: &Config) -> Gauges {
    let mut guard = store.lock().unwrap_or_else(|p| p.into_inner());
    if guard.is_none() {
        match Store::open(&config.server.database) {
            Ok(s) => *guard = Some(s),
            Err(e) => {
                tracing::warn!(error = %e, "metrics: cannot open the store");
                return Gauges::default();
            }
        }
    }
    let Some(s) = guard.as_ref() else {
        return Gauges::default();
    };
    let read = (|| {
        let counts = s.queue_summary()?;
        let queue = STATES
            .iter()
            .map(|state| {
                let n = counts
                    .iter()
                    .find(|(st, _, _)| st == state)
                    .map_or(0, |(_, n, _)| *n);
                (state.to_string(), n)
            })
            .collect();
        let states = s.upstream_states()?;
        let now = crate::clock::now_ms();
        let upstreams = config
            .subsidiaries
            .iter()
            .filter(|sub| sub.upstream.is_some())
            .map(|sub| {
                let state = states.iter().find(|u| u.subsidiary == sub.id);
                (
                    sub.id.clone(),
                    state.is_some_and(|u| u.paused_until.is_some_and(|t| t > now)),
                    state.map_or(0, |u| u.failures),
                )
            })
            .collect();
        let files = s.files()?;
        Ok::<_, crate::store::StoreError>(Gauges {
            queue,
            upstreams,
            store_bytes: Some((files.database_bytes, files.wal_bytes)),
        })
    })();
    match read {
        Ok(g) => g,
        Err(e) => {
            tracing::warn!(error = %e, "metrics: cannot read the store");
            *guard = None;
            Gauges::default()
        }
    }
}
