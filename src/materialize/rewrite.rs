//! `spec.dataFrom[].rewrite`: the key names (and, for `merge`, the values) of one `dataFrom` map
//! changed by a list of operations applied in order, as ESO's `RewriteMap`
//! (`runtime/esutils/utils.go`, eso-compatibility.md 2.8).
//!
//! - `regexp`: every match in a key is replaced (`$1` / `${name}` expand groups, `$$` is `$`).
//! - `transform`: a template renders each key's new name; `.value` is the old name.
//! - `merge`: the values, each a JSON object, are merged into one object; the keys are taken in
//!   alphabetical order with the `priority` keys last, so later (and priority) keys win. `Extract`
//!   turns the merged object into the keys; `JSON` adds it, as JSON text, under `into`.
//!
//! Deviations from ESO, each to avoid a silent loss:
//! - two keys renamed to the same name are an error naming both (ESO keeps one of them, chosen by
//!   Go's random map order); keys renamed to the empty name are dropped, as ESO's key validation
//!   drops them, so a rewrite to `""` still removes keys;
//! - JSON numbers keep their exact digits where ESO goes through a float64 (integers beyond 2^53).
//!
//! Errors name keys and the operation, never a value.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use lockstep_provider_api::{ErrorClass, SecretValue, go_json};
use regex::Regex;
use serde_json::Value;

use crate::api::external_secret::{
    ExternalSecretRewrite, MergeConflictPolicy, MergePriorityPolicy, MergeStrategy, RewriteMerge,
    RewriteRegexp, RewriteTransform,
};
use crate::template::{TemplateContext, TemplateError, render};

/// How many names a message lists before summarising.
const MAX_SHOWN: usize = 5;

/// One rewrite operation failed. Names keys, never values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("error applying rewrite to keys: failed rewrite operation[{index}]: {failure}")]
pub struct RewriteError {
    /// The operation's index in `rewrite`.
    pub index: usize,
    pub failure: RewriteFailure,
}

impl RewriteError {
    /// Always [`ErrorClass::Invalid`]: the spec or the stored values must change.
    pub fn class(&self) -> ErrorClass {
        ErrorClass::Invalid
    }
}

/// What went wrong in one operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RewriteFailure {
    #[error("regexp failed with failed to compile: {0}")]
    Regexp(String),

    #[error(
        "keys {first:?} and {second:?} both become {renamed:?}, so one value would be lost; \
         change the rewrite so the new names differ"
    )]
    Collision {
        first: String,
        second: String,
        renamed: String,
    },

    #[error("transform failed with failed to execute template for key {key:?}: {error}")]
    Transform {
        key: String,
        error: Box<TemplateError>,
    },

    #[error("transform of key {key:?} did not render UTF-8 text, which a key name must be")]
    TransformNotText { key: String },

    #[error(
        "merge failed with key {key:?} not found in input map; remove it from priority or set \
         priorityPolicy: IgnoreNotFound"
    )]
    PriorityKeyMissing { key: String },

    #[error(
        "merge failed with failed to unmarshal JSON: the value of key {key:?} is not JSON \
         (syntax error at line {line} column {column}); merge needs every value to be a JSON object"
    )]
    NotJson {
        key: String,
        line: usize,
        column: usize,
    },

    #[error(
        "merge failed with failed to unmarshal JSON: the value of key {key:?} is JSON {found}, \
         not an object; merge needs every value to be a JSON object"
    )]
    NotAnObject { key: String, found: &'static str },

    #[error(
        "merge failed with conflicts: {}; set conflictPolicy: Ignore to let the later key win \
         (keys are merged alphabetically, priority keys last)",
        list(.0)
    )]
    Conflicts(Vec<String>),

    #[error("merge failed with missing 'into' field: strategy JSON needs the key to write to")]
    MissingInto,
}

fn list(names: &[String]) -> String {
    let mut out = String::new();
    for (index, name) in names.iter().take(MAX_SHOWN).enumerate() {
        if index > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "{name:?}");
    }
    if names.len() > MAX_SHOWN {
        let _ = write!(out, " and {} more", names.len() - MAX_SHOWN);
    }
    out
}

