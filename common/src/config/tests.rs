use std::net::SocketAddr;
use std::num::NonZeroU32;

use crate::fixtures::{env, refused};

use super::*;

const SECRET_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/config/fixtures/hs256_secret.txt");
const EMPTY_SECRET_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/config/fixtures/empty_secret.txt");
const SHORT_SECRET_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/config/fixtures/short_secret.txt");

// --- Sources and helpers ---------------------------------------------------

#[test]
fn blank_values_count_as_absent() {
    let src = env(&[("A", ""), ("B", "   "), ("C", "x")]);
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
    let src = env(&[("N", " 42 "), ("BAD", "abc"), ("NEG", "-1"), ("ADDR", "nope"), ("NZ", "0")]);
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
    let src = env(&[("LOW", "5"), ("HIGH", "500"), ("OK", "50")]);
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
    let src = env(&[("N", &long)]);
    let (_, message) = refused(parse_or(&src, "N", 1u64));
    assert!(message.len() < 200, "{message}");
    assert!(message.ends_with("…\""));
}

#[test]
fn parse_bool_accepts_words_and_digits() {
    let src = env(&[("T", "TRUE"), ("F", "false"), ("ONE", "1"), ("ZERO", "0"), ("BAD", "yes")]);
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
    let src = env(&[("USERS", " alice, bob,,carol , "), ("NUMS", "1,x,3")]);
    assert_eq!(parse_list::<String>(&src, "USERS").unwrap(), ["alice", "bob", "carol"]);
    assert!(parse_list::<String>(&src, "UNSET").unwrap().is_empty());
    let (name, message) = refused(parse_list::<u8>(&src, "NUMS"));
    assert_eq!(name, "NUMS");
    assert_eq!(message, r#"NUMS: expected a comma-separated list of whole numbers, got "x""#);
}

#[test]
fn durations_in_ms_and_secs() {
    let src = env(&[("MS", "250"), ("S", "3"), ("BAD", "1.5s")]);
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
    let src = env(&[("TOKEN", "from-env")]);
    assert_eq!(secret(&src, "TOKEN").unwrap().unwrap().expose(), b"from-env");

    let src = env(&[("TOKEN_FILE", SECRET_FILE)]);
    let from_file = secret(&src, "TOKEN").unwrap().unwrap();
    assert_eq!(from_file.expose(), b"file-secret-that-is-at-least-32-bytes-long", "trailing newline dropped");

    let src = env(&[("TOKEN_FILE", SHORT_SECRET_FILE)]);
    assert_eq!(secret(&src, "TOKEN").unwrap().unwrap().expose(), b"short-file-secret", "CRLF dropped");

    assert!(secret(&env(&[]), "TOKEN").unwrap().is_none());
}

#[test]
fn secret_and_secret_file_exclude_each_other() {
    let src = env(&[("TOKEN", "from-env"), ("TOKEN_FILE", SECRET_FILE)]);
    let (name, message) = refused(secret(&src, "TOKEN"));
    assert_eq!(name, "TOKEN");
    assert!(message.contains("TOKEN_FILE"), "{message}");
    assert!(!message.contains("from-env"));
}

#[test]
fn unreadable_or_empty_secret_file_is_refused() {
    let src = env(&[("TOKEN_FILE", "/nonexistent/secret")]);
    let (name, message) = refused(secret(&src, "TOKEN"));
    assert_eq!(name, "TOKEN_FILE");
    assert!(message.contains("/nonexistent/secret"), "{message}");

    let src = env(&[("TOKEN_FILE", EMPTY_SECRET_FILE)]);
    let (name, message) = refused(secret(&src, "TOKEN"));
    assert_eq!(name, "TOKEN_FILE");
    assert!(message.contains("empty"), "{message}");
}

#[test]
fn required_secret_names_both_variables() {
    let (name, message) = refused(required_secret(&env(&[]), "TOKEN"));
    assert_eq!(name, "TOKEN");
    assert!(message.contains("TOKEN_FILE"), "{message}");
}

#[test]
fn secret_debug_is_redacted() {
    let secret = Secret::new("hunter2-hunter2");
    assert!(!format!("{secret:?}").contains("hunter2"));
}
