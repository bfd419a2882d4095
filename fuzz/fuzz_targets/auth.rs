//! Cookie and bearer extraction and JWT validation: arbitrary `Cookie` and
//! `Authorization` headers never panic, and a token the fuzzer makes up is
//! never accepted; a token signed with the key is.
#![no_main]

use std::sync::OnceLock;

use edge_gateway::auth::{sign_hs256, token_from_headers, JwtConfig, JwtKey, JwtValidator, TokenClaims};
use libfuzzer_sys::fuzz_target;

const KEY: &[u8] = b"fuzz-jwt-key-fuzz-jwt-key-fuzz-jwt-key-01";

fn validator() -> &'static JwtValidator {
    static VALIDATOR: OnceLock<JwtValidator> = OnceLock::new();
    VALIDATOR.get_or_init(|| JwtValidator::new(&JwtConfig::new(JwtKey::Hs256(KEY.to_vec()))).expect("a validator"))
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // The first line is the Cookie header, the second Authorization.
    let mut lines = text.splitn(2, '\n');
    let (cookie, authorization) = (lines.next(), lines.next());
    if let Some(token) = token_from_headers(cookie, authorization) {
        assert!(validator().validate(token).is_err(), "a made-up token was accepted: {token:?}");
    }
    // A real token for a user named by the input validates to that user.
    let user: String = text.chars().filter(|c| c.is_ascii_alphanumeric()).take(32).collect();
    if !user.is_empty() {
        let exp = 4_000_000_000;
        let token = sign_hs256(KEY, &TokenClaims::new(user.clone(), exp)).expect("signs");
        let claims = validator().validate(&token).expect("a signed token validates");
        assert_eq!(claims.user_id.to_string(), user);
    }
});
