//! Turning request bodies into typed input: JSON decoding that names the
//! offending field (`ticks[3].price`), and the checks shared by the
//! functions' inputs.

use serde::de::DeserializeOwned;

use crate::error::Error;

/// Decodes `body` as `T`; an error names the field's JSON path.
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, Error> {
    // Tracking the path costs an allocation per object key, so a body is
    // decoded plainly first; only one that fails is decoded again, tracked,
    // to name the field (same decoder, same verdict).
    match serde_json::from_slice(body) {
        Ok(value) => Ok(value),
        Err(_) => parse_tracked(body),
    }
}

/// [`parse`], tracking the JSON path for the error.
fn parse_tracked<T: DeserializeOwned>(body: &[u8]) -> Result<T, Error> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        let message = without_position(&inner.to_string());
        // serde reports a missing field at its parent; name the field itself.
        let field = match message.strip_prefix("missing field `").and_then(|rest| rest.split_once('`')) {
            Some((missing, _)) if path == "." => Some(missing.to_owned()),
            Some((missing, _)) => Some(format!("{path}.{missing}")),
            None if path == "." || inner.is_syntax() || inner.is_eof() => None,
            None => Some(path),
        };
        let message = if inner.is_syntax() || inner.is_eof() { format!("malformed JSON: {message}") } else { message };
        Error::BadRequest { field, message }
    })?;
    deserializer
        .end()
        .map_err(|_| Error::BadRequest { field: None, message: "malformed JSON: trailing characters".into() })?;
    Ok(value)
}

/// serde_json appends " at line 1 column 17"; the field path says more.
fn without_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(cut) => message[..cut].to_owned(),
        None => message.to_owned(),
    }
}

/// An identifier from outside (job id, order id, execution id): 1 to `max`
/// printable ASCII characters, no spaces. They end up in dedupe keys.
pub fn check_id(field: &str, value: &str, max: usize) -> Result<(), Error> {
    if value.is_empty() || value.len() > max || !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::field(field, format!("must be 1 to {max} printable ASCII characters without spaces")));
    }
    Ok(())
}

/// A price or quantity from outside that, when given, must be positive
/// (limit and stop prices: a zero or negative one is a mapping bug, never an
/// order).
pub fn check_positive(field: &str, value: Option<rust_decimal::Decimal>) -> Result<(), Error> {
    match value {
        Some(value) if value <= rust_decimal::Decimal::ZERO => Err(Error::field(field, "must be positive")),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Batch {
        ticks: Vec<Tick>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Tick {
        symbol: String,
        #[serde(with = "common::decimal::str")]
        price: rust_decimal::Decimal,
    }

    fn field_of(body: &str) -> Option<String> {
        match parse::<Batch>(body.as_bytes()) {
            Err(Error::BadRequest { field, .. }) => field,
            other => panic!("expected a bad request, got {other:?}"),
        }
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(
            field_of(r#"{"ticks":[{"symbol":"A","price":"1"},{"symbol":"B","price":"x"}]}"#).as_deref(),
            Some("ticks[1].price")
        );
        assert_eq!(field_of(r#"{"ticks":[{"symbol":"A"}]}"#).as_deref(), Some("ticks[0].price"));
        assert_eq!(field_of(r#"{}"#).as_deref(), Some("ticks"));
        assert_eq!(field_of(r#"{"ticks":[{"symbol":"A","price":1.5}]}"#).as_deref(), Some("ticks[0].price"));
        assert_eq!(field_of(r#"{"ticks": ["#), None);
        assert_eq!(field_of(r#"{"ticks":[]} trailing"#), None);
    }

    #[test]
    fn ids_are_bounded() {
        assert!(check_id("jobId", "job-1", 8).is_ok());
        assert!(check_id("jobId", "", 8).is_err());
        assert!(check_id("jobId", "a b", 8).is_err());
        assert!(check_id("jobId", "123456789", 8).is_err());
    }
}
