//! Secret key names: ESO's `conversionStrategy`, ESO's key validation for provider maps, and
//! Kubernetes' rule for the keys of the Secret that is finally written.
//!
//! Two validations exist because ESO has two: `ValidateKeys` (`runtime/esutils/utils.go`) runs on
//! each `dataFrom` map and accepts any Unicode letter or digit, since a template may still turn
//! such a key into a valid one; the API server then applies Kubernetes' ASCII-only rule to the
//! Secret. [`validate_secret_keys`] applies that rule before writing, with a better message.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::LazyLock;

use lockstep_provider_api::ErrorClass;
use regex::Regex;

/// The longest key ESO and Kubernetes accept (a DNS-1123 subdomain's length).
pub const MAX_KEY_LEN: usize = 253;

/// How many offending keys an error lists before summarising, to keep condition messages short.
const MAX_KEYS_SHOWN: usize = 5;

pub use crate::api::external_secret::ConversionStrategy;

/// Two keys became the same key after conversion. Names keys, never values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "secret name collision during conversion: keys {first:?} and {second:?} both become \
     {converted:?}; use rewrite to give them distinct names"
)]
pub struct ConversionError {
    pub first: String,
    pub second: String,
    pub converted: String,
}

impl ConversionError {
    /// Always [`ErrorClass::Invalid`]: the remote key names or the spec must change.
    pub fn class(&self) -> ErrorClass {
        ErrorClass::Invalid
    }
}

/// Go's `unicode.IsLetter`: general category L. Rust's `char::is_alphabetic` is the wider
/// Alphabetic property (it also takes some marks and symbols), so the category comes from regex.
/// Its tables (and std's for `is_numeric`) are Unicode 16, Go's are 15.0: only characters
/// assigned in between are judged differently.
static GO_LETTER: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r"\A\p{L}\z").ok());

/// Whether ESO keeps `c` in a key: Go's `unicode.IsLetter || unicode.IsNumber`, `-`, `.`, `_`.
fn eso_keeps(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_');
    }
    // `char::is_numeric` is exactly categories Nd, Nl and No, as Go's IsNumber.
    if c.is_numeric() {
        return true;
    }
    let mut buf = [0u8; 4];
    GO_LETTER
        .as_ref()
        .is_some_and(|letter| letter.is_match(c.encode_utf8(&mut buf)))
}

/// One key under `strategy`, as ESO's `convert` does it.
pub fn convert_key(strategy: ConversionStrategy, key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for c in key.chars() {
        if eso_keeps(c) {
            out.push(c);
            continue;
        }
        match strategy {
            ConversionStrategy::Default => out.push('_'),
            ConversionStrategy::Unicode => out.push_str(&format!("_U{:04x}_", u32::from(c))),
        }
    }
    out
}

/// Converts every key of `map`; fails if two keys become one, as ESO does (it would otherwise
/// silently lose one of the values).
pub fn convert_keys<V>(
    strategy: ConversionStrategy,
    map: BTreeMap<String, V>,
) -> Result<BTreeMap<String, V>, ConversionError> {
    let mut out: BTreeMap<String, V> = BTreeMap::new();
    // Remembers the original key of each converted key, for the collision message.
    let mut originals: BTreeMap<String, String> = BTreeMap::new();
    for (key, value) in map {
        let converted = convert_key(strategy, &key);
        if let Some(first) = originals.get(&converted) {
            return Err(ConversionError {
                first: first.clone(),
                second: key,
                converted,
            });
        }
        originals.insert(converted.clone(), key);
        out.insert(converted, value);
    }
    Ok(out)
}

/// Why one key is not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyIssue {
    /// The empty name.
    Empty,
    /// Longer than 253 bytes; holds the length.
    TooLong(usize),
    /// Holds the first character that is not allowed.
    InvalidCharacter(char),
    /// `.`, `..` or a key starting with `..`, which Kubernetes refuses (they are path tricks when
    /// a Secret is mounted as files).
    DotPath,
}

/// A key that was refused and why. `key` is cut at 253 bytes so a long one cannot flood a
/// status message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidKey {
    pub key: String,
    pub issue: KeyIssue,
}

impl fmt::Display for InvalidKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.issue {
            KeyIssue::TooLong(len) => write!(
                f,
                "{:?}... is {len} bytes long, the limit is {MAX_KEY_LEN}",
                self.key
            ),
            KeyIssue::InvalidCharacter(c) => write!(
                f,
                "{:?} contains {c:?}, which a Secret key cannot hold (allowed: A-Z a-z 0-9 - . _)",
                self.key
            ),
            KeyIssue::Empty => f.write_str("a key is empty, every key needs a name"),
            KeyIssue::DotPath => {
                write!(f, "{:?} must not be '.', '..' or start with '..'", self.key)
            }
        }
    }
}

/// Keys that cannot be written. Names the keys and what is wrong with each, never values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct InvalidKeysError {
    /// Every refused key, in key order.
    pub keys: Vec<InvalidKey>,
}

