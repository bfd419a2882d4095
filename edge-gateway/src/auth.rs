//! JWT validation: a [`JwtValidator`] built once at start from a [`JwtConfig`]
//! (HS256, RS256 or ES256) turns a token into [`Claims`], or into an
//! [`AuthError`] whose [`reason`](AuthError::reason) is safe to show a client.

use std::fmt;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use common::event::UserId;
use common::protocol::close::Unauthenticated;
pub use common::protocol::SESSION_COOKIE;

#[cfg(test)]
mod tests;

/// Clock skew tolerated on `exp`/`nbf` unless configured, seconds.
pub const DEFAULT_LEEWAY_SECS: u64 = 5;

/// Longest token accepted, in bytes. Real tokens stay well under 2 KiB; the
/// cap keeps a hostile header from buying base64 and JSON work.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// Shortest HS256 secret accepted. RFC 7518 §3.2 asks for a key at least as
/// long as the hash (256 bits); a short shared secret can be brute-forced
/// offline from any one token.
pub const MIN_HS256_SECRET_LEN: usize = 32;

/// Smallest RSA modulus accepted for RS256, in bits.
pub const MIN_RSA_BITS: usize = 2048;

/// Why a token, or the key to check it, was refused.
///
/// `Display` is for logs (never contains the token); [`AuthError::reason`]
/// is for the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No token was presented.
    #[error("no token presented")]
    Missing,
    /// Not a JWT: wrong shape, bad base64 or JSON, unsupported header (this
    /// includes `alg: none`), over [`MAX_TOKEN_LEN`], or a claim of the wrong
    /// type.
    #[error("token is malformed")]
    Malformed,
    /// `exp` is in the past (beyond the leeway).
    #[error("token has expired")]
    Expired,
    /// `nbf` is in the future (beyond the leeway).
    #[error("token is not valid yet")]
    NotYetValid,
    /// The signature does not verify with the configured key.
    #[error("token signature does not verify")]
    BadSignature,
    /// The header names an algorithm other than the configured one.
    #[error("token algorithm is not the configured one")]
    WrongAlgorithm,
    /// `iss` is missing or is not the configured issuer.
    #[error("token issuer is missing or not accepted")]
    WrongIssuer,
    /// `aud` is missing or does not include the configured audience.
    #[error("token audience is missing or not accepted")]
    WrongAudience,
    /// The token has no `exp`; tokens that never expire are refused.
    #[error("token has no expiry")]
    MissingExpiry,
    /// The token has no `sub`.
    #[error("token has no subject")]
    MissingSubject,
    /// `sub` is not a valid [`UserId`].
    #[error("token subject is not a valid user id")]
    InvalidSubject,
    /// The configured key is unusable. A startup error: [`JwtValidator::new`]
    /// checks the key so that requests never meet this.
    #[error("invalid JWT key: {0}")]
    InvalidKey(String),
    /// A token could not be signed.
    #[error("could not sign token")]
    Signing,
}

impl AuthError {
    /// A short reason for the client, e.g. as a WebSocket close reason
    /// (at most 123 bytes). It never says which check failed beyond what the
    /// client can act on: sign in, refresh, or nothing.
    pub fn reason(&self) -> &'static str {
        self.unauthenticated().reason()
    }

    /// What the client is told, as the protocol's close value
    /// (`Close::Unauthenticated`) and the REST error both carry it.
    pub fn unauthenticated(&self) -> Unauthenticated {
        match self {
            AuthError::Missing => Unauthenticated::Missing,
            AuthError::Expired => Unauthenticated::Expired,
            AuthError::NotYetValid => Unauthenticated::NotYetValid,
            AuthError::Malformed
            | AuthError::BadSignature
            | AuthError::WrongAlgorithm
            | AuthError::WrongIssuer
            | AuthError::WrongAudience
            | AuthError::MissingExpiry
            | AuthError::MissingSubject
            | AuthError::InvalidSubject => Unauthenticated::Invalid,
            AuthError::InvalidKey(_) | AuthError::Signing => Unauthenticated::Unavailable,
        }
    }
}

/// The signing algorithms this service accepts; a deployment picks one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JwtAlgorithm {
    /// HMAC-SHA256 with a shared secret.
    Hs256,
    /// RSASSA-PKCS1-v1_5 with SHA-256; the gateway holds the public key.
    Rs256,
    /// ECDSA on P-256 with SHA-256; the gateway holds the public key.
    Es256,
}

impl JwtAlgorithm {
    /// Every accepted algorithm.
    pub const ALL: [JwtAlgorithm; 3] = [JwtAlgorithm::Hs256, JwtAlgorithm::Rs256, JwtAlgorithm::Es256];

