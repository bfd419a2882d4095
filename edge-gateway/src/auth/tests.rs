use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use super::*;

const SECRET: &[u8] = b"test-secret-that-is-at-least-32-bytes-long";
const OTHER_SECRET: &[u8] = b"another-secret-of-at-least-32-bytes-length";
const RSA_PRIVATE: &str = include_str!("fixtures/rsa_private.pem");
const RSA_PUBLIC: &str = include_str!("fixtures/rsa_public.pem");
const OTHER_RSA_PRIVATE: &str = include_str!("fixtures/other_rsa_private.pem");
const RSA_1024_PUBLIC: &str = include_str!("fixtures/rsa1024_public.pem");
const EC_PRIVATE: &str = include_str!("fixtures/ec_private.pem");
const EC_PUBLIC: &str = include_str!("fixtures/ec_public.pem");
const EC_P384_PUBLIC: &str = include_str!("fixtures/ec_p384_public.pem");
/// base64url(`{"alg":"none","typ":"JWT"}`).
const NONE_HEADER: &str = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0";

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

fn hour_from_now() -> i64 {
    now() + 3600
}

fn validator(key: JwtKey) -> JwtValidator {
    JwtValidator::new(&JwtConfig::new(key)).unwrap()
}

fn hs256() -> JwtValidator {
    validator(JwtKey::Hs256(SECRET.to_vec()))
}

fn rs256() -> JwtValidator {
    validator(JwtKey::Rs256(RSA_PUBLIC.as_bytes().to_vec()))
}

fn es256() -> JwtValidator {
    validator(JwtKey::Es256(EC_PUBLIC.as_bytes().to_vec()))
}

fn sign(alg: Algorithm, key: &EncodingKey, claims: &Value) -> String {
    jsonwebtoken::encode(&Header::new(alg), claims, key).unwrap()
}

fn sign_hs(claims: &Value) -> String {
    sign(Algorithm::HS256, &EncodingKey::from_secret(SECRET), claims)
}

fn claims_for(sub: &str) -> Value {
    json!({ "sub": sub, "exp": hour_from_now() })
}

/// The middle (claims) segment of a token.
fn payload(token: &str) -> &str {
    token.split('.').nth(1).unwrap()
}

// --- Accepted tokens -------------------------------------------------------

#[test]
fn hs256_token_is_accepted() {
    let exp = hour_from_now();
    let token = sign_hs256(SECRET, &TokenClaims::new("alice", exp)).unwrap();
    let claims = hs256().validate(&token).unwrap();
    let valid_until = exp + DEFAULT_LEEWAY_SECS as i64;
    assert_eq!(claims, Claims { user_id: UserId::new("alice").unwrap(), expires_at: exp, valid_until, admin: false });
}

#[test]
fn admin_claim_is_read() {
    let claims = TokenClaims { admin: Some(true), ..TokenClaims::new("root", hour_from_now()) };
    let token = sign_hs256(SECRET, &claims).unwrap();
    assert!(hs256().validate(&token).unwrap().admin);
}

#[test]
fn non_boolean_admin_claim_is_refused() {
    let token = sign_hs(&json!({ "sub": "alice", "exp": hour_from_now(), "admin": "true" }));
    assert_eq!(hs256().validate(&token), Err(AuthError::Malformed));
}

#[test]
fn rs256_token_is_accepted() {
    let key = EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap();
    let token = sign(Algorithm::RS256, &key, &claims_for("bob"));
    assert_eq!(rs256().validate(&token).unwrap().user_id.as_str(), "bob");
}

#[test]
fn es256_token_is_accepted() {
    let key = EncodingKey::from_ec_pem(EC_PRIVATE.as_bytes()).unwrap();
    let token = sign(Algorithm::ES256, &key, &claims_for("carol"));
    assert_eq!(es256().validate(&token).unwrap().user_id.as_str(), "carol");
}

