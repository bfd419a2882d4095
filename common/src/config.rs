//! Typed configuration, read once at start from a replaceable [`Source`]:
//! [`Env`] in production, a map in tests. Variable names live in [`vars`],
//! defaults and bounds in [`defaults`]; a bad value is a [`ConfigError`] that
//! names the variable and the expected form.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use crate::auth::{AuthError, JwtAlgorithm, JwtConfig, JwtKey, JwtValidator};
use crate::log::LogSettings;

#[cfg(test)]
mod tests;

/// Every environment variable the shared code reads, in one place. Other
/// crates add theirs in their own `vars` module and read them with the
/// helpers of this module.
pub mod vars {
    /// Redis URL (`redis://[user:password@]host[:port][/db]`, `rediss://` for
    /// TLS, `redis-cluster://` / `rediss-cluster://` for Redis Cluster).
    /// Optional: when absent the event log is kept in memory (one process,
    /// lost on restart; for development and tests).
    pub const REDIS_URL: &str = "REDIS_URL";
    /// Events kept per user stream before trimming; default 10 000, at least
    /// 100. A client whose resume point was trimmed gets a snapshot.
    pub const STREAM_MAXLEN: &str = "STREAM_MAXLEN";
    /// Seconds a dedupe id is remembered, so a retried webhook or queue
    /// message is a no-op; default 86 400 (one day), at least 60.
    pub const DEDUPE_TTL_SECS: &str = "DEDUPE_TTL_SECS";
    /// Milliseconds before a Redis command is given up; default 2 000,
    /// 1 to 60 000.
    pub const REDIS_COMMAND_TIMEOUT_MS: &str = "REDIS_COMMAND_TIMEOUT_MS";
    /// `HS256` (default), `RS256` or `ES256`: the only algorithm accepted.
    pub const JWT_ALGORITHM: &str = "JWT_ALGORITHM";
    /// The HS256 shared secret, at least 32 bytes. Prefer [`JWT_SECRET_FILE`]
    /// in production; set exactly one of the two.
    pub const JWT_SECRET: &str = "JWT_SECRET";
    /// Path to a file holding the HS256 secret (a trailing newline is
    /// dropped), e.g. a mounted Kubernetes or Docker secret.
    pub const JWT_SECRET_FILE: &str = "JWT_SECRET_FILE";
    /// Path to the PEM public key for RS256 (RSA ≥ 2048 bits) or ES256
    /// (P-256). Never the private key: it is refused.
    pub const JWT_PUBLIC_KEY_FILE: &str = "JWT_PUBLIC_KEY_FILE";
    /// Optional: when set, tokens must carry this `iss`.
    pub const JWT_ISSUER: &str = "JWT_ISSUER";
    /// Optional: when set, tokens must carry this `aud`. Set it when the
    /// identity provider issues tokens for other services too.
    pub const JWT_AUDIENCE: &str = "JWT_AUDIENCE";
    /// Clock skew tolerated on `exp`/`nbf`, seconds; default 5, at most 300.
    pub const JWT_LEEWAY_SECS: &str = "JWT_LEEWAY_SECS";

    /// Appended to a secret's name to give the variable holding a path to
    /// it instead: `JWT_SECRET` → `JWT_SECRET_FILE`. See [`super::secret`].
    pub const FILE_SUFFIX: &str = "_FILE";

    // Ingest functions (`functions/`, docs/functions.md). Their defaults and
    // bounds live in `functions::config`.

