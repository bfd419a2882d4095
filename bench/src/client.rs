//! What every bare client socket of the bench shares, whichever system it
//! talks to.

use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// The bench's client sockets: small buffers, so that tens of thousands
/// of them fit (tungstenite reads into a 128 KiB buffer by default).
pub fn client_config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(4 * 1024).write_buffer_size(0)
}
