//! The template engine: Go `text/template` semantics as External Secrets Operator (ESO) users
//! write them (`{{ .password }}`, `{{ index . "tls.crt" }}`, pipelines, `if`/`range`/`with`,
//! variables, `missingkey=error`) on the `gotmpl` crate, with ESO's function map (a Sprig v3
//! subset plus ESO's PEM/PKCS#12/YAML helpers).
//!
//! Pure: no function reads the environment, files, the network or DNS, and nothing here knows
//! Kubernetes. Values travel as [`SecretValue`] bytes; binary values are carried through the
//! UTF-8 engine by the reversible escape of [`bytes`]. No [`TemplateError`] carries a value:
//! messages name the template, the position and what is wrong (see [`error`]).
//!
//! The function list, and what is deliberately absent, is in `docs/templates.md`.

pub mod bytes;
mod error;
mod functions;
mod locate;

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use gotmpl::{FuncMap, MissingKey, Template, Value};
use lockstep_provider_api::SecretValue;
use zeroize::Zeroizing;

pub use error::{TemplateError, TemplateErrorKind};

/// The data a template sees as dot: secret names to values, as ESO's `map[string]string`.
#[derive(Default)]
pub struct TemplateContext {
    values: BTreeMap<Arc<str>, Value>,
}

impl std::fmt::Debug for TemplateContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Keys are not secret; values are never shown.
        f.debug_struct("TemplateContext")
            .field("keys", &self.values.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl TemplateContext {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) `key`; `{{ .key }}` then yields the value's bytes unchanged.
    pub fn insert(&mut self, key: impl Into<String>, value: SecretValue) {
        let key: String = key.into();
        let text = bytes::encode(value.expose());
        self.values
            .insert(Arc::from(key), Value::String(Arc::from(text)));
    }

    /// Adds (or replaces) `key` as a map of values, so `{{ .key.field }}` reads one of them: the
    /// shape of ESO's webhook data (`remoteRef` and each `secrets[]` entry by name).
    pub fn insert_map(&mut self, key: impl Into<String>, map: &BTreeMap<String, SecretValue>) {
        let key: String = key.into();
        let inner = map
            .iter()
            .map(|(k, v)| {
                let text = bytes::encode(v.expose());
                (Arc::from(k.as_str()), Value::String(Arc::from(text)))
            })
            .collect();
        self.values
            .insert(Arc::from(key), Value::Map(Arc::new(inner)));
    }

    pub fn from_map(map: &BTreeMap<String, SecretValue>) -> Self {
        let mut ctx = Self::new();
        for (key, value) in map {
            ctx.insert(key.clone(), value.clone());
        }
        ctx
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(AsRef::as_ref)
    }

    /// The values as template strings, for scrubbing error messages.
    fn texts(&self) -> impl Iterator<Item = &str> {
        self.values.values().flat_map(|v| match v {
            Value::String(s) => vec![s.as_ref()],
            Value::Map(inner) => inner
                .values()
                .filter_map(|v| match v {
                    Value::String(s) => Some(s.as_ref()),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        })
    }

    fn dot(&self) -> Value {
        Value::Map(Arc::new(self.values.clone()))
    }
}

/// Delimiters of template actions; ESO's `--template-left-delimiter`/`--template-right-delimiter`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delimiters {
    pub left: String,
    pub right: String,
}

impl Default for Delimiters {
    fn default() -> Self {
        Self {
            left: "{{".to_owned(),
            right: "}}".to_owned(),
        }
    }
}

static FUNCTIONS: LazyLock<FuncMap> = LazyLock::new(functions::all);

/// Whether a function of this name exists in templates (builtins included).
pub fn has_function(name: &str) -> bool {
    FUNCTIONS.contains_key(name) || functions::GO_BUILTINS.contains(&name)
}

/// Renders one template. `name` identifies it in errors (e.g. the Secret key,
/// "metadata.labels.app", "templateFrom[0] configmap tpl key x").
pub fn render(
    name: &str,
    source: &str,
    ctx: &TemplateContext,
) -> Result<SecretValue, TemplateError> {
    render_with(name, source, ctx, &Delimiters::default())
}

/// [`render`] with custom action delimiters.
pub fn render_with(
    name: &str,
    source: &str,
    ctx: &TemplateContext,
    delims: &Delimiters,
) -> Result<SecretValue, TemplateError> {
    let tree =
        locate::parse_tree(source, delims).map_err(|e| TemplateError::from_parse(name, e))?;
    locate::check_blocks(source, delims)
        .map_err(|(offset, message)| TemplateError::parse_at(name, source, offset, message))?;
    // Go rejects an unknown function when parsing, even in a branch that never runs.
    if let Some((function, pos)) = locate::first_unknown_function(&tree, has_function) {
        return Err(TemplateError::unknown_function(
            name, source, &function, pos,
        ));
    }
    let template = Template::new(name)
        .delims(&delims.left, &delims.right)
        .missing_key(MissingKey::Error)
        .funcs(FUNCTIONS.clone())
        .parse(source)
        .map_err(|e| TemplateError::from_parse(name, e))?;
    let mut out = Zeroizing::new(String::new());
    template
        .execute_fmt(&mut *out, &ctx.dot())
        .map_err(|e| TemplateError::from_execute(name, source, &tree, ctx, e))?;
    Ok(SecretValue::new(bytes::decode(&out)))
}

#[cfg(test)]
mod tests;
