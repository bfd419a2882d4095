//! Reading typed configuration once at start from a replaceable [`Source`]:
//! [`Env`] in production, a map in tests. Each binary owns its variables'
//! names (a `vars` module of its own) and reads them with these helpers; a
//! bad value is a [`ConfigError`] that names the variable and the expected
//! form.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

#[cfg(test)]
mod tests;

/// Appended to a secret's name to give the variable holding a path to it
/// instead: `JWT_SECRET` → `JWT_SECRET_FILE`. See [`secret`].
pub const FILE_SUFFIX: &str = "_FILE";

/// Where configuration values come from: [`Env`] in production, a map in
/// tests (so tests never touch the process environment).
pub trait Source {
    /// The raw value of `name`, if set.
    fn get(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct Env;

impl Source for Env {
    fn get(&self, name: &str) -> Option<String> {
        // Lossy rather than `env::var`: a non-UTF-8 value then fails its
        // parse with an error naming the variable, instead of silently
        // reading as unset.
        std::env::var_os(name).map(|value| value.to_string_lossy().into_owned())
    }
}

impl<K, V, S> Source for HashMap<K, V, S>
where
    K: Borrow<str> + Hash + Eq,
    V: AsRef<str>,
    S: BuildHasher,
{
    fn get(&self, name: &str) -> Option<String> {
        HashMap::get(self, name).map(|value| value.as_ref().to_owned())
    }
}

impl<K, V> Source for BTreeMap<K, V>
where
    K: Borrow<str> + Ord,
    V: AsRef<str>,
{
    fn get(&self, name: &str) -> Option<String> {
        BTreeMap::get(self, name).map(|value| value.as_ref().to_owned())
    }
}

impl<T: Source + ?Sized> Source for &T {
    fn get(&self, name: &str) -> Option<String> {
        (**self).get(name)
    }
}

/// A configuration value that was refused. Messages name the variable and
/// never contain a secret.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is not set.
    #[error("{name}: not set; expected {expected}")]
    Missing {
        /// The variable.
        name: String,
        /// What it should hold.
        expected: String,
    },
    /// A value that does not parse or is out of range.
    #[error("{name}: expected {expected}, got {got:?}")]
    Invalid {
        /// The variable.
        name: String,
        /// What it should hold.
        expected: String,
        /// The value given (shortened, and with credentials removed when it
        /// is a URL).
        got: String,
    },
    /// A value that cannot be shown (a secret) was refused.
    #[error("{name}: expected {expected} (value not shown)")]
    InvalidSecret {
        /// The variable.
        name: String,
        /// What it should hold.
        expected: String,
    },
    /// Two variables that exclude each other are both set.
    #[error("{name} and {other} are both set; set only one")]
    Conflict {
        /// The first variable.
        name: String,
        /// The second variable.
        other: String,
    },
    /// A variable that contradicts another one (e.g. a public key file
    /// with `JWT_ALGORITHM=HS256`).
    #[error("{name}: {reason}")]
    Inconsistent {
        /// The variable.
        name: String,
        /// Why it does not fit.
        reason: String,
    },
    /// A file named by a variable cannot be read.
    #[error("{name}: cannot read {path:?}: {source}")]
    ReadFile {
        /// The variable.
        name: String,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A key (a JWT key, say) that its consumer refused.
    #[error("{name}: {source}")]
    Key {
        /// The variable the key came from.
        name: String,
        /// Why it was refused.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl ConfigError {
    /// Longest part of a refused value quoted in a message.
    const MAX_QUOTED: usize = 64;

    /// A required variable is not set; `expected` says what it should hold.
    pub fn missing(name: &str, expected: impl Into<String>) -> Self {
        ConfigError::Missing { name: name.to_owned(), expected: expected.into() }
    }

    /// `got` does not match `expected`. Only for values that are not
    /// secrets; `got` is quoted shortened.
    pub fn invalid(name: &str, expected: impl Into<String>, got: &str) -> Self {
        let got = match got.char_indices().nth(Self::MAX_QUOTED) {
            Some((cut, _)) => format!("{}…", &got[..cut]),
            None => got.to_owned(),
        };
        ConfigError::Invalid { name: name.to_owned(), expected: expected.into(), got }
    }

    /// The variable this error is about.
    pub fn name(&self) -> &str {
        match self {
            ConfigError::Missing { name, .. }
            | ConfigError::Invalid { name, .. }
            | ConfigError::InvalidSecret { name, .. }
            | ConfigError::Conflict { name, .. }
            | ConfigError::Inconsistent { name, .. }
            | ConfigError::ReadFile { name, .. }
            | ConfigError::Key { name, .. } => name,
        }
    }
}

/// The value of `name`; unset, empty and blank all count as absent (an
/// empty `FOO=` in a compose file means "not configured").
pub fn optional(source: &dyn Source, name: &str) -> Option<String> {
    source.get(name).filter(|value| !value.trim().is_empty())
}

/// The value of `name`, which must be set.
pub fn required(source: &dyn Source, name: &str) -> Result<String, ConfigError> {
    optional(source, name).ok_or_else(|| ConfigError::missing(name, "a value"))
}

/// `name` parsed as `T` (surrounding whitespace ignored), or `None` when
/// absent.
pub fn parse<T: FromStr>(source: &dyn Source, name: &str) -> Result<Option<T>, ConfigError> {
    optional(source, name).map(|raw| parse_value(name, &raw, &expected_form::<T>())).transpose()
}

/// `name` parsed as `T`, or `default` when absent.
pub fn parse_or<T: FromStr>(source: &dyn Source, name: &str, default: T) -> Result<T, ConfigError> {
    Ok(parse(source, name)?.unwrap_or(default))
}

/// `name` parsed as `T` and at least `min`, or `default` when absent.
pub fn parse_at_least_or<T>(source: &dyn Source, name: &str, default: T, min: T) -> Result<T, ConfigError>
where
    T: FromStr + PartialOrd + fmt::Display,
{
    let expected = format!("{} of at least {min}", expected_form::<T>());
    parse_checked(source, name, default, &expected, |value| *value >= min)
}

/// `name` parsed as `T` and within `min..=max`, or `default` when absent.
pub fn parse_between_or<T>(source: &dyn Source, name: &str, default: T, min: T, max: T) -> Result<T, ConfigError>
where
    T: FromStr + PartialOrd + fmt::Display,
{
    let expected = format!("{} from {min} to {max}", expected_form::<T>());
    parse_checked(source, name, default, &expected, |value| *value >= min && *value <= max)
}

/// `true`/`false`/`1`/`0` (any case), or `default` when absent.
pub fn parse_bool(source: &dyn Source, name: &str, default: bool) -> Result<bool, ConfigError> {
    let Some(raw) = optional(source, name) else {
        return Ok(default);
    };
    match raw.trim().to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(ConfigError::invalid(name, "true, false, 1 or 0", &raw)),
    }
}

/// A comma-separated list (`a, b,c`); blanks between commas are skipped,
/// absent means empty.
pub fn parse_list<T: FromStr>(source: &dyn Source, name: &str) -> Result<Vec<T>, ConfigError> {
    let Some(raw) = optional(source, name) else {
        return Ok(Vec::new());
    };
    let expected = format!("a comma-separated list of {}", plural_form::<T>());
    raw.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| parse_value(name, item, &expected))
        .collect()
}

/// A whole number of milliseconds, or `default` when absent.
pub fn duration_ms_or(source: &dyn Source, name: &str, default: Duration) -> Result<Duration, ConfigError> {
    let parsed = optional(source, name)
        .map(|raw| parse_value::<u64>(name, &raw, "a whole number of milliseconds"))
        .transpose()?;
    Ok(parsed.map_or(default, Duration::from_millis))
}

/// A whole number of seconds, or `default` when absent.
pub fn duration_secs_or(source: &dyn Source, name: &str, default: Duration) -> Result<Duration, ConfigError> {
    let parsed =
        optional(source, name).map(|raw| parse_value::<u64>(name, &raw, "a whole number of seconds")).transpose()?;
    Ok(parsed.map_or(default, Duration::from_secs))
}

/// Secret bytes (a key, a shared secret). `Debug` shows no content.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// Wraps secret bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into())
    }

    /// The secret itself; keep it out of logs and error messages.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The secret itself, by value.
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// A secret from `<name>` (the value itself) or `<name>_FILE` (a path to a
/// file holding it; the production way, since the environment leaks into
/// process listings and crash reports). Setting both is an error; setting
/// neither gives `None`. A trailing newline in the file is dropped.
pub fn secret(source: &dyn Source, name: &str) -> Result<Option<Secret>, ConfigError> {
    let file_name = format!("{name}{}", FILE_SUFFIX);
    match (optional(source, name), optional(source, &file_name)) {
        (Some(_), Some(_)) => Err(ConfigError::Conflict { name: name.to_owned(), other: file_name }),
        (Some(value), None) => Ok(Some(Secret(value.into_bytes()))),
        (None, Some(path)) => {
            let mut bytes = read_file(&file_name, Path::new(path.trim()))?;
            while let Some(b'\n' | b'\r') = bytes.last() {
                bytes.pop();
            }
            if bytes.is_empty() {
                return Err(ConfigError::Inconsistent {
                    name: file_name,
                    reason: "the file is empty; expected the secret".to_owned(),
                });
            }
            Ok(Some(Secret(bytes)))
        }
        (None, None) => Ok(None),
    }
}

