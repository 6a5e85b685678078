//! `decodingStrategy` and `nullBytePolicy` on fetched values, as ESO applies them
//! (`runtime/decoding/decoding.go`, `externalsecret_controller_secret.go`).
//!
//! Base64 follows Go's `encoding/base64` `StdEncoding` / `URLEncoding`, which differ from a strict
//! RFC 4648 decoder in two ways users' data relies on: `\r` and `\n` anywhere are skipped
//! (line-wrapped PEM-style base64 decodes), and non-zero unused bits in the last symbol are
//! accepted (`YR==` decodes to `a`). Padding is required.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use lockstep_provider_api::{ErrorClass, SecretValue};
use zeroize::Zeroizing;

// The strategies are the CRD's own enums: one definition for the schema and for the behaviour.
pub use crate::api::external_secret::{DecodingStrategy, NullBytePolicy};

/// Why a value could not be decoded or stored. Names the key, never the value: the offset of a
/// bad byte is given, the byte itself is not.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error(
        "error applying decoding strategy {strategy} to data: failure decoding key {key}: \
         the value is not valid {strategy} ({problem}); fix the stored value or change \
         decodingStrategy (Auto keeps values that are not base64 as they are)"
    )]
    InvalidBase64 {
        key: String,
        strategy: DecodingStrategy,
        problem: Base64Problem,
    },

    #[error(
        "fetched secret value for key {key:?} contains null bytes; use a text-safe format such \
         as PEM/base64 or leave nullBytePolicy unset for intentional binary data"
    )]
    NullBytes { key: String },
}

impl DecodeError {
    /// Always [`ErrorClass::Invalid`]: the stored value or the spec must change.
    pub fn class(&self) -> ErrorClass {
        ErrorClass::Invalid
    }
}

/// What is wrong with a base64 value, without any of its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base64Problem {
    /// A byte outside the alphabet, or padding where it cannot be, at this offset of the value.
    IllegalByteAt(usize),
    /// The length or the padding is wrong (Go requires `=` padding to a multiple of 4).
    LengthOrPadding,
}

impl fmt::Display for Base64Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::IllegalByteAt(offset) => write!(f, "illegal base64 data at input byte {offset}"),
            Self::LengthOrPadding => f.write_str("wrong length or padding"),
        }
    }
}

/// Go's `base64.StdEncoding` / `URLEncoding` decoding rules (see the module comment).
const GO_DECODING: GeneralPurposeConfig = GeneralPurposeConfig::new()
    .with_decode_padding_mode(DecodePaddingMode::RequireCanonical)
    .with_decode_allow_trailing_bits(true);
const GO_STD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, GO_DECODING);
const GO_URL: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, GO_DECODING);

/// Decodes one value fetched for `key` (the Secret key it will be stored under, for messages).
pub fn decode(
    strategy: DecodingStrategy,
    key: &str,
    value: SecretValue,
) -> Result<SecretValue, DecodeError> {
    let invalid = |problem| DecodeError::InvalidBase64 {
        key: key.to_owned(),
        strategy,
        problem,
    };
    match strategy {
        DecodingStrategy::None => Ok(value),
        DecodingStrategy::Base64 => go_base64(&GO_STD, value.expose()).map_err(invalid),
        DecodingStrategy::Base64Url => go_base64(&GO_URL, value.expose()).map_err(invalid),
        DecodingStrategy::Auto => Ok(go_base64(&GO_STD, value.expose())
            .or_else(|_| go_base64(&GO_URL, value.expose()))
            .unwrap_or(value)),
    }
}

/// Decodes every value of a `dataFrom` map; the first failure (in key order) names its key.
pub fn decode_map(
    strategy: DecodingStrategy,
    map: BTreeMap<String, SecretValue>,
) -> Result<BTreeMap<String, SecretValue>, DecodeError> {
    if strategy == DecodingStrategy::None {
        return Ok(map);
    }
    map.into_iter()
        .map(|(key, value)| {
            let decoded = decode(strategy, &key, value)?;
            Ok((key, decoded))
        })
        .collect()
}

/// `nullBytePolicy` on one value stored under `key`.
pub fn check_null_bytes(
    policy: NullBytePolicy,
    key: &str,
    value: &SecretValue,
) -> Result<(), DecodeError> {
    if policy == NullBytePolicy::Fail && value.expose().contains(&0) {
        return Err(DecodeError::NullBytes {
            key: key.to_owned(),
        });
    }
    Ok(())
}

