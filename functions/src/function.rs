//! The functions: one Lambda (and one binary) each in production, one
//! route each in local HTTP mode.

/// The functions, each one Lambda (and one binary) in production.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Function {
    /// `POST /webhooks/broker`: Alpaca trade updates.
    BrokerWebhook,
    /// `POST /queue/completions` (SQS in production): order-submission completions.
    QueueCompletions,
    /// `POST /ingest/prices`: market-data tick batches.
    PriceTicks,
    /// `POST /internal/account-links`: the app's broker-linking flow.
    AccountLinks,
    /// `POST /internal/position-sync`: one account's positions and balances
    /// reconciled with the broker.
    PositionSync,
}

impl Function {
    /// Every function.
    pub const ALL: [Function; 5] = [
        Function::BrokerWebhook,
        Function::QueueCompletions,
        Function::PriceTicks,
        Function::AccountLinks,
        Function::PositionSync,
    ];

    /// The function's (and its binary's) name.
    pub fn name(self) -> &'static str {
        match self {
            Function::BrokerWebhook => "broker-webhook",
            Function::QueueCompletions => "queue-completions",
            Function::PriceTicks => "price-ticks",
            Function::AccountLinks => "account-links",
            Function::PositionSync => "position-sync",
        }
    }

    /// The HTTP route.
    pub const fn path(self) -> &'static str {
        match self {
            Function::BrokerWebhook => "/webhooks/broker",
            Function::QueueCompletions => "/queue/completions",
            Function::PriceTicks => "/ingest/prices",
            Function::AccountLinks => "/internal/account-links",
            Function::PositionSync => "/internal/position-sync",
        }
    }

    /// Whether requests are signed with the webhook secret (the broker's
    /// side) rather than the ingest secret (our own services).
    pub const fn signed_by_webhook_secret(self) -> bool {
        matches!(self, Function::BrokerWebhook)
    }

    /// Whether the function calls the broker API.
    pub const fn needs_broker(self) -> bool {
        matches!(self, Function::BrokerWebhook | Function::PositionSync)
    }
}
