//! The stateless ingest functions (BRIEF §1–2): they turn broker trade
//! updates, order-submission completions and price ticks into the users'
//! portfolio events, published through the event log. Each function is a
//! pure handler (`handle(input, &deps) -> Result<_, Error>`) with thin
//! adapters: an axum router (local HTTP, and `lambda_http` for API Gateway
//! and ALB) and an SQS adapter with partial batch failures.
//!
//! # Layout
//! - [`function`]: the functions, their names and routes.
//! - [`webhook`], [`completion`], [`prices`], [`accounts`], [`sync`]: the
//!   handlers and their input types (broker updates, completions, ticks,
//!   account links, position sync).
//! - [`app`]: the router (`app(state) -> Router`), body limit, signature
//!   check and JSON decoding in front of the handlers.
//! - [`lambda`]: Lambda adapters (HTTP events, SQS batches).
//! - [`server`]: the local HTTP server.
//! - [`signature`]: HMAC-SHA256 request signatures (`t=…,v1=…`).
//! - [`input`]: JSON decoding that names the bad field; id checks.
//! - [`publish`]: publishing a handler's events; the [`publish::Outcome`].
//! - [`deps`]: what handlers need (log, index, broker, limits).
//! - [`config`]: configuration, defaults and bounds.
//! - [`error`]: the one error type and its one HTTP mapping.
//! - `runtime` (feature `alpaca`): what each binary in `src/bin` runs.

pub mod accounts;
pub mod app;
pub mod completion;
pub mod config;
pub mod deps;
pub mod error;
pub mod function;
pub mod input;
pub mod lambda;
pub mod prices;
pub mod publish;
#[cfg(feature = "alpaca")]
pub mod runtime;
pub mod server;
pub mod signature;
pub mod sync;
pub mod webhook;

pub use app::{app, AppState};
pub use deps::{Deps, Limits};
pub use error::Error;
pub use function::Function;