#[test]
fn fractional_exp_is_accepted() {
    let exp = hour_from_now();
    let token = sign_hs(&json!({ "sub": "alice", "exp": exp as f64 + 0.25 }));
    assert_eq!(hs256().validate(&token).unwrap().expires_at, exp);
}

// --- Time ------------------------------------------------------------------

#[test]
fn expired_token_is_refused() {
    let token = sign_hs256(SECRET, &TokenClaims::new("alice", now() - 60)).unwrap();
    assert_eq!(hs256().validate(&token), Err(AuthError::Expired));
}

#[test]
fn expiry_within_leeway_is_accepted() {
    let token = sign_hs256(SECRET, &TokenClaims::new("alice", now() - 2)).unwrap();
    let validator = JwtValidator::new(&JwtConfig::new(JwtKey::Hs256(SECRET.to_vec())).with_leeway_secs(30)).unwrap();
    assert!(validator.validate(&token).is_ok());
}

#[test]
fn token_not_yet_valid_is_refused() {
    let claims = TokenClaims { nbf: Some(now() + 600), ..TokenClaims::new("alice", now() + 3600) };
    let token = sign_hs256(SECRET, &claims).unwrap();
    assert_eq!(hs256().validate(&token), Err(AuthError::NotYetValid));
}

#[test]
fn past_nbf_is_accepted() {
    let claims = TokenClaims { nbf: Some(now() - 600), ..TokenClaims::new("alice", now() + 3600) };
    let token = sign_hs256(SECRET, &claims).unwrap();
    assert!(hs256().validate(&token).is_ok());
}

#[test]
fn missing_exp_is_refused() {
    let token = sign_hs(&json!({ "sub": "alice" }));
    assert_eq!(hs256().validate(&token), Err(AuthError::MissingExpiry));
}

/// The library reads a non-numeric `exp` as absent.
#[test]
fn non_numeric_exp_counts_as_missing() {
    let token = sign_hs(&json!({ "sub": "alice", "exp": "tomorrow" }));
    assert_eq!(hs256().validate(&token), Err(AuthError::MissingExpiry));
}

// --- Signatures and algorithms ---------------------------------------------

#[test]
fn hs256_token_signed_with_another_secret_is_refused() {
    let token = sign_hs256(OTHER_SECRET, &TokenClaims::new("alice", hour_from_now())).unwrap();
    assert_eq!(hs256().validate(&token), Err(AuthError::BadSignature));
}

#[test]
fn rs256_token_signed_with_another_key_is_refused() {
    let key = EncodingKey::from_rsa_pem(OTHER_RSA_PRIVATE.as_bytes()).unwrap();
    let token = sign(Algorithm::RS256, &key, &claims_for("bob"));
    assert_eq!(rs256().validate(&token), Err(AuthError::BadSignature));
}

#[test]
fn tampered_claims_are_refused() {
    let genuine = sign_hs(&claims_for("alice"));
    let forged = sign_hs(&claims_for("mallory"));
    let parts: Vec<&str> = genuine.split('.').collect();
    let spliced = format!("{}.{}.{}", parts[0], payload(&forged), parts[2]);
    assert_eq!(hs256().validate(&spliced), Err(AuthError::BadSignature));

    let key = EncodingKey::from_ec_pem(EC_PRIVATE.as_bytes()).unwrap();
    let genuine = sign(Algorithm::ES256, &key, &claims_for("carol"));
    let parts: Vec<&str> = genuine.split('.').collect();
    let spliced = format!("{}.{}.{}", parts[0], payload(&forged), parts[2]);
    assert_eq!(es256().validate(&spliced), Err(AuthError::BadSignature));
}

