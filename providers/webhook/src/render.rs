//! Templates of the request (url, headers, body, result.jsonPath). ESO runs them as Go templates
//! with its whole function map; this crate knows no template engine of its own beyond field
//! references: the caller supplies a [`Render`], so the engine lockstep uses for ExternalSecret
//! templates can render these too without this crate depending on it.
//!
//! lockstep supplies its template engine (`src/controller/webhook_store.rs`). [`FieldReferences`]
//! is the crate's own minimal renderer, for users of the crate without an engine: it substitutes `{{ .remoteRef.key }}`-style
//! references (what ESO's own webhook tests and most stores use) and refuses anything else
//! (functions, pipelines, `if`) with a message that says so, never silently.
use std::collections::BTreeMap;

use lockstep_provider_api::SecretValue;
use zeroize::Zeroizing;

/// What templates see as dot, as ESO's `map[string]map[string]string`: `remoteRef` (`key`,
/// `version`, `property`, `namespace`) and one map per `secrets[]` entry, by its name.
pub type TemplateData = BTreeMap<String, BTreeMap<String, SecretValue>>;

/// Renders one template of the request.
pub trait Render: Send + Sync {
    /// Renders `template` with `data` as dot. `name` says which template it is (`url`,
    /// `headers.Authorization`, `body`, `result.jsonPath`) for the error, which must never
    /// contain a value of `data`.
    fn render(
        &self,
        name: &str,
        template: &str,
        data: &TemplateData,
    ) -> Result<SecretValue, String>;
}

/// Substitutes `{{ .map.key }}` field references (whitespace and `{{-`/`-}}` trim markers
/// allowed) and nothing else.
#[derive(Debug, Clone, Copy, Default)]
pub struct FieldReferences;

impl Render for FieldReferences {
    fn render(
        &self,
        name: &str,
        template: &str,
        data: &TemplateData,
    ) -> Result<SecretValue, String> {
        let mut out = Zeroizing::new(Vec::with_capacity(template.len()));
        let mut rest = template;
        let mut offset = 0;
        while let Some(open) = rest.find("{{") {
            let mut literal = &rest[..open];
            let action = &rest[open + 2..];
            let close = action.find("}}").ok_or_else(|| {
                format!(
                    "template {name}: the action at byte {} is not closed with }}}}",
                    offset + open
                )
            })?;
            let mut inner = &action[..close];
            if let Some(trimmed) = inner.strip_prefix("- ") {
                literal = literal.trim_end();
                inner = trimmed;
            }
            let trim_after = inner.ends_with(" -");
            if trim_after {
                inner = &inner[..inner.len() - 2];
            }
            out.extend_from_slice(literal.as_bytes());
            out.extend_from_slice(field(name, inner.trim(), data)?);
            let consumed = open + 2 + close + 2;
            rest = &rest[consumed..];
            offset += consumed;
            if trim_after {
                let trimmed = rest.trim_start();
                offset += rest.len() - trimmed.len();
                rest = trimmed;
            }
        }
        out.extend_from_slice(rest.as_bytes());
        Ok(SecretValue::new(std::mem::take(&mut *out)))
    }
}

/// The value of `.map.key`.
fn field<'a>(name: &str, reference: &str, data: &'a TemplateData) -> Result<&'a [u8], String> {
    let path: Vec<&str> = reference
        .strip_prefix('.')
        .map(|p| p.split('.').collect())
        .unwrap_or_default();
    let is_identifier =
        |s: &&str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    let [map, key] = path.as_slice() else {
        return Err(unsupported(name, reference));
    };
    if !is_identifier(map) || !is_identifier(key) {
        return Err(unsupported(name, reference));
    }
    data.get(*map)
        .ok_or_else(|| format!("template {name}: there is no {map:?} to read .{map}.{key} from: name a secrets[] entry {map:?} or use .remoteRef"))?
        .get(*key)
        .map(SecretValue::expose)
        .ok_or_else(|| format!("template {name}: map {map:?} has no entry for key {key:?}"))
}

fn unsupported(name: &str, reference: &str) -> String {
    // The action is the user's template text, not a value.
    format!(
        "template {name}: {{{{ {reference} }}}} is not a field reference such as \
         {{{{ .remoteRef.key }}}}; the webhook provider does not run template functions, \
         pipelines or conditions yet"
    )
}

/// Go's `url.QueryEscape`: what ESO applies to `remoteRef` values inside `url`.
pub fn query_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> TemplateData {
        let remote = BTreeMap::from([
            (
                "key".to_string(),
                SecretValue::from("db/password".to_string()),
            ),
            ("version".to_string(), SecretValue::from(String::new())),
        ]);
        let auth = BTreeMap::from([("token".to_string(), SecretValue::from("s3cr3t".to_string()))]);
        BTreeMap::from([
            ("remoteRef".to_string(), remote),
            ("auth".to_string(), auth),
        ])
    }

    fn render(template: &str) -> Result<String, String> {
        FieldReferences
            .render("url", template, &data())
            .map(|v| String::from_utf8(v.expose().to_vec()).unwrap())
    }

    #[test]
    fn field_references_are_substituted() {
        assert_eq!(
            render("/get?id={{ .remoteRef.key }}&v={{.remoteRef.version}}").unwrap(),
            "/get?id=db/password&v="
        );
        assert_eq!(render("Bearer {{ .auth.token }}").unwrap(), "Bearer s3cr3t");
        assert_eq!(render("a  {{- .auth.token -}}  b").unwrap(), "as3cr3tb");
        assert_eq!(render("no actions").unwrap(), "no actions");
    }

    #[test]
    fn anything_else_is_refused_with_a_message_and_no_value() {
        for (template, needle) in [
            ("{{ .remoteRef.key | upper }}", "not a field reference"),
            ("{{ printf \"result\" }}", "not a field reference"),
            ("{{ .remoteRef.key", "not closed"),
            ("{{ .nothing.key }}", "there is no \"nothing\""),
            ("{{ .auth.missing }}", "has no entry for key \"missing\""),
        ] {
            let err = render(template).unwrap_err();
            assert!(err.contains(needle), "{template}: {err}");
            assert!(err.starts_with("template url:"), "{err}");
            assert!(!err.contains("s3cr3t"), "{err}");
        }
    }

    #[test]
    fn query_escape_is_gos() {
        assert_eq!(
            query_escape("db/pass word&x=ü"),
            "db%2Fpass+word%26x%3D%C3%BC"
        );
        assert_eq!(query_escape("a-b_c.d~e"), "a-b_c.d~e");
    }
}
