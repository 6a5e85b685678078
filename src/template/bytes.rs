//! Byte strings inside UTF-8 template strings.
//!
//! Go templates work on Go strings, which are byte strings: ESO hands a template the fetched
//! bytes unchanged, so a binary value (a `.pfx` keystore, a DER key) flows through `{{ .x }}`,
//! `b64enc` and `pkcs12cert` as it is. gotmpl's `Value::String` is UTF-8 only, so lockstep
//! carries bytes in it with a reversible escape, in the spirit of Python's `surrogateescape`:
//!
//! - valid UTF-8 stays as it is, so text values look and behave like ordinary strings;
//! - each byte of an invalid UTF-8 sequence becomes one character of a reserved range of the
//!   Supplementary Private Use Area-B, `U+10FE80..=U+10FEFF` (byte `0x80..=0xFF`);
//! - a character of that range that really occurs in the input is escaped byte by byte too,
//!   so [`decode`] is the exact inverse of [`encode`] for every byte sequence.
//!
//! Functions that work on bytes (`b64enc`, the hashes, `pkcs12*`, `len`) call [`decode`] on
//! their argument and [`encode`] on their binary result; the rendered text is decoded once at
//! the end. Equal byte strings have equal encodings, so `eq`, concatenation and `printf "%s"`
//! behave as in Go.

/// First character of the escape range; byte `b` (>= 0x80) is `ESCAPE_BASE + b`.
const ESCAPE_BASE: u32 = 0x10_FE00;
const ESCAPE_FIRST: u32 = ESCAPE_BASE + 0x80;
const ESCAPE_LAST: u32 = ESCAPE_BASE + 0xFF;

fn is_escape(c: char) -> bool {
    (ESCAPE_FIRST..=ESCAPE_LAST).contains(&u32::from(c))
}

fn push_escaped_byte(out: &mut String, byte: u8) {
    if byte.is_ascii() {
        out.push(char::from(byte));
    } else if let Some(c) = char::from_u32(ESCAPE_BASE + u32::from(byte)) {
        out.push(c);
    }
}

/// The byte a character of the escape range stands for.
pub fn escaped_byte(c: char) -> Option<u8> {
    is_escape(c).then(|| (u32::from(c) - ESCAPE_BASE) as u8)
}

/// Bytes to a template string (see the module documentation).
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if is_escape(c) {
                let mut buf = [0u8; 4];
                for &byte in c.encode_utf8(&mut buf).as_bytes() {
                    push_escaped_byte(&mut out, byte);
                }
            } else {
                out.push(c);
            }
        }
        for &byte in chunk.invalid() {
            push_escaped_byte(&mut out, byte);
        }
    }
    out
}

/// A template string back to the bytes it stands for.
pub fn decode(text: &str) -> Vec<u8> {
    if !text.chars().any(is_escape) {
        return text.as_bytes().to_vec();
    }
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        if is_escape(c) {
            // In range, so the difference is 0x80..=0xFF.
            out.push((u32::from(c) - ESCAPE_BASE) as u8);
        } else {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
    out
}

/// Whether a template string stands for bytes that are not UTF-8 text.
pub fn is_binary(text: &str) -> bool {
    text.chars().any(is_escape)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_unchanged() {
        for text in ["", "hunter2", "päss wört ✓", "line\nbreak\0nul", "😀"] {
            assert_eq!(encode(text.as_bytes()), text);
            assert_eq!(decode(text), text.as_bytes());
            assert!(!is_binary(text));
        }
    }

    #[test]
    fn every_byte_sequence_round_trips() {
        let mut all: Vec<u8> = (0..=255u8).collect();
        all.extend_from_slice(&[0xF4, 0x8F, 0xBA, 0x80]); // U+10FE80 itself, as real text
        all.extend_from_slice("U+10FEFF: \u{10FEFF}".as_bytes());
        all.extend_from_slice(&[0xE2, 0x82]); // a truncated sequence at the end
        let encoded = encode(&all);
        assert!(is_binary(&encoded));
        assert_eq!(decode(&encoded), all);
    }

    #[test]
    fn a_real_escape_range_character_is_kept_exactly() {
        let text = "a\u{10FE90}b";
        let encoded = encode(text.as_bytes());
        assert_ne!(encoded, text, "a reserved character must be escaped");
        assert_eq!(decode(&encoded), text.as_bytes());
    }

    #[test]
    fn concatenation_commutes_with_encoding() {
        let a = [0x30, 0x82, 0x01, 0xff];
        let b = [0xfe, b'x'];
        let joined = format!("{}{}", encode(&a), encode(&b));
        assert_eq!(decode(&joined), [&a[..], &b[..]].concat());
    }
}
