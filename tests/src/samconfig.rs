//! `samconfig.toml` as data: each environment's deploy parameters.

use std::collections::BTreeMap;

use crate::workspace;

/// Where the SAM CLI settings live, from the repository root.
pub const PATH: &str = "samconfig.toml";

/// Each environment's `deploy.parameters.parameter_overrides`, parsed into
/// name → value (`"Key=Value"` list entries, or one space-separated string).
///
/// # Panics
/// When the file is missing or not TOML, or an override is malformed.
pub fn parameter_overrides() -> BTreeMap<String, BTreeMap<String, String>> {
    let config: toml::Table = toml::from_str(&workspace::read(PATH)).unwrap_or_else(|e| panic!("{PATH}: {e}"));
    config
        .iter()
        .filter_map(|(env, section)| {
            let overrides = section.get("deploy")?.get("parameters")?.get("parameter_overrides")?;
            let entries: Vec<String> = match overrides {
                toml::Value::Array(items) => items.iter().filter_map(|i| i.as_str().map(str::to_owned)).collect(),
                toml::Value::String(text) => text.split_whitespace().map(str::to_owned).collect(),
                other => panic!("{PATH}: {env}: parameter_overrides is neither a list nor a string: {other}"),
            };
            let parsed = entries
                .iter()
                .map(|entry| {
                    let (key, value) =
                        entry.split_once('=').unwrap_or_else(|| panic!("{PATH}: {env}: not Key=Value: {entry}"));
                    (key.to_owned(), value.trim_matches('"').to_owned())
                })
                .collect();
            Some((env.clone(), parsed))
        })
        .collect()
}

/// A setting of one command of one environment (`stack_name` of
/// `global`, `template_file` of `build`, …).
pub fn setting(env: &str, command: &str, key: &str) -> Option<String> {
    let config: toml::Table = toml::from_str(&workspace::read(PATH)).ok()?;
    config.get(env)?.get(command)?.get("parameters")?.get(key)?.as_str().map(str::to_owned)
}
