//! `remoteRef.property`: a gjson path into a JSON secret, evaluated as ESO's AWS provider does
//! (`providers/v1/aws/secretsmanager/secretsmanager.go`, eso-compatibility.md 4.1).
//!
//! What the caller decides, not this module: which payload to pass. With a property ESO reads
//! `SecretBinary` when the secret has one and `SecretString` otherwise; without a property it
//! prefers `SecretString` (eso-compatibility.md 13.8). For `metadataPolicy: Fetch` the payload is
//! the tags as a JSON object.
//!
//! Evaluation, in ESO's order:
//! 1. a property containing `.` is first tried with every dot escaped (`a.b` -> `a\.b`), so a
//!    literal key `"a.b"` wins over the path `a` -> `b`;
//! 2. otherwise the property is a gjson path (`name.first`, `friends.1.first`, `a\.b`, `arr.#`, ...);
//! 3. the result is Go gjson's `Result.String()`: strings unescaped, integers as written, other
//!    numbers reformatted (`1.50` -> `1.5`, `1e3` -> `1000`), `true`/`false`, `null` -> empty,
//!    objects and arrays as their raw JSON text.
//!
//! Paths are evaluated by the `gjson` crate 0.8.1 (Go gjson v1.8 syntax); ESO uses Go gjson
//! v1.18. A differential run against Go gjson v1.18.0 with ESO's wrapper (108 path and document
//! pairs: nesting, indexes, `#` counts and projections, queries, wildcards, escapes, multipaths,
//! `@reverse`/`@pretty`/`@ugly`/`@this`, JSON lines) agreed everywhere except on what v1.8 lacks,
//! which "does not exist" here: the modifiers `@keys @values @tostr @fromstr @group @dig`,
//! literals (`!true`) and the `~` query operator; and on `\?`, which the crate still reads as a
//! wildcard instead of a literal `?` key.

use lockstep_provider_api::{ErrorClass, SecretValue};
use serde_json::value::RawValue;
use zeroize::Zeroizing;

/// Why a property could not be read. Names the secret and the property, never the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PropertyError {
    /// The payload is JSON but the path selects nothing.
    #[error(
        "key {property} does not exist in secret {secret}: check remoteRef.property against the \
         secret's JSON (escape a dot that is part of a nested key name as `\\.`)"
    )]
    NotFound { secret: String, property: String },

    /// The payload is not JSON, so no path can select anything in it.
    #[error(
        "the value of secret {secret} is not JSON, so property {property} cannot be read: \
         remove remoteRef.property to take the whole value, or store the secret as JSON"
    )]
    NotJson { secret: String, property: String },

    /// The payload is not UTF-8 and the selected value contains its invalid bytes: returning it
    /// would silently change them, so it is refused.
    #[error(
        "property {property} of secret {secret} contains bytes that are not UTF-8, so it cannot \
         be read as JSON text: store the value base64-encoded and use decodingStrategy: Base64"
    )]
    NotUtf8 { secret: String, property: String },

    /// The property is longer than [`MAX_PROPERTY_LEN`].
    #[error(
        "property of secret {secret} is {len} bytes long, the limit is {MAX_PROPERTY_LEN}: \
         shorten remoteRef.property"
    )]
    PropertyTooLong { secret: String, len: usize },

    /// The payload nests deeper than [`MAX_JSON_DEPTH`].
    #[error(
        "the value of secret {secret} nests JSON deeper than {MAX_JSON_DEPTH} levels, so property \
         {property} is not read: flatten the stored JSON"
    )]
    TooDeep { secret: String, property: String },

    /// The path engine failed on this input (a panic in the dormant `gjson` crate, contained so
    /// that one ExternalSecret cannot take the controller down), or its thread could not start.
    #[error(
        "property {property} of secret {secret} could not be evaluated by the path engine: \
         simplify remoteRef.property (plain keys and indexes such as a.b.0 are the safest)"
    )]
    PathEngine { secret: String, property: String },
}

impl PropertyError {
    /// Always [`ErrorClass::Invalid`], never `NotFound`: ESO keeps a missing property an error
    /// even with `deletionPolicy: Delete` (eso-compatibility.md 13.7), so the key must not be
    /// dropped as if the whole secret were gone. A fix of the remote value is picked up by the
    /// next refresh.
    pub fn class(&self) -> ErrorClass {
        ErrorClass::Invalid
    }
}

/// The longest property accepted. The path engine recurses per path component and per nesting
/// of multipaths and queries; with the payload depth below, this bounds its stack use.
pub const MAX_PROPERTY_LEN: usize = 1024;

