//! Ingress: the embedded SMTP listener.
//!
//! Binds the configured addresses (and those for implicit TLS, whose
//! sessions start with the handshake), accepts connections up to the connection
//! limits (in all, per client address, per /24 or /64 network; beyond them:
//! `421` and close, the other sessions unaffected, refusals logged one line
//! per client and minute), and runs one [`session::Session`] per connection. On shutdown it stops
//! accepting, lets open transactions finish up to a deadline, then aborts the
//! rest (an aborted mail was never answered 250, so the client retries).
//! It stores mail only through the store [`Writer`]; it never renders or
//! sends mail and holds no SQL.

// The listener accepts connections (clippy.toml bans sockets elsewhere).
#![allow(clippy::disallowed_types)]

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use std::time::Instant;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use super::session;
pub use super::session::Settings;
use crate::config::ServerConfig;
use crate::store::Writer;

/// A bound listener, ready to serve.
pub struct Listener {
    /// Each socket, and whether its sessions start with the TLS handshake.
    sockets: Vec<(TcpListener, bool)>,
    live: LiveSettings,
}

/// The settings the next session starts with, and the connection limit
/// they set. A reload replaces them: sessions in flight keep the `Arc` they
/// started with, the next one gets the new settings.
#[derive(Clone)]
pub struct LiveSettings {
    current: Arc<watch::Sender<Arc<Settings>>>,
    /// Sessions open on all sockets together (`max_connections`).
    limit: Arc<Semaphore>,
}

impl LiveSettings {
    fn new(settings: Settings) -> LiveSettings {
        let limit = Arc::new(Semaphore::new(settings.server.max_connections));
        LiveSettings {
            current: Arc::new(watch::Sender::new(Arc::new(settings))),
            limit,
        }
    }

    /// What the next session gets.
    pub fn current(&self) -> Arc<Settings> {
        self.current.borrow().clone()
    }

    /// Swaps in `settings` for the sessions accepted from now on. The
    /// connection limit and the memory budget are resized in place: the new
    /// settings share the one budget with the sessions still open.
    pub fn replace(&self, mut settings: Settings) {
        let old = self.current();
        resize(
            &self.limit,
            old.server.max_connections,
            settings.server.max_connections,
        );
        settings.memory = old.memory.clone();
        resize(
            &settings.memory,
            old.server.memory_budget.div_ceil(1024) as usize,
            settings.server.memory_budget.div_ceil(1024) as usize,
        );
        self.current.send_replace(Arc::new(settings));
    }
}

/// Grows or shrinks a semaphore sized `from` to `to` permits. Permits held
/// now are taken off as they come back: until then more may be out than
/// `to` (the sessions that hold them were admitted under the old limit).
fn resize(semaphore: &Arc<Semaphore>, from: usize, to: usize) {
    if to > from {
        semaphore.add_permits(to - from);
    } else if to < from {
        let debt = (from - to) - semaphore.forget_permits(from - to);
        if debt > 0 {
            let semaphore = semaphore.clone();
            tokio::spawn(async move {
                let debt = u32::try_from(debt).unwrap_or(u32::MAX);
                if let Ok(permits) = semaphore.acquire_many_owned(debt).await {
                    permits.forget();
                }
            });
        }
    }
}

impl Listener {
    /// Binds every address, `implicit_tls` ones for sessions that start
    /// with the TLS handshake; fails if any cannot be bound. The connection
    /// limits count the sessions of all of them together.
    pub async fn bind(
        addrs: &[SocketAddr],
        implicit_tls: &[SocketAddr],
        settings: Settings,
        max_connections: usize,
    ) -> std::io::Result<Listener> {
        let mut sockets = Vec::new();
        let all = addrs.iter().map(|a| (a, false));
        for (addr, implicit) in all.chain(implicit_tls.iter().map(|a| (a, true))) {
            let socket = TcpListener::bind(addr).await.map_err(|e| {
                std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}"))
            })?;
            sockets.push((socket, implicit));
        }
        let mut settings = settings;
        settings.server.max_connections = max_connections;
        Ok(Listener {
            sockets,
            live: LiveSettings::new(settings),
        })
    }

    /// The handle a reload swaps the settings through.
    pub fn settings(&self) -> LiveSettings {
        self.live.clone()
    }

    /// Each bound address, and whether it is for implicit TLS.
    pub fn local_addrs(&self) -> Vec<(SocketAddr, bool)> {
        self.sockets
            .iter()
            .filter_map(|(s, implicit)| s.local_addr().ok().map(|a| (a, *implicit)))
            .collect()
    }

    /// Serves until `shutdown` turns true, then drains sessions for at most
    /// the configured shutdown timeout.
    pub async fn serve(self, writer: Writer, shutdown: watch::Receiver<bool>) {
        let counter = Arc::new(AtomicU64::new(0));
        let clients = Arc::new(Clients::new());
        let mut acceptors = JoinSet::new();
        for socket in self.sockets {
            acceptors.spawn(accept_loop(
                socket,
                self.live.clone(),
                writer.clone(),
                shutdown.clone(),
                counter.clone(),
                clients.clone(),
            ));
        }
        while acceptors.join_next().await.is_some() {}
    }
}

/// A session id: start time and a counter, short and unique per process run.
fn session_id(counter: &AtomicU64) -> String {
    let n = counter.fetch_add(1, Ordering::Relaxed);
    let t = crate::clock::now_ms() as u64;
    format!("{t:x}{n:04x}").to_uppercase()
}

