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
}

impl Function {
    /// Every function.
    pub const ALL: [Function; 3] = [Function::BrokerWebhook, Function::QueueCompletions, Function::PriceTicks];

    /// The function's (and its binary's) name.
    pub fn name(self) -> &'static str {
        match self {
            Function::BrokerWebhook => "broker-webhook",
            Function::QueueCompletions => "queue-completions",
            Function::PriceTicks => "price-ticks",
        }
    }

    /// The HTTP route.
    pub const fn path(self) -> &'static str {
        match self {
            Function::BrokerWebhook => "/webhooks/broker",
            Function::QueueCompletions => "/queue/completions",
            Function::PriceTicks => "/ingest/prices",
        }
    }
}