/// `nullBytePolicy` on a map; like ESO, reports the first offending key in sorted order.
pub fn check_null_bytes_in_map(
    policy: NullBytePolicy,
    map: &BTreeMap<String, SecretValue>,
) -> Result<(), DecodeError> {
    map.iter()
        .try_for_each(|(key, value)| check_null_bytes(policy, key, value))
}

/// Go's `Encoding.DecodeString`: newlines skipped, then a padded decode.
fn go_base64(engine: &GeneralPurpose, input: &[u8]) -> Result<SecretValue, Base64Problem> {
    let without_newlines: Zeroizing<Vec<u8>> = Zeroizing::new(
        input
            .iter()
            .copied()
            .filter(|b| !matches!(b, b'\r' | b'\n'))
            .collect(),
    );
    engine
        .decode(without_newlines.as_slice())
        .map(SecretValue::new)
        .map_err(|error| match error {
            base64::DecodeError::InvalidByte(offset, _)
            | base64::DecodeError::InvalidLastSymbol(offset, _) => {
                Base64Problem::IllegalByteAt(original_offset(input, offset))
            }
            base64::DecodeError::InvalidLength(_) | base64::DecodeError::InvalidPadding => {
                Base64Problem::LengthOrPadding
            }
        })
}

/// Maps an offset in the newline-free copy back to the value the user stored.
fn original_offset(input: &[u8], offset_without_newlines: usize) -> usize {
    input
        .iter()
        .enumerate()
        .filter(|(_, b)| !matches!(b, b'\r' | b'\n'))
        .nth(offset_without_newlines)
        .map_or(input.len(), |(index, _)| index)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(strategy: DecodingStrategy, input: &[u8]) -> Result<Vec<u8>, DecodeError> {
        decode(strategy, "k", SecretValue::new(input.to_vec())).map(|v| v.expose().to_vec())
    }

    // ESO runtime/decoding/decoding_test.go TestDecode.
    const DECODED: &[u8] = b"foo%_?bar";
    const STD: &[u8] = b"Zm9vJV8/YmFy";
    const URL: &[u8] = b"Zm9vJV8_YmFy";

    #[test]
    fn eso_decode_cases() {
        use DecodingStrategy::*;
        assert_eq!(run(Base64, b"YmFy"), Ok(b"bar".to_vec()));
        assert!(run(Base64, b"foo").is_err());
        assert_eq!(run(Base64Url, URL), Ok(DECODED.to_vec()));
        assert!(run(Base64Url, b"foo").is_err());
        assert_eq!(run(None, URL), Ok(URL.to_vec()));
        assert_eq!(run(Auto, STD), Ok(DECODED.to_vec()));
        assert_eq!(run(Auto, URL), Ok(DECODED.to_vec()));
        assert_eq!(run(Auto, b"foo"), Ok(b"foo".to_vec()));
    }

    // Vectors from running Go's encoding/base64 (Go 1.26) on each input: Some(output) where
    // DecodeString succeeded, None where it failed. Std and URL agree on all but the last four.
    #[test]
    fn go_base64_vectors() {
        let both: &[(&[u8], Option<&[u8]>)] = &[
            (b"", Some(b"")),
            (b"YQ==", Some(b"a")),
            (b"YR==", Some(b"a")), // non-zero trailing bits accepted
            (b"YQ", None),         // padding required
            (b"YQ=", None),
            (b"YQ===", None),
            (b"YQ==YQ==", None),
            (b"YW\nJj", Some(b"abc")), // newlines skipped
            (b"YW\r\nJj\n", Some(b"abc")),
            (b"YQ=\n=", Some(b"a")),
            (b"YQ==\n", Some(b"a")),
            (b" YQ==", None), // spaces are not skipped
            (b"YWJj\x00", None),
            (b"foo", None),
            (b"hello", None),
            (b"test", Some(&[0xb5, 0xeb, 0x2d])),
        ];
        for (input, expected) in both {
            for strategy in [DecodingStrategy::Base64, DecodingStrategy::Base64Url] {
                assert_eq!(
                    run(strategy, input).ok().as_deref(),
                    *expected,
                    "{strategy} of {:?}",
                    String::from_utf8_lossy(input)
                );
            }
        }
        assert_eq!(
            run(DecodingStrategy::Base64, b"++//"),
            Ok(vec![0xfb, 0xef, 0xff])
        );
        assert!(run(DecodingStrategy::Base64Url, b"++//").is_err());
        assert_eq!(
            run(DecodingStrategy::Base64Url, b"--__"),
            Ok(vec![0xfb, 0xef, 0xff])
        );
        assert!(run(DecodingStrategy::Base64, b"--__").is_err());
    }

    #[test]
    fn auto_falls_back_in_order() {
        assert_eq!(
            run(DecodingStrategy::Auto, b"++//"),
            Ok(vec![0xfb, 0xef, 0xff])
        );
        assert_eq!(
            run(DecodingStrategy::Auto, b"--__"),
            Ok(vec![0xfb, 0xef, 0xff])
        );
        assert_eq!(run(DecodingStrategy::Auto, b"hello"), Ok(b"hello".to_vec()));
        // The well-known surprise, kept for compatibility: "test" is valid base64.
        assert_eq!(
            run(DecodingStrategy::Auto, b"test"),
            Ok(vec![0xb5, 0xeb, 0x2d])
        );
    }

    #[test]
    fn errors_give_the_offset_in_the_stored_value() {
        assert_eq!(
            run(DecodingStrategy::Base64, b"YW\nJ*"),
            Err(DecodeError::InvalidBase64 {
                key: "k".into(),
                strategy: DecodingStrategy::Base64,
                problem: Base64Problem::IllegalByteAt(4)
            })
        );
        assert_eq!(
            run(DecodingStrategy::Base64, b"YQ"),
            Err(DecodeError::InvalidBase64 {
                key: "k".into(),
                strategy: DecodingStrategy::Base64,
                problem: Base64Problem::LengthOrPadding
            })
        );
    }

    #[test]
    fn decode_map_names_the_failing_key() {
        let map: BTreeMap<String, SecretValue> = [
            ("good".to_string(), SecretValue::from("YmFy".to_string())),
            ("bad".to_string(), SecretValue::from("b@d!".to_string())),
        ]
        .into_iter()
        .collect();
        let error = decode_map(DecodingStrategy::Base64, map).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("failure decoding key bad"), "{message}");
        assert!(message.contains("Base64"), "{message}");
    }

    #[test]
    fn decode_map_auto_keeps_what_is_not_base64() {
        let map: BTreeMap<String, SecretValue> = [
            ("b64".to_string(), SecretValue::new(STD.to_vec())),
            ("b64url".to_string(), SecretValue::new(URL.to_vec())),
            (
                "invalidb64".to_string(),
                SecretValue::from("foo".to_string()),
            ),
        ]
        .into_iter()
        .collect();
        let out = decode_map(DecodingStrategy::Auto, map).unwrap();
        assert_eq!(out["b64"].expose(), DECODED);
        assert_eq!(out["b64url"].expose(), DECODED);
        assert_eq!(out["invalidb64"].expose(), b"foo");
    }

    #[test]
    fn null_bytes_fail_only_under_fail() {
        let binary = SecretValue::new(vec![1, 0, 2]);
        assert!(check_null_bytes(NullBytePolicy::Ignore, "k", &binary).is_ok());
        let error = check_null_bytes(NullBytePolicy::Fail, "k", &binary).unwrap_err();
        assert_eq!(
            error.to_string(),
            "fetched secret value for key \"k\" contains null bytes; use a text-safe format such \
             as PEM/base64 or leave nullBytePolicy unset for intentional binary data"
        );
        assert!(
            check_null_bytes(
                NullBytePolicy::Fail,
                "k",
                &SecretValue::new(b"text".to_vec())
            )
            .is_ok()
        );
    }

    #[test]
    fn null_bytes_in_a_map_report_the_first_key_in_order() {
        let map: BTreeMap<String, SecretValue> = [
            ("z".to_string(), SecretValue::new(vec![0])),
            ("b".to_string(), SecretValue::new(vec![0])),
            ("a".to_string(), SecretValue::new(vec![1])),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            check_null_bytes_in_map(NullBytePolicy::Fail, &map),
            Err(DecodeError::NullBytes { key: "b".into() })
        );
        assert!(check_null_bytes_in_map(NullBytePolicy::Ignore, &map).is_ok());
    }

    #[test]
    fn strategies_print_as_in_the_crd() {
        assert_eq!(DecodingStrategy::Base64Url.to_string(), "Base64URL");
        assert_eq!(DecodingStrategy::default(), DecodingStrategy::None);
    }
}