/// Like [`secret`], but one of `<name>` / `<name>_FILE` must be set.
pub fn required_secret(source: &dyn Source, name: &str) -> Result<Secret, ConfigError> {
    secret(source, name)?.ok_or_else(|| {
        ConfigError::missing(name, format!("the secret, or a path to a file holding it in {name}{}", FILE_SUFFIX))
    })
}

fn parse_value<T: FromStr>(name: &str, raw: &str, expected: &str) -> Result<T, ConfigError> {
    raw.trim().parse().map_err(|_| ConfigError::invalid(name, expected, raw))
}

fn parse_checked<T: FromStr>(
    source: &dyn Source,
    name: &str,
    default: T,
    expected: &str,
    in_range: impl Fn(&T) -> bool,
) -> Result<T, ConfigError> {
    let Some(raw) = optional(source, name) else {
        return Ok(default);
    };
    let value = parse_value(name, &raw, expected)?;
    if in_range(&value) {
        Ok(value)
    } else {
        Err(ConfigError::invalid(name, expected, &raw))
    }
}

/// "a whole number", "a number", … for the error messages of the generic
/// parsers, from the type's name.
fn expected_form<T>() -> String {
    let name = std::any::type_name::<T>();
    match name {
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => "a whole number".to_owned(),
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "an integer".to_owned(),
        "f32" | "f64" => "a number".to_owned(),
        "bool" => "true or false".to_owned(),
        "alloc::string::String" => "text".to_owned(),
        _ if name.contains("NonZero") => "a positive whole number".to_owned(),
        _ => {
            let base = name.split('<').next().unwrap_or(name);
            format!("a valid {}", base.rsplit("::").next().unwrap_or(base))
        }
    }
}

/// The plural of [`expected_form`], for lists.
fn plural_form<T>() -> String {
    match expected_form::<T>().as_str() {
        "a whole number" => "whole numbers".to_owned(),
        "an integer" => "integers".to_owned(),
        "a number" => "numbers".to_owned(),
        "text" => "values".to_owned(),
        other => format!("values of the form {other}"),
    }
}

/// The bytes of the file at `path`, named by the variable `name`.
pub fn read_file(name: &str, path: &Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|source| ConfigError::ReadFile { name: name.to_owned(), path: path.to_owned(), source })
}
