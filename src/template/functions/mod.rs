//! The function map, one submodule per group. Each function is a plain `fn` over gotmpl values;
//! argument checks follow Go's: a parameter typed `string` or `int` in Sprig rejects other
//! types ("wrong type for value"), an `interface{}` parameter takes anything.
//!
//! No function reads the environment, files, the network or DNS, or the clock's randomness:
//! the output of a template depends on its source and its data only.

mod args;
mod collections;
mod defaults;
mod encoding;
mod json_yaml;
mod numbers;
mod pem;
mod pkcs12;
mod regex;
mod strings;

use std::sync::Arc;

use gotmpl::{FuncMap, Value};

pub(crate) use args::Args;

/// A template function.
pub(crate) type Func = fn(&[Value]) -> gotmpl::Result<Value>;

/// gotmpl's own functions (Go's text/template builtins); lockstep replaces `len`.
pub(crate) const GO_BUILTINS: &[&str] = &[
    "and", "or", "not", "eq", "ne", "lt", "le", "gt", "ge", "print", "println", "printf", "len",
    "index", "slice", "call", "html", "js", "urlquery",
];

/// Every function lockstep adds to Go's builtins.
pub(crate) fn all() -> FuncMap {
    let groups: &[&[(&str, Func)]] = &[
        encoding::FUNCTIONS,
        strings::FUNCTIONS,
        defaults::FUNCTIONS,
        collections::FUNCTIONS,
        pem::FUNCTIONS,
        pkcs12::FUNCTIONS,
        json_yaml::FUNCTIONS,
        regex::FUNCTIONS,
        numbers::FUNCTIONS,
        &[("len", len), ("index", index), ("fail", fail)],
    ];
    let mut map = FuncMap::new();
    for group in groups {
        for &(name, func) in *group {
            map.insert(name.to_owned(), Arc::new(func));
        }
    }
    map
}

/// Go's `len`, counting a string's bytes (binary values included, see `template::bytes`).
fn len(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("len", args).exactly(1)?;
    let n = match a.get(0) {
        Value::String(s) => super::bytes::decode(s).len(),
        Value::List(l) => l.len(),
        Value::Map(m) => m.len(),
        other => {
            return Err(a.error(format!(
                "cannot take the length of a value of type {}",
                other.type_name()
            )));
        }
    };
    Ok(Value::Int(i64::try_from(n).unwrap_or(i64::MAX)))
}

/// Go's `index`. Go ignores `missingkey` here and returns the zero value of the map's element
/// type: "" for ESO's data (a `map[string]string`). gotmpl has one map type, so a map whose
/// values are all strings is taken as such; other maps give nil, as Go's `map[string]any`.
fn index(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("index", args).at_least(1)?;
    let mut current = a.get(0).clone();
    for key in &args[1..] {
        current = match (&current, key) {
            (Value::Map(map), Value::String(k))
                if !map.contains_key(k)
                    && !map.is_empty()
                    && map.values().all(|v| matches!(v, Value::String(_))) =>
            {
                args::string("")
            }
            _ => current.index(key)?,
        };
    }
    Ok(current)
}

/// Sprig's `fail`: stops rendering with the given message (shown only when it is a literal of
/// the template, see `template::error`).
fn fail(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("fail", args).exactly(1)?;
    Err(a.error(a.string(0)?))
}

#[cfg(test)]
pub(crate) mod test_support {
    use lockstep_provider_api::SecretValue;

    use crate::template::{TemplateContext, TemplateError, render};

    /// Renders `source` with `pairs` as data; the text of the output.
    pub(crate) fn run(source: &str, pairs: &[(&str, &str)]) -> Result<String, TemplateError> {
        run_bytes(source, pairs).map(|b| String::from_utf8(b).unwrap_or_else(|e| panic!("{e}")))
    }

    pub(crate) fn run_bytes(
        source: &str,
        pairs: &[(&str, &str)],
    ) -> Result<Vec<u8>, TemplateError> {
        let mut ctx = TemplateContext::new();
        for (k, v) in pairs {
            ctx.insert(*k, SecretValue::from((*v).to_owned()));
        }
        render("t", source, &ctx).map(|v| v.expose().to_vec())
    }

    /// Renders and expects success.
    #[track_caller]
    pub(crate) fn ok(source: &str) -> String {
        run(source, &[]).unwrap_or_else(|e| panic!("{source}: {e}"))
    }

    /// Renders and expects an error; its `Display`.
    #[track_caller]
    pub(crate) fn err(source: &str) -> String {
        match run(source, &[]) {
            Ok(out) => panic!("{source}: expected an error, rendered {out:?}"),
            Err(e) => e.to_string(),
        }
    }
}
