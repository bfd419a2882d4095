//! Request signatures: HMAC-SHA256 over `<timestamp>.<body>` with a shared
//! secret, sent as `X-Webhook-Signature: t=<unix seconds>,v1=<hex>`.
//!
//! The timestamp is signed, so an old request cannot be replayed with a new
//! one; requests older (or newer) than the tolerance are refused. Within it
//! a replay is harmless: every event carries a dedupe id. Several `v1=`
//! entries may be sent while a secret is rotated; one matching is enough.
//! Comparison is constant-time (`hmac`'s `verify_slice`).

use std::fmt;
use std::time::Duration;

use common::config::Secret;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "x-webhook-signature";

/// Longest header accepted, bytes.
const MAX_HEADER_LEN: usize = 1_024;

/// Most `v1=` entries looked at.
const MAX_SIGNATURES: usize = 4;

type HmacSha256 = Hmac<Sha256>;

/// Why a signature was refused. For logs; clients get one generic message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No signature header.
    #[error("the signature header is missing")]
    Missing,
    /// The header is not `t=<unix>,v1=<hex>`.
    #[error("the signature header is malformed")]
    Malformed,
    /// The timestamp is outside the tolerance.
    #[error("the signature timestamp is outside the tolerance")]
    Stale,
    /// No `v1` entry matches.
    #[error("no signature matches")]
    Mismatch,
}

/// Checks signatures made with one secret.
#[derive(Clone)]
pub struct Verifier {
    secret: Secret,
    tolerance: Duration,
}

/// Written by hand: the secret stays out of logs.
impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier").field("secret", &"[redacted]").field("tolerance", &self.tolerance).finish()
    }
}

impl Verifier {
    /// A verifier for `secret`, accepting timestamps within `tolerance` of now.
    pub fn new(secret: Secret, tolerance: Duration) -> Self {
        Self { secret, tolerance }
    }

    /// Checks `header` (the raw header value, if any) against `body` at
    /// `now` (Unix seconds).
    pub fn verify(&self, header: Option<&[u8]>, body: &[u8], now: i64) -> Result<(), SignatureError> {
        let header = header.ok_or(SignatureError::Missing)?;
        if header.len() > MAX_HEADER_LEN {
            return Err(SignatureError::Malformed);
        }
        let header = std::str::from_utf8(header).map_err(|_| SignatureError::Malformed)?;
        let mut timestamp = None;
        let mut signatures = Vec::new();
        for part in header.split(',') {
            let (key, value) = part.trim().split_once('=').ok_or(SignatureError::Malformed)?;
            match key.trim() {
                "t" if timestamp.is_none() => timestamp = Some(value.trim()),
                "t" => return Err(SignatureError::Malformed),
                "v1" if signatures.len() < MAX_SIGNATURES => {
                    signatures.push(hex::decode(value.trim()).map_err(|_| SignatureError::Malformed)?)
                }
                // Other schemes (and entries beyond the cap) are ignored.
                _ => {}
            }
        }
        let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
        let unix: i64 = timestamp.parse().map_err(|_| SignatureError::Malformed)?;
        if signatures.is_empty() {
            return Err(SignatureError::Malformed);
        }
        let tolerance = i64::try_from(self.tolerance.as_secs()).unwrap_or(i64::MAX);
        if unix.abs_diff(now) > tolerance.unsigned_abs() {
            return Err(SignatureError::Stale);
        }
        let mac = mac(self.secret.expose(), timestamp, body);
        if signatures.iter().any(|signature| mac.clone().verify_slice(signature).is_ok()) {
            Ok(())
        } else {
            Err(SignatureError::Mismatch)
        }
    }
}

/// The header value signing `body` at `timestamp` (Unix seconds) with
/// `secret`: what a sender (and a test) puts in [`SIGNATURE_HEADER`].
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let timestamp = timestamp.to_string();
    let signature = mac(secret, &timestamp, body).finalize().into_bytes();
    format!("t={timestamp},v1={}", hex::encode(signature))
}

fn mac(secret: &[u8], timestamp: &str, body: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length; this cannot fail.
    let mut mac = match HmacSha256::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// Unix seconds now.
pub fn now_unix() -> i64 {
    chrono::Utc::now().timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
    const NOW: i64 = 1_767_454_245;

    fn verifier() -> Verifier {
        Verifier::new(Secret::new(SECRET), Duration::from_secs(300))
    }

    #[test]
    fn a_fresh_signature_of_the_same_body_passes() {
        let header = sign(SECRET, NOW - 299, b"{}");
        assert_eq!(verifier().verify(Some(header.as_bytes()), b"{}", NOW), Ok(()));
        // Known answer (Python: hmac.new(secret, b'1700000000.{"a":1}', sha256)),
        // so senders in other languages can check their code against it.
        assert_eq!(
            sign(SECRET, 1_700_000_000, br#"{"a":1}"#),
            "t=1700000000,v1=f05f2539e3ae1c49aec5f8cfdad75ef6b06480b133973ffbb7ec9e18827af177"
        );
    }

    #[test]
    fn every_kind_of_bad_signature_is_refused() {
        let v = verifier();
        let good = sign(SECRET, NOW, b"body");
        assert_eq!(v.verify(None, b"body", NOW), Err(SignatureError::Missing));
        assert_eq!(v.verify(Some(good.as_bytes()), b"b0dy", NOW), Err(SignatureError::Mismatch));
        let other = sign(b"another secret of at least 32 bytes", NOW, b"body");
        assert_eq!(v.verify(Some(other.as_bytes()), b"body", NOW), Err(SignatureError::Mismatch));
        let stale = sign(SECRET, NOW - 301, b"body");
        assert_eq!(v.verify(Some(stale.as_bytes()), b"body", NOW), Err(SignatureError::Stale));
        let future = sign(SECRET, NOW + 301, b"body");
        assert_eq!(v.verify(Some(future.as_bytes()), b"body", NOW), Err(SignatureError::Stale));
        for malformed in ["", "t=1", "v1=00", "t=x,v1=00", "t=1,v1=zz", "t=1,t=2,v1=00", "garbage"] {
            assert_eq!(
                v.verify(Some(malformed.as_bytes()), b"body", NOW),
                Err(SignatureError::Malformed),
                "{malformed}"
            );
        }
    }

    #[test]
    fn one_matching_entry_of_several_is_enough() {
        let good = sign(SECRET, NOW, b"body");
        let v1 = good.split_once(",v1=").unwrap().1;
        let header = format!("t={NOW},v1={},v1={v1},v0=legacy", "00".repeat(32));
        assert_eq!(verifier().verify(Some(header.as_bytes()), b"body", NOW), Ok(()));
    }
}
