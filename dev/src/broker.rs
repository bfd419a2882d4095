//! The simulated broker: prices, and per account its cash and positions.
//! The functions read it through the `Broker` trait after a fill, exactly as
//! they read Alpaca in production; the simulator moves it.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use broker::{AccountId, Broker, BrokerAccount, BrokerError, BrokerPosition};
use common::event::{OrderSide, PositionSide, Symbol};
use common::sync::lock;
use rust_decimal::Decimal;

/// The demo users; each has a simulated broker account `acct-<user>`.
pub const DEMO_USERS: [&str; 3] = ["alice", "bob", "carol"];

/// Starting cash of every demo account.
const STARTING_CASH: i64 = 100_000;

/// The demo symbols and their opening prices.
pub(crate) const SYMBOLS: [(&str, i64); 6] =
    [("AAPL", 17_550), ("MSFT", 41_020), ("NVDA", 52_050), ("TSLA", 24_575), ("AMZN", 18_630), ("GOOGL", 16_845)];

/// The broker account of a demo user.
pub(crate) fn account_of(user: &str) -> String {
    format!("acct-{user}")
}

#[derive(Debug, Default)]
struct Account {
    cash: Decimal,
    /// symbol → (shares, average entry price); long only.
    positions: HashMap<String, (Decimal, Decimal)>,
}

#[derive(Debug)]
struct State {
    prices: HashMap<String, Decimal>,
    accounts: HashMap<String, Account>,
}

/// The simulated broker.
#[derive(Debug)]
pub(crate) struct SimBroker {
    state: Mutex<State>,
}

impl SimBroker {
    pub(crate) fn new(users: &[&str]) -> Self {
        let prices = SYMBOLS.iter().map(|(s, cents)| ((*s).to_owned(), Decimal::new(*cents, 2))).collect();
        let accounts = users
            .iter()
            .map(|u| (account_of(u), Account { cash: Decimal::from(STARTING_CASH), ..Account::default() }))
            .collect();
        Self { state: Mutex::new(State { prices, accounts }) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// The current price of `symbol`.
    pub(crate) fn price(&self, symbol: &str) -> Decimal {
        self.lock().prices.get(symbol).copied().unwrap_or(Decimal::ONE_HUNDRED)
    }

    /// Moves every price by its factor in basis points and returns the new prices.
    pub(crate) fn walk(&self, moves: &[(&str, i64)]) -> Vec<(String, Decimal)> {
        let mut state = self.lock();
        moves
            .iter()
            .filter_map(|(symbol, bps)| {
                let price = state.prices.get_mut(*symbol)?;
                let next = (*price * (Decimal::from(10_000 + bps) / Decimal::from(10_000))).round_dp(2);
                *price = next.max(Decimal::ONE);
                Some(((*symbol).to_owned(), *price))
            })
            .collect()
    }

    /// Shares `account` holds in `symbol`.
    pub(crate) fn holding(&self, account: &str, symbol: &str) -> Decimal {
        self.lock().accounts.get(account).and_then(|a| a.positions.get(symbol)).map_or(Decimal::ZERO, |p| p.0)
    }

    /// Applies an execution: shares and cash move at `price`.
    pub(crate) fn execute(&self, account: &str, symbol: &str, side: OrderSide, qty: Decimal, price: Decimal) {
        let mut state = self.lock();
        let Some(account) = state.accounts.get_mut(account) else { return };
        let position = account.positions.entry(symbol.to_owned()).or_insert((Decimal::ZERO, Decimal::ZERO));
        match side {
            OrderSide::Buy => {
                let total = position.0 + qty;
                position.1 = ((position.0 * position.1 + qty * price) / total).round_dp(4);
                position.0 = total;
                account.cash -= qty * price;
            }
            OrderSide::Sell => {
                let sold = qty.min(position.0);
                position.0 -= sold;
                account.cash += sold * price;
            }
        }
        if position.0.is_zero() {
            account.positions.remove(symbol);
        }
    }
}

#[async_trait]
impl Broker for SimBroker {
    async fn position(&self, account: &AccountId, symbol: &Symbol) -> Result<Option<BrokerPosition>, BrokerError> {
        Ok(self.positions(account).await?.into_iter().find(|p| &p.symbol == symbol))
    }

    async fn positions(&self, account: &AccountId) -> Result<Vec<BrokerPosition>, BrokerError> {
        let state = self.lock();
        let account =
            state.accounts.get(account.as_str()).ok_or_else(|| BrokerError::Refused("unknown account".into()))?;
        account
            .positions
            .iter()
            .map(|(symbol, (quantity, entry))| {
                Ok(BrokerPosition {
                    symbol: Symbol::new(symbol.as_str()).map_err(|e| BrokerError::Malformed(e.to_string()))?,
                    quantity: *quantity,
                    side: PositionSide::Long,
                    average_entry_price: *entry,
                    current_price: state.prices.get(symbol.as_str()).copied(),
                })
            })
            .collect()
    }

    async fn account(&self, account: &AccountId) -> Result<BrokerAccount, BrokerError> {
        let state = self.lock();
        let held =
            state.accounts.get(account.as_str()).ok_or_else(|| BrokerError::Refused("unknown account".into()))?;
        let market_value: Decimal = held
            .positions
            .iter()
            .map(|(symbol, (qty, _))| *qty * state.prices.get(symbol).copied().unwrap_or_default())
            .sum();
        let equity = (held.cash + market_value).round_dp(2);
        Ok(BrokerAccount {
            cash: held.cash.round_dp(2),
            equity,
            last_equity: Decimal::from(STARTING_CASH),
            buying_power: (held.cash * Decimal::TWO).max(Decimal::ZERO).round_dp(2),
        })
    }
}