#[test]
fn alg_none_is_refused_by_every_validator() {
    let claims = payload(&sign_hs(&claims_for("alice"))).to_owned();
    for token in [format!("{NONE_HEADER}.{claims}."), format!("{NONE_HEADER}.{claims}")] {
        for validator in [hs256(), rs256(), es256()] {
            let result = validator.validate(&token);
            assert!(
                matches!(result, Err(AuthError::Malformed | AuthError::WrongAlgorithm)),
                "{:?} accepted alg none: {result:?}",
                validator.algorithm()
            );
        }
    }
}

/// The classic confusion: the RSA public key is public, so an attacker signs
/// HS256 with its PEM bytes as the HMAC secret. A validator that let the
/// token pick the algorithm would accept it.
#[test]
fn hs256_token_signed_with_the_public_key_is_refused_by_rs256() {
    let key = EncodingKey::from_secret(RSA_PUBLIC.as_bytes());
    let token = sign(Algorithm::HS256, &key, &claims_for("mallory"));
    assert_eq!(rs256().validate(&token), Err(AuthError::WrongAlgorithm));

    let key = EncodingKey::from_secret(EC_PUBLIC.as_bytes());
    let token = sign(Algorithm::HS256, &key, &claims_for("mallory"));
    assert_eq!(es256().validate(&token), Err(AuthError::WrongAlgorithm));
}

#[test]
fn other_algorithm_of_the_same_family_is_refused() {
    let token = sign(Algorithm::HS512, &EncodingKey::from_secret(SECRET), &claims_for("alice"));
    assert_eq!(hs256().validate(&token), Err(AuthError::WrongAlgorithm));

    let key = EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap();
    let token = sign(Algorithm::PS256, &key, &claims_for("bob"));
    assert_eq!(rs256().validate(&token), Err(AuthError::WrongAlgorithm));
}

#[test]
fn rs256_token_is_refused_by_hs256() {
    let key = EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap();
    let token = sign(Algorithm::RS256, &key, &claims_for("bob"));
    assert_eq!(hs256().validate(&token), Err(AuthError::WrongAlgorithm));
}

// --- Issuer and audience ---------------------------------------------------

fn strict() -> JwtValidator {
    let config = JwtConfig::new(JwtKey::Hs256(SECRET.to_vec()))
        .with_issuer("https://id.example")
        .with_audience("portfolio-stream");
    JwtValidator::new(&config).unwrap()
}

#[test]
fn configured_issuer_and_audience_are_accepted() {
    let token = sign_hs(
        &json!({ "sub": "alice", "exp": hour_from_now(), "iss": "https://id.example", "aud": "portfolio-stream" }),
    );
    assert!(strict().validate(&token).is_ok());

    let token = sign_hs(&json!({
        "sub": "alice", "exp": hour_from_now(), "iss": "https://id.example",
        "aud": ["other-service", "portfolio-stream"],
    }));
    assert!(strict().validate(&token).is_ok());
}

#[test]
fn wrong_audience_is_refused() {
    let token =
        sign_hs(&json!({ "sub": "alice", "exp": hour_from_now(), "iss": "https://id.example", "aud": "billing" }));
    assert_eq!(strict().validate(&token), Err(AuthError::WrongAudience));
}

#[test]
fn missing_audience_is_refused_when_configured() {
    let token = sign_hs(&json!({ "sub": "alice", "exp": hour_from_now(), "iss": "https://id.example" }));
    assert_eq!(strict().validate(&token), Err(AuthError::WrongAudience));
}

#[test]
fn wrong_issuer_is_refused() {
    let token = sign_hs(
        &json!({ "sub": "alice", "exp": hour_from_now(), "iss": "https://evil.example", "aud": "portfolio-stream" }),
    );
    assert_eq!(strict().validate(&token), Err(AuthError::WrongIssuer));
}

#[test]
fn missing_issuer_is_refused_when_configured() {
    let token = sign_hs(&json!({ "sub": "alice", "exp": hour_from_now(), "aud": "portfolio-stream" }));
    assert_eq!(strict().validate(&token), Err(AuthError::WrongIssuer));
}

