//! `b64enc b64dec b32enc b32dec hexdec`, on bytes: a binary value encodes as its bytes and a
//! decoded binary value stays binary (see `template::bytes`).
//!
//! Like Go's standard decoders, line breaks (`\r`, `\n`) in the input are skipped and padding is
//! required. Sprig returns the decoder's error text as the *result* on bad input (so a Secret
//! silently gets "illegal base64 data at input byte 4"); lockstep stops with an error instead.

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use gotmpl::Value;

use super::Func;
use super::args::{Args, from_bytes, string};

pub(super) const FUNCTIONS: &[(&str, Func)] = &[
    ("b64enc", b64enc),
    ("b64dec", b64dec),
    ("b32enc", b32enc),
    ("b32dec", b32dec),
    ("hexdec", hexdec),
];

/// Go's `base64.StdEncoding`: padding required, non-zero trailing bits accepted.
const GO_STD_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical)
        .with_decode_allow_trailing_bits(true),
);

/// Go's decoders skip carriage returns and newlines anywhere in the input.
fn without_line_breaks(input: &[u8]) -> Vec<u8> {
    input
        .iter()
        .copied()
        .filter(|b| *b != b'\r' && *b != b'\n')
        .collect()
}

fn b64enc(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("b64enc", args).exactly(1)?;
    Ok(string(GO_STD_BASE64.encode(a.bytes(0)?)))
}

fn b64dec(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("b64dec", args).exactly(1)?;
    let input = without_line_breaks(&a.bytes(0)?);
    match GO_STD_BASE64.decode(&input) {
        Ok(decoded) => Ok(from_bytes(&decoded)),
        Err(error) => Err(a.error(format_args!(
            "the input is not valid standard base64 ({}); if it is URL-safe base64 \
             (with - and _), convert it first: replace \"-\" \"+\" | replace \"_\" \"/\"",
            base64_problem(&error)
        ))),
    }
}

/// What is wrong, by position only (the base64 crate's texts may quote the offending byte).
fn base64_problem(error: &base64::DecodeError) -> String {
    match error {
        base64::DecodeError::InvalidByte(offset, _) => {
            format!("illegal character at input byte {offset}")
        }
        base64::DecodeError::InvalidLength(length) => {
            format!("length {length} is not a multiple of 4 once padded")
        }
        base64::DecodeError::InvalidLastSymbol(offset, _) => {
            format!("illegal last character at input byte {offset}")
        }
        base64::DecodeError::InvalidPadding => "missing or misplaced = padding".to_owned(),
    }
}

fn b32enc(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("b32enc", args).exactly(1)?;
    Ok(string(data_encoding::BASE32.encode(&a.bytes(0)?)))
}

fn b32dec(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("b32dec", args).exactly(1)?;
    let input = without_line_breaks(&a.bytes(0)?);
    match data_encoding::BASE32.decode(&input) {
        Ok(decoded) => Ok(from_bytes(&decoded)),
        Err(error) => Err(a.error(format_args!(
            "the input is not valid standard base32 (problem at input byte {})",
            error.position
        ))),
    }
}

fn hexdec(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("hexdec", args).exactly(1)?;
    let input = a.bytes(0)?;
    if input.len() % 2 != 0 {
        return Err(a.error("the input has an odd number of hex digits"));
    }
    match base16ct::mixed::decode_vec(&input) {
        Ok(decoded) => Ok(from_bytes(&decoded)),
        Err(_) => Err(a.error("the input has a character that is not a hex digit")),
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{err, ok, run, run_bytes};

    #[test]
    fn base64_round_trip() {
        assert_eq!(ok(r#"{{ "hello" | b64enc }}"#), "aGVsbG8=");
        assert_eq!(ok(r#"{{ "aGVsbG8=" | b64dec }}"#), "hello");
        assert_eq!(ok(r#"{{ b64enc "" }}"#), "");
        // Go skips line breaks, as in wrapped base64.
        assert_eq!(ok("{{ \"aGVs\\nbG8=\" | b64dec }}"), "hello");
    }

    #[test]
    fn base64_of_binary_data_is_of_its_bytes() {
        // 0xff 0xfe 0x00 0x80: not UTF-8.
        let out = run_bytes(r#"{{ "//4AgA==" | b64dec }}"#, &[]).unwrap();
        assert_eq!(out, [0xff, 0xfe, 0x00, 0x80]);
        assert_eq!(ok(r#"{{ "//4AgA==" | b64dec | b64enc }}"#), "//4AgA==");
    }

    #[test]
    fn bad_base64_is_an_error_without_the_value() {
        let e = run("{{ .v | b64dec }}", &[("v", "hunter2!")])
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "unable to execute template \"t\" at line 1, column 9: error calling b64dec: the input \
             is not valid standard base64 (illegal character at input byte 7); if it is URL-safe \
             base64 (with - and _), convert it first: replace \"-\" \"+\" | replace \"_\" \"/\""
        );
        assert!(
            err(r#"{{ "aGVsbG8" | b64dec }}"#).contains("padding"),
            "no padding"
        );
        assert!(err(r#"{{ b64dec 5 }}"#).contains("expected string; got int"));
        assert!(
            err(r#"{{ b64dec "a" "b" }}"#)
                .contains("wrong number of args for b64dec: want 1 got 2")
        );
    }

    #[test]
    fn base32() {
        assert_eq!(ok(r#"{{ "hello" | b32enc }}"#), "NBSWY3DP");
        assert_eq!(ok(r#"{{ "NBSWY3DP" | b32dec }}"#), "hello");
        assert!(err(r#"{{ "NBSWY3D!" | b32dec }}"#).contains("not valid standard base32"));
    }

    #[test]
    fn hex() {
        assert_eq!(ok(r#"{{ "68656C6c6f" | hexdec }}"#), "hello");
        assert!(err(r#"{{ "686" | hexdec }}"#).contains("odd number of hex digits"));
        assert!(err(r#"{{ "zz" | hexdec }}"#).contains("not a hex digit"));
    }
}
