//! `dataFrom.extract`: one secret holding a JSON object becomes one Secret key per member, as
//! ESO's `GetSecretMap` does (eso-compatibility.md 4.2): string members unquoted and unescaped,
//! `null` as an empty value, every other member as its raw JSON text exactly as stored (`5432`,
//! `1.50`, `{ "a" : 1 }` with its spacing).
//!
//! Like Go's `json.Unmarshal`, a later duplicate member wins and a top-level `null` gives no keys.
//! Deviations: a payload that is not UTF-8, or a string member with an unpaired `\ud800`-style
//! escape, is refused where Go replaces the bad parts with U+FFFD (silently changing the value);
//! and JSON nested deeper than 128 levels is refused (serde_json's recursion limit; Go's is
//! 10000).

use std::collections::BTreeMap;

use lockstep_provider_api::{ErrorClass, SecretValue};
use serde_json::value::RawValue;
use zeroize::Zeroizing;

/// Why a secret could not be exploded into keys. Names the secret (and a member's key), never
/// a value; the JSON error position is given, serde's message is not (it can quote the input).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtractError {
    #[error(
        "unable to unmarshal secret {secret}: the value is not JSON (syntax error at line {line} \
         column {column}); dataFrom.extract needs a JSON object, use data[] for a plain value"
    )]
    NotJson {
        secret: String,
        line: usize,
        column: usize,
    },

    #[error(
        "unable to unmarshal secret {secret}: the value is JSON {found}, not an object; \
         dataFrom.extract needs a JSON object (select one with remoteRef.property, or use data[])"
    )]
    NotAnObject { secret: String, found: &'static str },

    #[error(
        "unable to unmarshal secret {secret}: the value is not UTF-8 text, so it is not JSON; \
         use data[] with decodingStrategy for binary values"
    )]
    NotUtf8 { secret: String },

    #[error(
        "unable to unmarshal secret {secret}: the string under key {key:?} has an invalid \
         \\u escape (an unpaired surrogate); fix the stored JSON"
    )]
    InvalidString { secret: String, key: String },
}

impl ExtractError {
    /// Always [`ErrorClass::Invalid`]: the stored value or the spec must change.
    pub fn class(&self) -> ErrorClass {
        ErrorClass::Invalid
    }
}

/// Explodes the JSON object `payload` of the secret named `secret` into Secret keys.
pub fn extract_map(
    secret: &str,
    payload: &SecretValue,
) -> Result<BTreeMap<String, SecretValue>, ExtractError> {
    let text = std::str::from_utf8(payload.expose()).map_err(|_| ExtractError::NotUtf8 {
        secret: secret.to_owned(),
    })?;
    let not_json = |error: serde_json::Error| ExtractError::NotJson {
        secret: secret.to_owned(),
        line: error.line(),
        column: error.column(),
    };

    // Parsed first as one raw value: that validates the JSON without copying any value, and its
    // first byte tells the JSON type for the message when it is not an object.
    let whole: &RawValue = serde_json::from_str(text).map_err(not_json)?;
    match whole.get().as_bytes().first() {
        Some(b'{') => {}
        Some(b'n') => return Ok(BTreeMap::new()),
        other => {
            return Err(ExtractError::NotAnObject {
                secret: secret.to_owned(),
                found: json_type_name(other.copied()),
            });
        }
    }

    // Borrowed raw members point into the payload, so no copy of a value exists besides the
    // output (and the zeroized unescaping buffer).
    let members: BTreeMap<String, &RawValue> =
        serde_json::from_str(whole.get()).map_err(not_json)?;
    members
        .into_iter()
        .map(|(key, raw)| {
            let value = member_value(raw).ok_or_else(|| ExtractError::InvalidString {
                secret: secret.to_owned(),
                key: key.clone(),
            })?;
            Ok((key, value))
        })
        .collect()
}

/// One member as ESO stores it: `json.Unmarshal` into a Go string if that works (strings, and
/// `null` as ""), else the raw bytes. `None` for a string serde cannot unescape.
fn member_value(raw: &RawValue) -> Option<SecretValue> {
    let text = raw.get();
    match text.as_bytes().first() {
        Some(b'"') => {
            let unescaped: Zeroizing<String> = Zeroizing::new(serde_json::from_str(text).ok()?);
            Some(SecretValue::new(unescaped.as_bytes().to_vec()))
        }
        Some(b'n') => Some(SecretValue::new(Vec::new())),
        _ => Some(SecretValue::new(text.as_bytes().to_vec())),
    }
}