/// The deepest JSON nesting read. The path engine recurses once per level; Go's stacks grow,
/// Rust's do not, so deeper payloads are refused instead of overflowing the stack. No secret
/// nests this deep. A payload that is not valid JSON may hold at most this many `{` and `[` in
/// all, since how the lenient engine would nest them cannot be known beforehand.
pub const MAX_JSON_DEPTH: usize = 256;

/// The stack of the thread the path engine runs on. Worst cases within the limits above need
/// about 2 MiB in a debug build (measured); a stack overflow aborts the whole process, so the
/// engine gets a generous stack of its own instead of whatever its caller has left. Only
/// touched pages are committed, so the reservation is cheap.
const ENGINE_STACK_BYTES: usize = 32 * 1024 * 1024;

/// Selects `property` from the JSON `payload` of the secret named `secret`. An empty property
/// selects the whole payload, as an unset `remoteRef.property` does.
pub fn select_property(
    secret: &str,
    payload: &SecretValue,
    property: &str,
) -> Result<SecretValue, PropertyError> {
    if property.is_empty() {
        return Ok(payload.clone());
    }
    if property.len() > MAX_PROPERTY_LEN {
        return Err(PropertyError::PropertyTooLong {
            secret: secret.to_owned(),
            len: property.len(),
        });
    }
    let error_fields = || (secret.to_owned(), property.to_owned());
    // Go gjson reads bytes; the Rust crate needs a &str. A payload that is not UTF-8 is read
    // through a lossy copy (same structure, invalid bytes as U+FFFD) and refused below only if
    // the selected value is affected.
    let lossy_copy: Option<Zeroizing<String>> = std::str::from_utf8(payload.expose())
        .is_err()
        .then(|| Zeroizing::new(String::from_utf8_lossy(payload.expose()).into_owned()));
    let text: &str = match &lossy_copy {
        Some(copy) => copy.as_str(),
        // Checked just above; the empty fallback is never taken.
        None => std::str::from_utf8(payload.expose()).unwrap_or_default(),
    };

    // Validity comes from serde_json, whose validator is iterative (the engine's own recurses).
    let is_json = serde_json::from_str::<&RawValue>(text).is_ok();
    if nesting_bound(text, is_json) > MAX_JSON_DEPTH {
        let (secret, property) = error_fields();
        return Err(if is_json {
            PropertyError::TooDeep { secret, property }
        } else {
            PropertyError::NotJson { secret, property }
        });
    }

    let outcome = on_engine_stack(|| lookup(text, property));

    let (secret, property) = error_fields();
    match outcome {
        Some(Some(value))
            if lossy_copy.is_some() && value.contains(char::REPLACEMENT_CHARACTER) =>
        {
            Err(PropertyError::NotUtf8 { secret, property })
        }
        Some(Some(value)) => Ok(SecretValue::new(value.as_bytes().to_vec())),
        // gjson does not validate, so a truncated or trailing-garbage payload can still yield a
        // value above (as in ESO); only when nothing was found does validity pick the message.
        Some(None) if is_json => Err(PropertyError::NotFound { secret, property }),
        Some(None) => Err(PropertyError::NotJson { secret, property }),
        None => Err(PropertyError::PathEngine { secret, property }),
    }
}

/// Runs `work` on a thread with [`ENGINE_STACK_BYTES`] of stack. `None` if the thread could not
/// be started or panicked (a bug in the dormant `gjson` crate must fail one ExternalSecret, not
/// the controller).
fn on_engine_stack<T: Send>(work: impl FnOnce() -> T + Send) -> Option<T> {
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("gjson".to_owned())
            .stack_size(ENGINE_STACK_BYTES)
            .spawn_scoped(scope, work)
            .ok()?
            .join()
            .ok()
    })
}

/// How deep the path engine may nest in `text`. For valid JSON that is exact. For anything else
/// no one knows how the lenient engine will read it, so every opening bracket counts: no reading
/// can nest deeper.
fn nesting_bound(text: &str, is_json: bool) -> usize {
    if is_json {
        json_depth(text.as_bytes())
    } else {
        text.bytes().filter(|b| matches!(b, b'{' | b'[')).count()
    }
}

