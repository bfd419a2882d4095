//! Decimal strings as the wire carries them (docs/protocol.md, docs/openapi.yaml
//! `Decimal`): an optional `-`, digits, and an optional `.` with digits —
//! `"176.00"`, `"-0.5"`, `"10"`. Nothing else is read: rust_decimal's own
//! `serde::str` would also take `""` (as none), exponents (`"1e3"`),
//! underscores (`"1_000"`), a `+` and fractions it must round. Use as
//! `#[serde(with = "common::decimal::str")]` (or `str_option`).

use std::fmt;

use rust_decimal::Decimal;

/// Reads a decimal string in the wire's form, exactly (no rounding).
///
/// # Errors
/// A message saying what the form is, for a text in any other form or with
/// more digits than a [`Decimal`] holds.
pub fn parse(text: &str) -> Result<Decimal, String> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let (whole, fraction) = match digits.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (digits, None),
    };
    let all_digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(whole) || !fraction.is_none_or(all_digits) {
        return Err(format!("{text:?} is not a decimal string (digits, an optional - and .digits, like \"176.00\")"));
    }
    Decimal::from_str_exact(text).map_err(|error| format!("{text:?}: {error}"))
}

struct Visitor;

impl serde::de::Visitor<'_> for Visitor {
    type Value = Decimal;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a decimal string like \"176.00\"")
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Decimal, E> {
        parse(text).map_err(E::custom)
    }
}

/// A required decimal string.
pub mod str {
    pub use rust_decimal::serde::str::serialize;
    use rust_decimal::Decimal;

    /// Reads it with [`super::parse`].
    ///
    /// # Errors
    /// Anything but a string in the wire's form.
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Decimal, D::Error> {
        deserializer.deserialize_str(super::Visitor)
    }
}

/// An optional decimal string: absent or `null` is none; `""` is refused.
pub mod str_option {
    use std::fmt;

    pub use rust_decimal::serde::str_option::serialize;
    use rust_decimal::Decimal;

    struct OptionVisitor;

    impl<'de> serde::de::Visitor<'de> for OptionVisitor {
        type Value = Option<Decimal>;

        fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
            formatter.write_str("null or a decimal string like \"176.00\"")
        }

        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
            super::str::deserialize(deserializer).map(Some)
        }
    }

    /// Reads it with [`super::parse`].
    ///
    /// # Errors
    /// Anything but `null` or a string in the wire's form.
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Decimal>, D::Error> {
        deserializer.deserialize_option(OptionVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wire_form_is_read_exactly() {
        for (text, value) in [("176.00", "176.00"), ("-0.5", "-0.5"), ("10", "10"), ("0", "0"), ("007.10", "7.10")] {
            assert_eq!(parse(text), Ok(value.parse().unwrap()), "{text}");
        }
        assert_eq!(parse("176.00").unwrap().scale(), 2, "the scale is kept");
    }

    #[test]
    fn every_other_form_is_refused() {
        for text in ["", "-", ".5", "5.", "+5", "1e3", "1E-2", "1_000", " 1", "1 ", "1.2.3", "0x10", "NaN", "--1", "١"]
        {
            let error = parse(text).expect_err(text);
            assert!(error.contains("decimal string"), "{text}: {error}");
        }
        // More fractional digits than a Decimal holds: refused, not rounded.
        assert!(parse("0.12345678901234567890123456789").is_err());
        assert!(parse("99999999999999999999999999999999").is_err(), "beyond 96 bits");
    }

    #[derive(Debug, PartialEq, serde::Deserialize, serde::Serialize)]
    struct Prices {
        #[serde(with = "str")]
        price: Decimal,
        #[serde(default, with = "str_option")]
        stop: Option<Decimal>,
    }

    #[test]
    fn serde_reads_strings_only_and_writes_what_it_reads() {
        let read: Prices = serde_json::from_str(r#"{"price":"1.50","stop":null}"#).unwrap();
        assert_eq!(read, Prices { price: "1.50".parse().unwrap(), stop: None });
        assert_eq!(serde_json::to_string(&read).unwrap(), r#"{"price":"1.50","stop":null}"#);
        let absent: Prices = serde_json::from_str(r#"{"price":"2"}"#).unwrap();
        assert_eq!(absent.stop, None);
        for bad in
            [r#"{"price":1.5}"#, r#"{"price":""}"#, r#"{"price":"1","stop":""}"#, r#"{"price":"1","stop":"1e2"}"#]
        {
            assert!(serde_json::from_str::<Prices>(bad).is_err(), "{bad}");
        }
    }
}
