//! The environment variable names the code defines, read from the sources:
//! every `pub const NAME: &str = "VALUE";` inside a `mod vars { … }` of a
//! crate's `src/`. Reading the sources (rather than listing the constants
//! here) is what makes a newly added variable show up in the checks.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One constant of a `vars` module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Var {
    /// The constant's name.
    pub constant: String,
    /// Its value: the environment variable's name.
    pub value: String,
    /// The file that defines it, relative to the repository root.
    pub file: String,
}

/// Every `vars` constant under `<root>/<crate_dir>/src`, by value.
///
/// # Panics
/// When a source file cannot be read, or a `vars` module holds a constant
/// this reader does not understand (so nothing is silently skipped).
pub fn scan(root: &Path, crate_dir: &str) -> BTreeMap<String, Var> {
    let mut found = BTreeMap::new();
    for file in rust_files(&root.join(crate_dir).join("src")) {
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
        let relative = file.strip_prefix(root).unwrap_or(&file).display().to_string();
        for block in vars_blocks(&text) {
            for var in constants(block, &relative) {
                found.insert(var.value.clone(), var);
            }
        }
    }
    found
}

/// The bodies of the `mod vars { … }` blocks of a file.
fn vars_blocks(text: &str) -> Vec<&str> {
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("mod vars {") {
        let body_start = start + "mod vars {".len();
        let mut depth = 1;
        let mut end = None;
        for (offset, c) in rest[body_start..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = Some(body_start + offset);
                        break;
                    }
                }
                _ => {}
            }
        }
        let Some(end) = end else { break };
        blocks.push(&rest[body_start..end]);
        rest = &rest[end..];
    }
    blocks
}

fn constants(block: &str, file: &str) -> Vec<Var> {
    let mut vars = Vec::new();
    for line in block.lines().map(str::trim) {
        if line.starts_with("//") || !line.contains("const ") {
            continue;
        }
        let parsed = line
            .split_once("const ")
            .and_then(|(_, rest)| rest.split_once(':'))
            .and_then(|(name, rest)| Some((name.trim(), rest.split_once('=')?.1.trim())))
            .and_then(|(name, value)| {
                Some((name, value.strip_suffix(';')?.trim().strip_prefix('"')?.strip_suffix('"')?))
            });
        let Some((constant, value)) = parsed else {
            panic!("{file}: cannot read this vars constant (expected `pub const NAME: &str = \"VALUE\";` on one line): {line}");
        };
        vars.push(Var { constant: constant.to_owned(), value: value.to_owned(), file: file.to_owned() });
    }
    vars
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return files };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_constants_of_vars_modules_only() {
        let source = r#"
            const OUTSIDE: &str = "NOT_A_VAR";
            pub mod vars {
                /// Doc with { braces }.
                pub const REDIS_URL: &str = "REDIS_URL";
                // const COMMENTED: &str = "NO";
                pub const GATEWAY_ADDR: &str = "GATEWAY_ADDR";
            }
            mod other { const X: &str = "X"; }
        "#;
        let vars: Vec<_> = vars_blocks(source).into_iter().flat_map(|b| constants(b, "f.rs")).collect();
        let names: Vec<_> = vars.iter().map(|v| (v.constant.as_str(), v.value.as_str())).collect();
        assert_eq!(names, [("REDIS_URL", "REDIS_URL"), ("GATEWAY_ADDR", "GATEWAY_ADDR")]);
    }

    #[test]
    #[should_panic(expected = "cannot read this vars constant")]
    fn refuses_what_it_cannot_read() {
        let block = vars_blocks("mod vars { pub const SPLIT: &str =\n \"ACROSS_LINES\"; }")[0];
        constants(block, "f.rs");
    }
}
