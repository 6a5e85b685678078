//! String functions (Sprig's "Strings" group). Go strings are bytes: `trunc` and `substr` cut
//! at byte offsets, as Sprig does, but never inside a UTF-8 character (Go would produce an
//! invalid sequence there; lockstep moves the cut to the character's start instead).

use gotmpl::Value;

use super::Func;
use super::args::{Args, string, strval};

pub(super) const FUNCTIONS: &[(&str, Func)] = &[
    ("upper", upper),
    ("lower", lower),
    ("trim", trim),
    ("trimAll", trim_all),
    ("trimall", trim_all),
    ("trimPrefix", trim_prefix),
    ("trimSuffix", trim_suffix),
    ("contains", contains),
    ("hasPrefix", has_prefix),
    ("hasSuffix", has_suffix),
    ("replace", replace),
    ("repeat", repeat),
    ("quote", quote),
    ("squote", squote),
    ("cat", cat),
    ("indent", indent),
    ("nindent", nindent),
    ("nospace", nospace),
    ("trunc", trunc),
    ("substr", substr),
    ("toString", to_string),
];

fn upper(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("upper", args).exactly(1)?;
    Ok(string(a.string(0)?.to_uppercase()))
}

fn lower(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("lower", args).exactly(1)?;
    Ok(string(a.string(0)?.to_lowercase()))
}

/// Go's `strings.TrimSpace`: Unicode white space.
fn trim(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("trim", args).exactly(1)?;
    Ok(string(a.string(0)?.trim()))
}

/// `trimAll "$" "$5.00$"`: strips any of the characters of the first argument from both ends.
fn trim_all(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("trimAll", args).exactly(2)?;
    let cutset = a.string(0)?;
    Ok(string(a.string(1)?.trim_matches(|c| cutset.contains(c))))
}

fn trim_prefix(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("trimPrefix", args).exactly(2)?;
    let (prefix, s) = (a.string(0)?, a.string(1)?);
    Ok(string(s.strip_prefix(&*prefix).unwrap_or(&s)))
}

fn trim_suffix(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("trimSuffix", args).exactly(2)?;
    let (suffix, s) = (a.string(0)?, a.string(1)?);
    Ok(string(s.strip_suffix(&*suffix).unwrap_or(&s)))
}

fn contains(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("contains", args).exactly(2)?;
    Ok(Value::Bool(a.string(1)?.contains(&*a.string(0)?)))
}

fn has_prefix(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("hasPrefix", args).exactly(2)?;
    Ok(Value::Bool(a.string(1)?.starts_with(&*a.string(0)?)))
}

fn has_suffix(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("hasSuffix", args).exactly(2)?;
    Ok(Value::Bool(a.string(1)?.ends_with(&*a.string(0)?)))
}

/// `replace "old" "new" .s`, every occurrence. Go replaces an empty `old` between every rune.
fn replace(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("replace", args).exactly(3)?;
    let (old, new, s) = (a.string(0)?, a.string(1)?, a.string(2)?);
    if old.is_empty() {
        let mut out = String::with_capacity(s.len() + new.len() * (s.len() + 1));
        out.push_str(&new);
        for c in s.chars() {
            out.push(c);
            out.push_str(&new);
        }
        return Ok(string(out));
    }
    Ok(string(s.replace(&*old, &new)))
}

/// Output larger than this is refused: templates come from users and end up in a Secret, which
/// holds at most 1 MiB.
pub(super) const MAX_OUTPUT_BYTES: usize = 4 << 20;

fn repeat(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("repeat", args).exactly(2)?;
    let (count, s) = (a.int(0)?, a.string(1)?);
    let count = usize::try_from(count).map_err(|_| a.error("negative repeat count"))?;
    if s.len().saturating_mul(count) > MAX_OUTPUT_BYTES {
        return Err(a.error(format_args!(
            "the result would exceed {MAX_OUTPUT_BYTES} bytes"
        )));
    }
    Ok(string(s.repeat(count)))
}

