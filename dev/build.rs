//! Builds the React dashboard (`clients/ts/apps/dashboard`) into `OUT_DIR`
//! and writes the table of its files that `src/page.rs` serves, so
//! `cargo run -p portfolio-dev` is still one command on a machine with cargo
//! and Node (docs/dev-mode.md).
//!
//! - `PORTFOLIO_DASHBOARD_DIR=<dir>` serves an already built dashboard.
//! - Without npm the build goes on with a warning, and dev mode serves a
//!   page that says how to get the dashboard.
//! - `clients/ts/node_modules` is installed with `npm ci` when missing.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let clients = manifest.join("../clients/ts");
    for input in [
        "package.json",
        "package-lock.json",
        "packages/client/src",
        "packages/react/src",
        "apps/dashboard/src",
        "apps/dashboard/index.html",
        "apps/dashboard/vite.config.ts",
    ] {
        println!("cargo:rerun-if-changed={}", clients.join(input).display());
    }
    println!("cargo:rerun-if-env-changed=PORTFOLIO_DASHBOARD_DIR");

    let dist = match std::env::var_os("PORTFOLIO_DASHBOARD_DIR") {
        Some(dir) => Ok(PathBuf::from(dir)),
        None => build(&clients, &out.join("dashboard")),
    };
    let files = match dist {
        Ok(dir) => {
            let mut files = Vec::new();
            collect(&dir, &dir, &mut files);
            files.sort();
            assert!(
                files.iter().any(|(path, _)| path == "/index.html"),
                "no index.html in the dashboard build ({})",
                dir.display()
            );
            files
        }
        Err(why) => {
            println!(
                "cargo:warning=the dashboard was not built ({why}); dev mode serves a page saying how to build it"
            );
            Vec::new()
        }
    };
    let mut table = String::from("/// The dashboard's files: (path, content type, bytes).\n");
    table.push_str("pub(crate) static DASHBOARD: &[(&str, &str, &[u8])] = &[\n");
    for (path, file) in &files {
        let _ = writeln!(table, "    ({path:?}, {:?}, include_bytes!({:?})),", content_type(path), file.display());
    }
    table.push_str("];\n");
    std::fs::write(out.join("dashboard.rs"), table).expect("OUT_DIR is writable");
}

/// `npm ci` (when needed) and `vite build` into `dist`; `Err` only when npm
/// is not there to run.
fn build(clients: &Path, dist: &Path) -> Result<PathBuf, String> {
    let npm = if cfg!(windows) { "npm.cmd" } else { "npm" };
    match Command::new(npm).arg("--version").output() {
        Ok(output) if output.status.success() => {}
        _ => return Err("npm not found: install Node ≥ 20.19 with npm".into()),
    }
    if !clients.join("node_modules").is_dir() {
        run(Command::new(npm).args(["ci", "--no-audit", "--no-fund"]).current_dir(clients), "npm ci");
    }
    let dist_arg = dist.to_str().expect("OUT_DIR is UTF-8");
    run(
        Command::new(npm)
            .args(["run", "build", "--silent", "-w", "@portfolio-stream/dashboard", "--"])
            .args(["--outDir", dist_arg, "--emptyOutDir", "--logLevel", "warn"])
            .current_dir(clients),
        "the dashboard's vite build",
    );
    Ok(dist.to_path_buf())
}

fn run(command: &mut Command, what: &str) {
    let output = command.output().unwrap_or_else(|error| panic!("{what} did not start: {error}"));
    assert!(
        output.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Every file under `dir`, as (URL path, absolute file path).
fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|error| panic!("cannot read {}: {error}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            collect(root, &path, files);
        } else {
            let relative = path.strip_prefix(root).expect("under the root").to_string_lossy().replace('\\', "/");
            files.push((format!("/{relative}"), path.canonicalize().expect("the file exists")));
        }
    }
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        _ => "application/octet-stream",
    }
}
