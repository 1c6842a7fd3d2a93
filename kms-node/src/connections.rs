//! How many TCP connections a listener (gRPC, metrics) holds, and for how long one may say
//! nothing.
//!
//! Without this, one peer holding thousands of idle connections exhausts the node's file
//! descriptors and new clients time out. Each peer address may hold a few connections; past
//! the total, a new connection from a fresh address closes the oldest connection of the
//! address that holds the most (so no number of addresses holding connections shuts a fresh
//! one out); a connection that has not sent a handshake's worth of bytes a while after it
//! opens is closed. IPv6 peers count per /64. Each connection holds two descriptors (its own
//! and a duplicate to close it from here): keep the total below half the open-file limit.

use std::collections::HashMap;
use std::net::{IpAddr, Shutdown, SocketAddr};
use std::os::fd::AsFd;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tonic::transport::server::{Connected, TcpConnectInfo};

/// The limits.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Connections one peer address may hold; more are closed at once.
    pub per_peer: usize,
    /// Connections in all; past it the fullest peer's oldest connection is closed.
    pub total: usize,
    /// How long a new connection may send nothing.
    pub first_bytes: Duration,
}

/// The unit a share is counted in: an IPv4 address, or an IPv6 /64 (one host's usual
/// allocation; counting single IPv6 addresses would give one host billions of shares).
fn peer_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let mut seg = v6.segments();
            seg[4..].fill(0);
            IpAddr::V6(seg.into())
        }
        v4 => v4,
    }
}

/// Bytes a connection must send before `first_bytes` passes: the HTTP/2 client preface is 24
/// (a TLS ClientHello is longer), so a trickle of one byte does not hold a place.
const FIRST_BYTES: u64 = 24;

struct Open {
    id: u64,
    opened: Instant,
    /// A duplicate of the socket, to shut the connection down from here.
    socket: std::net::TcpStream,
}

#[derive(Default)]
struct Table {
    by_peer: HashMap<IpAddr, Vec<Open>>,
    total: usize,
    next_id: u64,
}

impl Table {
    /// The connection to close to make room: the oldest of the peer holding the most.
    fn victim(&self) -> Option<(IpAddr, u64)> {
        self.by_peer
            .iter()
            .filter_map(|(ip, open)| {
                let oldest = open.iter().min_by_key(|o| o.opened)?;
                Some((open.len(), std::cmp::Reverse(oldest.opened), *ip, oldest.id))
            })
            .max()
            .map(|(_, _, ip, id)| (ip, id))
    }

    fn remove(&mut self, ip: IpAddr, id: u64) -> Option<Open> {
        let open = self.by_peer.get_mut(&ip)?;
        let at = open.iter().position(|o| o.id == id)?;
        let gone = open.swap_remove(at);
        if open.is_empty() {
            self.by_peer.remove(&ip);
        }
        self.total -= 1;
        Some(gone)
    }
}

/// What the listener did with connections, since it started (for metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectionStats {
    /// Connections held now.
    pub open: u64,
    /// Connections admitted.
    pub accepted: u64,
    /// Connections refused because their address held its share.
    pub refused_peer_share: u64,
    /// Connections closed to make room for a new one past the total.
    pub closed_for_room: u64,
    /// Connections closed because they sent no handshake in time.
    pub closed_no_handshake: u64,
}

#[derive(Default)]
struct Counts {
    accepted: AtomicU64,
    refused_peer_share: AtomicU64,
    closed_for_room: AtomicU64,
    closed_no_handshake: AtomicU64,
}

/// The connections the listener holds.
pub struct Connections {
    limits: ConnectionLimits,
    table: Mutex<Table>,
    counts: Counts,
}

fn close(socket: &std::net::TcpStream) {
    // The connection's task then reads end-of-stream and drops it.
    let _ = socket.shutdown(Shutdown::Both);
}

impl Connections {
    /// No connections yet.
    pub fn new(limits: ConnectionLimits) -> Arc<Connections> {
        Arc::new(Connections {
            limits,
            table: Mutex::new(Table::default()),
            counts: Counts::default(),
        })
    }

