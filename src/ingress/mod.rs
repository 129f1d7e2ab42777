//! Ingress: the embedded SMTP listener.
//!
//! Binds the configured addresses, accepts connections up to the connection
//! limit (beyond it: `421 4.3.2` and close, the other sessions unaffected),
//! and runs one [`session::Session`] per connection. On shutdown it stops
//! accepting, lets open transactions finish up to a deadline, then aborts the
//! rest (an aborted mail was never answered 250, so the client retries).
//! It stores mail only through the store [`Writer`]; it never renders or
//! sends mail and holds no SQL.

pub mod auth;
pub mod data;
pub mod session;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::store::Writer;
pub use session::Settings;

/// A bound listener, ready to serve.
pub struct Listener {
    sockets: Vec<TcpListener>,
    settings: Arc<Settings>,
    max_connections: usize,
}

impl Listener {
    /// Binds every address; fails if any cannot be bound.
    pub async fn bind(
        addrs: &[SocketAddr],
        settings: Settings,
        max_connections: usize,
    ) -> std::io::Result<Listener> {
        let mut sockets = Vec::new();
        for addr in addrs {
            let socket = TcpListener::bind(addr).await.map_err(|e| {
                std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}"))
            })?;
            sockets.push(socket);
        }
        Ok(Listener {
            sockets,
            settings: Arc::new(settings),
            max_connections,
        })
    }

    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.sockets
            .iter()
            .filter_map(|s| s.local_addr().ok())
            .collect()
    }

    /// Serves until `shutdown` turns true, then drains sessions for at most
    /// the configured shutdown timeout.
    pub async fn serve(self, writer: Writer, shutdown: watch::Receiver<bool>) {
        let limit = Arc::new(Semaphore::new(self.max_connections));
        let counter = Arc::new(AtomicU64::new(0));
        let mut acceptors = JoinSet::new();
        for socket in self.sockets {
            acceptors.spawn(accept_loop(
                socket,
                self.settings.clone(),
                writer.clone(),
                shutdown.clone(),
                limit.clone(),
                counter.clone(),
            ));
        }
        while acceptors.join_next().await.is_some() {}
    }
}

/// A session id: start time and a counter, short and unique per process run.
fn session_id(counter: &AtomicU64) -> String {
    let n = counter.fetch_add(1, Ordering::Relaxed);
    let t = chrono::Utc::now().timestamp_millis() as u64;
    format!("{t:x}{n:04x}").to_uppercase()
}

async fn accept_loop(
    socket: TcpListener,
    settings: Arc<Settings>,
    writer: Writer,
    mut shutdown: watch::Receiver<bool>,
    limit: Arc<Semaphore>,
    counter: Arc<AtomicU64>,
) {
    let mut sessions = JoinSet::new();
    loop {
        tokio::select! {
            accepted = socket.accept() => {
                let (stream, peer) = match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        // Out of file descriptors and the like: wait, don't spin.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                match limit.clone().try_acquire_owned() {
                    Ok(permit) => {
                        let id = session_id(&counter);
                        tracing::debug!(session = %id, %peer, "connect");
                        let session = session::Session::new(
                            stream, peer, settings.clone(), writer.clone(), shutdown.clone(), id,
                        );
                        sessions.spawn(async move {
                            session.run().await;
                            drop(permit);
                        });
                    }
                    Err(_) => {
                        tracing::warn!(%peer, "connection limit reached; refusing");
                        let hostname = settings.server.hostname.clone();
                        sessions.spawn(refuse(stream, hostname));
                    }
                }
                // Reap finished sessions so the set does not grow.
                while sessions.try_join_next().is_some() {}
            }
            _ = shutdown.changed() => {
                if *shutdown.borrow() {
                    break;
                }
            }
        }
    }
    drop(socket);
    drain(sessions, settings.server.shutdown_timeout).await;
}

async fn refuse(mut stream: TcpStream, hostname: String) {
    let reply = format!("421 4.3.2 {hostname} Error: too many connections, try again later\r\n");
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.write_all(reply.as_bytes())).await;
    let _ = stream.shutdown().await;
}

async fn drain(mut sessions: JoinSet<()>, grace: Duration) {
    let deadline = tokio::time::sleep(grace);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            next = sessions.join_next() => if next.is_none() { return },
            _ = &mut deadline => {
                tracing::warn!(open = sessions.len(), "shutdown deadline reached; closing open sessions");
                sessions.abort_all();
                while sessions.join_next().await.is_some() {}
                return;
            }
        }
    }
}