impl fmt::Display for InvalidKeysError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid secret keys (use rewrite or conversionStrategy to change keys): ")?;
        for (index, key) in self.keys.iter().take(MAX_KEYS_SHOWN).enumerate() {
            if index > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{key}")?;
        }
        if self.keys.len() > MAX_KEYS_SHOWN {
            write!(f, "; and {} more", self.keys.len() - MAX_KEYS_SHOWN)?;
        }
        Ok(())
    }
}

impl InvalidKeysError {
    /// Always [`ErrorClass::Invalid`]: the key names or the spec must change.
    pub fn class(&self) -> ErrorClass {
        ErrorClass::Invalid
    }
}

/// ESO's `ValidateKeys` on one `dataFrom` map: drops empty keys (ESO treats them as "did not
/// exist upstream"), refuses keys over 253 bytes or with a character other than a Unicode
/// letter or digit, `-`, `.` or `_`. Unlike ESO, which reports one key chosen by Go's random
/// map order, this reports all of them.
pub fn validate_provider_keys<V>(
    mut map: BTreeMap<String, V>,
) -> Result<BTreeMap<String, V>, InvalidKeysError> {
    map.remove("");
    let keys: Vec<InvalidKey> = map
        .keys()
        .filter_map(|key| {
            key_too_long(key)
                .or_else(|| {
                    key.chars()
                        .find(|c| !eso_keeps(*c))
                        .map(KeyIssue::InvalidCharacter)
                })
                .map(|issue| invalid(key, issue))
        })
        .collect();
    if keys.is_empty() {
        Ok(map)
    } else {
        Err(InvalidKeysError { keys })
    }
}

/// Kubernetes' rule for Secret keys (`IsConfigMapKey`): non-empty, at most 253 bytes, only ASCII
/// letters, digits, `-`, `.` and `_`, and not `.`, `..` or starting with `..`. For the final data,
/// after templating, so that a bad key fails with a message that says how to fix it.
pub fn validate_secret_keys<'a>(
    keys: impl IntoIterator<Item = &'a str>,
) -> Result<(), InvalidKeysError> {
    let mut refused: Vec<InvalidKey> = keys
        .into_iter()
        .filter_map(|key| kubernetes_key_issue(key).map(|issue| invalid(key, issue)))
        .collect();
    refused.sort_by(|a, b| a.key.cmp(&b.key));
    if refused.is_empty() {
        Ok(())
    } else {
        Err(InvalidKeysError { keys: refused })
    }
}

fn kubernetes_key_issue(key: &str) -> Option<KeyIssue> {
    if key.is_empty() {
        // Reported as an invalid empty name rather than dropped: at this stage an empty key is
        // a template's mistake, not a missing upstream value.
        return Some(KeyIssue::Empty);
    }
    key_too_long(key)
        .or_else(|| {
            key.chars()
                .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')))
                .map(KeyIssue::InvalidCharacter)
        })
        .or_else(|| (key == "." || key.starts_with("..")).then_some(KeyIssue::DotPath))
}

fn key_too_long(key: &str) -> Option<KeyIssue> {
    (key.len() > MAX_KEY_LEN).then_some(KeyIssue::TooLong(key.len()))
}

fn invalid(key: &str, issue: KeyIssue) -> InvalidKey {
    InvalidKey {
        key: truncate_at_char_boundary(key, MAX_KEY_LEN).to_owned(),
        issue,
    }
}