    /// Local HTTP mode: the address the function binaries listen on;
    /// default `127.0.0.1:3000`.
    pub const FUNCTIONS_ADDR: &str = "FUNCTIONS_ADDR";
    /// Set by AWS Lambda: when present the binaries serve Lambda events
    /// instead of local HTTP.
    pub const AWS_LAMBDA_RUNTIME_API: &str = "AWS_LAMBDA_RUNTIME_API";
    /// Shared secret of the broker webhook's HMAC-SHA256 signature, at least
    /// 32 bytes (or [`WEBHOOK_SECRET_FILE`]).
    pub const WEBHOOK_SECRET: &str = "WEBHOOK_SECRET";
    /// Path to a file holding [`WEBHOOK_SECRET`].
    pub const WEBHOOK_SECRET_FILE: &str = "WEBHOOK_SECRET_FILE";
    /// Shared secret signing the internal HTTP routes (`/queue/completions`,
    /// `/ingest/prices`) the same way, at least 32 bytes (or
    /// [`INGEST_SECRET_FILE`]). SQS deliveries need none: IAM vouches for them.
    pub const INGEST_SECRET: &str = "INGEST_SECRET";
    /// Path to a file holding [`INGEST_SECRET`].
    pub const INGEST_SECRET_FILE: &str = "INGEST_SECRET_FILE";
    /// How far a signature's timestamp may be from now, seconds; default
    /// 300, 1 to 3 600.
    pub const SIGNATURE_TOLERANCE_SECS: &str = "SIGNATURE_TOLERANCE_SECS";
    /// Largest request body accepted, bytes; default 1 048 576. Larger
    /// bodies get 413.
    pub const FUNCTIONS_MAX_BODY_BYTES: &str = "FUNCTIONS_MAX_BODY_BYTES";
    /// Most ticks accepted in one price batch; default 10 000.
    pub const MAX_TICKS_PER_BATCH: &str = "MAX_TICKS_PER_BATCH";
    /// Alpaca trading API base URL; default `https://paper-api.alpaca.markets`
    /// (paper trading: the live URL must be chosen explicitly).
    pub const APCA_API_BASE_URL: &str = "APCA_API_BASE_URL";
    /// Alpaca API key id.
    pub const APCA_API_KEY_ID: &str = "APCA_API_KEY_ID";
    /// Alpaca API secret key (or [`APCA_API_SECRET_KEY_FILE`]).
    pub const APCA_API_SECRET_KEY: &str = "APCA_API_SECRET_KEY";
    /// Path to a file holding [`APCA_API_SECRET_KEY`].
    pub const APCA_API_SECRET_KEY_FILE: &str = "APCA_API_SECRET_KEY_FILE";
    /// Milliseconds one broker API call may take before the function answers
    /// 503 (the sender retries); default 3 000, 1 to 30 000.
    pub const BROKER_TIMEOUT_MS: &str = "BROKER_TIMEOUT_MS";
    /// `tracing` filter of the function binaries (`info`,
    /// `functions=debug,info`, …); default `info`.
    pub const FUNCTIONS_LOG: &str = "FUNCTIONS_LOG";
}

/// Defaults and bounds of the variables in [`vars`].
pub mod defaults {
    use crate::auth::JwtAlgorithm;

    /// [`super::vars::STREAM_MAXLEN`] default.
    pub const STREAM_MAXLEN: u64 = 10_000;
    /// Fewer events than this would send most reconnecting clients a full
    /// snapshot instead of a catch-up.
    pub const MIN_STREAM_MAXLEN: u64 = 100;
    /// [`super::vars::DEDUPE_TTL_SECS`] default: one day, longer than any
    /// broker's webhook retry schedule.
    pub const DEDUPE_TTL_SECS: u64 = 86_400;
    /// Below a minute a slow retry would be published twice.
    pub const MIN_DEDUPE_TTL_SECS: u64 = 60;
    /// [`super::vars::REDIS_COMMAND_TIMEOUT_MS`] default.
    pub const REDIS_COMMAND_TIMEOUT_MS: u64 = 2_000;
    /// Longest command timeout accepted; beyond it, a stalled Redis stalls
    /// every request behind it for too long.
    pub const MAX_REDIS_COMMAND_TIMEOUT_MS: u64 = 60_000;
    /// [`super::vars::JWT_ALGORITHM`] default.
    pub const JWT_ALGORITHM: JwtAlgorithm = JwtAlgorithm::Hs256;
    /// [`super::vars::JWT_LEEWAY_SECS`] default.
    pub const JWT_LEEWAY_SECS: u64 = 5;
    /// A larger leeway keeps expired tokens alive; fix the clocks instead.
    pub const MAX_JWT_LEEWAY_SECS: u64 = 300;
}

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
    /// A JWT key that the validator refuses.
    #[error("{name}: {source}")]
    Key {
        /// The variable the key came from.
        name: String,
        /// Why it was refused.
        #[source]
        source: AuthError,
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
    let file_name = format!("{name}{}", vars::FILE_SUFFIX);
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
        ConfigError::missing(name, format!("the secret, or a path to a file holding it in {name}{}", vars::FILE_SUFFIX))
    })
}

