//! The `X-Webhook-Signature` header: arbitrary headers never panic, and one
//! verifies only when it carries the body's MAC for an accepted time (hex
//! in either case, white space around values: the fuzzer's finds, the same
//! MAC bytes, so no forgery); a header made by `sign` for the body always
//! verifies, and never for another body.
#![no_main]

use std::time::Duration;

use common::config::Secret;
use functions::signature::{sign, Verifier};
use libfuzzer_sys::fuzz_target;

const SECRET: &[u8] = b"fuzz-secret-fuzz-secret-fuzz-secret";
const NOW: i64 = 1_700_000_000;

fuzz_target!(|data: &[u8]| {
    let verifier = Verifier::new(Secret::new(SECRET.to_vec()), Duration::from_secs(300));
    // The first line is the header, the rest the body.
    let split = data.iter().position(|b| *b == b'\n').unwrap_or(data.len());
    let (header, body) = (&data[..split], data.get(split + 1..).unwrap_or_default());
    let signed = sign(SECRET, NOW, body);
    if verifier.verify(Some(header), body, NOW).is_ok() {
        // The header must name a time within the tolerance and carry this
        // body's MAC for it (a forgery would be a bug).
        let header = String::from_utf8_lossy(header).to_ascii_lowercase();
        // Parsed as the verifier does: `,`-separated `key=value` parts,
        // white space trimmed around each part, key and value.
        let times = header.split(',').filter_map(|part| {
            let (key, value) = part.trim().split_once('=')?;
            (key.trim() == "t").then(|| value.trim().parse::<i64>().ok()).flatten()
        });
        let carries = times.into_iter().any(|t| {
            t.abs_diff(NOW) <= 300
                && header.contains(sign(SECRET, t, body).split_once(",v1=").map_or("", |(_, mac)| mac))
        });
        assert!(carries, "{header:?} verified without the MAC");
    }
    assert!(verifier.verify(Some(signed.as_bytes()), body, NOW).is_ok());
    let mut other = body.to_vec();
    other.push(b'x');
    assert!(verifier.verify(Some(signed.as_bytes()), &other, NOW).is_err());
});
