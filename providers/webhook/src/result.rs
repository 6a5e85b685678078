//! Reading the response as ESO does: `result.jsonPath` over the JSON body, then one value
//! (`GetSecret`) or a map of values (`GetSecretMap`).
//!
//! ESO evaluates the path with PaesslerAG/jsonpath (Goessner style); lockstep with
//! `jsonpath-rust` (RFC 9535). Paths written the usual way (`$.data.password`,
//! `$.items[0].value`, `$['my-key']`, `$..token`, `$.list[?(@.name == 'db')].value`) read the
//! same. PaesslerAG-only syntax is refused as an invalid path: script expressions
//! (`[(@.length-1)]`), gval operators in filters (`=~`, arithmetic) and unquoted dashed names
//! (`$.my-key`, write `$['my-key']`). A path that selects nothing is an error in both.
//!
//! Values are then written as ESO writes them, Go quirks included: a list gives its first
//! element; numbers were decoded by Go as float64, so a single number is rounded to an integer
//! (`1.5` gives `2`) and integers beyond 2^53 lose precision; objects are JSON with sorted keys
//! and `<`, `>`, `&` escaped.
use std::collections::BTreeMap;

use jsonpath_rust::JsonPath;
use lockstep_provider_api::{SecretValue, go_json};
use serde_json::Value;

/// Why the response could not be read; never carries the response.
pub type ResultError = String;

/// The JSON body, or an error that says it is not JSON (without quoting it).
pub fn parse(body: &[u8]) -> Result<Value, ResultError> {
    serde_json::from_slice(body).map_err(|e| {
        format!(
            "the response is not JSON (syntax error at line {} column {}), so result.jsonPath cannot be applied",
            e.line(),
            e.column()
        )
    })
}

/// The nodes `path` selects in `json`.
pub fn select<'a>(path: &str, json: &'a Value) -> Result<Vec<&'a Value>, ResultError> {
    json.query(path)
        .map_err(|e| format!("result.jsonPath {path:?} is not a valid JSONPath: {e}"))
}

/// ESO's GetSecret: the first node of `path` as bytes.
pub fn single_value(path: &str, json: &Value) -> Result<SecretValue, ResultError> {
    let nodes = select(path, json)?;
    let Some(first) = nodes.first() else {
        return Err(format!(
            "result.jsonPath {path:?} selects nothing in the response"
        ));
    };
    scalar_bytes(path, first).map(SecretValue::new)
}

/// ESO's `extractSecretData`: lists give their first element, numbers are rounded integers.
fn scalar_bytes(path: &str, value: &Value) -> Result<Vec<u8>, ResultError> {
    Ok(match value {
        Value::Null => Vec::new(),
        Value::Bool(b) => b.to_string().into_bytes(),
        Value::Number(n) => format!("{:.0}", n.as_f64().unwrap_or_default()).into_bytes(),
        Value::String(s) => s.clone().into_bytes(),
        Value::Array(items) => match items.first() {
            Some(first) => scalar_bytes(path, first)?,
            None => {
                return Err(format!(
                    "result.jsonPath {path:?} selects an empty list in the response"
                ));
            }
        },
        Value::Object(_) => go_json(value),
    })
}