/// How to reach Redis, for the Redis event-log backend.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisConfig {
    url: String,
    /// How long one command may take before it is given up.
    pub command_timeout: Duration,
    /// History kept per user.
    pub settings: LogSettings,
}

impl RedisConfig {
    /// A config for `url` (checked as [`vars::REDIS_URL`] is) with default
    /// timeout and settings.
    pub fn new(url: impl Into<String>) -> Result<Self, ConfigError> {
        let url = url.into();
        check_redis_url(&url)?;
        Ok(Self {
            url,
            command_timeout: Duration::from_millis(defaults::REDIS_COMMAND_TIMEOUT_MS),
            settings: LogSettings::default(),
        })
    }

    /// The URL, credentials included: for connecting, never for logs (use
    /// `Debug`, which removes them).
    pub fn url(&self) -> &str {
        &self.url
    }
}

/// Written by hand: the URL may carry a password.
impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &redact_url(&self.url))
            .field("command_timeout", &self.command_timeout)
            .field("settings", &self.settings)
            .finish()
    }
}

/// Where the event log lives. Both variants carry the history settings:
/// the in-memory log trims and dedupes like Redis does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// In process: no `REDIS_URL`. One instance only; lost on restart.
    Memory(LogSettings),
    /// Redis at `REDIS_URL`.
    Redis(RedisConfig),
}

impl Backend {
    /// Reads [`vars::REDIS_URL`], [`vars::STREAM_MAXLEN`],
    /// [`vars::DEDUPE_TTL_SECS`] and [`vars::REDIS_COMMAND_TIMEOUT_MS`].
    /// All are checked even when unused, so a typo never waits for the day
    /// Redis is switched on.
    pub fn from_source(source: &dyn Source) -> Result<Self, ConfigError> {
        let settings = LogSettings {
            stream_maxlen: parse_at_least_or(
                source,
                vars::STREAM_MAXLEN,
                defaults::STREAM_MAXLEN,
                defaults::MIN_STREAM_MAXLEN,
            )?,
            dedupe_ttl: Duration::from_secs(parse_at_least_or(
                source,
                vars::DEDUPE_TTL_SECS,
                defaults::DEDUPE_TTL_SECS,
                defaults::MIN_DEDUPE_TTL_SECS,
            )?),
        };
        let command_timeout = Duration::from_millis(parse_between_or(
            source,
            vars::REDIS_COMMAND_TIMEOUT_MS,
            defaults::REDIS_COMMAND_TIMEOUT_MS,
            1,
            defaults::MAX_REDIS_COMMAND_TIMEOUT_MS,
        )?);
        match optional(source, vars::REDIS_URL) {
            None => Ok(Backend::Memory(settings)),
            Some(url) => {
                let url = url.trim().to_owned();
                check_redis_url(&url)?;
                Ok(Backend::Redis(RedisConfig { url, command_timeout, settings }))
            }
        }
    }

    /// The history settings, whichever the backend.
    pub fn settings(&self) -> LogSettings {
        match self {
            Backend::Memory(settings) => *settings,
            Backend::Redis(redis) => redis.settings,
        }
    }
}

