//! JSON and YAML: `toJson toPrettyJson toRawJson fromJson` and their `must` forms, ESO's
//! `toYaml fromYaml`.
//!
//! As in Go, decoded numbers are float64 (`{{ (fromJson .x).port }}` prints `8080`, and compares
//! equal to `8080.0`, not to the int `8080`), object keys come out sorted, and `toJson` escapes
//! `<`, `>` and `&` (`toRawJson` does not). A binary string encodes with its invalid bytes
//! replaced by U+FFFD, as Go's encoder does.
//!
//! Error handling follows Sprig where it is safe: `fromJson` gives nil on bad input and
//! `mustFromJson` fails; `toJson` cannot fail on template values except for functions. ESO's
//! `fromYaml` puts the parser's message (which can quote the input) under the key `Error`; here
//! bad YAML is an error naming the line and column only.

use std::collections::BTreeMap;
use std::sync::Arc;

use gotmpl::Value;
use serde_json::Value as Json;

use super::Func;
use super::args::{Args, string};
use crate::template::bytes;

pub(super) const FUNCTIONS: &[(&str, Func)] = &[
    ("toJson", to_json),
    ("mustToJson", must_to_json),
    ("toPrettyJson", to_pretty_json),
    ("mustToPrettyJson", must_to_pretty_json),
    ("toRawJson", to_raw_json),
    ("mustToRawJson", must_to_raw_json),
    ("fromJson", from_json),
    ("mustFromJson", must_from_json),
    ("toYaml", to_yaml),
    ("fromYaml", from_yaml),
];

/// A template value as JSON; `None` for a function (Go: "json: unsupported type").
fn to_serde(v: &Value) -> Option<Json> {
    Some(match v {
        Value::Nil => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(n) => Json::from(*n),
        Value::Uint(n) => Json::from(*n),
        // Go writes integral floats without a fraction (1, not 1.0).
        Value::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => Json::from(*f as i64),
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
        Value::String(s) => Json::String(String::from_utf8_lossy(&bytes::decode(s)).into_owned()),
        Value::List(items) => Json::Array(items.iter().map(to_serde).collect::<Option<_>>()?),
        Value::Map(map) => Json::Object(
            map.iter()
                .map(|(k, v)| Some((k.to_string(), to_serde(v)?)))
                .collect::<Option<_>>()?,
        ),
        Value::Function(_) => return None,
    })
}

/// JSON (or YAML) data as a template value, numbers as float64 like Go's decoder.
pub(super) fn from_serde(json: Json) -> Value {
    match json {
        Json::Null => Value::Nil,
        Json::Bool(b) => Value::Bool(b),
        Json::Number(n) => Value::Float(n.as_f64().unwrap_or(0.0)),
        Json::String(s) => string(bytes::encode(s.as_bytes())),
        Json::Array(items) => Value::List(items.into_iter().map(from_serde).collect()),
        Json::Object(map) => Value::Map(Arc::new(
            map.into_iter()
                .map(|(k, v)| (Arc::from(k), from_serde(v)))
                .collect::<BTreeMap<_, _>>(),
        )),
    }
}