/// Go's `%q`: double-quoted with Go escapes.
pub(super) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c => match crate::template::bytes::escaped_byte(c) {
                // A raw byte of a binary value: Go prints invalid bytes as \xNN.
                Some(byte) => out.push_str(&format!("\\x{byte:02x}")),
                None if c.is_control() => {
                    let n = u32::from(c);
                    if n < 0x80 {
                        out.push_str(&format!("\\x{n:02x}"));
                    } else if n < 0x10000 {
                        out.push_str(&format!("\\u{n:04x}"));
                    } else {
                        out.push_str(&format!("\\U{n:08x}"));
                    }
                }
                None => out.push(c),
            },
        }
    }
    out.push('"');
    out
}

/// `quote .a .b`: each non-nil argument double-quoted, joined by spaces.
fn quote(args: &[Value]) -> gotmpl::Result<Value> {
    let quoted: Vec<String> = args
        .iter()
        .filter(|v| !matches!(v, Value::Nil))
        .map(|v| go_quote(&strval(v)))
        .collect();
    Ok(string(quoted.join(" ")))
}

/// `squote .a .b`: each non-nil argument in single quotes, unescaped.
fn squote(args: &[Value]) -> gotmpl::Result<Value> {
    let quoted: Vec<String> = args
        .iter()
        .filter(|v| !matches!(v, Value::Nil))
        .map(|v| format!("'{}'", strval(v)))
        .collect();
    Ok(string(quoted.join(" ")))
}

/// `cat .a .b`: non-nil arguments joined by spaces.
fn cat(args: &[Value]) -> gotmpl::Result<Value> {
    let parts: Vec<String> = args
        .iter()
        .filter(|v| !matches!(v, Value::Nil))
        .map(strval)
        .collect();
    Ok(string(parts.join(" ")))
}

fn indent_by(a: &Args<'_>) -> gotmpl::Result<String> {
    let spaces = usize::try_from(a.int(0)?).unwrap_or(0);
    let s = a.string(1)?;
    let pad = " ".repeat(spaces.min(MAX_OUTPUT_BYTES));
    Ok(format!("{pad}{}", s.replace('\n', &format!("\n{pad}"))))
}

/// `indent 4 .s`: every line prefixed with that many spaces.
fn indent(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("indent", args).exactly(2)?;
    Ok(string(indent_by(&a)?))
}

/// `nindent 4 .s`: a newline, then `indent`.
fn nindent(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("nindent", args).exactly(2)?;
    Ok(string(format!("\n{}", indent_by(&a)?)))
}

/// All Unicode white space removed.
fn nospace(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("nospace", args).exactly(1)?;
    Ok(string(
        a.string(0)?
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>(),
    ))
}

