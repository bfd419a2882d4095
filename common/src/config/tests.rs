use std::collections::HashMap;
use std::net::SocketAddr;
use std::num::NonZeroU32;

use super::*;

const SECRET: &str = "env-secret-that-is-at-least-32-bytes-long";
const SECRET_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/config/fixtures/hs256_secret.txt");
const EMPTY_SECRET_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/config/fixtures/empty_secret.txt");
const SHORT_SECRET_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/config/fixtures/short_secret.txt");
const RSA_PUBLIC_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/auth/fixtures/rsa_public.pem");
const RSA_PRIVATE_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/auth/fixtures/rsa_private.pem");
const EC_PUBLIC_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/auth/fixtures/ec_public.pem");

fn source(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// The error's variable and its message, asserting the message names it.
fn refused<T: fmt::Debug>(result: Result<T, ConfigError>) -> (String, String) {
    let err = result.expect_err("expected a ConfigError");
    let message = err.to_string();
    assert!(message.starts_with(err.name()), "message {message:?} does not start with {:?}", err.name());
    (err.name().to_owned(), message)
}

// --- Sources and helpers ---------------------------------------------------

#[test]
fn blank_values_count_as_absent() {
    let src = source(&[("A", ""), ("B", "   "), ("C", "x")]);
    assert_eq!(optional(&src, "A"), None);
    assert_eq!(optional(&src, "B"), None);
    assert_eq!(optional(&src, "C").as_deref(), Some("x"));
    assert_eq!(optional(&src, "D"), None);
    let (name, message) = refused(required(&src, "A"));
    assert_eq!(name, "A");
    assert!(message.contains("not set"));
}

#[test]
fn maps_of_str_are_sources_too() {
    let src: HashMap<&str, &str> = HashMap::from([("PORT", "8080")]);
    assert_eq!(parse_or::<u16>(&src, "PORT", 1).unwrap(), 8080);
    let src: BTreeMap<&str, String> = BTreeMap::from([("PORT", "9090".to_owned())]);
    assert_eq!(parse_or::<u16>(&src, "PORT", 1).unwrap(), 9090);
}

#[test]
fn parse_or_uses_default_and_names_the_variable() {
    let src = source(&[("N", " 42 "), ("BAD", "abc"), ("NEG", "-1"), ("ADDR", "nope"), ("NZ", "0")]);
    assert_eq!(parse_or(&src, "N", 7u64).unwrap(), 42);
    assert_eq!(parse_or(&src, "UNSET", 7u64).unwrap(), 7);
    assert_eq!(parse::<u64>(&src, "UNSET").unwrap(), None);

    let (name, message) = refused(parse_or(&src, "BAD", 7u64));
    assert_eq!(name, "BAD");
    assert_eq!(message, r#"BAD: expected a whole number, got "abc""#);
    let (_, message) = refused(parse_or(&src, "NEG", 7u32));
    assert!(message.contains("a whole number"), "{message}");
    let (_, message) = refused(parse_or(&src, "ADDR", SocketAddr::from(([127, 0, 0, 1], 80))));
    assert_eq!(message, r#"ADDR: expected a valid SocketAddr, got "nope""#);
    let (_, message) = refused(parse::<NonZeroU32>(&src, "NZ"));
    assert!(message.contains("a positive whole number"), "{message}");
}

#[test]
fn range_helpers_name_the_bounds() {
    let src = source(&[("LOW", "5"), ("HIGH", "500"), ("OK", "50")]);
    assert_eq!(parse_at_least_or(&src, "OK", 1u64, 10).unwrap(), 50);
    let (_, message) = refused(parse_at_least_or(&src, "LOW", 100u64, 10));
    assert_eq!(message, r#"LOW: expected a whole number of at least 10, got "5""#);
    assert_eq!(parse_between_or(&src, "OK", 1u64, 0, 100).unwrap(), 50);
    let (_, message) = refused(parse_between_or(&src, "HIGH", 1u64, 0, 100));
    assert_eq!(message, r#"HIGH: expected a whole number from 0 to 100, got "500""#);
}

#[test]
fn long_values_are_shortened_in_errors() {
    let long = "x".repeat(1000);
    let src = source(&[("N", &long)]);
    let (_, message) = refused(parse_or(&src, "N", 1u64));
    assert!(message.len() < 200, "{message}");
    assert!(message.ends_with("…\""));
}

#[test]
fn parse_bool_accepts_words_and_digits() {
    let src = source(&[("T", "TRUE"), ("F", "false"), ("ONE", "1"), ("ZERO", "0"), ("BAD", "yes")]);
    assert!(parse_bool(&src, "T", false).unwrap());
    assert!(!parse_bool(&src, "F", true).unwrap());
    assert!(parse_bool(&src, "ONE", false).unwrap());
    assert!(!parse_bool(&src, "ZERO", true).unwrap());
    assert!(parse_bool(&src, "UNSET", true).unwrap());
    let (_, message) = refused(parse_bool(&src, "BAD", false));
    assert_eq!(message, r#"BAD: expected true, false, 1 or 0, got "yes""#);
}

#[test]
fn parse_list_splits_on_commas() {
    let src = source(&[("USERS", " alice, bob,,carol , "), ("NUMS", "1,x,3")]);
    assert_eq!(parse_list::<String>(&src, "USERS").unwrap(), ["alice", "bob", "carol"]);
    assert!(parse_list::<String>(&src, "UNSET").unwrap().is_empty());
    let (name, message) = refused(parse_list::<u8>(&src, "NUMS"));
    assert_eq!(name, "NUMS");
    assert_eq!(message, r#"NUMS: expected a comma-separated list of whole numbers, got "x""#);
}

#[test]
fn durations_in_ms_and_secs() {
    let src = source(&[("MS", "250"), ("S", "3"), ("BAD", "1.5s")]);
    assert_eq!(duration_ms_or(&src, "MS", Duration::ZERO).unwrap(), Duration::from_millis(250));
    assert_eq!(duration_secs_or(&src, "S", Duration::ZERO).unwrap(), Duration::from_secs(3));
    assert_eq!(duration_ms_or(&src, "UNSET", Duration::from_secs(1)).unwrap(), Duration::from_secs(1));
    let (_, message) = refused(duration_ms_or(&src, "BAD", Duration::ZERO));
    assert_eq!(message, r#"BAD: expected a whole number of milliseconds, got "1.5s""#);
    let (_, message) = refused(duration_secs_or(&src, "BAD", Duration::ZERO));
    assert!(message.contains("seconds"));
}

// --- Secrets ---------------------------------------------------------------

#[test]
fn secret_from_value_or_file() {
    let src = source(&[("TOKEN", "from-env")]);
    assert_eq!(secret(&src, "TOKEN").unwrap().unwrap().expose(), b"from-env");

    let src = source(&[("TOKEN_FILE", SECRET_FILE)]);
    let from_file = secret(&src, "TOKEN").unwrap().unwrap();
    assert_eq!(from_file.expose(), b"file-secret-that-is-at-least-32-bytes-long", "trailing newline dropped");

    let src = source(&[("TOKEN_FILE", SHORT_SECRET_FILE)]);
    assert_eq!(secret(&src, "TOKEN").unwrap().unwrap().expose(), b"short-file-secret", "CRLF dropped");

    assert!(secret(&source(&[]), "TOKEN").unwrap().is_none());
}

#[test]
fn secret_and_secret_file_exclude_each_other() {
    let src = source(&[("TOKEN", "from-env"), ("TOKEN_FILE", SECRET_FILE)]);
    let (name, message) = refused(secret(&src, "TOKEN"));
    assert_eq!(name, "TOKEN");
    assert!(message.contains("TOKEN_FILE"), "{message}");
    assert!(!message.contains("from-env"));
}

#[test]
fn unreadable_or_empty_secret_file_is_refused() {
    let src = source(&[("TOKEN_FILE", "/nonexistent/secret")]);
    let (name, message) = refused(secret(&src, "TOKEN"));
    assert_eq!(name, "TOKEN_FILE");
    assert!(message.contains("/nonexistent/secret"), "{message}");

    let src = source(&[("TOKEN_FILE", EMPTY_SECRET_FILE)]);
    let (name, message) = refused(secret(&src, "TOKEN"));
    assert_eq!(name, "TOKEN_FILE");
    assert!(message.contains("empty"), "{message}");
}

#[test]
fn required_secret_names_both_variables() {
    let (name, message) = refused(required_secret(&source(&[]), "TOKEN"));
    assert_eq!(name, "TOKEN");
    assert!(message.contains("TOKEN_FILE"), "{message}");
}

#[test]
fn secret_debug_is_redacted() {
    let secret = Secret::new("hunter2-hunter2");
    assert!(!format!("{secret:?}").contains("hunter2"));
}

// --- Event-log backend -----------------------------------------------------

#[test]
fn backend_defaults_to_memory() {
    let backend = Backend::from_source(&source(&[])).unwrap();
    assert_eq!(
        backend,
        Backend::Memory(LogSettings {
            stream_maxlen: defaults::STREAM_MAXLEN,
            dedupe_ttl: Duration::from_secs(defaults::DEDUPE_TTL_SECS),
        })
    );
    assert_eq!(backend.settings(), LogSettings::default(), "defaults agree with the log module's");
}

#[test]
fn redis_backend_reads_its_settings() {
    let src = source(&[
        (vars::REDIS_URL, "redis://user:pw@localhost:6380/2"),
        (vars::STREAM_MAXLEN, "500"),
        (vars::DEDUPE_TTL_SECS, "3600"),
        (vars::REDIS_COMMAND_TIMEOUT_MS, "750"),
    ]);
    let Backend::Redis(redis) = Backend::from_source(&src).unwrap() else {
        panic!("expected the Redis backend");
    };
    assert_eq!(redis.url(), "redis://user:pw@localhost:6380/2");
    assert_eq!(redis.command_timeout, Duration::from_millis(750));
    assert_eq!(redis.settings, LogSettings { stream_maxlen: 500, dedupe_ttl: Duration::from_secs(3600) });

    let debug = format!("{redis:?}");
    assert!(!debug.contains("pw"), "{debug}");
    assert!(debug.contains("localhost:6380"), "{debug}");
}

#[test]
fn redis_url_variants_are_accepted() {
    for url in ["redis://localhost", "rediss://cache.internal:6380", "redis-cluster://a:7000?node=b:7001", "REDIS://h"]
    {
        assert!(RedisConfig::new(url).is_ok(), "{url}");
    }
}

#[test]
fn each_bad_backend_value_names_its_variable() {
    let cases = [
        (vars::STREAM_MAXLEN, "abc", "at least 100"),
        (vars::STREAM_MAXLEN, "99", "at least 100"),
        (vars::DEDUPE_TTL_SECS, "0", "at least 60"),
        (vars::DEDUPE_TTL_SECS, "-5", "at least 60"),
        (vars::REDIS_COMMAND_TIMEOUT_MS, "0", "from 1 to 60000"),
        (vars::REDIS_COMMAND_TIMEOUT_MS, "2s", "from 1 to 60000"),
        (vars::REDIS_URL, "http://localhost:6379", "redis://"),
        (vars::REDIS_URL, "localhost:6379", "redis://"),
        (vars::REDIS_URL, "redis://", "redis://"),
    ];
    for (var, value, expected) in cases {
        let (name, message) = refused(Backend::from_source(&source(&[(var, value)])));
        assert_eq!(name, var, "{var}={value}");
        assert!(message.contains(expected), "{var}={value}: {message}");
    }
}

#[test]
fn bad_redis_url_error_hides_credentials() {
    let src = source(&[(vars::REDIS_URL, "http://admin:hunter2@cache:6379/0?password=hunter3")]);
    let (_, message) = refused(Backend::from_source(&src));
    assert!(!message.contains("hunter2") && !message.contains("hunter3"), "{message}");
    assert!(message.contains("cache:6379"), "{message}");
}

// --- JWT -------------------------------------------------------------------

#[test]
fn jwt_defaults_to_hs256_with_secret() {
    let config = JwtConfig::from_source(&source(&[(vars::JWT_SECRET, SECRET)])).unwrap();
    assert_eq!(config.key().algorithm(), JwtAlgorithm::Hs256);
    assert_eq!(config.leeway_secs(), defaults::JWT_LEEWAY_SECS);
    assert_eq!(config.issuer(), None);
    assert_eq!(config.audience(), None);
    assert!(!format!("{config:?}").contains(SECRET));
}

#[test]
fn jwt_reads_issuer_audience_and_leeway() {
    let src = source(&[
        (vars::JWT_SECRET_FILE, SECRET_FILE),
        (vars::JWT_ISSUER, " https://id.example "),
        (vars::JWT_AUDIENCE, "portfolio-stream"),
        (vars::JWT_LEEWAY_SECS, "30"),
    ]);
    let config = JwtConfig::from_source(&src).unwrap();
    assert_eq!(config.issuer(), Some("https://id.example"));
    assert_eq!(config.audience(), Some("portfolio-stream"));
    assert_eq!(config.leeway_secs(), 30);
}

#[test]
fn missing_secret_for_hs256_names_jwt_secret() {
    for src in [source(&[]), source(&[(vars::JWT_ALGORITHM, "HS256")])] {
        let (name, message) = refused(JwtConfig::from_source(&src));
        assert_eq!(name, vars::JWT_SECRET);
        assert!(message.contains(vars::JWT_SECRET_FILE), "{message}");
    }
}

#[test]
fn jwt_secret_and_secret_file_exclude_each_other() {
    let src = source(&[(vars::JWT_SECRET, SECRET), (vars::JWT_SECRET_FILE, SECRET_FILE)]);
    let err = JwtConfig::from_source(&src).unwrap_err();
    assert!(matches!(&err, ConfigError::Conflict { name, other }
        if name == vars::JWT_SECRET && other == vars::JWT_SECRET_FILE));
    assert!(!err.to_string().contains(SECRET));
}

#[test]
fn short_jwt_secret_is_refused_without_echoing_it() {
    let src = source(&[(vars::JWT_SECRET, "short-secret")]);
    let (name, message) = refused(JwtConfig::from_source(&src));
    assert_eq!(name, vars::JWT_SECRET);
    assert!(message.contains("32 bytes"), "{message}");
    assert!(!message.contains("short-secret"), "{message}");
}

#[test]
fn rs256_and_es256_read_the_public_key_file() {
    let src = source(&[(vars::JWT_ALGORITHM, "RS256"), (vars::JWT_PUBLIC_KEY_FILE, RSA_PUBLIC_FILE)]);
    assert_eq!(JwtConfig::from_source(&src).unwrap().key().algorithm(), JwtAlgorithm::Rs256);
    let src = source(&[(vars::JWT_ALGORITHM, "es256"), (vars::JWT_PUBLIC_KEY_FILE, EC_PUBLIC_FILE)]);
    assert_eq!(JwtConfig::from_source(&src).unwrap().key().algorithm(), JwtAlgorithm::Es256);
}

#[test]
fn bad_public_key_fails_at_start_naming_the_file_variable() {
    for (alg, file) in [("RS256", EC_PUBLIC_FILE), ("ES256", RSA_PUBLIC_FILE), ("RS256", RSA_PRIVATE_FILE)] {
        let src = source(&[(vars::JWT_ALGORITHM, alg), (vars::JWT_PUBLIC_KEY_FILE, file)]);
        let err = JwtConfig::from_source(&src).unwrap_err();
        assert!(matches!(err, ConfigError::Key { .. }), "{alg} {file}: {err}");
        assert_eq!(err.name(), vars::JWT_PUBLIC_KEY_FILE);
    }
    let src = source(&[(vars::JWT_ALGORITHM, "RS256"), (vars::JWT_PUBLIC_KEY_FILE, "/nonexistent/key.pem")]);
    let (name, _) = refused(JwtConfig::from_source(&src));
    assert_eq!(name, vars::JWT_PUBLIC_KEY_FILE);
}

#[test]
fn each_bad_jwt_value_names_its_variable() {
    let cases: [(&[(&str, &str)], &str); 6] = [
        (&[(vars::JWT_ALGORITHM, "none"), (vars::JWT_SECRET, SECRET)], vars::JWT_ALGORITHM),
        (&[(vars::JWT_ALGORITHM, "HS512"), (vars::JWT_SECRET, SECRET)], vars::JWT_ALGORITHM),
        (&[(vars::JWT_ALGORITHM, "RS256")], vars::JWT_PUBLIC_KEY_FILE),
        (&[(vars::JWT_SECRET, SECRET), (vars::JWT_LEEWAY_SECS, "301")], vars::JWT_LEEWAY_SECS),
        (&[(vars::JWT_SECRET, SECRET), (vars::JWT_PUBLIC_KEY_FILE, RSA_PUBLIC_FILE)], vars::JWT_PUBLIC_KEY_FILE),
        (
            &[(vars::JWT_ALGORITHM, "ES256"), (vars::JWT_PUBLIC_KEY_FILE, EC_PUBLIC_FILE), (vars::JWT_SECRET, SECRET)],
            vars::JWT_SECRET,
        ),
    ];
    for (pairs, var) in cases {
        let (name, message) = refused(JwtConfig::from_source(&source(pairs)));
        assert_eq!(name, var, "{pairs:?}: {message}");
        assert!(!message.contains(SECRET), "{message}");
    }
}
