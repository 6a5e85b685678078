//! Hashes, numbers and type inspection: `sha1sum sha256sum sha512sum adler32sum`, `atoi int
//! int64 float64`, `add add1 sub mul div mod max biggest min`, `typeOf kindOf kindIs typeIs
//! deepEqual`. Hashes are of the bytes (binary values included), as lowercase hex. Integer
//! arithmetic is Sprig's: arguments converted with `toInt64` (unparsable strings are 0);
//! division or modulo by zero is an error where Go panics.

use gotmpl::Value;
use sha1::Digest as _;

use super::Func;
use super::args::{Args, kind_of, string, to_int64, type_of};
use super::collections::deep_equal;

pub(super) const FUNCTIONS: &[(&str, Func)] = &[
    ("sha1sum", sha1sum),
    ("sha256sum", sha256sum),
    ("sha512sum", sha512sum),
    ("adler32sum", adler32sum),
    ("atoi", atoi),
    ("int", int),
    ("int64", int),
    ("float64", float64),
    ("add", add),
    ("add1", add1),
    ("sub", sub),
    ("mul", mul),
    ("div", div),
    ("mod", modulo),
    ("max", max),
    ("biggest", max),
    ("min", min),
    ("typeOf", type_of_fn),
    ("kindOf", kind_of_fn),
    ("kindIs", kind_is),
    ("typeIs", type_is),
    ("deepEqual", deep_equal_fn),
];

fn hex(bytes: &[u8]) -> Value {
    string(base16ct::lower::encode_string(bytes))
}

fn sha1sum(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("sha1sum", args).exactly(1)?;
    Ok(hex(&sha1::Sha1::digest(a.bytes(0)?)))
}

fn sha256sum(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("sha256sum", args).exactly(1)?;
    Ok(hex(&sha2::Sha256::digest(a.bytes(0)?)))
}

fn sha512sum(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("sha512sum", args).exactly(1)?;
    Ok(hex(&sha2::Sha512::digest(a.bytes(0)?)))
}

/// Adler-32 (RFC 1950) as a decimal number, as Sprig prints it.
fn adler32sum(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("adler32sum", args).exactly(1)?;
    let (mut s1, mut s2) = (1u32, 0u32);
    for byte in a.bytes(0)? {
        s1 = (s1 + u32::from(byte)) % 65521;
        s2 = (s2 + s1) % 65521;
    }
    Ok(string(((s2 << 16) | s1).to_string()))
}

/// Go's `strconv.Atoi`, errors ignored (0), as Sprig.
fn atoi(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("atoi", args).exactly(1)?;
    Ok(Value::Int(a.string(0)?.parse().unwrap_or(0)))
}

fn int(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("int", args).exactly(1)?;
    Ok(Value::Int(to_int64(a.get(0))))
}

fn float64(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("float64", args).exactly(1)?;
    let f = match a.get(0) {
        Value::Int(n) => *n as f64,
        Value::Uint(n) => *n as f64,
        Value::Float(f) => *f,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::String(s) => s.trim().parse().unwrap_or(0.0),
        _ => 0.0,
    };
    Ok(Value::Float(f))
}

fn ints(args: &[Value]) -> impl Iterator<Item = i64> + '_ {
    args.iter().map(to_int64)
}

fn add(args: &[Value]) -> gotmpl::Result<Value> {
    Ok(Value::Int(ints(args).fold(0i64, i64::wrapping_add)))
}

fn add1(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("add1", args).exactly(1)?;
    Ok(Value::Int(to_int64(a.get(0)).wrapping_add(1)))
}

fn sub(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("sub", args).exactly(2)?;
    Ok(Value::Int(
        to_int64(a.get(0)).wrapping_sub(to_int64(a.get(1))),
    ))
}

fn mul(args: &[Value]) -> gotmpl::Result<Value> {
    Args::new("mul", args).at_least(1)?;
    Ok(Value::Int(ints(args).fold(1i64, i64::wrapping_mul)))
}

