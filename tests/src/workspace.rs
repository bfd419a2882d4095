//! The repository's paths, and the workspace's binaries for tests that run
//! them as separate processes.
//!
//! An integration test only gets `CARGO_BIN_EXE_*` for binaries of its own
//! package, and the gateway and the functions live in other packages. So the
//! first test that needs a binary asks cargo to build it, once per test
//! process, with the same profile and target directory as the running test
//! and the same target selection `cargo test --workspace` compiles (every
//! test target, so the same feature unification): under `.ci/run`, where
//! `cargo test --workspace --locked` has just compiled everything, that
//! build finds everything fresh and takes a second or two. The path comes
//! from cargo's JSON messages, not from guessing the layout of `target/`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The binaries the end-to-end tests run, by package.
const BINARIES: [(&str, &str); 2] = [("edge-gateway", "edge-gateway"), ("functions", "functions-local")];

/// The repository root (the workspace root).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the tests crate sits in the workspace root").to_owned()
}

/// A file of the repository, by its path from the root.
pub fn path(relative: &str) -> PathBuf {
    root().join(relative)
}

/// The text of a repository file.
///
/// # Panics
/// When it cannot be read.
pub fn read(relative: &str) -> String {
    let path = path(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The path of the workspace binary `name` (`edge-gateway`,
/// `functions-local`), built on first use.
///
/// # Panics
/// When cargo fails, or `name` is not one of the binaries built here.
pub fn binary(name: &str) -> PathBuf {
    static BUILT: OnceLock<BTreeMap<String, PathBuf>> = OnceLock::new();
    let built = BUILT.get_or_init(build);
    built.get(name).cloned().unwrap_or_else(|| panic!("cargo built no binary named {name}; built: {built:?}"))
}

/// Variables cargo sets for the test process (a trailing `_` is a
/// prefix), not for the cargo it runs.
const SET_BY_CARGO_FOR_TESTS: [&str; 11] = [
    "CARGO_MANIFEST_",
    "CARGO_PKG_",
    "CARGO_CFG_",
    "CARGO_FEATURE_",
    "CARGO_BIN_EXE_",
    "CARGO_CRATE_NAME",
    "CARGO_BIN_NAME",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_TARGET_TMPDIR",
    "CARGO_RUSTC_CURRENT_DIR",
    "OUT_DIR",
];

fn build() -> BTreeMap<String, PathBuf> {
    let (target_dir, profile) = target_dir_and_profile();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let mut command = Command::new(cargo);
    // Cargo gives a test its package's variables (CARGO_MANIFEST_DIR,
    // CARGO_PKG_NAME, …). Build scripts such as ring's rerun when those
    // change, so passing them on would rebuild half the dependency graph
    // here and again in the next plain `cargo` run.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if SET_BY_CARGO_FOR_TESTS.iter().any(|set| name == *set || (set.ends_with('_') && name.starts_with(set))) {
            command.env_remove(&*name);
        }
    }
    command
        .current_dir(root())
        .args(["build", "--workspace", "--tests", "--locked", "--message-format=json-render-diagnostics"])
        .arg("--target-dir")
        .arg(&target_dir)
        .args(["--profile", &profile]);
    for (_, bin) in BINARIES {
        command.args(["--bin", bin]);
    }
    let output = command
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("cannot run cargo to build {BINARIES:?}: {e}"));
    assert!(output.status.success(), "cargo build of {BINARIES:?} failed ({}); see its output above", output.status);

    let mut built = BTreeMap::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        let is_bin = message["target"]["kind"].as_array().is_some_and(|kinds| kinds.iter().any(|k| k == "bin"));
        let is_test_harness = message["profile"]["test"].as_bool().unwrap_or(true);
        if message["reason"] == "compiler-artifact" && is_bin && !is_test_harness {
            if let (Some(name), Some(executable)) = (message["target"]["name"].as_str(), message["executable"].as_str())
            {
                built.insert(name.to_owned(), PathBuf::from(executable));
            }
        }
    }
    built
}

/// The running test's target directory and cargo profile, from its own
/// path: `<target-dir>/<profile-dir>/deps/<test>`.
fn target_dir_and_profile() -> (PathBuf, String) {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe.parent().and_then(Path::parent).expect("the test binary sits in <target>/<profile>/deps");
    let target_dir = profile_dir.parent().expect("the profile directory sits in the target directory");
    assert!(
        target_dir.join("CACHEDIR.TAG").exists(),
        "{} does not look like cargo's target directory (tests built with --target <triple> are not supported here)",
        target_dir.display()
    );
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => "dev".to_owned(),
        Some(other) => other.to_owned(),
        None => panic!("unreadable profile directory {}", profile_dir.display()),
    };
    (target_dir.to_owned(), profile)
}