/// Applies `operations` to `map` in order.
pub fn rewrite_map(
    operations: &[ExternalSecretRewrite],
    mut map: BTreeMap<String, SecretValue>,
) -> Result<BTreeMap<String, SecretValue>, RewriteError> {
    for (index, operation) in operations.iter().enumerate() {
        let result = if let Some(merge) = &operation.merge {
            rewrite_merge(merge, map)
        } else if let Some(regexp) = &operation.regexp {
            rewrite_regexp(regexp, map)
        } else if let Some(transform) = &operation.transform {
            rewrite_transform(transform, index, map)
        } else {
            // The CRD requires exactly one; none set is a no-op, as in ESO.
            Ok(map)
        };
        map = result.map_err(|failure| RewriteError { index, failure })?;
    }
    Ok(map)
}

fn rewrite_regexp(
    operation: &RewriteRegexp,
    map: BTreeMap<String, SecretValue>,
) -> Result<BTreeMap<String, SecretValue>, RewriteFailure> {
    let re = Regex::new(&operation.source).map_err(|e| RewriteFailure::Regexp(e.to_string()))?;
    rename(map, |key| {
        Ok(re.replace_all(key, operation.target.as_str()).into_owned())
    })
}

fn rewrite_transform(
    operation: &RewriteTransform,
    index: usize,
    map: BTreeMap<String, SecretValue>,
) -> Result<BTreeMap<String, SecretValue>, RewriteFailure> {
    let name = format!("rewrite[{index}].transform");
    rename(map, |key| {
        let mut ctx = TemplateContext::new();
        ctx.insert("value", SecretValue::from(key.to_owned()));
        let rendered = render(&name, &operation.template, &ctx).map_err(|error| {
            RewriteFailure::Transform {
                key: key.to_owned(),
                error: Box::new(error),
            }
        })?;
        String::from_utf8(rendered.expose().to_vec()).map_err(|_| {
            RewriteFailure::TransformNotText {
                key: key.to_owned(),
            }
        })
    })
}

/// Renames every key with `new_name`; two keys given the same non-empty name are an error.
fn rename(
    map: BTreeMap<String, SecretValue>,
    mut new_name: impl FnMut(&str) -> Result<String, RewriteFailure>,
) -> Result<BTreeMap<String, SecretValue>, RewriteFailure> {
    let mut out = BTreeMap::new();
    // The old name of each new name, for the collision message.
    let mut origin: BTreeMap<String, String> = BTreeMap::new();
    for (key, value) in map {
        let renamed = new_name(&key)?;
        if renamed.is_empty() {
            // Dropped later by key validation, as ESO drops empty keys.
            continue;
        }
        if let Some(first) = origin.get(&renamed) {
            return Err(RewriteFailure::Collision {
                first: first.clone(),
                second: key,
                renamed,
            });
        }
        origin.insert(renamed.clone(), key);
        out.insert(renamed, value);
    }
    Ok(out)
}

fn rewrite_merge(
    operation: &RewriteMerge,
    map: BTreeMap<String, SecretValue>,
) -> Result<BTreeMap<String, SecretValue>, RewriteFailure> {
    // Alphabetical (a BTreeMap's order), then the priority keys in their given order.
    let order = map
        .keys()
        .filter(|k| !operation.priority.contains(k))
        .chain(&operation.priority);
    let mut merged: BTreeMap<String, Value> = BTreeMap::new();
    let mut conflicts: Vec<String> = Vec::new();
    for key in order {
        let Some(value) = map.get(key) else {
            if operation.priority_policy == MergePriorityPolicy::IgnoreNotFound {
                continue;
            }
            return Err(RewriteFailure::PriorityKeyMissing { key: key.clone() });
        };
        let object = match serde_json::from_slice::<Value>(value.expose()) {
            Ok(Value::Object(object)) => object,
            // Go unmarshals `null` into a nil map: nothing to merge.
            Ok(Value::Null) => continue,
            Ok(other) => {
                return Err(RewriteFailure::NotAnObject {
                    key: key.clone(),
                    found: json_type_name(&other),
                });
            }
            Err(e) => {
                return Err(RewriteFailure::NotJson {
                    key: key.clone(),
                    line: e.line(),
                    column: e.column(),
                });
            }
        };
        for (inner, value) in object {
            if merged.contains_key(&inner) && !conflicts.contains(&inner) {
                conflicts.push(inner.clone());
            }
            merged.insert(inner, value);
        }
    }
    if operation.conflict_policy != MergeConflictPolicy::Ignore && !conflicts.is_empty() {
        conflicts.sort();
        return Err(RewriteFailure::Conflicts(conflicts));
    }
    match operation.strategy {
        MergeStrategy::Extract => Ok(merged
            .into_iter()
            .map(|(k, v)| (k, SecretValue::new(go_bytes(&v))))
            .collect()),
        MergeStrategy::Json => {
            if operation.into.is_empty() {
                return Err(RewriteFailure::MissingInto);
            }
            let mut text = String::new();
            go_json_object(&mut text, merged.iter(), false);
            let mut out = map;
            out.insert(operation.into.clone(), SecretValue::new(text.into_bytes()));
            Ok(out)
        }
    }
}

