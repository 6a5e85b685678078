//! `default empty coalesce all any ternary`, with Sprig's notion of empty: nil, false, 0, "",
//! and empty lists and maps.

use gotmpl::Value;

use super::Func;
use super::args::{Args, is_empty};

pub(super) const FUNCTIONS: &[(&str, Func)] = &[
    ("default", default),
    ("empty", empty),
    ("coalesce", coalesce),
    ("all", all),
    ("any", any),
    ("ternary", ternary),
];

/// `default "fallback" .x`: `.x` unless it is empty (or not given).
fn default(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("default", args).at_least(1)?;
    match a.all().get(1) {
        Some(given) if !is_empty(given) => Ok(given.clone()),
        _ => Ok(a.get(0).clone()),
    }
}

fn empty(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("empty", args).exactly(1)?;
    Ok(Value::Bool(is_empty(a.get(0))))
}

fn coalesce(args: &[Value]) -> gotmpl::Result<Value> {
    Ok(args
        .iter()
        .find(|v| !is_empty(v))
        .cloned()
        .unwrap_or(Value::Nil))
}

fn all(args: &[Value]) -> gotmpl::Result<Value> {
    Ok(Value::Bool(args.iter().all(|v| !is_empty(v))))
}

fn any(args: &[Value]) -> gotmpl::Result<Value> {
    Ok(Value::Bool(args.iter().any(|v| !is_empty(v))))
}

/// `ternary "yes" "no" .cond`.
fn ternary(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("ternary", args).exactly(3)?;
    Ok(if a.bool(2)? { a.get(0) } else { a.get(1) }.clone())
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{err, ok, run};

    #[test]
    fn default_takes_the_value_unless_empty() {
        assert_eq!(
            run(r#"{{ .x | default "d" }}"#, &[("x", "v")]).unwrap(),
            "v"
        );
        assert_eq!(run(r#"{{ .x | default "d" }}"#, &[("x", "")]).unwrap(), "d");
        assert_eq!(ok(r#"{{ 0 | default 7 }}"#), "7");
        assert_eq!(ok(r#"{{ list | default "d" }}"#), "d");
        assert_eq!(ok(r#"{{ default "d" }}"#), "d");
        assert_eq!(ok(r#"{{ default "d" false }}"#), "d");
        assert_eq!(ok(r#"{{ default "d" nil }}"#), "d");
    }

    #[test]
    fn default_does_not_hide_a_missing_key() {
        // missingkey=error is evaluated before default runs, as in ESO.
        let e = run(r#"{{ .nope | default "d" }}"#, &[("x", "v")]).unwrap_err();
        assert!(
            e.to_string().contains(r#"map has no entry for key "nope""#),
            "{e}"
        );
        // The way to default a maybe-missing key:
        assert_eq!(
            run(r#"{{ get . "nope" | default "d" }}"#, &[("x", "v")]).unwrap(),
            "d"
        );
    }

    #[test]
    fn empty_coalesce_all_any_ternary() {
        assert_eq!(
            ok(r#"{{ empty "" }} {{ empty "a" }} {{ empty 0 }} {{ empty dict }}"#),
            "true false true true"
        );
        assert_eq!(ok(r#"{{ coalesce "" 0 "x" "y" }}"#), "x");
        assert_eq!(ok(r#"{{ coalesce "" 0 }}"#), "<no value>");
        assert_eq!(ok(r#"{{ all 1 "a" true }} {{ all 1 "" }}"#), "true false");
        assert_eq!(ok(r#"{{ any 0 "" "a" }} {{ any 0 "" }}"#), "true false");
        assert_eq!(
            ok(r#"{{ ternary "yes" "no" true }} {{ true | ternary "yes" "no" }}"#),
            "yes yes"
        );
        assert_eq!(ok(r#"{{ ternary "yes" "no" (eq 1 2) }}"#), "no");
        assert!(err(r#"{{ ternary "yes" "no" "true" }}"#).contains("expected bool; got string"));
    }
}
