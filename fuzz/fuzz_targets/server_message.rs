//! What the gateway sends a client, as the Rust client reads it: decoding
//! (full or delta), resolving deltas over the state and merging never
//! panic, and a merged state stays within its bounds.
#![no_main]

use common::protocol::delta::DeltaMessage;
use common::protocol::ServerMessage;
use libfuzzer_sys::fuzz_target;
use portfolio_client::PortfolioState;

const MAX_TRADES: usize = 5;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut state = PortfolioState::default();
    // Several messages per input, one per line, so merges meet each other.
    for line in text.lines() {
        let message = if DeltaMessage::is_delta(line) {
            match serde_json::from_str::<DeltaMessage>(line).map(|delta| state.resolve(delta)) {
                Ok(Ok(message)) => message,
                _ => continue,
            }
        } else {
            match serde_json::from_str::<ServerMessage>(line) {
                Ok(message) => message,
                Err(_) => continue,
            }
        };
        let seq = state.seq;
        state.apply(message, MAX_TRADES);
        assert!(state.trades.len() <= MAX_TRADES);
        assert!(state.positions.values().all(|p| !p.is_closed()), "closed positions leave the state");
        assert!(state.orders.values().all(|o| !o.status.is_closed()), "closed orders leave the state");
        // A snapshot may go back (another epoch); nothing else does.
        if !line.contains("\"snapshot\"") {
            assert!(state.seq >= seq, "seq went back from {seq} to {} on {line:?}", state.seq);
        }
    }
});