/// ESO's GetSecretMap: the selection (or the whole body) must be an object, or a string holding
/// the JSON of one; each member becomes one key.
pub fn map(path: Option<&str>, json: Value) -> Result<BTreeMap<String, SecretValue>, ResultError> {
    let selected = match path {
        Some(path) => {
            let nodes = select(path, &json)?;
            match nodes.as_slice() {
                [] => {
                    return Err(format!(
                        "result.jsonPath {path:?} selects nothing in the response"
                    ));
                }
                [one] => (*one).clone(),
                _ => {
                    return Err(format!(
                        "result.jsonPath {path:?} selects {} values; dataFrom.extract needs one JSON object",
                        nodes.len()
                    ));
                }
            }
        }
        None => json,
    };
    let selected = match selected {
        Value::String(text) => serde_json::from_str(&text).map_err(|_| {
            "the selected value is a string that does not hold JSON; dataFrom.extract needs a JSON object".to_owned()
        })?,
        other => other,
    };
    let Value::Object(members) = selected else {
        return Err(format!(
            "the selected value is JSON {}, not an object; dataFrom.extract needs a JSON object",
            kind(&selected)
        ));
    };
    Ok(members
        .into_iter()
        .map(|(k, v)| {
            let bytes = match &v {
                Value::Null => Vec::new(),
                Value::String(s) => s.clone().into_bytes(),
                Value::Bool(b) => b.to_string().into_bytes(),
                Value::Number(n) => go_json::float(n.as_f64().unwrap_or_default()).into_bytes(),
                Value::Array(_) | Value::Object(_) => go_json(&v),
            };
            (k, SecretValue::new(bytes))
        })
        .collect())
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Go's `json.Marshal` of a value decoded into `any`: sorted keys, HTML characters escaped,
/// numbers as float64.
pub fn go_json(value: &Value) -> Vec<u8> {
    let mut out = String::new();
    write_go_json(&mut out, value);
    out.into_bytes()
}

fn write_go_json(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&go_json::float(n.as_f64().unwrap_or_default())),
        Value::String(s) => go_json::write_string(out, s, true),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_go_json(out, item);
            }
            out.push(']');
        }
        Value::Object(members) => {
            let sorted: BTreeMap<&String, &Value> = members.iter().collect();
            out.push('{');
            for (i, (k, v)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                go_json::write_string(out, k, true);
                out.push(':');
                write_go_json(out, v);
            }
            out.push('}');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn one(path: &str, body: Value) -> Result<String, String> {
        single_value(path, &body).map(|v| String::from_utf8(v.expose().to_vec()).unwrap())
    }

    #[test]
    fn single_values_are_written_as_eso_writes_them() {
        let body = json!({
            "result": {"password": "p", "port": 5432, "ratio": 1.5, "on": true, "none": null,
                       "list": ["first", "second"], "nested": [[7, 8]], "empty": [],
                       "obj": {"b": "<x&y>", "a": 1e21, "c": 0.0000001}}
        });
        assert_eq!(one("$.result.password", body.clone()).unwrap(), "p");
        assert_eq!(one("$.result.port", body.clone()).unwrap(), "5432");
        assert_eq!(one("$.result.ratio", body.clone()).unwrap(), "2");
        assert_eq!(one("$.result.on", body.clone()).unwrap(), "true");
        assert_eq!(one("$.result.none", body.clone()).unwrap(), "");
        assert_eq!(one("$.result.list", body.clone()).unwrap(), "first");
        assert_eq!(one("$.result.list[*]", body.clone()).unwrap(), "first");
        assert_eq!(one("$.result.nested", body.clone()).unwrap(), "7");
        assert_eq!(
            one("$.result.obj", body.clone()).unwrap(),
            r#"{"a":1e+21,"b":"\u003cx\u0026y\u003e","c":1e-7}"#
        );
        assert!(
            one("$.result.empty", body.clone())
                .unwrap_err()
                .contains("empty list")
        );
        assert!(
            one("$.result.missing", body.clone())
                .unwrap_err()
                .contains("selects nothing")
        );
        assert!(
            one("$.result[", body)
                .unwrap_err()
                .contains("not a valid JSONPath")
        );
    }

    #[test]
    fn maps_need_one_object_or_a_string_holding_one() {
        let body = json!({"data": {"user": "u", "port": 5432, "ratio": 1.5, "tags": ["a"], "n": null},
                          "packed": "{\"k\":\"v\"}", "flat": "x"});
        let got = map(Some("$.data"), body.clone()).unwrap();
        let text = |k: &str| String::from_utf8(got[k].expose().to_vec()).unwrap();
        assert_eq!(text("user"), "u");
        assert_eq!(text("port"), "5432");
        assert_eq!(text("ratio"), "1.5");
        assert_eq!(text("tags"), r#"["a"]"#);
        assert_eq!(text("n"), "");
        let packed = map(Some("$.packed"), body.clone()).unwrap();
        assert_eq!(packed["k"].expose(), b"v");
        assert!(
            map(Some("$.flat"), body.clone())
                .unwrap_err()
                .contains("does not hold JSON")
        );
        assert!(
            map(None, json!([1]))
                .unwrap_err()
                .contains("an array, not an object")
        );
        assert_eq!(map(None, body).unwrap().len(), 3);
    }

    #[test]
    fn a_body_that_is_not_json_is_not_quoted() {
        let err = parse(b"password=hunter2").unwrap_err();
        assert!(!err.contains("hunter2"), "{err}");
        assert!(err.contains("not JSON"), "{err}");
    }
}
