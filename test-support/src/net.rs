//! Free loopback ports for servers a test starts.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};

/// A free loopback address (probed, then released for the server to bind),
/// never Redis' default port 6379.
pub fn free_addr() -> std::io::Result<SocketAddr> {
    loop {
        let addr = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?.local_addr()?;
        if addr.port() != 6379 {
            return Ok(addr);
        }
    }
}

/// The port of [`free_addr`].
///
/// # Panics
/// When no loopback port can be bound.
pub fn free_port() -> u16 {
    free_addr().expect("bind a free loopback port").port()
}

/// A loopback TCP proxy that holds every byte for a set one-way delay in
/// each direction: network latency where the kernel has no netem
/// (docs/reliability.md, "Network faults"). Bytes keep their order; the
/// delay can change while connections are open (bytes read before the
/// change keep their old deadline). Dropping it closes every connection.
#[derive(Debug)]
pub struct DelayProxy {
    /// Where clients connect instead of the upstream.
    pub addr: SocketAddr,
    delay_us: std::sync::Arc<std::sync::atomic::AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl DelayProxy {
    /// Listens on a free loopback port and forwards to `upstream`, with no
    /// delay until [`Self::set_delay`].
    ///
    /// # Errors
    /// When no loopback port can be bound.
    pub async fn start(upstream: SocketAddr) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let delay_us = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let delay = delay_us.clone();
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(upstream).await else { continue };
                let _ = (client.set_nodelay(true), server.set_nodelay(true));
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                connections.spawn(delayed_copy(client_read, server_write, delay.clone()));
                connections.spawn(delayed_copy(server_read, client_write, delay.clone()));
            }
        });
        Ok(Self { addr, delay_us, task })
    }

    /// Sets the one-way delay of bytes read from now on.
    pub fn set_delay(&self, delay: std::time::Duration) {
        let micros = u64::try_from(delay.as_micros()).unwrap_or(u64::MAX);
        self.delay_us.store(micros, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        // The accept task owns the connections' JoinSet: aborting it drops
        // the set, which aborts every copy and closes both sides.
        self.task.abort();
    }
}

/// Copies `from` to `to`, each chunk written once `delay` has passed since
/// it was read. A reader and a writer task joined by a channel, so reading
/// goes on (and time keeps counting) while earlier chunks wait.
async fn delayed_copy(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay_us: std::sync::Arc<std::sync::atomic::AtomicU64>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (chunks, mut due) = tokio::sync::mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
    let writer = async move {
        while let Some((at, chunk)) = due.recv().await {
            tokio::time::sleep_until(at).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    };
    let reader = async move {
        let mut buffer = vec![0_u8; 16 * 1024];
        loop {
            match from.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    let delay = std::time::Duration::from_micros(delay_us.load(std::sync::atomic::Ordering::Relaxed));
                    if chunks.send((tokio::time::Instant::now() + delay, buffer[..n].to_vec())).is_err() {
                        return;
                    }
                }
            }
        }
    };
    // The writer ends once the reader has ended (the channel closes) and
    // every chunk is out; the reader ends on EOF or when the writer failed.
    tokio::join!(reader, writer);
}
