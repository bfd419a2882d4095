//! Every ingest body, decoded and checked as the functions do: the first
//! byte picks the body (completion, tick batch, broker trade update,
//! account link, position sync), the rest is the JSON. Never a panic; an accepted body meets the rules.
#![no_main]

use functions::accounts::{self, LinkRequest};
use functions::completion::{self, Completion};
use functions::input::parse;
use functions::prices::{self, TickBatch};
use functions::sync::{self, SyncRequest};
use functions::webhook::{self, TradeUpdateMessage};
use libfuzzer_sys::fuzz_target;

const MAX_TICKS: usize = 1_000;

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else { return };
    match which % 5 {
        0 => {
            if let Ok(completion) = parse::<Completion>(body) {
                if completion::check(&completion).is_ok() {
                    assert!(completion.order.qty > 0.into());
                    assert!(completion.order.limit_price.is_none_or(|p| p > 0.into()));
                }
            }
        }
        1 => {
            if let Ok(batch) = parse::<TickBatch>(body) {
                if prices::check(&batch, MAX_TICKS).is_ok() {
                    assert!(batch.ticks.len() <= MAX_TICKS);
                    assert!(batch.ticks.iter().all(|t| t.price > 0.into()));
                }
            }
        }
        2 => {
            if let Ok(message) = parse::<TradeUpdateMessage>(body) {
                let _ = webhook::check(&message);
            }
        }
        3 => {
            if let Ok(request) = parse::<LinkRequest>(body) {
                if let Ok(account) = accounts::check(&request) {
                    assert!(!account.as_str().is_empty() && account.as_str().len() <= 128);
                }
            }
        }
        _ => {
            if let Ok(request) = parse::<SyncRequest>(body) {
                let _ = sync::check(&request);
            }
        }
    }
});