fn json_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A merged member as bytes, as ESO's `GetByteValue`: strings as they are, numbers without an
/// exponent, `null` empty, objects and arrays as Go's `json.Marshal` writes them.
fn go_bytes(value: &Value) -> Vec<u8> {
    match value {
        Value::String(s) => s.as_bytes().to_vec(),
        Value::Null => Vec::new(),
        Value::Bool(b) => b.to_string().into_bytes(),
        Value::Number(n) => match n.as_f64() {
            // FormatFloat(f, 'f', -1, 64): the shortest exact digits, never an exponent, which is
            // Rust's Display for f64.
            Some(f) if !n.is_i64() && !n.is_u64() => f.to_string().into_bytes(),
            _ => n.to_string().into_bytes(),
        },
        Value::Array(_) | Value::Object(_) => {
            let mut text = String::new();
            go_json(&mut text, value, true);
            text.into_bytes()
        }
    }
}

/// `value` as Go's encoding/json writes it: object keys sorted, no spaces, floats in Go's
/// notation, and `<`, `>`, `&` escaped when `escape_html` (json.Marshal; ESO's JSONMarshal turns
/// that off).
fn go_json(out: &mut String, value: &Value, escape_html: bool) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => go_number(out, n),
        Value::String(s) => go_json::write_string(out, s, escape_html),
        Value::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                go_json(out, item, escape_html);
            }
            out.push(']');
        }
        Value::Object(members) => {
            let sorted: BTreeMap<&String, &Value> = members.iter().collect();
            go_json_object(out, sorted.into_iter(), escape_html);
        }
    }
}

fn go_json_object<'a>(
    out: &mut String,
    members: impl Iterator<Item = (&'a String, &'a Value)>,
    escape_html: bool,
) {
    out.push('{');
    for (index, (key, value)) in members.enumerate() {
        if index > 0 {
            out.push(',');
        }
        go_json::write_string(out, key, escape_html);
        out.push(':');
        go_json(out, value, escape_html);
    }
    out.push('}');
}

