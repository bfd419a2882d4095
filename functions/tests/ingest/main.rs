//! The ingest functions driven through their real adapters (the local HTTP
//! server, `lambda_http` with API Gateway and ALB fixtures, the SQS
//! adapter) against a real `redis-server` and the fake Alpaca API.
//!
//! One test binary, several modules: one link step for all of them.

mod accounts;
mod bench;
mod completions;
mod harness;
mod lambda;
mod prices;
mod sync;
mod webhook;
