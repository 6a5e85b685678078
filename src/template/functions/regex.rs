//! Regular expressions with Go's RE2 syntax (Sprig's regex group). Rust's `regex` is the same
//! engine family; a small pre-pass gives Go's meaning to what differs: `\d \w \s \b` are ASCII
//! in Go (Unicode in Rust), and `\Q...\E` quotes literally. Patterns are user input, so the
//! compiled size is bounded.
//!
//! `regexMatch` gives false for a bad pattern (Sprig ignores the error); every other function
//! fails with an error.

use gotmpl::Value;
use regex::{Regex, RegexBuilder};

use super::Func;
use super::args::{Args, string};

pub(super) const FUNCTIONS: &[(&str, Func)] = &[
    ("regexMatch", regex_match),
    ("mustRegexMatch", must_regex_match),
    ("regexFind", regex_find),
    ("mustRegexFind", regex_find),
    ("regexFindAll", regex_find_all),
    ("mustRegexFindAll", regex_find_all),
    ("regexReplaceAll", regex_replace_all),
    ("mustRegexReplaceAll", regex_replace_all),
    ("regexReplaceAllLiteral", regex_replace_all_literal),
    ("mustRegexReplaceAllLiteral", regex_replace_all_literal),
    ("regexSplit", regex_split),
    ("mustRegexSplit", regex_split),
    ("regexQuoteMeta", regex_quote_meta),
];

const SIZE_LIMIT: usize = 1 << 20;