impl JwtConfig {
    /// Reads [`vars::JWT_ALGORITHM`] and its key ([`vars::JWT_SECRET`] /
    /// [`vars::JWT_SECRET_FILE`] for HS256, [`vars::JWT_PUBLIC_KEY_FILE`]
    /// otherwise), [`vars::JWT_ISSUER`], [`vars::JWT_AUDIENCE`] and
    /// [`vars::JWT_LEEWAY_SECS`]. The key is checked by building a
    /// [`JwtValidator`], so a bad key stops the program here.
    pub fn from_source(source: &dyn Source) -> Result<JwtConfig, ConfigError> {
        let algorithm = match optional(source, vars::JWT_ALGORITHM) {
            None => defaults::JWT_ALGORITHM,
            Some(raw) => JwtAlgorithm::parse(&raw)
                .ok_or_else(|| ConfigError::invalid(vars::JWT_ALGORITHM, "one of HS256, RS256, ES256", &raw))?,
        };
        let (key, key_var) = match algorithm {
            JwtAlgorithm::Hs256 => {
                if optional(source, vars::JWT_PUBLIC_KEY_FILE).is_some() {
                    return Err(ConfigError::Inconsistent {
                        name: vars::JWT_PUBLIC_KEY_FILE.to_owned(),
                        reason: format!(
                            "set, but {} is HS256, which uses {} or {}; unset it or choose RS256/ES256",
                            vars::JWT_ALGORITHM,
                            vars::JWT_SECRET,
                            vars::JWT_SECRET_FILE
                        ),
                    });
                }
                let secret = secret(source, vars::JWT_SECRET)?.ok_or_else(|| {
                    ConfigError::missing(
                        vars::JWT_SECRET,
                        format!(
                            "the HS256 secret (or a path to it in {}) since {} is HS256",
                            vars::JWT_SECRET_FILE,
                            vars::JWT_ALGORITHM
                        ),
                    )
                })?;
                (JwtKey::Hs256(secret.into_bytes()), vars::JWT_SECRET)
            }
            JwtAlgorithm::Rs256 | JwtAlgorithm::Es256 => {
                for name in [vars::JWT_SECRET, vars::JWT_SECRET_FILE] {
                    if optional(source, name).is_some() {
                        return Err(ConfigError::Inconsistent {
                            name: name.to_owned(),
                            reason: format!(
                                "set, but {} is {algorithm}, which uses {}; unset it",
                                vars::JWT_ALGORITHM,
                                vars::JWT_PUBLIC_KEY_FILE
                            ),
                        });
                    }
                }
                let path = optional(source, vars::JWT_PUBLIC_KEY_FILE).ok_or_else(|| {
                    ConfigError::missing(
                        vars::JWT_PUBLIC_KEY_FILE,
                        format!("a path to the PEM public key since {} is {algorithm}", vars::JWT_ALGORITHM),
                    )
                })?;
                let pem = read_file(vars::JWT_PUBLIC_KEY_FILE, Path::new(path.trim()))?;
                let key = match algorithm {
                    JwtAlgorithm::Rs256 => JwtKey::Rs256(pem),
                    _ => JwtKey::Es256(pem),
                };
                (key, vars::JWT_PUBLIC_KEY_FILE)
            }
        };

        let mut config = JwtConfig::new(key).with_leeway_secs(parse_between_or(
            source,
            vars::JWT_LEEWAY_SECS,
            defaults::JWT_LEEWAY_SECS,
            0,
            defaults::MAX_JWT_LEEWAY_SECS,
        )?);
        if let Some(issuer) = optional(source, vars::JWT_ISSUER) {
            config = config.with_issuer(issuer.trim());
        }
        if let Some(audience) = optional(source, vars::JWT_AUDIENCE) {
            config = config.with_audience(audience.trim());
        }

        JwtValidator::new(&config).map_err(|source| ConfigError::Key { name: key_var.to_owned(), source })?;
        Ok(config)
    }
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

fn read_file(name: &str, path: &Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|source| ConfigError::ReadFile { name: name.to_owned(), path: path.to_owned(), source })
}

/// Schemes accepted for `REDIS_URL`; `-cluster` selects Redis Cluster.
const REDIS_SCHEMES: [&str; 4] = ["redis://", "rediss://", "redis-cluster://", "rediss-cluster://"];

fn check_redis_url(url: &str) -> Result<(), ConfigError> {
    const EXPECTED: &str = "a URL like redis://[user:password@]host[:port][/db] (or rediss://, redis-cluster://, \
                            rediss-cluster://)";
    let scheme_ok = REDIS_SCHEMES
        .iter()
        .any(|scheme| url.get(..scheme.len()).is_some_and(|prefix| prefix.eq_ignore_ascii_case(scheme)));
    // fred parses it the way it will connect: host, port, database.
    if scheme_ok && fred::types::config::Config::from_url(url).is_ok() {
        Ok(())
    } else {
        Err(ConfigError::invalid(vars::REDIS_URL, EXPECTED, &redact_url(url)))
    }
}

/// The URL without its user-info and query (which may hold passwords), for
/// logs and errors: `redis://user:pw@host:6379/0?x=y` → `redis://***@host:6379/0?***`.
fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, url),
    };
    let (rest, query) = match rest.split_once('?') {
        Some((rest, _)) => (rest, "?***"),
        None => (rest, ""),
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let rest = match rest[..authority_end].rfind('@') {
        Some(at) => format!("***@{}", &rest[at + 1..]),
        None => rest.to_owned(),
    };
    match scheme {
        Some(scheme) => format!("{scheme}://{rest}{query}"),
        None => format!("{rest}{query}"),
    }
}