    /// The JOSE name: `HS256`, `RS256`, `ES256`.
    pub fn as_str(self) -> &'static str {
        match self {
            JwtAlgorithm::Hs256 => "HS256",
            JwtAlgorithm::Rs256 => "RS256",
            JwtAlgorithm::Es256 => "ES256",
        }
    }

    /// Reads a JOSE name, ignoring ASCII case.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|alg| alg.as_str().eq_ignore_ascii_case(name.trim()))
    }

    fn jose(self) -> Algorithm {
        match self {
            JwtAlgorithm::Hs256 => Algorithm::HS256,
            JwtAlgorithm::Rs256 => Algorithm::RS256,
            JwtAlgorithm::Es256 => Algorithm::ES256,
        }
    }
}

impl fmt::Display for JwtAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The key that checks signatures; its variant fixes the one algorithm the
/// validator accepts.
#[derive(Clone)]
pub enum JwtKey {
    /// The shared secret (raw bytes, at least [`MIN_HS256_SECRET_LEN`]).
    Hs256(Vec<u8>),
    /// An RSA public key, PEM (`BEGIN PUBLIC KEY` or `BEGIN RSA PUBLIC KEY`).
    Rs256(Vec<u8>),
    /// A P-256 public key, PEM (`BEGIN PUBLIC KEY`).
    Es256(Vec<u8>),
}

impl JwtKey {
    /// The algorithm this key verifies.
    pub fn algorithm(&self) -> JwtAlgorithm {
        match self {
            JwtKey::Hs256(_) => JwtAlgorithm::Hs256,
            JwtKey::Rs256(_) => JwtAlgorithm::Rs256,
            JwtKey::Es256(_) => JwtAlgorithm::Es256,
        }
    }
}

/// Written by hand so the HS256 secret never reaches a log.
impl fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JwtKey::Hs256(_) => f.write_str("Hs256([redacted])"),
            JwtKey::Rs256(pem) => write!(f, "Rs256(<PEM public key, {} bytes>)", pem.len()),
            JwtKey::Es256(pem) => write!(f, "Es256(<PEM public key, {} bytes>)", pem.len()),
        }
    }
}

/// What a [`JwtValidator`] checks. Read from the environment by
/// `crate::config::jwt_from_source`.
#[derive(Debug, Clone)]
pub struct JwtConfig {
    key: JwtKey,
    issuer: Option<String>,
    audience: Option<String>,
    leeway_secs: u64,
}

impl JwtConfig {
    /// A config with no issuer or audience check and the default leeway.
    pub fn new(key: JwtKey) -> Self {
        Self { key, issuer: None, audience: None, leeway_secs: DEFAULT_LEEWAY_SECS }
    }

    /// Requires `iss` to be present and equal to `issuer`.
    pub fn with_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// Requires `aud` to be present and to include `audience`.
    pub fn with_audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// Clock skew tolerated on `exp` and `nbf`, in seconds.
    pub fn with_leeway_secs(mut self, leeway_secs: u64) -> Self {
        self.leeway_secs = leeway_secs;
        self
    }

    /// The verification key.
    pub fn key(&self) -> &JwtKey {
        &self.key
    }

    /// The required issuer, if any.
    pub fn issuer(&self) -> Option<&str> {
        self.issuer.as_deref()
    }

    /// The required audience, if any.
    pub fn audience(&self) -> Option<&str> {
        self.audience.as_deref()
    }

    /// Clock skew tolerated on `exp` and `nbf`, in seconds.
    pub fn leeway_secs(&self) -> u64 {
        self.leeway_secs
    }
}

/// Who a valid token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// The `sub` claim: whose portfolio this connection may see.
    pub user_id: UserId,
    /// The `exp` claim, Unix seconds.
    pub expires_at: i64,
    /// `exp` plus the leeway: the last second the token is still accepted
    /// (by REST as by the upgrade). A connection is closed after it.
    pub valid_until: i64,
    /// The optional `admin` claim (default `false`): may call admin endpoints.
    pub admin: bool,
}

/// Checks tokens against one key and one algorithm. Build it once at start
/// and share it; validation takes `&self` and does not allocate much.
pub struct JwtValidator {
    algorithm: JwtAlgorithm,
    key: DecodingKey,
    validation: Validation,
}