/// Integers keep their exact digits (Go would round those beyond 2^53 through a float64);
/// anything else is a float64 as Go writes it.
fn go_number(out: &mut String, n: &serde_json::Number) {
    if n.is_i64() || n.is_u64() {
        let _ = write!(out, "{n}");
    } else {
        out.push_str(&go_json::float(n.as_f64().unwrap_or_default()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(entries: &[(&str, &str)]) -> BTreeMap<String, SecretValue> {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), SecretValue::from(v.to_string())))
            .collect()
    }

    fn readable(map: &BTreeMap<String, SecretValue>) -> Vec<(String, String)> {
        map.iter()
            .map(|(k, v)| (k.clone(), String::from_utf8_lossy(v.expose()).into_owned()))
            .collect()
    }

    fn pairs(entries: &[(&str, &str)]) -> Vec<(String, String)> {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn regexp(source: &str, target: &str) -> ExternalSecretRewrite {
        ExternalSecretRewrite {
            regexp: Some(RewriteRegexp {
                source: source.into(),
                target: target.into(),
            }),
            ..Default::default()
        }
    }

    fn merge(configure: impl FnOnce(&mut RewriteMerge)) -> ExternalSecretRewrite {
        let mut merge = RewriteMerge::default();
        configure(&mut merge);
        ExternalSecretRewrite {
            merge: Some(merge),
            ..Default::default()
        }
    }

    // ESO e2e JSONDataFromRewrite and runtime/esutils/utils_test.go TestRewriteRegexp.
    #[test]
    fn regexp_replaces_with_group_expansion() {
        let out = rewrite_map(
            &[regexp("(.*)", "my_$1")],
            values(&[("username", "u"), ("address", "a")]),
        )
        .unwrap();
        assert_eq!(
            readable(&out),
            pairs(&[("my_address", "a"), ("my_username", "u")])
        );

        let out = rewrite_map(
            &[
                regexp("^path/to/(?P<name>.*)$", "${name}-x"),
                regexp("-", "_"),
            ],
            values(&[("path/to/db", "1"), ("other", "2")]),
        )
        .unwrap();
        assert_eq!(readable(&out), pairs(&[("db_x", "1"), ("other", "2")]));
    }

    #[test]
    fn regexp_replaces_every_match_and_dollar_dollar_is_a_dollar() {
        let out = rewrite_map(&[regexp("/", "$$")], values(&[("a/b/c", "1")])).unwrap();
        assert_eq!(readable(&out), pairs(&[("a$b$c", "1")]));
    }

    #[test]
    fn regexp_to_empty_drops_keys() {
        let out = rewrite_map(
            &[regexp("^drop-.*", "")],
            values(&[("drop-a", "1"), ("drop-b", "2"), ("keep", "3")]),
        )
        .unwrap();
        assert_eq!(readable(&out), pairs(&[("keep", "3")]));
    }

    #[test]
    fn a_bad_regexp_names_the_operation() {
        let error =
            rewrite_map(&[regexp("x", "y"), regexp("(", "")], values(&[("a", "1")])).unwrap_err();
        assert_eq!(error.index, 1);
        assert!(matches!(error.failure, RewriteFailure::Regexp(_)));
        assert!(
            error.to_string().starts_with(
                "error applying rewrite to keys: failed rewrite operation[1]: regexp failed with failed to compile"
            ),
            "{error}"
        );
    }

    #[test]
    fn two_keys_renamed_alike_are_an_error_naming_both() {
        let error = rewrite_map(
            &[regexp("^(dev|prod)-", "")],
            values(&[("dev-db", "1"), ("prod-db", "2")]),
        )
        .unwrap_err();
        assert_eq!(
            error.failure,
            RewriteFailure::Collision {
                first: "dev-db".into(),
                second: "prod-db".into(),
                renamed: "db".into()
            }
        );
    }

    // ESO docs/snippets/datafrom-rewrite-merge-*.yaml and utils_test.go TestRewriteMerge.
    #[test]
    fn merge_extract_replaces_the_keys_with_the_merged_members() {
        let out = rewrite_map(
            &[merge(|_| {})],
            values(&[
                ("a", r#"{"user":"u","n":1}"#),
                ("b", r#"{"pass":"p","o":{"z":1,"a":"<"}}"#),
            ]),
        )
        .unwrap();
        assert_eq!(
            readable(&out),
            pairs(&[
                ("n", "1"),
                ("o", r#"{"a":"\u003c","z":1}"#),
                ("pass", "p"),
                ("user", "u")
            ])
        );
    }

    #[test]
    fn merge_conflicts_fail_unless_ignored_and_priority_wins() {
        let input = values(&[
            ("a", r#"{"k":"from-a"}"#),
            ("b", r#"{"k":"from-b"}"#),
            ("c", r#"{"k":"from-c","x":"1"}"#),
        ]);
        let error = rewrite_map(&[merge(|_| {})], input.clone()).unwrap_err();
        assert_eq!(error.failure, RewriteFailure::Conflicts(vec!["k".into()]));
        assert!(
            error.to_string().contains("conflictPolicy: Ignore"),
            "{error}"
        );

        // Alphabetical: the last key wins.
        let out = rewrite_map(
            &[merge(|m| m.conflict_policy = MergeConflictPolicy::Ignore)],
            input.clone(),
        )
        .unwrap();
        assert_eq!(readable(&out), pairs(&[("k", "from-c"), ("x", "1")]));

        // Priority keys come last, in their order.
        let out = rewrite_map(
            &[merge(|m| {
                m.conflict_policy = MergeConflictPolicy::Ignore;
                m.priority = vec!["b".into(), "a".into()];
            })],
            input,
        )
        .unwrap();
        assert_eq!(readable(&out), pairs(&[("k", "from-a"), ("x", "1")]));
    }

    #[test]
    fn merge_priority_keys_must_exist_unless_told_otherwise() {
        let input = values(&[("a", r#"{"k":"v"}"#)]);
        let strict = merge(|m| m.priority = vec!["missing".into()]);
        let error = rewrite_map(&[strict], input.clone()).unwrap_err();
        assert_eq!(
            error.failure,
            RewriteFailure::PriorityKeyMissing {
                key: "missing".into()
            }
        );
        let lenient = merge(|m| {
            m.priority = vec!["missing".into()];
            m.priority_policy = MergePriorityPolicy::IgnoreNotFound;
        });
        assert_eq!(
            readable(&rewrite_map(&[lenient], input).unwrap()),
            pairs(&[("k", "v")])
        );
    }

    #[test]
    fn merge_json_adds_the_object_under_into_and_keeps_the_keys() {
        let input = values(&[("a", r#"{"u":"<x>","f":1.5,"big":1e21}"#), ("b", "null")]);
        let out = rewrite_map(
            &[merge(|m| {
                m.strategy = MergeStrategy::Json;
                m.into = "all".into();
            })],
            input,
        )
        .unwrap();
        assert_eq!(
            readable(&out),
            pairs(&[
                ("a", r#"{"u":"<x>","f":1.5,"big":1e21}"#),
                ("all", r#"{"big":1e+21,"f":1.5,"u":"<x>"}"#),
                ("b", "null"),
            ])
        );
        let error = rewrite_map(
            &[merge(|m| m.strategy = MergeStrategy::Json)],
            values(&[("a", "{}")]),
        )
        .unwrap_err();
        assert_eq!(error.failure, RewriteFailure::MissingInto);
    }

    #[test]
    fn merge_needs_json_objects_and_names_the_key() {
        let error = rewrite_map(&[merge(|_| {})], values(&[("plain", "hunter2")])).unwrap_err();
        assert!(
            matches!(&error.failure, RewriteFailure::NotJson { key, .. } if key == "plain"),
            "{error}"
        );
        assert!(!error.to_string().contains("hunter2"));
        let error =
            rewrite_map(&[merge(|_| {})], values(&[("list", r#"["hunter2"]"#)])).unwrap_err();
        assert_eq!(
            error.failure,
            RewriteFailure::NotAnObject {
                key: "list".into(),
                found: "an array"
            }
        );
        assert!(!error.to_string().contains("hunter2"));
    }

    #[test]
    fn go_number_and_string_forms() {
        let bytes = |json: &str| {
            String::from_utf8(go_bytes(&serde_json::from_str::<Value>(json).unwrap())).unwrap()
        };
        assert_eq!(bytes("10"), "10");
        assert_eq!(bytes("10.0"), "10");
        assert_eq!(bytes("1.50"), "1.5");
        assert_eq!(bytes("1e21"), "1000000000000000000000");
        assert_eq!(bytes("true"), "true");
        assert_eq!(bytes("null"), "");
        assert_eq!(
            bytes(r#"[1e-7, 0.000001, "a\u2028&\u0001"]"#),
            r#"[1e-7,0.000001,"a\u2028\u0026\u0001"]"#
        );
    }

    fn transform(template: &str) -> ExternalSecretRewrite {
        ExternalSecretRewrite {
            transform: Some(RewriteTransform {
                template: template.into(),
            }),
            ..Default::default()
        }
    }

    // ESO docs/snippets/datafrom-rewrite-transform.yaml.
    #[test]
    fn transform_renders_each_new_name_from_value() {
        let out = rewrite_map(
            &[transform("{{ .value | upper }}_SUFFIX")],
            values(&[("db-user", "u"), ("db-pass", "p")]),
        )
        .unwrap();
        assert_eq!(
            readable(&out),
            pairs(&[("DB-PASS_SUFFIX", "p"), ("DB-USER_SUFFIX", "u")])
        );
        // Only `.value` is in scope: the values are not.
        let error = rewrite_map(
            &[transform("{{ .password }}")],
            values(&[("password", "hunter2")]),
        )
        .unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("failed rewrite operation[0]: transform failed with failed to execute template for key \"password\""),
            "{message}"
        );
        assert!(message.contains("rewrite[0].transform"), "{message}");
        assert!(!message.contains("hunter2"), "{message}");
    }

    #[test]
    fn transform_collisions_and_parse_errors_are_named() {
        let error =
            rewrite_map(&[transform("same")], values(&[("a", "1"), ("b", "2")])).unwrap_err();
        assert!(matches!(error.failure, RewriteFailure::Collision { .. }));
        let error = rewrite_map(&[transform("{{ .value ")], values(&[("a", "1")])).unwrap_err();
        assert!(
            error.to_string().contains("unable to parse template"),
            "{error}"
        );
    }

    #[test]
    fn operations_apply_in_order() {
        let out = rewrite_map(
            &[merge(|_| {}), regexp("^", "db_")],
            values(&[("x", r#"{"user":"u"}"#)]),
        )
        .unwrap();
        assert_eq!(readable(&out), pairs(&[("db_user", "u")]));
    }
}
