//! The engine: Go text/template semantics, `missingkey=error`, binary values, errors.

use std::collections::BTreeMap;

use lockstep_provider_api::SecretValue;

use super::functions::test_support::{err, ok, run};
use super::{Delimiters, TemplateContext, TemplateErrorKind, render, render_with};

fn ctx(pairs: &[(&str, &[u8])]) -> TemplateContext {
    let map: BTreeMap<String, SecretValue> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), SecretValue::new(v.to_vec())))
        .collect();
    TemplateContext::from_map(&map)
}

#[test]
fn eso_style_templates() {
    let data = [
        ("username", "admin"),
        ("password", "hunter2"),
        ("tls.crt", "CERT"),
        ("a-b", "dash"),
    ];
    assert_eq!(
        run("{{ .username }}:{{ .password }}", &data).unwrap(),
        "admin:hunter2"
    );
    assert_eq!(
        run(r#"{{ index . "tls.crt" }} {{ index . "a-b" }}"#, &data).unwrap(),
        "CERT dash"
    );
    assert_eq!(
        run(r#"{{ .password | upper | printf "%s!" }}"#, &data).unwrap(),
        "HUNTER2!"
    );
    assert_eq!(
        run(
            r#"{{ if eq .username "admin" }}root{{ else }}user{{ end }}"#,
            &data
        )
        .unwrap(),
        "root"
    );
    assert_eq!(
        run(
            r#"{{ range $k, $v := . }}{{ $k }}={{ len $v }};{{ end }}"#,
            &data
        )
        .unwrap(),
        "a-b=4;password=7;tls.crt=4;username=5;"
    );
    assert_eq!(
        run(r#"{{ with .username }}[{{ . }}]{{ end }}"#, &data).unwrap(),
        "[admin]"
    );
    assert_eq!(
        run("{{ $u := .username }} \n {{- $u -}} \n", &data).unwrap(),
        "admin"
    );
    assert_eq!(
        run(
            r#"{{ define "x" }}<{{ . }}>{{ end }}{{ template "x" .username }}"#,
            &data
        )
        .unwrap(),
        "<admin>"
    );
}

#[test]
fn a_missing_key_is_an_error_naming_the_key_and_the_keys_there_are() {
    let e = run(
        "line one\n  {{ .pasword }}",
        &[("password", "hunter2"), ("user", "u")],
    )
    .unwrap_err();
    assert_eq!(e.kind(), TemplateErrorKind::Execute);
    assert_eq!(e.position(), Some((2, 6)));
    assert_eq!(
        e.to_string(),
        "unable to execute template \"t\" at line 2, column 6: map has no entry for key \"pasword\" \
         (the data has keys \"password\", \"user\"); fix the key, or test it first with \
         {{ if hasKey . \"pasword\" }}"
    );
    // Go's index ignores missingkey: on the data (a map of strings) a missing key is "".
    assert_eq!(
        run(r#"[{{ index . "nope" }}]"#, &[("a", "1")]).unwrap(),
        "[]"
    );
}

#[test]
fn parse_errors_have_a_position() {
    let e = err("ok\n{{ .a ");
    assert!(
        e.starts_with("unable to parse template \"t\" at line 2"),
        "{e}"
    );
    let e = run("{{ if .a }}x", &[("a", "1")]).unwrap_err();
    assert_eq!(e.kind(), TemplateErrorKind::Parse);
}

#[test]
fn blocks_must_be_balanced_as_in_go() {
    let e = err("a\n {{- if true }}x");
    assert_eq!(
        e,
        "unable to parse template \"t\" at line 2, column 2: unexpected EOF: this {{if}} is never closed with {{end}}"
    );
    assert!(err("a{{ end }}b").contains("at line 1, column 2: unexpected {{end}}"));
    assert!(err("{{ else }}").contains("unexpected {{else}}"));
    let e = err(r#"{{ define "x" }}{{ else }}{{ end }}"#);
    assert!(
        e.starts_with("unable to parse template \"t\" at line 1, column 20"),
        "{e}"
    );
    assert_eq!(
        ok(r#"{{ if true }}{{ "}}{{ end" }}{{/* {{ end }} */}}{{ else }}{{ end }}"#),
        "}}{{ end"
    );
    assert_eq!(
        ok("{{ range $i := until 2 }}{{ with $i }}{{ . }}{{ else }}z{{ end }}{{ end }}"),
        "z1"
    );
    assert_eq!(ok(r#"{{ if false }}{{ else if true }}b{{ end }}"#), "b");
}

#[test]
fn an_unknown_function_is_a_parse_error_even_in_a_branch_not_taken() {
    let e = run("{{ if false }}\n {{ env \"HOME\" }}{{ end }}", &[]).unwrap_err();
    assert_eq!(e.kind(), TemplateErrorKind::Parse);
    assert_eq!(e.position(), Some((2, 5)));
    assert!(
        e.to_string().contains("function \"env\" not defined"),
        "{e}"
    );
    for absent in ["expandenv", "getHostByName"] {
        assert!(err(&format!("{{{{ {absent} \"x\" }}}}")).contains("not defined"));
    }
}

#[test]
fn binary_values_flow_through_unchanged() {
    let binary: &[u8] = &[0x30, 0x82, 0xff, 0x00, 0xfe, b'a', 0xc3];
    let c = ctx(&[("pfx", binary), ("text", b"t")]);
    assert_eq!(render("k", "{{ .pfx }}", &c).unwrap().expose(), binary);
    let out = render("k", "<{{ .text }}{{ .pfx }}>", &c).unwrap();
    assert_eq!(out.expose(), [b"<t", binary, b">"].concat());
    assert_eq!(render("k", "{{ len .pfx }}", &c).unwrap().expose(), b"7");
    assert_eq!(
        render("k", "{{ .pfx | b64enc }}", &c).unwrap().expose(),
        b"MIL/AP5hww=="
    );
    assert_eq!(
        render("k", "{{ .pfx | b64enc | b64dec }}", &c)
            .unwrap()
            .expose(),
        binary
    );
    assert_eq!(
        render("k", "{{ eq .pfx .pfx }}", &c).unwrap().expose(),
        b"true"
    );
    assert_eq!(
        render("k", r#"{{ printf "%s" .pfx }}"#, &c)
            .unwrap()
            .expose(),
        binary
    );
}

#[test]
fn custom_delimiters() {
    let d = Delimiters {
        left: "<<".into(),
        right: ">>".into(),
    };
    let out = render_with("k", "<< .a >> {{ .a }}", &ctx(&[("a", b"v")]), &d).unwrap();
    assert_eq!(out.expose(), b"v {{ .a }}");
}

#[test]
fn fail_shows_only_literal_messages() {
    let e = err(r#"{{ fail "the password must be set" }}"#);
    assert!(
        e.ends_with("error calling fail: the password must be set"),
        "{e}"
    );
    let e = run(r#"{{ fail .p }}"#, &[("p", "x")])
        .unwrap_err()
        .to_string();
    assert!(e.contains("message built from data"), "{e}");
    let e = run(r#"{{ fail (printf "bad %s" .p) }}"#, &[("p", "hunter2")])
        .unwrap_err()
        .to_string();
    assert!(!e.contains("hunter2"), "{e}");
}

const MARKER: &str = "s3cr3t-MARKER-hunter2";

/// Every failing template run over a value holding the marker: no message shows it.
#[test]
fn no_error_shows_a_value() {
    let templates = [
        "{{ .missing }}",
        "{{ .v | b64dec }}",
        "{{ .v | b32dec }}",
        "{{ .v | hexdec }}",
        "{{ printf .l }}",
        "{{ printf (list .v) }}",
        "{{ len 5 }}{{ .v }}",
        "{{ range $a, $b := 5 }}{{ end }}",
        "{{ fail .v }}",
        "{{ fail (cat \"x\" .v) }}",
        "{{ substr 9 2 .v }}",
        "{{ index .v 99 }}",
        "{{ .v.field }}",
        "{{ ternary 1 2 .v }}",
        "{{ first .v }}",
        "{{ dig \"a\" \"b\" \"d\" (dict \"a\" .v) }}",
        "{{ call .v }}",
        "{{ range .v }}{{ end }}",
    ];
    for t in templates {
        let source = t.replace(".l", "(list .v)");
        let e = run(&source, &[("v", MARKER)]).expect_err(t);
        let shown = format!("{e} | {e:?}");
        assert!(!shown.contains("hunter2"), "{t}: {shown}");
    }
}

#[test]
fn context_debug_shows_keys_only() {
    let c = ctx(&[("user", MARKER.as_bytes())]);
    let shown = format!("{c:?}");
    assert!(
        shown.contains("user") && !shown.contains("hunter2"),
        "{shown}"
    );
}

#[test]
fn output_of_a_plain_template() {
    assert_eq!(ok("plain text"), "plain text");
    assert_eq!(ok(""), "");
}

#[test]
fn nested_maps_as_the_webhook_provider_passes_them() {
    let auth: BTreeMap<String, SecretValue> = [
        ("username".to_owned(), SecretValue::from("svc".to_owned())),
        (
            "password".to_owned(),
            SecretValue::from("hunter2-long".to_owned()),
        ),
    ]
    .into();
    let mut ctx = TemplateContext::new();
    ctx.insert_map("auth", &auth);
    // ESO's documented webhook header.
    let rendered = render(
        "headers.Authorization",
        r#"Basic {{ print .auth.username ":" .auth.password | b64enc }}"#,
        &ctx,
    )
    .unwrap();
    assert_eq!(rendered.expose(), b"Basic c3ZjOmh1bnRlcjItbG9uZw==");
    // A missing field names the template, and a nested value never reaches the message.
    let e = render("url", "{{ .auth.token }}", &ctx).unwrap_err();
    assert!(e.to_string().contains("url"), "{e}");
    let e = render("url", r#"{{ fail .auth.password }}"#, &ctx).unwrap_err();
    assert!(!e.to_string().contains("hunter2-long"), "{e}");
}