fn truncate_at_char_boundary(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(keys: &[&str]) -> BTreeMap<String, u8> {
        keys.iter().map(|k| (k.to_string(), 0)).collect()
    }

    fn keys_of<V>(map: &BTreeMap<String, V>) -> Vec<&str> {
        map.keys().map(String::as_str).collect()
    }

    // ESO runtime/esutils/utils_test.go TestConvertKeys.
    #[test]
    fn eso_convert_with_special_chars() {
        let out = convert_keys(ConversionStrategy::Default, map(&["foo$bar%baz*bing"]));
        assert_eq!(out.as_ref().map(keys_of), Ok(vec!["foo_bar_baz_bing"]));
    }

    #[test]
    fn eso_convert_path() {
        let out = convert_keys(
            ConversionStrategy::Default,
            map(&["/foo/bar/baz/bing", "foo/bar/baz/bing/"]),
        );
        assert_eq!(
            out.as_ref().map(keys_of),
            Ok(vec!["_foo_bar_baz_bing", "foo_bar_baz_bing_"])
        );
    }

    #[test]
    fn eso_convert_unicode() {
        assert_eq!(
            convert_key(ConversionStrategy::Unicode, "😀foo😁bar😂baz😈bing"),
            "_U1f600_foo_U1f601_bar_U1f602_baz_U1f608_bing"
        );
        assert_eq!(
            convert_key(ConversionStrategy::Default, "😀foo😁bar😂baz😈bing"),
            "_foo_bar_baz_bing"
        );
        // ESO's constant keyWithInvalidChars / keyWithEncodedInvalidChars: at least 4 hex digits.
        assert_eq!(
            convert_key(ConversionStrategy::Unicode, "some-array[0].entity"),
            "some-array_U005b_0_U005d_.entity"
        );
    }

    #[test]
    fn eso_error_on_collision() {
        let error = convert_keys(
            ConversionStrategy::Default,
            map(&["foo$bar%baz*bing", "foo_bar_baz$bing"]),
        )
        .unwrap_err();
        assert_eq!(error.converted, "foo_bar_baz_bing");
        let message = error.to_string();
        assert!(
            message.starts_with("secret name collision during conversion"),
            "{message}"
        );
        assert!(message.contains("foo$bar%baz*bing") && message.contains("foo_bar_baz$bing"));
    }

    #[test]
    fn a_key_already_valid_collides_with_its_converted_twin() {
        assert!(convert_keys(ConversionStrategy::Default, map(&["a b", "a_b"])).is_err());
        // Under Unicode the same pair stays distinct.
        let out = convert_keys(ConversionStrategy::Unicode, map(&["a b", "a_b"]));
        assert_eq!(out.as_ref().map(keys_of), Ok(vec!["a_U0020_b", "a_b"]));
    }

    #[test]
    fn unicode_letters_and_digits_are_kept_as_go_keeps_them() {
        // Go's unicode.IsLetter / IsNumber: a template may still map these to valid keys.
        assert_eq!(convert_key(ConversionStrategy::Default, "café"), "café");
        assert_eq!(convert_key(ConversionStrategy::Default, "ключ"), "ключ");
        assert_eq!(convert_key(ConversionStrategy::Default, "٣½Ⅻ"), "٣½Ⅻ");
        // A combining mark (Mn) is Alphabetic in Rust but not a letter in Go.
        assert_eq!(
            convert_key(ConversionStrategy::Unicode, "e\u{0301}"),
            "e_U0301_"
        );
        // A circled letter (So, Other_Alphabetic) likewise.
        assert_eq!(convert_key(ConversionStrategy::Default, "Ⓐ"), "_");
    }

    #[test]
    fn allowed_punctuation_is_kept() {
        assert_eq!(
            convert_key(ConversionStrategy::Default, "a-b.c_d"),
            "a-b.c_d"
        );
    }

    #[test]
    fn provider_validation_drops_empty_keys() {
        let out = validate_provider_keys(map(&["", "ok"]));
        assert_eq!(out.as_ref().map(keys_of), Ok(vec!["ok"]));
    }

    #[test]
    fn provider_validation_accepts_unicode_letters_like_eso() {
        assert!(validate_provider_keys(map(&["café", "key.1-x_y"])).is_ok());
    }

    #[test]
    fn provider_validation_names_every_invalid_key() {
        let long = "k".repeat(254);
        let error = validate_provider_keys(map(&["a b", "ok", "x/y", &long])).unwrap_err();
        assert_eq!(
            error.keys,
            vec![
                InvalidKey {
                    key: "a b".into(),
                    issue: KeyIssue::InvalidCharacter(' ')
                },
                InvalidKey {
                    key: "k".repeat(253),
                    issue: KeyIssue::TooLong(254)
                },
                InvalidKey {
                    key: "x/y".into(),
                    issue: KeyIssue::InvalidCharacter('/')
                },
            ]
        );
        let message = error.to_string();
        assert!(
            message.contains("use rewrite or conversionStrategy to change keys"),
            "{message}"
        );
        assert!(
            message.contains("\"a b\"") && message.contains("\"x/y\""),
            "{message}"
        );
        assert!(message.contains("254 bytes long"), "{message}");
    }

    #[test]
    fn a_key_of_exactly_253_bytes_is_accepted() {
        assert!(validate_provider_keys(map(&[&"k".repeat(253)])).is_ok());
        assert!(validate_secret_keys([&*"k".repeat(253)]).is_ok());
    }

    #[test]
    fn long_lists_are_summarised() {
        let keys: Vec<String> = (0..8).map(|i| format!("bad key {i}")).collect();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let message = validate_provider_keys(map(&keys)).unwrap_err().to_string();
        assert!(message.ends_with("; and 3 more"), "{message}");
    }

    #[test]
    fn truncation_respects_character_boundaries() {
        let key = format!("{}é", "k".repeat(252));
        let error = validate_provider_keys(map(&[&key])).unwrap_err();
        assert_eq!(error.keys[0].key, "k".repeat(252));
    }

    #[test]
    fn secret_keys_follow_the_kubernetes_rule() {
        assert!(validate_secret_keys(["tls.crt", "a-b_c.D9", ".hidden", "a..b"]).is_ok());
        let error = validate_secret_keys(["café", ".", "..", "..x", "", "ok"]).unwrap_err();
        assert_eq!(
            error.keys.iter().map(|k| &k.issue).collect::<Vec<_>>(),
            vec![
                &KeyIssue::Empty,
                &KeyIssue::DotPath,
                &KeyIssue::DotPath,
                &KeyIssue::DotPath,
                &KeyIssue::InvalidCharacter('é'),
            ]
        );
    }
}