/// The JSON type starting with `first`, for messages.
fn json_type_name(first: Option<u8>) -> &'static str {
    match first {
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'-' | b'0'..=b'9') => "a number",
        _ => "of another type",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extract(payload: &str) -> Result<BTreeMap<String, String>, ExtractError> {
        extract_map("app/db", &SecretValue::from(payload.to_owned())).map(|map| {
            map.into_iter()
                .map(|(k, v)| (k, String::from_utf8_lossy(v.expose()).into_owned()))
                .collect()
        })
    }

    fn expected(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    // ESO runtime/esutils/utils_test.go TestJSONToSecretDataMap and the AWS e2e case
    // JSONDataFromExtractProperty.
    #[test]
    fn string_values_are_unquoted() {
        assert_eq!(extract(r#"{"foo":"bar"}"#), Ok(expected(&[("foo", "bar")])));
    }

    #[test]
    fn nested_and_non_string_values_are_raw_json() {
        assert_eq!(
            extract(r#"{"username":"my_user","port":5432,"nested":{"baz":"nestedval"}}"#),
            Ok(expected(&[
                ("username", "my_user"),
                ("port", "5432"),
                ("nested", r#"{"baz":"nestedval"}"#),
            ]))
        );
    }

    #[test]
    fn raw_text_is_kept_exactly_as_stored() {
        assert_eq!(
            extract(r#"{ "f" : 1.50 , "o" : { "a" : [ 1, 2 ] }, "b": true, "e": 1e3 }"#),
            Ok(expected(&[
                ("b", "true"),
                ("e", "1e3"),
                ("f", "1.50"),
                ("o", r#"{ "a" : [ 1, 2 ] }"#),
            ]))
        );
    }

    #[test]
    fn null_members_are_empty() {
        assert_eq!(extract(r#"{"key":null}"#), Ok(expected(&[("key", "")])));
    }

    #[test]
    fn escapes_are_decoded() {
        assert_eq!(
            extract(r#"{"pem":"line1\nline2","u":"\u00e9\ud83d\ude00","q":"\"x\""}"#),
            Ok(expected(&[
                ("pem", "line1\nline2"),
                ("q", "\"x\""),
                ("u", "é😀")
            ]))
        );
    }

    #[test]
    fn surrounding_whitespace_is_allowed() {
        assert_eq!(extract(" \n{\"a\":\"b\"}\n "), Ok(expected(&[("a", "b")])));
        assert_eq!(extract("  null "), Ok(BTreeMap::new()));
    }

    #[test]
    fn a_later_duplicate_wins_as_in_go() {
        assert_eq!(extract(r#"{"a":"1","a":"2"}"#), Ok(expected(&[("a", "2")])));
    }

    #[test]
    fn top_level_null_gives_no_keys_as_in_go() {
        assert_eq!(extract("null"), Ok(BTreeMap::new()));
        assert_eq!(extract("{}"), Ok(BTreeMap::new()));
    }

    #[test]
    fn invalid_json_is_a_clear_error() {
        assert_eq!(
            extract("not-json"),
            Err(ExtractError::NotJson {
                secret: "app/db".into(),
                line: 1,
                column: 2
            })
        );
        assert!(matches!(
            extract(r#"{"a":1"#),
            Err(ExtractError::NotJson { .. })
        ));
    }

    #[test]
    fn non_objects_say_what_they_are() {
        for (payload, found) in [
            ("[1,2]", "an array"),
            (r#""hunter2""#, "a string"),
            ("42", "a number"),
            ("true", "a boolean"),
        ] {
            let error = extract(payload).unwrap_err();
            assert_eq!(
                error,
                ExtractError::NotAnObject {
                    secret: "app/db".into(),
                    found
                }
            );
            assert!(!error.to_string().contains("hunter2"));
        }
    }

    #[test]
    fn non_utf8_and_bad_escapes_are_refused() {
        assert_eq!(
            extract_map("s", &SecretValue::new(vec![b'{', 0xff, b'}'])),
            Err(ExtractError::NotUtf8 { secret: "s".into() })
        );
        assert!(matches!(
            extract(r#"{"k":"\ud800"}"#),
            Err(ExtractError::InvalidString { .. }) | Err(ExtractError::NotJson { .. })
        ));
    }
}