/// Go's meaning of the escapes that differ (see the module documentation).
fn translate(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut chars = pattern.chars().peekable();
    let mut in_class = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let Some(e) = chars.next() else {
                    out.push('\\');
                    break;
                };
                let class_or_plain = |inside: &'static str, outside: &'static str| {
                    if in_class { inside } else { outside }
                };
                match e {
                    'd' => out.push_str(class_or_plain("0-9", "[0-9]")),
                    'D' => out.push_str(class_or_plain("[:^digit:]", "[^0-9]")),
                    'w' => out.push_str(class_or_plain("0-9A-Za-z_", "[0-9A-Za-z_]")),
                    'W' => out.push_str(class_or_plain("[:^word:]", "[^0-9A-Za-z_]")),
                    's' => out.push_str(class_or_plain("\\t\\n\\f\\r ", "[\\t\\n\\f\\r ]")),
                    'S' => out.push_str(class_or_plain("[:^space:]", "[^\\t\\n\\f\\r ]")),
                    'b' if !in_class => out.push_str("(?-u:\\b)"),
                    'B' if !in_class => out.push_str("(?-u:\\B)"),
                    'Q' => {
                        let mut literal = String::new();
                        while let Some(q) = chars.next() {
                            if q == '\\' && chars.peek() == Some(&'E') {
                                chars.next();
                                break;
                            }
                            literal.push(q);
                        }
                        out.push_str(&regex::escape(&literal));
                    }
                    other => {
                        out.push('\\');
                        out.push(other);
                    }
                }
            }
            '[' if !in_class => {
                in_class = true;
                out.push('[');
                // A leading ] or ^] is literal.
                if chars.peek() == Some(&'^') {
                    out.push('^');
                    chars.next();
                }
                if chars.peek() == Some(&']') {
                    out.push_str("\\]");
                    chars.next();
                }
            }
            '[' if in_class && chars.peek() == Some(&':') => {
                // A POSIX class [:alpha:] inside a class.
                out.push('[');
                for p in chars.by_ref() {
                    out.push(p);
                    if p == ']' {
                        break;
                    }
                }
            }
            '[' => out.push_str("\\["),
            ']' if in_class => {
                in_class = false;
                out.push(']');
            }
            '&' | '~' | '-' if in_class && chars.peek() == Some(&c) => {
                // Rust reads && ~~ -- in a class as set operations; Go as literals.
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

fn compile(a: &Args<'_>, pattern: &str) -> gotmpl::Result<Regex> {
    RegexBuilder::new(&translate(pattern))
        .size_limit(SIZE_LIMIT)
        .build()
        .map_err(|e| match e {
            regex::Error::CompiledTooBig(_) => a.error("the regular expression is too large"),
            _ => a.error("the regular expression is not valid (Go RE2 syntax)"),
        })
}

fn regex_match(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("regexMatch", args).exactly(2)?;
    let (pattern, s) = (a.string(0)?, a.string(1)?);
    Ok(Value::Bool(
        compile(&a, &pattern).is_ok_and(|r| r.is_match(&s)),
    ))
}

fn must_regex_match(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("mustRegexMatch", args).exactly(2)?;
    let (pattern, s) = (a.string(0)?, a.string(1)?);
    Ok(Value::Bool(compile(&a, &pattern)?.is_match(&s)))
}

fn regex_find(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("regexFind", args).exactly(2)?;
    let (pattern, s) = (a.string(0)?, a.string(1)?);
    let found = compile(&a, &pattern)?
        .find(&s)
        .map(|m| m.as_str().to_owned());
    Ok(string(found.unwrap_or_default()))
}

/// `regexFindAll "[0-9]+" .s -1`: at most n matches, all when n < 0.
fn regex_find_all(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("regexFindAll", args).exactly(3)?;
    let (pattern, s, n) = (a.string(0)?, a.string(1)?, a.int(2)?);
    let r = compile(&a, &pattern)?;
    let limit = usize::try_from(n).unwrap_or(usize::MAX);
    let found = r
        .find_iter(&s)
        .take(limit)
        .map(|m| string(m.as_str()))
        .collect();
    Ok(Value::List(found))
}

/// `regexReplaceAll "a(x*)b" .s "${1}W"`: Go's `$1`/`${name}` expansion.
fn regex_replace_all(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("regexReplaceAll", args).exactly(3)?;
    let (pattern, s, replacement) = (a.string(0)?, a.string(1)?, a.string(2)?);
    Ok(string(
        compile(&a, &pattern)?
            .replace_all(&s, &*replacement)
            .into_owned(),
    ))
}

fn regex_replace_all_literal(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("regexReplaceAllLiteral", args).exactly(3)?;
    let (pattern, s, replacement) = (a.string(0)?, a.string(1)?, a.string(2)?);
    let out = compile(&a, &pattern)?.replace_all(&s, regex::NoExpand(&replacement));
    Ok(string(out.into_owned()))
}

/// `regexSplit "z+" .s -1`: at most n parts (the last holds the rest), all when n < 0.
fn regex_split(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("regexSplit", args).exactly(3)?;
    let (pattern, s, n) = (a.string(0)?, a.string(1)?, a.int(2)?);
    let r = compile(&a, &pattern)?;
    let parts: Vec<Value> = match usize::try_from(n) {
        Ok(0) => Vec::new(),
        Ok(n) => r.splitn(&s, n).map(string).collect(),
        Err(_) => r.split(&s).map(string).collect(),
    };
    Ok(Value::List(parts.into()))
}

/// Go's `regexp.QuoteMeta`: escapes `\.+*?()|[]{}^$`.
fn regex_quote_meta(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("regexQuoteMeta", args).exactly(1)?;
    let mut out = String::new();
    for c in a.string(0)?.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    Ok(string(out))
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{err, ok, run};
    use super::translate;

    #[test]
    fn match_find_replace_split() {
        assert_eq!(
            ok(r#"{{ regexMatch "^[a-z]+\\d$" "abc1" }} {{ regexMatch "(" "x" }}"#),
            "true false"
        );
        assert_eq!(ok(r#"{{ regexFind "[0-9]+" "ab12cd345" }}"#), "12");
        assert_eq!(
            ok(
                r#"{{ regexFindAll "[0-9]+" "ab12cd345e6" -1 }} {{ regexFindAll "[0-9]+" "ab12cd345e6" 2 }}"#
            ),
            "[12 345 6] [12 345]"
        );
        assert_eq!(
            ok(r#"{{ regexReplaceAll "a(x*)b" "-ab-axxb-" "${1}W" }}"#),
            "-W-xxW-"
        );
        assert_eq!(
            ok(r#"{{ regexReplaceAllLiteral "a(x*)b" "-ab-axxb-" "${1}" }}"#),
            "-${1}-${1}-"
        );
        assert_eq!(
            ok(r#"{{ regexSplit "z+" "pizza" -1 }} {{ regexSplit "z+" "pizza" 1 }}"#),
            "[pi a] [pizza]"
        );
        assert_eq!(ok(r#"{{ regexQuoteMeta "1.5-2.0?" }}"#), r"1\.5-2\.0\?");
        let data = [("db", "postgres://user:pw@host:5432/app")];
        assert_eq!(
            run(
                r#"{{ regexReplaceAll "^.*@([^:]+):(\\d+).*$" .db "${1} ${2}" }}"#,
                &data
            )
            .unwrap(),
            "host 5432"
        );
    }

    #[test]
    fn go_meanings() {
        // \d and \w are ASCII in Go.
        assert_eq!(
            ok(r#"{{ regexMatch "^\\d+$" "١٢٣" }} {{ regexMatch "^\\w+$" "é" }}"#),
            "false false"
        );
        assert_eq!(ok(r#"{{ regexFind "[\\d.]+" "v1.25x" }}"#), "1.25");
        assert_eq!(ok(r#"{{ regexFind "\\Q1.5\\E" "x15 1.5" }}"#), "1.5");
        assert_eq!(translate(r"[a&&b]"), r"[a\&&b]");
        assert_eq!(translate(r"[]a]"), r"[\]a]");
    }

    #[test]
    fn bad_patterns_are_errors_without_the_pattern() {
        let e = err(r#"{{ regexFind "(hunter2" "x" }}"#);
        assert!(
            e.ends_with(
                "error calling regexFind: the regular expression is not valid (Go RE2 syntax)"
            ),
            "{e}"
        );
        assert!(err(r#"{{ mustRegexMatch "(" "x" }}"#).contains("not valid"));
        assert!(
            err(r#"{{ regexFindAll "a{1000}{1000}" "x" -1 }}"#).contains("too large")
                || err(r#"{{ regexFindAll "a{1000}{1000}" "x" -1 }}"#).contains("not valid")
        );
    }
}