/// Go's encoder always escapes U+2028 and U+2029, and `<`, `>`, `&` unless told not to.
fn go_escapes(text: String, html: bool) -> String {
    let needs =
        |c: char| matches!(c, '\u{2028}' | '\u{2029}') || (html && matches!(c, '<' | '>' | '&'));
    if !text.chars().any(needs) {
        return text;
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if needs(c) {
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

#[derive(Clone, Copy)]
enum Style {
    Compact,
    Pretty,
    Raw,
}

fn encode(a: &Args<'_>, style: Style) -> gotmpl::Result<String> {
    let json = to_serde(a.get(0)).ok_or_else(|| a.error("json: unsupported type: func"))?;
    let text = match style {
        Style::Pretty => serde_json::to_string_pretty(&json),
        Style::Compact | Style::Raw => serde_json::to_string(&json),
    }
    .map_err(|_| a.error("the value cannot be encoded as JSON"))?;
    Ok(go_escapes(text, !matches!(style, Style::Raw)))
}

fn json_fn(name: &'static str, args: &[Value], style: Style, must: bool) -> gotmpl::Result<Value> {
    let a = Args::new(name, args).exactly(1)?;
    match encode(&a, style) {
        Ok(text) => Ok(string(text)),
        Err(_) if !must => Ok(string("")),
        Err(e) => Err(e),
    }
}

fn to_json(args: &[Value]) -> gotmpl::Result<Value> {
    json_fn("toJson", args, Style::Compact, false)
}

fn must_to_json(args: &[Value]) -> gotmpl::Result<Value> {
    json_fn("mustToJson", args, Style::Compact, true)
}

fn to_pretty_json(args: &[Value]) -> gotmpl::Result<Value> {
    json_fn("toPrettyJson", args, Style::Pretty, false)
}

fn must_to_pretty_json(args: &[Value]) -> gotmpl::Result<Value> {
    json_fn("mustToPrettyJson", args, Style::Pretty, true)
}

fn to_raw_json(args: &[Value]) -> gotmpl::Result<Value> {
    json_fn("toRawJson", args, Style::Raw, true)
}

fn must_to_raw_json(args: &[Value]) -> gotmpl::Result<Value> {
    json_fn("mustToRawJson", args, Style::Raw, true)
}

fn decode(a: &Args<'_>) -> gotmpl::Result<Value> {
    let input = a.bytes(0)?;
    serde_json::from_slice::<Json>(&input)
        .map(from_serde)
        .map_err(|e| {
            a.error(format_args!(
                "the input is not valid JSON (line {}, column {})",
                e.line(),
                e.column()
            ))
        })
}

fn from_json(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("fromJson", args).exactly(1)?;
    Ok(decode(&a).unwrap_or(Value::Nil))
}

fn must_from_json(args: &[Value]) -> gotmpl::Result<Value> {
    decode(&Args::new("mustFromJson", args).exactly(1)?)
}

/// ESO's `toYaml`: block YAML with sorted keys, without the trailing newline. A value that
/// cannot be encoded gives "" (ESO swallows the error).
fn to_yaml(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("toYaml", args).exactly(1)?;
    let text = to_serde(a.get(0))
        .and_then(|json| serde_saphyr::to_string(&json).ok())
        .unwrap_or_default();
    Ok(string(text.strip_suffix('\n').unwrap_or(&text).to_owned()))
}

/// ESO's `fromYaml`: a YAML mapping as a dict (an empty document is an empty dict).
fn from_yaml(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("fromYaml", args).exactly(1)?;
    let input = a.bytes(0)?;
    let text = std::str::from_utf8(&input).map_err(|_| a.error("the input is not UTF-8 text"))?;
    if text.trim().is_empty() {
        return Ok(Value::Map(Arc::default()));
    }
    let json: Json = serde_saphyr::from_str(text).map_err(|e| {
        let at = e
            .location()
            .map(|l| format!(" at line {}, column {}", l.line(), l.column()))
            .unwrap_or_default();
        a.error(format_args!("the input is not valid YAML{at}"))
    })?;
    match json {
        Json::Object(_) => Ok(from_serde(json)),
        Json::Null => Ok(Value::Map(Arc::default())),
        _ => Err(a.error("the YAML document is not a mapping (key: value)")),
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{err, ok, run};

    #[test]
    fn to_json_like_go() {
        assert_eq!(
            ok(r#"{{ dict "b" 1 "a" (list "x" true nil 1.5 2.0) | toJson }}"#),
            r#"{"a":["x",true,null,1.5,2],"b":1}"#
        );
        assert_eq!(ok(r#"{{ "<a&b>" | toJson }}"#), r#""\u003ca\u0026b\u003e""#);
        assert_eq!(ok(r#"{{ "<a&b>" | toRawJson }}"#), r#""<a&b>""#);
        assert_eq!(
            ok(r#"{{ dict "a" (list 1) | toPrettyJson }}"#),
            "{\n  \"a\": [\n    1\n  ]\n}"
        );
        assert_eq!(
            run(r#"{{ toJson . }}"#, &[("user", "a\"b")]).unwrap(),
            r#"{"user":"a\"b"}"#
        );
    }

    #[test]
    fn from_json_numbers_are_floats() {
        let data = [(
            "j",
            r#"{"port": 8080, "name": "db", "tags": ["a"], "n": null}"#,
        )];
        assert_eq!(
            run(
                r#"{{ (fromJson .j).port }} {{ (fromJson .j).name }} {{ (fromJson .j).tags }}"#,
                &data
            )
            .unwrap(),
            "8080 db [a]"
        );
        assert_eq!(
            run(r#"{{ $j := fromJson .j }}{{ eq $j.port 8080.0 }}"#, &data).unwrap(),
            "true"
        );
        assert_eq!(
            run(r#"{{ .j | fromJson | toJson }}"#, &data).unwrap(),
            r#"{"n":null,"name":"db","port":8080,"tags":["a"]}"#
        );
    }

    #[test]
    fn bad_json() {
        assert_eq!(
            run("{{ fromJson .j }}", &[("j", "{hunter2")]).unwrap(),
            "<no value>"
        );
        let e = run("{{ mustFromJson .j }}", &[("j", "{hunter2")])
            .unwrap_err()
            .to_string();
        assert!(
            e.ends_with(
                "error calling mustFromJson: the input is not valid JSON (line 1, column 2)"
            ),
            "{e}"
        );
    }

    #[test]
    fn yaml() {
        assert_eq!(ok(r#"{{ dict "b" "x" "a" 1 | toYaml }}"#), "a: 1\nb: x");
        let data = [("y", "user: admin\nport: 5432\nlist:\n  - a\n")];
        assert_eq!(
            run(
                r#"{{ $y := fromYaml .y }}{{ $y.user }} {{ $y.port }} {{ index $y.list 0 }}"#,
                &data
            )
            .unwrap(),
            "admin 5432 a"
        );
        assert_eq!(run(r#"{{ fromYaml .y }}"#, &[("y", "")]).unwrap(), "map[]");
        let e = run(r#"{{ fromYaml .y }}"#, &[("y", "a: [hunter2")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("error calling fromYaml: the input is not valid YAML"),
            "{e}"
        );
        assert!(!e.contains("hunter2"), "{e}");
        assert!(err(r#"{{ fromYaml "- a" }}"#).contains("not a mapping"));
    }
}
