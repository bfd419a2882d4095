//! The edge gateway: holds the WebSocket connections, follows each connected
//! user's event stream, throttles and diffs updates, and serves the REST
//! snapshot for clients that poll (BRIEF §1–5).
//!
//! # Layout
//! - [`server`]: the routes (`app(state)`), the socket upgrade, `run` and
//!   `serve` with graceful shutdown.
//! - [`state`]: what every handler shares ([`AppState`]).
//! - [`admit`]: every admission check, and [`admit::Refusal`] with its one
//!   mapping to close code and HTTP status.
//! - [`auth`]: JWT validation and token extraction (bearer or cookie).
//! - [`config`]: the gateway's settings and their environment variables.
//! - `hubs`: the registry of per-user hubs (sharded) and the dispatcher of
//!   the log's notices and market marks.
//! - `hub`: one task per connected user — seq tracking, gap repair,
//!   valuation at market marks, throttle, fanout filtered by channel.
//! - `holders`: which connected users hold which symbols (a mark's route).
//! - `marks`: a stored snapshot valued at the latest marks.
//! - [`throttle`]: the pure, clock-injected throttle; [`diff`]: which
//!   changes are too small to send.
//! - `connection`: one socket's `select!` loop.
//! - `queue`: the bounded queues between hubs and connections, small while
//!   empty.
//! - `rest`: `/api/portfolio`, `/api/health`, `/metrics` and the admin stats.
//! - `stats`: metrics and the admin endpoint's totals.

pub mod admit;
pub mod auth;
pub mod config;
mod connection;
pub mod diff;
mod holders;
mod hub;
mod hubs;
mod marks;
mod queue;
mod rest;
pub mod server;
pub mod state;
mod stats;
pub mod throttle;

pub use config::GatewayConfig;
pub use server::{app, run, serve, serve_state};
pub use state::AppState;