/// Accepts on one socket (`implicit_tls`: its sessions start with the
/// handshake) until shutdown, then drains its sessions.
async fn accept_loop(
    (socket, implicit_tls): (TcpListener, bool),
    live: LiveSettings,
    writer: Writer,
    mut shutdown: watch::Receiver<bool>,
    counter: Arc<AtomicU64>,
    clients: Arc<Clients>,
) {
    let mut sessions = JoinSet::new();
    let limit = live.limit.clone();
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
                crate::metrics::SESSIONS_OPENED.inc();
                let _ = stream.set_nodelay(true);
                // As last (re)loaded; the session keeps these to its end.
                let settings = live.current();
                let hostname = &settings.server.hostname;
                let slot = clients.take(peer.ip(), &settings.server).map_err(|limit| {
                    (limit, format!("421 4.7.0 {hostname} Error: too many connections from your {limit}, try again later"))
                });
                let admitted = slot.and_then(|slot| match limit.clone().try_acquire_owned() {
                    Ok(permit) => Ok((slot, permit)),
                    Err(_) => Err(("server", format!("421 4.3.2 {hostname} Error: too many connections, try again later"))),
                });
                match admitted {
                    Ok((slot, permit)) => {
                        let id = session_id(&counter);
                        tracing::debug!(session = %id, client = %peer.ip(), port = peer.port(), "connect");
                        let mut session = session::Session::new(
                            stream, peer, settings.clone(), writer.clone(), shutdown.clone(), id,
                        );
                        if implicit_tls {
                            session = session.with_implicit_tls();
                        }
                        sessions.spawn(async move {
                            session.run().await;
                            drop(permit);
                            drop(slot);
                        });
                    }
                    Err((limit, reply)) => {
                        clients.log_refusal(peer.ip(), limit);
                        crate::metrics::session_ended(crate::metrics::SessionEnd::Limit);
                        crate::metrics::reply_sent(&reply);
                        sessions.spawn(refuse(stream, reply));
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
    drain(sessions, live.current().server.shutdown_timeout).await;
}

async fn refuse(mut stream: TcpStream, reply: String) {
    let reply = format!("{reply}\r\n");
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.write_all(reply.as_bytes())).await;
    let _ = stream.shutdown().await;
}

/// The network a client is in, for the per-network limit: its /24 (IPv4,
/// IPv4-mapped IPv6 included) or /64 (IPv6).
fn network_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            IpAddr::from([a, b, c, 0])
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => network_of(IpAddr::V4(v4)),
            None => {
                let s = v6.segments();
                IpAddr::from([s[0], s[1], s[2], s[3], 0, 0, 0, 0])
            }
        },
    }
}

/// Refusals are logged once, then at most once a minute per client with
/// the count in between: a flood does not flood the log.
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(60);
/// Clients remembered for that; past it the memory starts over.
const REFUSAL_LOG_CLIENTS: usize = 10_000;

/// Open sessions per client address and per network, and the refusal log.
struct Clients {
    open: Mutex<(HashMap<IpAddr, usize>, HashMap<IpAddr, usize>)>,
    refused: Mutex<HashMap<IpAddr, (Instant, u64)>>,
}

/// A session's place in the per-client counts, given back when dropped.
struct ClientSlot {
    clients: Arc<Clients>,
    ip: IpAddr,
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut open = self.clients.open.lock().unwrap_or_else(|p| p.into_inner());
        let (by_client, by_network) = &mut *open;
        for (map, key) in [(by_client, self.ip), (by_network, network_of(self.ip))] {
            if let Some(n) = map.get_mut(&key) {
                *n -= 1;
                if *n == 0 {
                    map.remove(&key);
                }
            }
        }
    }
}

impl Clients {
    fn new() -> Clients {
        Clients {
            open: Mutex::new((HashMap::new(), HashMap::new())),
            refused: Mutex::new(HashMap::new()),
        }
    }

    /// A slot for one more session from `ip`, or which limit of `server`
    /// (as last reloaded) it would pass.
    fn take(
        self: &Arc<Self>,
        ip: IpAddr,
        server: &ServerConfig,
    ) -> Result<ClientSlot, &'static str> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let (by_client, by_network) = &mut *open;
        let network = network_of(ip);
        if by_client.get(&ip).copied().unwrap_or(0) >= server.max_connections_per_client {
            return Err("address");
        }
        if by_network.get(&network).copied().unwrap_or(0) >= server.max_connections_per_network {
            return Err("network");
        }
        *by_client.entry(ip).or_default() += 1;
        *by_network.entry(network).or_default() += 1;
        Ok(ClientSlot {
            clients: self.clone(),
            ip,
        })
    }

    fn log_refusal(&self, ip: IpAddr, limit: &str) {
        let mut refused = self.refused.lock().unwrap_or_else(|p| p.into_inner());
        if refused.len() >= REFUSAL_LOG_CLIENTS && !refused.contains_key(&ip) {
            refused.clear();
        }
        let now = Instant::now();
        match refused.get_mut(&ip) {
            Some((last, since)) if now.duration_since(*last) < REFUSAL_LOG_INTERVAL => *since += 1,
            entry => {
                let more = entry.map(|(_, n)| *n).unwrap_or(0);
                tracing::warn!(client = %ip, limit, refused_since_last_line = more, "connection limit reached; refusing");
                refused.insert(ip, (now, 0));
            }
        }
    }
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
