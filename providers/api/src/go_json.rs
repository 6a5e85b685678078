//! JSON text byte for byte as Go's `encoding/json` writes it, so values lockstep builds (tags as a
//! JSON object, a webhook answer's object, a merged rewrite) and the data hash over them match
//! ESO's. serde_json differs in three ways that matter here: Go escapes U+2028/U+2029 always and
//! `<`, `>`, `&` unless HTML escaping is off, and writes float64 with `e+NN` exponents outside
//! [1e-6, 1e21).
use std::fmt::Write as _;

/// Appends `s` as a JSON string. `escape_html`: Go's default (`json.Marshal`); ESO turns it off
/// in some places (`SetEscapeHTML(false)`).
pub fn write_string(out: &mut String, s: &str, escape_html: bool) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' if escape_html => unicode_escape(out, c),
            '\u{2028}' | '\u{2029}' | '\0'..='\u{1f}' => unicode_escape(out, c),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn unicode_escape(out: &mut String, c: char) {
    let _ = write!(out, "\\u{:04x}", u32::from(c));
}

/// A float64 as Go encodes it: shortest digits, and the exponent form (`1e+21`, `1e-7`) only
/// outside [1e-6, 1e21).
pub fn float(x: f64) -> String {
    let abs = x.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let text = format!("{x:e}");
        // Go writes a sign on positive exponents.
        match text.split_once('e') {
            Some((mantissa, exp)) if !exp.starts_with('-') => format!("{mantissa}e+{exp}"),
            _ => text,
        }
    } else {
        format!("{x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(s: &str, html: bool) -> String {
        let mut out = String::new();
        write_string(&mut out, s, html);
        out
    }

    #[test]
    fn strings_escape_as_go_does() {
        assert_eq!(
            string("a<b>&\"\\\n\u{1}\u{2028}é", true),
            r#""a\u003cb\u003e\u0026\"\\\n\u0001\u2028é""#
        );
        assert_eq!(string("<&>\u{2029}", false), r#""<&>\u2029""#);
        assert_eq!(string("\u{8}\u{c}\r\t\0", true), r#""\b\f\r\t\u0000""#);
    }

    #[test]
    fn floats_format_as_go_does() {
        assert_eq!(float(1.0), "1");
        assert_eq!(float(0.5), "0.5");
        assert_eq!(float(1e21), "1e+21");
        assert_eq!(float(1e-7), "1e-7");
        assert_eq!(float(0.000001), "0.000001");
        assert_eq!(float(-2.5e22), "-2.5e+22");
        assert_eq!(float(0.0), "0");
    }
}