/// The deepest nesting of `{`/`[` outside strings: exact for valid JSON.
fn json_depth(json: &[u8]) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for &byte in json {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// ESO's `escapeDotsIfRequired` followed by `gjson.Get(...).String()`.
fn lookup(json: &str, property: &str) -> Option<Zeroizing<String>> {
    if property.contains('.') {
        let escaped = property.replace('.', "\\.");
        if let Some(found) = get(json, &escaped) {
            return Some(found);
        }
    }
    get(json, property)
}

/// One `gjson.Get(json, path)`, rendered as Go's `Result.String()`.
fn get(json: &str, path: &str) -> Option<Zeroizing<String>> {
    let value = gjson::get(json, path);
    if value.exists() {
        return Some(go_result_string(&value));
    }
    // Go gjson v1.18 treats `@name` with an unknown modifier name as a plain key; the Rust crate
    // returns nothing. Escaping the `@` makes it a key here too.
    if path.starts_with('@') {
        let as_key = format!("\\{path}");
        let value = gjson::get(json, &as_key);
        if value.exists() {
            return Some(go_result_string(&value));
        }
    }
    None
}

/// Go gjson's `Result.String()`. The crate's `str()` agrees except for numbers, where Go
/// reformats anything that is not a plain integer.
fn go_result_string(value: &gjson::Value<'_>) -> Zeroizing<String> {
    match value.kind() {
        gjson::Kind::Number => Zeroizing::new(go_number_string(value.json())),
        _ => Zeroizing::new(value.str().to_owned()),
    }
}

/// A JSON number as Go gjson prints it: `-?[0-9]*` verbatim (so big integers keep every digit),
/// anything else parsed as float64 and printed with `strconv.FormatFloat(f, 'f', -1, 64)`.
fn go_number_string(raw: &str) -> String {
    let digits = raw.strip_prefix('-').unwrap_or(raw);
    if digits.bytes().all(|b| b.is_ascii_digit()) {
        return raw.to_owned();
    }
    // Go ignores ParseFloat's error and prints the zero value.
    let number: f64 = raw.parse().unwrap_or(0.0);
    format_float_like_go(number)
}

/// `strconv.FormatFloat(f, 'f', -1, 64)`: shortest round-trip digits, never an exponent. Rust's
/// `Display` for `f64` prints the same digits; only the infinities are spelled differently.
fn format_float_like_go(number: f64) -> String {
    if number.is_infinite() {
        return if number > 0.0 { "+Inf" } else { "-Inf" }.to_owned();
    }
    if number.is_nan() {
        return "NaN".to_owned();
    }
    format!("{number}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The document the expected values below were produced from, by running Go gjson v1.18.0
    /// (ESO's version) with ESO's escape-then-fallback logic.
    const DOC: &str = r#"{"name":{"first":"Tom","last":"Anderson"},"age":37,"pi":3.140,"big":1e3,"neg":-1.50e-3,"huge":1e400,"int":12345678901234567890,"t":true,"f":false,"n":null,"arr":[1,"two",{"x":1}],"friends":[{"first":"Dale"},{"first":"Roger"}],"a.b":"dotted","a":{"b":"nested"},"c":{"d.e":"deep"},"esc":"line\nq\"\u00e9\ud83d\ude00","obj":{ "k" : [1, 2] },"x.y":{"z":"xyz"},"emptystr":"", "@k":"at", "neg0": -0, "f0": 1.0}"#;

    fn select(payload: &str, property: &str) -> Result<String, PropertyError> {
        select_property("db-creds", &SecretValue::from(payload.to_owned()), property)
            .map(|v| String::from_utf8_lossy(v.expose()).into_owned())
    }

    fn assert_selects(property: &str, expected: &str) {
        assert_eq!(
            select(DOC, property).as_deref(),
            Ok(expected),
            "property {property}"
        );
    }

    fn assert_not_found(payload: &str, property: &str) {
        assert_eq!(
            select(payload, property),
            Err(PropertyError::NotFound {
                secret: "db-creds".into(),
                property: property.into()
            }),
            "property {property}"
        );
    }

    #[test]
    fn nested_keys() {
        assert_selects("name.first", "Tom");
    }

    #[test]
    fn array_indexes() {
        assert_selects("friends.1.first", "Roger");
        assert_selects("arr.1", "two");
        assert_not_found(DOC, "arr.5");
    }

    #[test]
    fn strings_are_unquoted_and_unescaped() {
        assert_selects("esc", "line\nq\"é😀");
        assert_selects("emptystr", "");
    }

    #[test]
    fn objects_and_arrays_are_raw_json_text() {
        assert_selects("name", r#"{"first":"Tom","last":"Anderson"}"#);
        assert_selects("arr", r#"[1,"two",{"x":1}]"#);
        assert_selects("arr.2", r#"{"x":1}"#);
        // Whitespace inside the raw text is kept as written.
        assert_selects("obj", r#"{ "k" : [1, 2] }"#);
    }

    #[test]
    fn integers_are_kept_as_written() {
        assert_selects("age", "37");
        // Beyond float64 precision: Go keeps the digits because they are all digits.
        assert_selects("int", "12345678901234567890");
        assert_selects("neg0", "-0");
    }

    #[test]
    fn other_numbers_are_reformatted_as_go_does() {
        assert_selects("pi", "3.14");
        assert_selects("big", "1000");
        assert_selects("neg", "-0.0015");
        assert_selects("f0", "1");
        assert_selects("huge", "+Inf");
    }

    #[test]
    fn booleans_and_null() {
        assert_selects("t", "true");
        assert_selects("f", "false");
        assert_selects("n", "");
    }

    #[test]
    fn a_literal_key_with_dots_wins_over_the_path() {
        // `{"a.b":"dotted","a":{"b":"nested"}}`: ESO tries `a\.b` first.
        assert_selects("a.b", "dotted");
        assert_selects(r"a\.b", "dotted");
        assert_selects("x.y", r#"{"z":"xyz"}"#);
    }

    #[test]
    fn the_dot_fallback_escapes_all_dots_or_none() {
        // ESO escapes every dot or none, so a dotted key below a plain one needs an explicit
        // escape: `c.d.e` finds nothing in Go either.
        assert_not_found(DOC, "c.d.e");
        assert_selects(r"c.d\.e", "deep");
        assert_not_found(DOC, "x.y.z");
    }

    #[test]
    fn paths_with_counts_projections_and_wildcards() {
        assert_selects("arr.#", "3");
        assert_selects("friends.#.first", r#"["Dale","Roger"]"#);
        assert_selects("name.*", "Tom");
        assert_selects("fr*.0.first", "Dale");
    }

    #[test]
    fn a_key_starting_with_at_is_a_key_when_no_modifier_has_that_name() {
        assert_selects("@k", "at");
    }

    #[test]
    fn modifiers_known_to_both_engines_work() {
        assert_eq!(select(r#"[1,2,3]"#, "@reverse").as_deref(), Ok("[3,2,1]"));
    }

    #[test]
    fn a_missing_property_names_key_and_secret() {
        assert_not_found(DOC, "missing");
        assert_not_found(DOC, "name.middle");
        let message = select(DOC, "missing").unwrap_err().to_string();
        assert!(message.contains("missing"), "{message}");
        assert!(message.contains("db-creds"), "{message}");
    }

    #[test]
    fn a_value_that_is_not_json_gets_its_own_error() {
        let error = select("hunter2", "password").unwrap_err();
        assert_eq!(
            error,
            PropertyError::NotJson {
                secret: "db-creds".into(),
                property: "password".into()
            }
        );
        let message = error.to_string();
        assert!(
            message.contains(
                "the value of secret db-creds is not JSON, so property password cannot be read"
            ),
            "{message}"
        );
        assert!(!message.contains("hunter2"));
    }

    #[test]
    fn json_that_is_not_an_object_is_not_found_rather_than_not_json() {
        assert_not_found(r#""just a string""#, "a");
        assert_not_found("42", "a");
    }

    #[test]
    fn lenient_like_go_gjson_on_damaged_json() {
        // Go gjson does not validate either: these succeed in ESO.
        assert_eq!(select(r#"{"a":1"#, "a").as_deref(), Ok("1"));
        assert_eq!(select(r#"{"a":"x"} trailing"#, "a").as_deref(), Ok("x"));
        assert_eq!(
            select(r#"  {"a":"lead ws"}"#, "a").as_deref(),
            Ok("lead ws")
        );
        assert_eq!(select("[1,2,3]", "1").as_deref(), Ok("2"));
    }

    #[test]
    fn an_empty_property_selects_the_whole_payload() {
        assert_eq!(
            select("not json at all", "").as_deref(),
            Ok("not json at all")
        );
    }

    #[test]
    fn non_utf8_payloads_work_unless_the_selected_value_is_affected() {
        let mut bytes = br#"{"ok":"fine","bad":""#.to_vec();
        bytes.push(0xff);
        bytes.extend_from_slice(br#""}"#);
        let payload = SecretValue::new(bytes);
        assert_eq!(
            select_property("s", &payload, "ok").map(|v| v.expose().to_vec()),
            Ok(b"fine".to_vec())
        );
        assert_eq!(
            select_property("s", &payload, "bad"),
            Err(PropertyError::NotUtf8 {
                secret: "s".into(),
                property: "bad".into()
            })
        );
    }

    #[test]
    fn go_number_formatting() {
        assert_eq!(go_number_string("5432"), "5432");
        assert_eq!(go_number_string("-17"), "-17");
        assert_eq!(go_number_string("1.50"), "1.5");
        assert_eq!(go_number_string("1E2"), "100");
        assert_eq!(go_number_string("2.5e-1"), "0.25");
        assert_eq!(go_number_string("1e21"), "1000000000000000000000");
        assert_eq!(go_number_string("-1e400"), "-Inf");
        assert_eq!(go_number_string("0.1"), "0.1");
    }

    #[test]
    fn json_depth_counts_brackets_outside_strings() {
        assert_eq!(json_depth(b"1"), 0);
        assert_eq!(json_depth(br#"{"a":[1,{"b":2}]}"#), 3);
        assert_eq!(json_depth(br#"{"a":"[[[{{{\"[[["}"#), 1);
        assert_eq!(json_depth(b"]]]{"), 1);
    }

    /// Payload and path pairs at the limits that make the engine recurse the most (measured:
    /// long `#` chains, nested multipaths and queries, deep payloads).
    fn worst_cases() -> Vec<(String, String)> {
        let depth = MAX_JSON_DEPTH;
        let deep_object = format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth));
        let deep_array = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
        let half = MAX_PROPERTY_LEN / 2;
        let chain = |part: &str, sep: &str| vec![part; half].join(sep);
        vec![
            (deep_object.clone(), vec!["a"; depth].join(".")),
            (deep_object.clone(), chain("a", ".")),
            (deep_object.clone(), ".".repeat(MAX_PROPERTY_LEN)),
            (deep_object.clone(), chain("*", ".")),
            (deep_object.clone(), chain("#", ".")),
            (
                deep_object.clone(),
                vec!["@pretty"; MAX_PROPERTY_LEN / 8].join("|"),
            ),
            (
                deep_object.clone(),
                format!("{}{}", "{".repeat(half), "}".repeat(half)),
            ),
            (
                deep_object.clone(),
                format!("{}{}", "[".repeat(half), "]".repeat(half)),
            ),
            (deep_array.clone(), vec!["0"; depth].join(".")),
            (deep_array.clone(), chain("#", ".")),
            (deep_array.clone(), chain("#", "|")),
            (
                deep_array.clone(),
                format!("{}{}", "#(".repeat(half / 2), ")".repeat(half / 2)),
            ),
            (deep_array.clone(), "@flatten".to_owned()),
            ("[".repeat(depth), "a".to_owned()),
            (r#"{"a":"#.repeat(depth), "a".to_owned()),
        ]
    }

    #[test]
    fn worst_cases_at_the_limits_complete() {
        for (payload, path) in worst_cases() {
            assert!(path.len() <= MAX_PROPERTY_LEN);
            let result = select(&payload, &path);
            assert!(
                !matches!(result, Err(PropertyError::PathEngine { .. })),
                "{path}"
            );
        }
    }

    #[test]
    fn worst_cases_fit_in_an_eighth_of_the_engine_stack() {
        // The margin behind ENGINE_STACK_BYTES: an overflow would abort this test binary.
        let finished = std::thread::Builder::new()
            .stack_size(ENGINE_STACK_BYTES / 8)
            .spawn(|| {
                for (payload, path) in worst_cases() {
                    let _ = lookup(&payload, &path);
                }
            })
            .map(|handle| handle.join().is_ok());
        assert_eq!(finished.ok(), Some(true));
    }

    #[test]
    fn inputs_beyond_the_limits_are_refused_unevaluated() {
        let depth = MAX_JSON_DEPTH + 1;
        let too_deep = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
        assert_eq!(
            select(&too_deep, "0"),
            Err(PropertyError::TooDeep {
                secret: "db-creds".into(),
                property: "0".into()
            })
        );
        // Not valid JSON: every opening bracket counts, wherever it stands.
        let mixed = format!(r#"tru"e {} "{}" x"#, "[".repeat(200), "]".repeat(57));
        assert_eq!(nesting_bound(&mixed, false), 200);
        assert_eq!(nesting_bound(r#"{"a":"[[["}"#, true), 1);
        assert_eq!(
            select("{}", &"a".repeat(MAX_PROPERTY_LEN + 1)),
            Err(PropertyError::PropertyTooLong {
                secret: "db-creds".into(),
                len: MAX_PROPERTY_LEN + 1
            })
        );
    }

    #[test]
    fn every_error_is_invalid_class() {
        let error = select("x", "y").unwrap_err();
        assert_eq!(error.class(), ErrorClass::Invalid);
    }
}
