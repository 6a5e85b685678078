//! Template errors. They reach status conditions, events and logs, so they never carry a value:
//! messages are built from the template (its name, its source positions, function names, keys)
//! and from fixed texts. Three layers keep it so:
//!
//! 1. lockstep's functions never put an argument's value in an error (each has a test);
//! 2. gotmpl messages known to print a value are rewritten without it ([`scrub_engine_message`]);
//!    `fail` shows its message only when that message is text of the template itself;
//! 3. whatever remains has every value of the context cut out before it is shown.

use std::fmt;

use super::locate::{self, Tree};
use super::{TemplateContext, bytes};

/// Which step failed: parsing the source (fix the template) or executing it (the template does
/// not fit the data, or a function rejected its input).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateErrorKind {
    Parse,
    Execute,
}

/// Why a template could not be rendered. `Display` names the template, the line and column
/// when known, and what is wrong; it never includes a data value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    name: String,
    kind: TemplateErrorKind,
    position: Option<(usize, usize)>,
    message: String,
}

impl TemplateError {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn kind(&self) -> TemplateErrorKind {
        self.kind
    }

    /// 1-based line and column in the template source, when known.
    pub fn position(&self) -> Option<(usize, usize)> {
        self.position
    }

    /// What is wrong, without the template name and position.
    pub fn message(&self) -> &str {
        &self.message
    }

    pub(crate) fn from_parse(name: &str, error: gotmpl::TemplateError) -> Self {
        let (position, message) = match error {
            gotmpl::TemplateError::Parse {
                line, col, message, ..
            }
            | gotmpl::TemplateError::Lex {
                line, col, message, ..
            } => ((line > 0).then_some((line, col)), message),
            other => (None, scrub_engine_message(&other)),
        };
        Self {
            name: name.to_owned(),
            kind: TemplateErrorKind::Parse,
            position,
            message,
        }
    }

    pub(crate) fn parse_at(name: &str, source: &str, offset: usize, message: String) -> Self {
        Self {
            name: name.to_owned(),
            kind: TemplateErrorKind::Parse,
            position: Some(locate::line_column(
                source,
                gotmpl::parse::Pos::new(offset, 0),
            )),
            message,
        }
    }

    pub(crate) fn unknown_function(
        name: &str,
        source: &str,
        function: &str,
        pos: gotmpl::parse::Pos,
    ) -> Self {
        Self {
            name: name.to_owned(),
            kind: TemplateErrorKind::Parse,
            position: Some(locate::line_column(source, pos)),
            message: format!(
                "function {function:?} not defined; docs/templates.md lists the functions lockstep has"
            ),
        }
    }

    pub(crate) fn from_execute(
        name: &str,
        source: &str,
        tree: &Tree,
        ctx: &TemplateContext,
        error: gotmpl::TemplateError,
    ) -> Self {
        let (pos, message) = match &error {
            gotmpl::TemplateError::MissingKey { key } => (
                locate::only_lookup_of(tree, key),
                missing_key_message(key, ctx),
            ),
            gotmpl::TemplateError::Exec(text) => match text.strip_prefix(CALLING) {
                Some(rest) => {
                    let function = rest.split(':').next().unwrap_or_default();
                    let message = if function == "fail" {
                        fail_message(rest, tree)
                    } else {
                        text.clone()
                    };
                    (locate::only_call_of(tree, function), message)
                }
                None => (None, scrub_engine_message(&error)),
            },
            _ => (None, scrub_engine_message(&error)),
        };
        Self {
            name: name.to_owned(),
            kind: TemplateErrorKind::Execute,
            position: pos.map(|pos| locate::line_column(source, pos)),
            message: scrub_values(message, ctx),
        }
    }
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = match self.kind {
            TemplateErrorKind::Parse => "parse",
            TemplateErrorKind::Execute => "execute",
        };
        write!(f, "unable to {verb} template {:?}", self.name)?;
        if let Some((line, column)) = self.position {
            write!(f, " at line {line}, column {column}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for TemplateError {}

/// Prefix of every error a lockstep function returns (Go's text: `error calling b64dec: ...`).
pub(crate) const CALLING: &str = "error calling ";

/// The error a function returns; `message` must not contain an argument's value.
pub(crate) fn function_error(function: &str, message: impl fmt::Display) -> gotmpl::TemplateError {
    gotmpl::TemplateError::Exec(format!("{CALLING}{function}: {message}"))
}

const MAX_KEYS_SHOWN: usize = 20;

fn missing_key_message(key: &str, ctx: &TemplateContext) -> String {
    let keys: Vec<&str> = ctx.keys().collect();
    let mut shown = keys
        .iter()
        .take(MAX_KEYS_SHOWN)
        .map(|k| format!("{k:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    if keys.len() > MAX_KEYS_SHOWN {
        shown.push_str(&format!(" and {} more", keys.len() - MAX_KEYS_SHOWN));
    }
    let available = if keys.is_empty() {
        "the data has no keys".to_owned()
    } else {
        format!("the data has keys {shown}")
    };
    format!(
        "map has no entry for key {key:?} ({available}); fix the key, or test it first with \
         {{{{ if hasKey . {key:?} }}}}"
    )
}

/// `fail "text"` shows its text only when the text is a string literal of the template, so a
/// message built from data (`fail .password`) is never shown.
fn fail_message(rest: &str, tree: &Tree) -> String {
    let text = rest.strip_prefix("fail: ").unwrap_or_default();
    if locate::is_string_literal(tree, text) {
        format!("{CALLING}fail: {text}")
    } else {
        format!(
            "{CALLING}fail: the template called fail with a message built from data; it is not \
             shown because it may contain a secret value"
        )
    }
}

/// gotmpl's message, rewritten where gotmpl is known to print a value.
pub(crate) fn scrub_engine_message(error: &gotmpl::TemplateError) -> String {
    let text = error.to_string();
    let text = text.strip_prefix("execution error: ").unwrap_or(&text);
    if text.starts_with("printf: first arg must be string") {
        "printf: the format (first argument) must be a string".to_owned()
    } else if text.starts_with("len: cannot take length of") {
        "len: cannot take the length of this type of value".to_owned()
    } else if text.starts_with("can't use ") && text.ends_with("more than one variable") {
        "range over this type of value cannot declare more than one variable".to_owned()
    } else if let gotmpl::TemplateError::FuncPanic { name, .. } = error {
        format!("function {name} failed unexpectedly")
    } else {
        text.to_owned()
    }
}

/// The last line of defence: every value of the context cut out of a message. Values shorter
/// than this are not cut, since they would cut ordinary words; the layers above keep those out.
const MIN_SCRUBBED_LEN: usize = 4;

fn scrub_values(mut message: String, ctx: &TemplateContext) -> String {
    for text in ctx.texts() {
        if text.len() >= MIN_SCRUBBED_LEN && message.contains(text) {
            message = message.replace(text, "<redacted>");
        }
        let lossy = String::from_utf8_lossy(&bytes::decode(text)).into_owned();
        if lossy.len() >= MIN_SCRUBBED_LEN && message.contains(&lossy) {
            message = message.replace(&lossy, "<redacted>");
        }
    }
    message
}