    /// What the listener did so far.
    pub fn stats(&self) -> ConnectionStats {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ConnectionStats {
            open: self.lock().total as u64,
            accepted: load(&self.counts.accepted),
            refused_peer_share: load(&self.counts.refused_peer_share),
            closed_for_room: load(&self.counts.closed_for_room),
            closed_no_handshake: load(&self.counts.closed_no_handshake),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Connections held now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().total
    }

    /// Admits `stream` from `peer`, or refuses it (`None`: dropping it closes it).
    fn admit(self: &Arc<Self>, stream: TcpStream, peer: SocketAddr) -> Option<Tracked> {
        let ip = peer_key(peer.ip());
        let mut table = self.lock();
        if table.by_peer.get(&ip).map_or(0, Vec::len) >= self.limits.per_peer {
            tracing::debug!(%peer, "connection refused: this address holds its share");
            self.counts
                .refused_peer_share
                .fetch_add(1, Ordering::Relaxed);
            return None;
        }
        // Make room before taking another descriptor for the new one.
        if table.total >= self.limits.total {
            if let Some((victim_ip, id)) = table.victim() {
                if let Some(gone) = table.remove(victim_ip, id) {
                    tracing::debug!(%victim_ip, "connection closed to make room");
                    self.counts.closed_for_room.fetch_add(1, Ordering::Relaxed);
                    close(&gone.socket);
                }
            }
        }
        let socket = match stream.as_fd().try_clone_to_owned() {
            Ok(fd) => std::net::TcpStream::from(fd),
            Err(e) => {
                tracing::warn!(%peer, "connection refused: {e}");
                return None;
            }
        };
        let id = table.next_id;
        table.next_id += 1;
        table.by_peer.entry(ip).or_default().push(Open {
            id,
            opened: Instant::now(),
            socket,
        });
        table.total += 1;
        drop(table);
        self.counts.accepted.fetch_add(1, Ordering::Relaxed);
        let read = Arc::new(AtomicU64::new(0));
        // The watchdog holds no descriptor: it closes the connection through the table, and
        // only if it is still there and has not sent enough.
        let (watched, wait, weak) = (read.clone(), self.limits.first_bytes, Arc::downgrade(self));
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            if watched.load(Ordering::Relaxed) >= FIRST_BYTES {
                return;
            }
            let Some(connections) = weak.upgrade() else {
                return;
            };
            let table = connections.lock();
            if let Some(open) = table
                .by_peer
                .get(&ip)
                .and_then(|open| open.iter().find(|o| o.id == id))
            {
                tracing::debug!(%peer, "connection closed: no handshake");
                connections
                    .counts
                    .closed_no_handshake
                    .fetch_add(1, Ordering::Relaxed);
                close(&open.socket);
            }
        });
        Some(Tracked {
            io: stream,
            read,
            _slot: Slot {
                connections: self.clone(),
                ip,
                id,
            },
        })
    }

    /// Accepts connections on `listener` for ever, admitted ones into the stream returned.
    pub fn incoming(
        self: &Arc<Self>,
        listener: TcpListener,
    ) -> tokio_stream::wrappers::ReceiverStream<Result<Tracked, std::io::Error>> {
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let connections = self.clone();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    accepted = listener.accept() => accepted,
                    // The server stopped: stop listening too (the port is released).
                    () = tx.closed() => return,
                };
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of descriptors, or a connection reset before it was accepted:
                        // not a reason to stop listening.
                        tracing::warn!("accepting a connection failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                if let Some(tracked) = connections.admit(stream, peer) {
                    if tx.send(Ok(tracked)).await.is_err() {
                        return; // the server stopped
                    }
                }
            }
        });
        tokio_stream::wrappers::ReceiverStream::new(rx)
    }
}

/// The admitted connections of a listener as an axum [`Listener`](axum::serve::Listener), so the
/// HTTP metrics listener holds the same limits as the gRPC one.
pub struct AdmittedListener {
    incoming: tokio_stream::wrappers::ReceiverStream<Result<Tracked, std::io::Error>>,
    local: SocketAddr,
}

impl AdmittedListener {
    /// Accepts on `listener` through `connections`.
    pub fn new(connections: &Arc<Connections>, listener: TcpListener) -> std::io::Result<Self> {
        let local = listener.local_addr()?;
        Ok(AdmittedListener {
            incoming: connections.incoming(listener),
            local,
        })
    }
}

