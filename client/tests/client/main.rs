//! End-to-end tests of the Rust client against the real gateway, started in
//! process on a loopback port (with the in-memory event log or a spawned
//! `redis-server`), and against a scripted fake for the close codes and
//! silences the real gateway does not produce on demand. No sleeps: every
//! wait is on a condition, with a deadline.

mod auth;
mod heartbeat;
mod live;
mod polling;
mod resume;
mod support;