fn div(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("div", args).exactly(2)?;
    let (x, y) = (to_int64(a.get(0)), to_int64(a.get(1)));
    x.checked_div(y)
        .map(Value::Int)
        .ok_or_else(|| a.error("integer divide by zero"))
}

fn modulo(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("mod", args).exactly(2)?;
    let (x, y) = (to_int64(a.get(0)), to_int64(a.get(1)));
    x.checked_rem(y)
        .map(Value::Int)
        .ok_or_else(|| a.error("integer divide by zero"))
}

fn max(args: &[Value]) -> gotmpl::Result<Value> {
    Args::new("max", args).at_least(1)?;
    Ok(Value::Int(ints(args).max().unwrap_or(0)))
}

fn min(args: &[Value]) -> gotmpl::Result<Value> {
    Args::new("min", args).at_least(1)?;
    Ok(Value::Int(ints(args).min().unwrap_or(0)))
}

fn type_of_fn(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("typeOf", args).exactly(1)?;
    Ok(string(type_of(a.get(0))))
}

fn kind_of_fn(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("kindOf", args).exactly(1)?;
    Ok(string(kind_of(a.get(0))))
}

fn kind_is(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("kindIs", args).exactly(2)?;
    Ok(Value::Bool(*a.string(0)? == *kind_of(a.get(1))))
}

fn type_is(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("typeIs", args).exactly(2)?;
    Ok(Value::Bool(*a.string(0)? == *type_of(a.get(1))))
}

fn deep_equal_fn(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("deepEqual", args).exactly(2)?;
    Ok(Value::Bool(deep_equal(a.get(0), a.get(1))))
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{err, ok, run_bytes};

    #[test]
    fn hashes() {
        assert_eq!(
            ok(r#"{{ sha1sum "abc" }}"#),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            ok(r#"{{ sha256sum "abc" }}"#),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(ok(r#"{{ sha512sum "abc" }}"#).starts_with("ddaf35a193617aba"));
        assert_eq!(ok(r#"{{ adler32sum "Wikipedia" }}"#), "300286872");
        // Of the bytes of a binary value.
        let binary = run_bytes(r#"{{ "//4=" | b64dec | sha256sum }}"#, &[]).unwrap();
        let expected =
            base16ct::lower::encode_string(&<sha2::Sha256 as sha2::Digest>::digest([0xff, 0xfe]));
        assert_eq!(String::from_utf8(binary).unwrap(), expected);
    }

    #[test]
    fn numbers() {
        assert_eq!(
            ok(
                r#"{{ atoi "42" }} {{ atoi "x" }}{{ atoi "0x10" }} {{ int "7" }} {{ int 3.9 }} {{ float64 "1.5" }}"#
            ),
            "42 00 7 3 1.5"
        );
        assert_eq!(
            ok(
                r#"{{ add 1 2 "3" }} {{ add1 4 }} {{ sub 5 7 }} {{ mul 2 3 4 }} {{ div 7 2 }} {{ mod 7 2 }}"#
            ),
            "6 5 -2 24 3 1"
        );
        assert_eq!(
            ok(r#"{{ max 1 9 3 }} {{ min 4 2 8 }} {{ biggest 1 2 }}"#),
            "9 2 2"
        );
        assert!(err(r#"{{ div 1 0 }}"#).contains("error calling div: integer divide by zero"));
    }

    #[test]
    fn types() {
        assert_eq!(
            ok(
                r#"{{ typeOf "a" }} {{ typeOf 1 }} {{ typeOf (list) }} {{ kindOf (dict) }} {{ kindIs "string" "a" }}"#
            ),
            "string int []interface {} map true"
        );
        assert_eq!(
            ok(
                r#"{{ typeIs "int" 1 }} {{ deepEqual (list 1 (dict "a" 2)) (list 1 (dict "a" 2)) }} {{ deepEqual 1 1.0 }}"#
            ),
            "true true false"
        );
    }
}