impl axum::serve::Listener for AdmittedListener {
    type Io = Tracked;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Tracked, SocketAddr) {
        use tokio_stream::StreamExt;
        loop {
            match self.incoming.next().await {
                Some(Ok(tracked)) => {
                    let peer = tracked.io.peer_addr().unwrap_or(self.local);
                    return (tracked, peer);
                }
                Some(Err(_)) => continue,
                // The accepting task only ends when this listener is dropped.
                None => std::future::pending().await,
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}

/// A place in the table, given back when the connection ends.
struct Slot {
    connections: Arc<Connections>,
    ip: IpAddr,
    id: u64,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.connections.lock().remove(self.ip, self.id);
    }
}

/// An admitted connection.
pub struct Tracked {
    io: TcpStream,
    /// Bytes read so far (up to [`FIRST_BYTES`] is all that matters).
    read: Arc<AtomicU64>,
    /// Given back on drop.
    _slot: Slot,
}

impl Connected for Tracked {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.connect_info()
    }
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        let n = (buf.filled().len() - before) as u64;
        if n > 0 && self.read.load(Ordering::Relaxed) < FIRST_BYTES {
            self.read.fetch_add(n, Ordering::Relaxed);
        }
        polled
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;
    use tokio_stream::StreamExt;

    /// A listener whose server side reads every admitted connection until it ends, as a
    /// server would.
    async fn listen(limits: ConnectionLimits) -> (Arc<Connections>, SocketAddr) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Connections::new(limits);
        let mut incoming = connections.incoming(listener);
        tokio::spawn(async move {
            while let Some(Ok(mut c)) = incoming.next().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 64];
                    while matches!(c.read(&mut buf).await, Ok(n) if n > 0) {}
                });
            }
        });
        (connections, addr)
    }

    async fn connect_from(source: &str, to: SocketAddr) -> TcpStream {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
        socket.connect(to).await.unwrap()
    }

    /// True if the server closed `stream` (end of stream or reset) within `wait`.
    async fn closed(stream: &mut TcpStream, wait: Duration) -> bool {
        let mut b = [0u8; 1];
        matches!(
            tokio::time::timeout(wait, stream.read(&mut b)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }

    async fn settle() {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    const LONG: Duration = Duration::from_secs(60);

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(peer_key(a), peer_key(b));
        assert_ne!(peer_key(a), peer_key(c));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(peer_key(mapped), "10.0.0.1".parse::<IpAddr>().unwrap());
    }

    #[tokio::test]
    async fn one_address_holds_its_share_only() {
        let (c, addr) = listen(ConnectionLimits {
            per_peer: 3,
            total: 100,
            first_bytes: LONG,
        })
        .await;
        let mut streams = Vec::new();
        for _ in 0..10 {
            streams.push(connect_from("127.0.0.2", addr).await);
        }
        settle().await;
        assert_eq!(c.len(), 3);
        let mut refused = 0;
        for s in &mut streams[3..] {
            refused += closed(s, Duration::from_secs(5)).await as usize;
        }
        assert_eq!(refused, 7);
        let stats = c.stats();
        assert_eq!((stats.open, stats.accepted), (3, 3));
        assert_eq!(stats.refused_peer_share, 7);
    }

    #[tokio::test]
    async fn a_fresh_address_gets_in_when_all_are_taken() {
        let (c, addr) = listen(ConnectionLimits {
            per_peer: 4,
            total: 8,
            first_bytes: LONG,
        })
        .await;
        let mut old = Vec::new();
        for source in ["127.0.0.2", "127.0.0.3"] {
            for _ in 0..4 {
                old.push(connect_from(source, addr).await);
                settle().await;
            }
        }
        assert_eq!(c.len(), 8);
        let mut fresh = connect_from("127.0.0.9", addr).await;
        settle().await;
        assert_eq!(c.len(), 8, "the total holds");
        // The oldest connection of a fullest address made room; the fresh one stays open.
        assert!(closed(&mut old[0], Duration::from_secs(5)).await);
        assert!(!closed(&mut fresh, Duration::from_millis(300)).await);
        assert_eq!(c.stats().closed_for_room, 1);
        assert_eq!(c.stats().accepted, 9);
    }

    #[tokio::test]
    async fn a_connection_that_says_nothing_is_closed() {
        let (c, addr) = listen(ConnectionLimits {
            per_peer: 4,
            total: 8,
            first_bytes: Duration::from_secs(1),
        })
        .await;
        let mut silent = connect_from("127.0.0.2", addr).await;
        let mut talking = connect_from("127.0.0.2", addr).await;
        let mut trickle = connect_from("127.0.0.2", addr).await;
        tokio::io::AsyncWriteExt::write_all(&mut trickle, b"P")
            .await
            .unwrap();
        tokio::io::AsyncWriteExt::write_all(&mut talking, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            .await
            .unwrap();
        assert!(closed(&mut silent, Duration::from_secs(10)).await);
        assert!(
            closed(&mut trickle, Duration::from_secs(10)).await,
            "one byte is not a handshake"
        );
        assert!(!closed(&mut talking, Duration::from_millis(300)).await);
        settle().await;
        assert_eq!(c.len(), 1, "the closed one gave its place back");
        assert_eq!(c.stats().closed_no_handshake, 2);
        assert_eq!(c.stats().open, 1);
    }
}
