//! The events the publish scenario sends: position updates (four in five)
//! and account updates with decimal strings, about 250–300 bytes of JSON
//! each, spread round robin over the users.

use common::event::{Account, Envelope, Event, Position, PositionSide, Symbol, Timestamp, UserId};
use event_log::NewEvent;
use rust_decimal::Decimal;

use crate::error::Error;

const SYMBOLS: [&str; 8] = ["AAPL", "MSFT", "NVDA", "TSLA", "AMZN", "GOOGL", "META", "BRK.B"];

/// Every fifth event is an account update.
const ACCOUNT_EVERY: u64 = 5;

/// The users and the event of each index.
#[derive(Debug)]
pub(super) struct Workload {
    users: Vec<UserId>,
    symbols: Vec<Symbol>,
    at: Timestamp,
}

impl Workload {
    /// `users` users named `bench-000001`, ….
    pub(super) fn new(users: usize) -> Result<Self, Error> {
        let invalid = |e: common::event::ModelError| Error::InvalidOption(e.to_string());
        let users =
            (1..=users).map(|i| UserId::new(format!("bench-{i:06}")).map_err(invalid)).collect::<Result<_, _>>()?;
        let symbols = SYMBOLS.iter().map(|s| Symbol::new(*s).map_err(invalid)).collect::<Result<_, _>>()?;
        Ok(Self { users, symbols, at: Timestamp::now() })
    }

    /// The user of event 0, whom the `redis-benchmark` baselines publish for.
    pub(super) fn first_user(&self) -> &UserId {
        &self.users[0]
    }

    /// Event `k`: for user `k mod users`; a position update, or an
    /// account update when `k mod 5 == 4`. Prices move with `k`.
    pub(super) fn event(&self, k: u64) -> Event {
        let user_id = self.users[(k % self.users.len() as u64) as usize].clone();
        let cents = |base: i64| Decimal::new(base + (k % 997) as i64, 2);
        if k % ACCOUNT_EVERY == ACCOUNT_EVERY - 1 {
            let equity = cents(10_430_875);
            return Event::from(Envelope::new(
                user_id,
                self.at,
                Account {
                    equity,
                    buying_power: cents(35_490_524),
                    cash: Decimal::new(2_512_033, 2),
                    portfolio_value: equity,
                    day_pnl: cents(123_456),
                    day_pnl_percent: Decimal::new(120, 2),
                    timestamp: self.at,
                },
            ));
        }
        let symbol = self.symbols[((k / self.users.len() as u64) % self.symbols.len() as u64) as usize].clone();
        let quantity = Decimal::from(100 + (k % 50) as i64);
        let current_price = cents(17_550);
        let entry_price = Decimal::new(16_812, 2);
        let unrealized_pnl = (current_price - entry_price) * quantity;
        Event::from(Envelope::new(
            user_id,
            self.at,
            Position {
                symbol,
                quantity,
                current_price,
                entry_price,
                unrealized_pnl,
                unrealized_pnl_percent: ((current_price - entry_price) / entry_price * Decimal::ONE_HUNDRED)
                    .round_dp(2),
                market_value: current_price * quantity,
                side: PositionSide::Long,
                strategy_id: None,
                opened_at: None,
            },
        ))
    }

    /// Event `k` of run `run`, with a dedupe id no other event of the run has.
    pub(super) fn new_event(&self, run: usize, k: u64) -> NewEvent {
        NewEvent::new(self.event(k), format!("r{run}-{k}"))
    }

    /// The mean size of the stored JSON of the first `count` events.
    pub(super) fn mean_json_bytes(&self, count: u64) -> f64 {
        let count = count.max(1);
        let total: usize = (0..count)
            .map(|k| {
                let mut event = self.event(k);
                event.set_seq(Some(k + 1));
                serde_json::to_string(&event).map(|json| json.len()).unwrap_or_default()
            })
            .sum();
        total as f64 / count as f64
    }
}
