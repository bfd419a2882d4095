//! End-to-end tests across processes, and the checks that keep the
//! deployment files in step with the code: the SAM template, the compose
//! file and `samconfig.toml` are read here as data, next to the names the
//! binaries actually read.
//!
//! # Layout
//! - [`workspace`]: the repository's paths, and the workspace's binaries
//!   (built once per test run by the same cargo that runs the tests).
//! - [`process`]: a spawned binary, killed when dropped, whose output is
//!   shown when a check fails.
//! - [`http`]: a small blocking HTTP/1.1 client for loopback checks.
//! - [`vars`]: the environment variable names of the code's `vars` modules,
//!   read from the sources.
//! - [`template`], [`compose`], [`samconfig`]: `infra/template.yaml`,
//!   `infra/compose.yaml` and `samconfig.toml` as data.
//!
//! The tests themselves are in `tests/`: `deploy_config.rs` (names and
//! invariants across code and deployment files) and `compose_topology.rs`
//! (the compose stack run as plain processes).

pub mod compose;
pub mod samconfig;
pub mod template;
pub mod vars;
pub mod workspace;
