//! The broker relay's reading of Alpaca's streams: the first byte picks the
//! frame (trade updates, market data), the rest is the frame's text. Never
//! a panic; an accepted trade update is an object, and an accepted frame
//! gives exactly one print per trade message in it.
#![no_main]

use broker_alpaca::stream::{prints, trade_update};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, frame)) = data.split_first() else { return };
    let Ok(frame) = std::str::from_utf8(frame) else { return };
    if which % 2 == 0 {
        if let Ok(Some(update)) = trade_update(frame) {
            assert!(update.is_object());
        }
    } else if let Ok(prints) = prints(frame) {
        // serde_json's `Value` refuses numbers beyond f64 (`1E456`) that the
        // relay reads as text and skips in messages it does not use; compare
        // only where both read the frame.
        if let Ok(messages) = serde_json::from_str::<Vec<serde_json::Value>>(frame) {
            let trades = messages.iter().filter(|m| m["T"] == "t").count();
            assert_eq!(prints.len(), trades, "one print per trade message");
        }
    }
});