#[test]
fn issuer_and_audience_are_ignored_when_not_configured() {
    let token = sign_hs(&json!({ "sub": "alice", "exp": hour_from_now(), "iss": "anyone", "aud": "anything" }));
    assert!(hs256().validate(&token).is_ok());
}

// --- Subject ---------------------------------------------------------------

#[test]
fn missing_sub_is_refused() {
    let token = sign_hs(&json!({ "exp": hour_from_now() }));
    assert_eq!(hs256().validate(&token), Err(AuthError::MissingSubject));
}

#[test]
fn invalid_sub_is_refused() {
    for sub in [json!("u{1}"), json!(""), json!("a b"), json!(42), json!("x".repeat(UserId::MAX_LEN + 1))] {
        let token = sign_hs(&json!({ "sub": sub, "exp": hour_from_now() }));
        assert_eq!(hs256().validate(&token), Err(AuthError::InvalidSubject), "sub {sub}");
    }
}

// --- Garbage ---------------------------------------------------------------

#[test]
fn garbage_is_refused_as_malformed() {
    let validator = hs256();
    assert_eq!(validator.validate(""), Err(AuthError::Missing));
    for token in ["abc", "a.b", "a.b.c", "...", "e30.e30.", "Bearer x.y.z", "\u{1F600}.\u{1F600}.\u{1F600}"] {
        assert_eq!(validator.validate(token), Err(AuthError::Malformed), "token {token:?}");
    }
    let huge = format!("{}.{}.{}", "a".repeat(MAX_TOKEN_LEN), "b", "c");
    assert_eq!(validator.validate(&huge), Err(AuthError::Malformed));
}

#[test]
fn errors_never_contain_the_token() {
    let token = sign_hs256(SECRET, &TokenClaims::new("alice", now() - 60)).unwrap();
    let err = hs256().validate(&token).unwrap_err();
    assert!(!err.to_string().contains(&token));
    assert!(!format!("{err:?}").contains(&token));
    assert!(!err.reason().contains(&token));
}

#[test]
fn reasons_fit_a_close_frame() {
    let all = [
        AuthError::Missing,
        AuthError::Malformed,
        AuthError::Expired,
        AuthError::NotYetValid,
        AuthError::BadSignature,
        AuthError::WrongAlgorithm,
        AuthError::WrongIssuer,
        AuthError::WrongAudience,
        AuthError::MissingExpiry,
        AuthError::MissingSubject,
        AuthError::InvalidSubject,
        AuthError::InvalidKey("detail".into()),
        AuthError::Signing,
    ];
    for err in all {
        assert!(!err.reason().is_empty() && err.reason().len() <= 123, "{err:?}");
        assert!(!err.reason().contains("detail"));
    }
    assert_eq!(AuthError::Missing.reason(), "Authentication required");
    assert_eq!(AuthError::Expired.reason(), "Session expired");
    assert_eq!(AuthError::BadSignature.reason(), "Invalid token");
}

// --- Keys ------------------------------------------------------------------

fn key_error(key: JwtKey) -> String {
    match JwtValidator::new(&JwtConfig::new(key)) {
        Err(AuthError::InvalidKey(reason)) => reason,
        other => panic!("expected InvalidKey, got {other:?}"),
    }
}

#[test]
fn short_hs256_secret_is_refused_at_start() {
    assert!(key_error(JwtKey::Hs256(b"too-short".to_vec())).contains("32 bytes"));
    assert!(key_error(JwtKey::Hs256(Vec::new())).contains("32 bytes"));
}

