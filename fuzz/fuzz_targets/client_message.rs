//! What a client sends the gateway: `decode_client` never panics, and what
//! it accepts re-encodes to the same message.
#![no_main]

use common::protocol::decode_client;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(message) = decode_client(text) {
        let again = serde_json::to_string(&message).expect("an accepted message serializes");
        assert_eq!(decode_client(&again), Ok(message), "{text:?} re-encoded as {again:?}");
    }
});
