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