#[test]
fn bad_pem_is_refused_at_start() {
    for key in [
        JwtKey::Rs256(b"not a pem".to_vec()),
        JwtKey::Es256(b"not a pem".to_vec()),
        JwtKey::Rs256(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n".to_vec()),
        JwtKey::Es256(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n".to_vec()),
        JwtKey::Rs256(EC_PUBLIC.as_bytes().to_vec()),
        JwtKey::Es256(RSA_PUBLIC.as_bytes().to_vec()),
    ] {
        key_error(key);
    }
}

#[test]
fn private_key_is_refused_at_start() {
    assert!(key_error(JwtKey::Rs256(RSA_PRIVATE.as_bytes().to_vec())).contains("private key"));
    assert!(key_error(JwtKey::Es256(EC_PRIVATE.as_bytes().to_vec())).contains("private key"));
}

#[test]
fn weak_or_wrong_curve_keys_are_refused_at_start() {
    assert!(key_error(JwtKey::Rs256(RSA_1024_PUBLIC.as_bytes().to_vec())).contains("2048"));
    assert!(key_error(JwtKey::Es256(EC_P384_PUBLIC.as_bytes().to_vec())).contains("P-256"));
}

#[test]
fn debug_output_hides_the_secret() {
    let secret = "super-secret-value-that-must-not-leak";
    let config = JwtConfig::new(JwtKey::Hs256(secret.as_bytes().to_vec())).with_issuer("iss");
    assert!(!format!("{config:?}").contains(secret));
    assert!(!format!("{:?}", config.key()).contains(secret));
    let validator = JwtValidator::new(&config).unwrap();
    assert!(!format!("{validator:?}").contains(secret));
    assert!(format!("{validator:?}").contains("Hs256"));
}

#[test]
fn algorithm_names_round_trip() {
    for alg in JwtAlgorithm::ALL {
        assert_eq!(JwtAlgorithm::parse(alg.as_str()), Some(alg));
        assert_eq!(JwtAlgorithm::parse(&alg.as_str().to_lowercase()), Some(alg));
    }
    assert_eq!(JwtAlgorithm::parse("none"), None);
    assert_eq!(JwtAlgorithm::parse("HS512"), None);
}

// --- Extraction ------------------------------------------------------------

#[test]
fn bearer_header_wins_over_cookie() {
    assert_eq!(token_from_headers(Some("session=from-cookie"), Some("Bearer from-header")), Some("from-header"));
    assert_eq!(token_from_headers(None, Some("bearer   spaced  ")), Some("spaced"));
    assert_eq!(token_from_headers(None, Some("BEARER x.y.z")), Some("x.y.z"));
}

#[test]
fn session_cookie_is_used_without_bearer() {
    assert_eq!(token_from_headers(Some("session=xyz"), None), Some("xyz"));
    assert_eq!(token_from_headers(Some("a=b; session=xyz; c=d"), None), Some("xyz"));
    assert_eq!(token_from_headers(Some("a=b;session=xyz"), None), Some("xyz"));
    assert_eq!(token_from_headers(Some(" session = \"quoted\" "), None), Some("quoted"));
    assert_eq!(token_from_headers(Some("session=; session=second"), None), Some("second"));
    assert_eq!(token_from_headers(Some("a=b; session=x.y.z"), Some("Basic dXNlcjpwdw==")), Some("x.y.z"));
    assert_eq!(token_from_headers(Some("session=xyz"), Some("Bearer ")), Some("xyz"));
}

#[test]
fn no_token_without_bearer_or_session_cookie() {
    assert_eq!(token_from_headers(None, None), None);
    assert_eq!(token_from_headers(Some("a=b; c=d"), None), None);
    assert_eq!(token_from_headers(Some("mysession=xyz; session_old=abc"), None), None);
    assert_eq!(token_from_headers(Some("session"), None), None);
    assert_eq!(token_from_headers(Some("session="), None), None);
    assert_eq!(token_from_headers(None, Some("Bearer")), None);
    assert_eq!(token_from_headers(None, Some("Bearer a b")), None);
    assert_eq!(token_from_headers(None, Some("Basic dXNlcjpwdw==")), None);
    assert_eq!(token_from_headers(None, Some("Bearerx.y.z")), None);
}
