use std::time::Duration;

use common::fixtures::{env, refused};

use super::*;

#[test]
fn backend_defaults_to_memory() {
    let backend = Backend::from_source(&env(&[])).unwrap();
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
    let src = env(&[
        (vars::REDIS_URL, "redis://user:pw@localhost:6380/2"),
        (vars::STREAM_MAXLEN, "500"),
        (vars::DEDUPE_TTL_SECS, "3600"),
        (vars::REDIS_COMMAND_TIMEOUT_MS, "750"),
        (vars::REDIS_WAIT_REPLICAS, "1"),
        (vars::REDIS_WAIT_TIMEOUT_MS, "250"),
    ]);
    let Backend::Redis(redis) = Backend::from_source(&src).unwrap() else {
        panic!("expected the Redis backend");
    };
    assert_eq!(redis.url(), "redis://user:pw@localhost:6380/2");
    assert_eq!(redis.command_timeout, Duration::from_millis(750));
    assert_eq!(redis.settings, LogSettings { stream_maxlen: 500, dedupe_ttl: Duration::from_secs(3600) });
    assert_eq!(redis.durability, Durability { replicas: 1, timeout: Duration::from_millis(250) });

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
        (vars::REDIS_WAIT_REPLICAS, "6", "from 0 to 5"),
        (vars::REDIS_WAIT_TIMEOUT_MS, "0", "from 1 to 10000"),
        (vars::REDIS_URL, "http://localhost:6379", "redis://"),
        (vars::REDIS_URL, "localhost:6379", "redis://"),
        (vars::REDIS_URL, "redis://", "redis://"),
        (vars::REDIS_URL, "redis-cluster://a:7000,b:7001", "?node=host:port"),
    ];
    for (var, value, expected) in cases {
        let (name, message) = refused(Backend::from_source(&env(&[(var, value)])));
        assert_eq!(name, var, "{var}={value}");
        assert!(message.contains(expected), "{var}={value}: {message}");
    }
}

#[test]
fn bad_redis_url_error_hides_credentials() {
    let src = env(&[(vars::REDIS_URL, "http://admin:hunter2@cache:6379/0?password=hunter3")]);
    let (_, message) = refused(Backend::from_source(&src));
    assert!(!message.contains("hunter2") && !message.contains("hunter3"), "{message}");
    assert!(message.contains("cache:6379"), "{message}");
}
