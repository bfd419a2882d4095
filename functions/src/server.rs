//! The local HTTP server: the functions' router on a TCP listener, with
//! graceful shutdown. Dev mode and the end-to-end tests use this (or embed
//! [`crate::app`] directly); production uses [`crate::lambda`].

use std::future::Future;

use axum::Router;
use tokio::net::TcpListener;

/// Serves `router` on `listener` until `shutdown` completes, then lets
/// requests in flight finish.
pub async fn run(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "Functions listening.");
    }
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await
}