/// The byte offset nearest `at` (clamped) that does not split a character, moving left.
fn char_floor(s: &str, at: usize) -> usize {
    let mut at = at.min(s.len());
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// `trunc 5 .s` keeps the first 5 bytes; `trunc -5 .s` the last 5.
fn trunc(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("trunc", args).exactly(2)?;
    let (c, s) = (a.int(0)?, a.string(1)?);
    let len = s.len() as i64;
    let out = if c < 0 && len + c > 0 {
        let start = char_floor(&s, usize::try_from(len + c).unwrap_or(0));
        &s[start..]
    } else if c >= 0 && len > c {
        &s[..char_floor(&s, usize::try_from(c).unwrap_or(0))]
    } else {
        &s[..]
    };
    Ok(string(out))
}

/// `substr start end .s`, byte offsets; a negative start means 0, a negative or too large end
/// means the end. Go panics on start > end or start past the end; lockstep returns an error.
fn substr(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("substr", args).exactly(3)?;
    let (start, end, s) = (a.int(0)?, a.int(1)?, a.string(2)?);
    let len = s.len() as i64;
    let start = start.max(0);
    let end = if end < 0 || end > len { len } else { end };
    if start > end {
        return Err(a.error(format_args!(
            "start {start} is after end {end} (the string has {len} bytes)"
        )));
    }
    let (start, end) = (start as usize, end as usize);
    Ok(string(&s[char_floor(&s, start)..char_floor(&s, end)]))
}

/// Sprig's `toString`: a string as is, anything else formatted as Go's `%v`.
fn to_string(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("toString", args).exactly(1)?;
    Ok(string(strval(a.get(0))))
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{err, ok, run};

    #[test]
    fn case_and_trim() {
        assert_eq!(ok(r#"{{ "aBc" | upper }} {{ "AbC" | lower }}"#), "ABC abc");
        assert_eq!(ok(r#"[{{ "  x \n" | trim }}]"#), "[x]");
        assert_eq!(ok(r#"{{ trimAll "$" "$5.00$" }}"#), "5.00");
        assert_eq!(
            ok(r#"{{ "foo.txt" | trimSuffix ".txt" }} {{ "v1.2" | trimPrefix "v" }}"#),
            "foo 1.2"
        );
    }

    #[test]
    fn predicates() {
        assert_eq!(
            ok(
                r#"{{ contains "ell" "hello" }} {{ hasPrefix "he" "hello" }} {{ hasSuffix "x" "hello" }}"#
            ),
            "true true false"
        );
    }

    #[test]
    fn replace_repeat_quote_cat() {
        assert_eq!(ok(r#"{{ "a-b-c" | replace "-" "_" }}"#), "a_b_c");
        assert_eq!(ok(r#"{{ "ab" | replace "" "." }}"#), ".a.b.");
        assert_eq!(ok(r#"{{ repeat 3 "ab" }}"#), "ababab");
        assert!(err(r#"{{ repeat 100000000 "ab" }}"#).contains("would exceed"));
        assert_eq!(ok(r#"{{ quote "a\"b" 1 nil }}"#), r#""a\"b" "1""#);
        assert_eq!(ok(r#"{{ squote "a" 2 }}"#), "'a' '2'");
        assert_eq!(ok(r#"{{ cat "a" 1 nil "b" }}"#), "a 1 b");
    }

    #[test]
    fn indentation() {
        assert_eq!(ok(r#"{{ "a\nb" | indent 2 }}"#), "  a\n  b");
        assert_eq!(ok(r#"x:{{ "a\nb" | nindent 2 }}"#), "x:\n  a\n  b");
        assert_eq!(ok(r#"{{ " a b\tc " | nospace }}"#), "abc");
    }

    #[test]
    fn byte_offsets() {
        assert_eq!(
            ok(r#"{{ trunc 3 "hello" }} {{ trunc -3 "hello" }} {{ trunc 9 "hi" }}"#),
            "hel llo hi"
        );
        assert_eq!(
            ok(r#"{{ substr 1 3 "hello" }} {{ substr -1 2 "hello" }} {{ substr 2 99 "hello" }}"#),
            "el he llo"
        );
        // "é" is two bytes; a cut inside it moves to its start.
        assert_eq!(ok(r#"{{ trunc 2 "aé" }}"#), "a");
        assert!(err(r#"{{ substr 4 2 "hello" }}"#).contains("start 4 is after end 2"));
    }

    #[test]
    fn to_string_formats_like_go() {
        assert_eq!(
            ok(r#"{{ toString 5 }} {{ toString true }} {{ toString (list 1 "a") }}"#),
            "5 true [1 a]"
        );
        assert_eq!(run(r#"{{ .x | toString }}"#, &[("x", "v")]).unwrap(), "v");
    }

    #[test]
    fn wrong_types_are_named() {
        assert!(
            err(r#"{{ upper 5 }}"#).contains(
                "error calling upper: wrong type for argument 1; expected string; got int"
            )
        );
        assert!(err(r#"{{ indent "2" "x" }}"#).contains("expected int; got string"));
    }
}
