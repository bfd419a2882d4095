use common::fixtures::{env, refused};

use super::*;

const SECRET: &str = "env-secret-that-is-at-least-32-bytes-long";
const SECRET_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/auth/fixtures/hs256_secret.txt");
const RSA_PUBLIC_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/auth/fixtures/rsa_public.pem");
const RSA_PRIVATE_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/auth/fixtures/rsa_private.pem");
const EC_PUBLIC_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/auth/fixtures/ec_public.pem");

// --- JWT -------------------------------------------------------------------

#[test]
fn jwt_defaults_to_hs256_with_secret() {
    let config = jwt_from_source(&env(&[(vars::JWT_SECRET, SECRET)])).unwrap();
    assert_eq!(config.key().algorithm(), JwtAlgorithm::Hs256);
    assert_eq!(config.leeway_secs(), DEFAULT_LEEWAY_SECS);
    assert_eq!(config.issuer(), None);
    assert_eq!(config.audience(), None);
    assert!(!format!("{config:?}").contains(SECRET));
}

#[test]
fn jwt_reads_issuer_audience_and_leeway() {
    let src = env(&[
        (vars::JWT_SECRET_FILE, SECRET_FILE),
        (vars::JWT_ISSUER, " https://id.example "),
        (vars::JWT_AUDIENCE, "portfolio-stream"),
        (vars::JWT_LEEWAY_SECS, "30"),
    ]);
    let config = jwt_from_source(&src).unwrap();
    assert_eq!(config.issuer(), Some("https://id.example"));
    assert_eq!(config.audience(), Some("portfolio-stream"));
    assert_eq!(config.leeway_secs(), 30);
}

#[test]
fn missing_secret_for_hs256_names_jwt_secret() {
    for src in [env(&[]), env(&[(vars::JWT_ALGORITHM, "HS256")])] {
        let (name, message) = refused(jwt_from_source(&src));
        assert_eq!(name, vars::JWT_SECRET);
        assert!(message.contains(vars::JWT_SECRET_FILE), "{message}");
    }
}

#[test]
fn jwt_secret_and_secret_file_exclude_each_other() {
    let src = env(&[(vars::JWT_SECRET, SECRET), (vars::JWT_SECRET_FILE, SECRET_FILE)]);
    let err = jwt_from_source(&src).unwrap_err();
    assert!(matches!(&err, ConfigError::Conflict { name, other }
        if name == vars::JWT_SECRET && other == vars::JWT_SECRET_FILE));
    assert!(!err.to_string().contains(SECRET));
}

#[test]
fn short_jwt_secret_is_refused_without_echoing_it() {
    let src = env(&[(vars::JWT_SECRET, "short-secret")]);
    let (name, message) = refused(jwt_from_source(&src));
    assert_eq!(name, vars::JWT_SECRET);
    assert!(message.contains("32 bytes"), "{message}");
    assert!(!message.contains("short-secret"), "{message}");
}

#[test]
fn rs256_and_es256_read_the_public_key_file() {
    let src = env(&[(vars::JWT_ALGORITHM, "RS256"), (vars::JWT_PUBLIC_KEY_FILE, RSA_PUBLIC_FILE)]);
    assert_eq!(jwt_from_source(&src).unwrap().key().algorithm(), JwtAlgorithm::Rs256);
    let src = env(&[(vars::JWT_ALGORITHM, "es256"), (vars::JWT_PUBLIC_KEY_FILE, EC_PUBLIC_FILE)]);
    assert_eq!(jwt_from_source(&src).unwrap().key().algorithm(), JwtAlgorithm::Es256);
}

#[test]
fn bad_public_key_fails_at_start_naming_the_file_variable() {
    for (alg, file) in [("RS256", EC_PUBLIC_FILE), ("ES256", RSA_PUBLIC_FILE), ("RS256", RSA_PRIVATE_FILE)] {
        let src = env(&[(vars::JWT_ALGORITHM, alg), (vars::JWT_PUBLIC_KEY_FILE, file)]);
        let err = jwt_from_source(&src).unwrap_err();
        assert!(matches!(err, ConfigError::Key { .. }), "{alg} {file}: {err}");
        assert_eq!(err.name(), vars::JWT_PUBLIC_KEY_FILE);
    }
    let src = env(&[(vars::JWT_ALGORITHM, "RS256"), (vars::JWT_PUBLIC_KEY_FILE, "/nonexistent/key.pem")]);
    let (name, _) = refused(jwt_from_source(&src));
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
        let (name, message) = refused(jwt_from_source(&env(pairs)));
        assert_eq!(name, var, "{pairs:?}: {message}");
        assert!(!message.contains(SECRET), "{message}");
    }
}