impl JwtValidator {
    /// Parses and checks the key now, so a bad secret or PEM stops the
    /// program at start instead of failing every request.
    pub fn new(config: &JwtConfig) -> Result<Self, AuthError> {
        let algorithm = config.key.algorithm();
        let key = decoding_key(&config.key)?;

        // Exactly one algorithm: a token naming another one (HS256 signed
        // with our RSA public key as the secret, `none`, …) is refused
        // before any signature check.
        let mut validation = Validation::new(algorithm.jose());
        validation.leeway = config.leeway_secs;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        let mut required = vec!["exp"];
        // The library only compares `iss`/`aud` when the token has them;
        // requiring them makes a configured check mean "present and equal".
        match &config.issuer {
            Some(issuer) => {
                validation.set_issuer(&[issuer]);
                required.push("iss");
            }
            None => validation.iss = None,
        }
        match &config.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);

        Ok(Self { algorithm, key, validation })
    }

    /// The one algorithm accepted.
    pub fn algorithm(&self) -> JwtAlgorithm {
        self.algorithm
    }

    /// Verifies the signature, then `exp`, `nbf`, `iss`, `aud`, then reads
    /// `sub` and `admin`.
    pub fn validate(&self, token: &str) -> Result<Claims, AuthError> {
        if token.is_empty() {
            return Err(AuthError::Missing);
        }
        if token.len() > MAX_TOKEN_LEN {
            return Err(AuthError::Malformed);
        }
        // Claims are read as a plain map so that a claim of an unexpected
        // shape surfaces as the right error after the signature and time
        // checks, not as a JSON error before them.
        let data =
            jsonwebtoken::decode::<Map<String, Value>>(token, &self.key, &self.validation).map_err(from_jwt_error)?;
        claims_from_map(&data.claims, self.validation.leeway)
    }
}

impl fmt::Debug for JwtValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtValidator")
            .field("algorithm", &self.algorithm)
            .field("issuer", &self.validation.iss)
            .field("audience", &self.validation.aud)
            .field("leeway_secs", &self.validation.leeway)
            .finish_non_exhaustive()
    }
}

/// Claims to sign a token with, for tests and the dev mode's demo sign-in.
/// `sub` is a plain string so tests can sign invalid ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenClaims {
    /// The user id.
    pub sub: String,
    /// Expiry, Unix seconds.
    pub exp: i64,
    /// Not before, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Audience.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    /// Admin flag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin: Option<bool>,
}

impl TokenClaims {
    /// Claims with only `sub` and `exp`.
    pub fn new(sub: impl Into<String>, exp: i64) -> Self {
        Self { sub: sub.into(), exp, nbf: None, iss: None, aud: None, admin: None }
    }
}

/// Signs `claims` with HS256. Production tokens come from the identity
/// provider; this serves tests and the dev mode's demo sign-in.
pub fn sign_hs256(secret: &[u8], claims: &TokenClaims) -> Result<String, AuthError> {
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(secret))
        .map_err(|_| AuthError::Signing)
}

/// The token of a request: `Authorization: Bearer <jwt>` (native clients)
/// wins, else the [`SESSION_COOKIE`] cookie (browsers). Pass the `Cookie`
/// header as received; with HTTP/2 several `Cookie` fields may arrive and
/// must be joined with `"; "` first.
pub fn token_from_headers<'a>(cookie_header: Option<&'a str>, authorization: Option<&'a str>) -> Option<&'a str> {
    authorization.and_then(bearer_token).or_else(|| cookie_header.and_then(session_cookie))
}

/// `Bearer <token>`, scheme case-insensitive (RFC 7235); anything else,
/// e.g. `Basic …`, is not ours and yields `None`.
fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && !token.contains(char::is_whitespace))
        .then_some(token)
}

/// The first non-empty `session` cookie in `a=b; session=xyz; c=d`; a
/// quoted value (RFC 6265 allows `"…"`) is unquoted.
fn session_cookie(header: &str) -> Option<&str> {
    header.split(';').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        if name.trim() != SESSION_COOKIE {
            return None;
        }
        let value = value.trim();
        let value = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(value);
        (!value.is_empty()).then_some(value)
    })
}

fn decoding_key(key: &JwtKey) -> Result<DecodingKey, AuthError> {
    match key {
        JwtKey::Hs256(secret) => {
            if secret.len() < MIN_HS256_SECRET_LEN {
                return Err(AuthError::InvalidKey(format!(
                    "HS256 secret must be at least {MIN_HS256_SECRET_LEN} bytes"
                )));
            }
            Ok(DecodingKey::from_secret(secret))
        }
        JwtKey::Rs256(pem) => {
            refuse_private_key(pem)?;
            let key = DecodingKey::from_rsa_pem(pem)
                .map_err(|e| AuthError::InvalidKey(format!("RS256 key is not an RSA public key PEM ({e})")))?;
            // `from_rsa_pem` only unwraps the PEM; the RSA key itself is
            // parsed on first verify. Parse it now.
            let jwk = Jwk::from_decoding_key(&key, Some(Algorithm::RS256))
                .map_err(|e| AuthError::InvalidKey(format!("RS256 key is not a valid RSA public key ({e})")))?;
            let AlgorithmParameters::RSA(rsa) = &jwk.algorithm else {
                return Err(AuthError::InvalidKey("RS256 key is not an RSA key".into()));
            };
            // Unpadded base64url: 4 characters per 3 bytes.
            let modulus_bits = rsa.n.len() * 3 / 4 * 8;
            if modulus_bits < MIN_RSA_BITS {
                return Err(AuthError::InvalidKey(format!(
                    "RS256 key has about {modulus_bits} bits; at least {MIN_RSA_BITS} are required"
                )));
            }
            Ok(key)
        }
        JwtKey::Es256(pem) => {
            refuse_private_key(pem)?;
            let key = DecodingKey::from_ec_pem(pem)
                .map_err(|e| AuthError::InvalidKey(format!("ES256 key is not an EC public key PEM ({e})")))?;
            let jwk = Jwk::from_decoding_key(&key, Some(Algorithm::ES256))
                .map_err(|e| AuthError::InvalidKey(format!("ES256 key is not a valid EC public key ({e})")))?;
            if !matches!(&jwk.algorithm, AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256) {
                return Err(AuthError::InvalidKey("ES256 needs a P-256 key".into()));
            }
            // Building a verifier checks that the point is on the curve; the
            // probe signature itself is expected not to verify.
            jsonwebtoken::crypto::verify("", b"", &key, Algorithm::ES256)
                .map_err(|e| AuthError::InvalidKey(format!("ES256 key is not a valid P-256 point ({e})")))?;
            Ok(key)
        }
    }
}

/// A gateway only needs the public key; a private key in its config is a
/// deployment mistake that spreads signing power, so it is refused.
fn refuse_private_key(pem: &[u8]) -> Result<(), AuthError> {
    if String::from_utf8_lossy(pem).contains("PRIVATE KEY-----") {
        return Err(AuthError::InvalidKey(
            "expected a public key but found a private key; give the gateway only the public key".into(),
        ));
    }
    Ok(())
}

fn from_jwt_error(err: jsonwebtoken::errors::Error) -> AuthError {
    match err.kind() {
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::InvalidSignature => AuthError::BadSignature,
        ErrorKind::InvalidAlgorithm
        | ErrorKind::InvalidAlgorithmName
        | ErrorKind::UnsupportedAlgorithm
        | ErrorKind::MissingAlgorithm => AuthError::WrongAlgorithm,
        ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
        ErrorKind::InvalidAudience => AuthError::WrongAudience,
        ErrorKind::InvalidSubject => AuthError::InvalidSubject,
        ErrorKind::MissingRequiredClaim(claim) => match claim.as_str() {
            "exp" => AuthError::MissingExpiry,
            "iss" => AuthError::WrongIssuer,
            "aud" => AuthError::WrongAudience,
            "sub" => AuthError::MissingSubject,
            _ => AuthError::Malformed,
        },
        ErrorKind::InvalidEcdsaKey | ErrorKind::InvalidRsaKey(_) | ErrorKind::InvalidKeyFormat => {
            AuthError::InvalidKey("the verification key was rejected".into())
        }
        _ => AuthError::Malformed,
    }
}

/// Reads our claims from a token whose signature and times were checked.
fn claims_from_map(claims: &Map<String, Value>, leeway_secs: u64) -> Result<Claims, AuthError> {
    let user_id = match claims.get("sub") {
        None | Some(Value::Null) => return Err(AuthError::MissingSubject),
        Some(Value::String(sub)) => UserId::new(sub.as_str()).map_err(|_| AuthError::InvalidSubject)?,
        Some(_) => return Err(AuthError::InvalidSubject),
    };
    let expires_at = claims.get("exp").and_then(unix_seconds).ok_or(AuthError::MissingExpiry)?;
    // Strict: an `admin` that is not a boolean is a misconfigured issuer;
    // refusing the token makes that visible instead of guessing.
    let admin = match claims.get("admin") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(admin)) => *admin,
        Some(_) => return Err(AuthError::Malformed),
    };
    let valid_until = expires_at.saturating_add(i64::try_from(leeway_secs).unwrap_or(i64::MAX));
    Ok(Claims { user_id, expires_at, valid_until, admin })
}

/// A NumericDate: integer seconds, or a finite float (RFC 7519 allows
/// fractions), as the library accepts.
fn unix_seconds(value: &Value) -> Option<i64> {
    value.as_i64().or_else(|| value.as_f64().filter(|f| f.is_finite()).map(|f| f.round() as i64))
}
