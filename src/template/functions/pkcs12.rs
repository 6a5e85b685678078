//! ESO's PKCS#12 helpers on `p12-keystore` (pure Rust; no OpenSSL):
//!
//! - `pkcs12key`/`pkcs12keyPass "pw"`: the archive's private key as PKCS#8 PEM;
//! - `pkcs12cert`/`pkcs12certPass "pw"`: the leaf certificate then the CA certificates as PEM,
//!   ordered leaf -> root when the chain can be ordered (else in archive order, as ESO);
//! - `pemToPkcs12 .crt .key` (`Pass` adds a password), `fullPemToPkcs12` (all certificates of
//!   the first argument, leaf first), `pemTruststoreToPKCS12` (certificates only): a new archive,
//!   **base64-encoded** as in ESO, written like go-pkcs12's `Modern` encoder (PBES2 AES-256-CBC,
//!   PBKDF2-HMAC-SHA-256 and an HMAC-SHA-256 MAC, 2048 iterations).
//!
//! The archive argument is the raw archive bytes: a binary value from the data (or
//! `b64dec`'s result) flows in unchanged (see `template::bytes`). Wrong passwords and damaged
//! archives are errors that say which, never showing the password or the archive.

use base64::Engine as _;
use gotmpl::Value;
use p12_keystore::{
    Certificate, EncryptionAlgorithm, KeyStore, KeyStoreEntry, MacAlgorithm, Pkcs12Archive,
    PrivateKey, PrivateKeyChain,
};

use super::Func;
use super::args::{Args, string};
use super::pem::{ChainCert, encode, order_chain, parse_certs};

pub(super) const FUNCTIONS: &[(&str, Func)] = &[
    ("pkcs12key", pkcs12key),
    ("pkcs12keyPass", pkcs12key_pass),
    ("pkcs12cert", pkcs12cert),
    ("pkcs12certPass", pkcs12cert_pass),
    ("pemToPkcs12", pem_to_pkcs12),
    ("pemToPkcs12Pass", pem_to_pkcs12_pass),
    ("fullPemToPkcs12", full_pem_to_pkcs12),
    ("fullPemToPkcs12Pass", full_pem_to_pkcs12_pass),
    ("pemTruststoreToPKCS12", pem_truststore_to_pkcs12),
    ("pemTruststoreToPKCS12Pass", pem_truststore_to_pkcs12_pass),
];

/// go-pkcs12's `Modern` work factor.
const ITERATIONS: u32 = 2048;

fn open(a: &Args<'_>, archive: &[u8], password: &str) -> gotmpl::Result<Pkcs12Archive> {
    Pkcs12Archive::from_pkcs12(archive, password).map_err(|e| {
        a.error(match e {
            p12_keystore::error::Error::MacError(_) => {
                "the PKCS#12 archive's integrity check failed: the password is wrong (or the \
                 archive is damaged)"
            }
            p12_keystore::error::Error::DerError(_)
            | p12_keystore::error::Error::InvalidVersion => {
                "the input is not a PKCS#12 archive (if it is base64-encoded, decode it first \
                 with b64dec)"
            }
            p12_keystore::error::Error::UnsupportedEncryptionScheme
            | p12_keystore::error::Error::UnsupportedMacAlgorithm
            | p12_keystore::error::Error::UnsupportedContentType => {
                "the PKCS#12 archive uses an unsupported algorithm"
            }
            _ => "the PKCS#12 archive cannot be decoded (wrong password or damaged archive)",
        })
    })
}

fn key_with(name: &'static str, args: &[Value], with_password: bool) -> gotmpl::Result<Value> {
    let a = Args::new(name, args).exactly(if with_password { 2 } else { 1 })?;
    let password = if with_password {
        a.string(0)?.to_string()
    } else {
        String::new()
    };
    let archive = open(&a, &a.bytes(a.len() - 1)?, &password)?;
    match archive.keys.as_slice() {
        [one] => Ok(string(encode("PRIVATE KEY", one.key.as_der()))),
        [] => Err(a.error("the PKCS#12 archive has no private key")),
        more => Err(a.error(format_args!(
            "the PKCS#12 archive has {} private keys; expected exactly one",
            more.len()
        ))),
    }
}

fn pkcs12key(args: &[Value]) -> gotmpl::Result<Value> {
    key_with("pkcs12key", args, false)
}

fn pkcs12key_pass(args: &[Value]) -> gotmpl::Result<Value> {
    key_with("pkcs12keyPass", args, true)
}

fn cert_with(name: &'static str, args: &[Value], with_password: bool) -> gotmpl::Result<Value> {
    let a = Args::new(name, args).exactly(if with_password { 2 } else { 1 })?;
    let password = if with_password {
        a.string(0)?.to_string()
    } else {
        String::new()
    };
    let archive = open(&a, &a.bytes(a.len() - 1)?, &password)?;
    // The leaf is the certificate that shares the key's local key id (go-pkcs12's rule).
    let key_id = archive
        .keys
        .first()
        .and_then(|k| k.local_key_id.as_ref())
        .map(|id| id.0.clone());
    let leaf = archive
        .certs
        .iter()
        .position(|c| c.local_key_id.is_some() && c.local_key_id == key_id)
        .or_else(|| (archive.certs.len() == 1).then_some(0))
        .ok_or_else(|| a.error("the PKCS#12 archive has no certificate for its key"))?;
    let mut ders: Vec<&[u8]> = vec![archive.certs[leaf].cert.as_der()];
    ders.extend(
        archive
            .certs
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != leaf)
            .map(|(_, c)| c.cert.as_der()),
    );
    let in_archive_order: String = ders.iter().map(|der| encode("CERTIFICATE", der)).collect();
    let ordered = ders
        .iter()
        .map(|der| ChainCert::parse(der))
        .collect::<Option<Vec<_>>>()
        .and_then(|certs| order_chain(certs).ok());
    Ok(string(match ordered {
        Some(chain) => chain
            .iter()
            .map(|c| encode("CERTIFICATE", &c.der))
            .collect(),
        None => in_archive_order,
    }))
}

fn pkcs12cert(args: &[Value]) -> gotmpl::Result<Value> {
    cert_with("pkcs12cert", args, false)
}

fn pkcs12cert_pass(args: &[Value]) -> gotmpl::Result<Value> {
    cert_with("pkcs12certPass", args, true)
}

/// A PEM private key (PKCS#8, PKCS#1 RSA or SEC1 EC) as PKCS#8 DER.
fn pkcs8_der(a: &Args<'_>, key_pem: &str) -> gotmpl::Result<Vec<u8>> {
    let block =
        pem::parse(key_pem.as_bytes()).map_err(|_| a.error("the key is not PEM-encoded"))?;
    let der = block.contents();
    let pkcs8 = match block.tag() {
        "RSA PRIVATE KEY" => der::rsa_to_pkcs8(der),
        "EC PRIVATE KEY" => der::ec_to_pkcs8(der),
        _ => Some(der.to_vec()),
    };
    pkcs8
        .filter(|d| PrivateKey::from_der(d).is_ok())
        .ok_or_else(|| a.error("unable to parse private key type"))
}

fn certificates(a: &Args<'_>, input: &str) -> gotmpl::Result<Vec<Certificate>> {
    let certs = parse_certs(input.as_bytes()).map_err(|e| a.error(e))?;
    if certs.is_empty() {
        return Err(a.error("the certificate input has no PEM certificate"));
    }
    certs
        .iter()
        .map(|c| {
            Certificate::from_der(&c.der).map_err(|_| a.error("a certificate cannot be parsed"))
        })
        .collect()
}

fn write(a: &Args<'_>, store: &KeyStore, password: &str) -> gotmpl::Result<Value> {
    let pfx = store
        .writer(password)
        .encryption_algorithm(EncryptionAlgorithm::PbeWithHmacSha256AndAes256)
        .encryption_iterations(ITERATIONS)
        .mac_algorithm(MacAlgorithm::HmacSha256)
        .mac_iterations(ITERATIONS)
        .write()
        .map_err(|_| a.error("the PKCS#12 archive cannot be written"))?;
    Ok(string(
        base64::engine::general_purpose::STANDARD.encode(pfx),
    ))
}

/// `pemToPkcs12 .crt .key` takes the first certificate only; `full` takes them all.
fn to_pkcs12(
    name: &'static str,
    args: &[Value],
    full: bool,
    with_password: bool,
) -> gotmpl::Result<Value> {
    let a = Args::new(name, args).exactly(if with_password { 3 } else { 2 })?;
    let (cert_pem, key_pem) = (a.string(0)?, a.string(1)?);
    let password = if with_password {
        a.string(2)?.to_string()
    } else {
        String::new()
    };
    let mut certs = certificates(&a, &cert_pem)?;
    if !full {
        certs.truncate(1);
    }
    let key = PrivateKey::from_der(&pkcs8_der(&a, &key_pem)?)
        .map_err(|_| a.error("unable to parse private key type"))?;
    let mut store = KeyStore::new();
    let chain = PrivateKeyChain::new(b"1".to_vec(), key, certs);
    store.add_entry("1", KeyStoreEntry::PrivateKeyChain(chain));
    write(&a, &store, &password)
}

fn pem_to_pkcs12(args: &[Value]) -> gotmpl::Result<Value> {
    to_pkcs12("pemToPkcs12", args, false, false)
}

fn pem_to_pkcs12_pass(args: &[Value]) -> gotmpl::Result<Value> {
    to_pkcs12("pemToPkcs12Pass", args, false, true)
}

fn full_pem_to_pkcs12(args: &[Value]) -> gotmpl::Result<Value> {
    to_pkcs12("fullPemToPkcs12", args, true, false)
}

fn full_pem_to_pkcs12_pass(args: &[Value]) -> gotmpl::Result<Value> {
    to_pkcs12("fullPemToPkcs12Pass", args, true, true)
}

fn truststore(name: &'static str, args: &[Value], with_password: bool) -> gotmpl::Result<Value> {
    let a = Args::new(name, args).exactly(if with_password { 2 } else { 1 })?;
    let password = if with_password {
        a.string(1)?.to_string()
    } else {
        String::new()
    };
    let mut store = KeyStore::new();
    for (i, cert) in certificates(&a, &a.string(0)?)?.into_iter().enumerate() {
        store.add_entry(&i.to_string(), KeyStoreEntry::Certificate(cert));
    }
    write(&a, &store, &password)
}

fn pem_truststore_to_pkcs12(args: &[Value]) -> gotmpl::Result<Value> {
    truststore("pemTruststoreToPKCS12", args, false)
}

fn pem_truststore_to_pkcs12_pass(args: &[Value]) -> gotmpl::Result<Value> {
    truststore("pemTruststoreToPKCS12Pass", args, true)
}

/// Just enough DER to wrap PKCS#1 and SEC1 keys in PKCS#8 (RFC 5208, RFC 5915).
mod der {
    const RSA_ENCRYPTION: &[u8] = &[
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
    ];
    const EC_PUBLIC_KEY: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];

    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = content.len();
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes: Vec<u8> = len
                .to_be_bytes()
                .into_iter()
                .skip_while(|b| *b == 0)
                .collect();
            out.push(0x80 | bytes.len() as u8);
            out.extend(bytes);
        }
        out.extend_from_slice(content);
        out
    }

    /// (tag, content, rest) of the first element of `input`.
    fn read(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let (&tag, rest) = input.split_first()?;
        let (&first, rest) = rest.split_first()?;
        let (len, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return None;
            }
            let len = rest[..n]
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            (len, &rest[n..])
        };
        (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
    }

    fn pkcs8(algorithm: &[u8], key: &[u8]) -> Vec<u8> {
        let version = [0x02, 0x01, 0x00];
        let mut body = version.to_vec();
        body.extend(tlv(0x30, algorithm));
        body.extend(tlv(0x04, key));
        tlv(0x30, &body)
    }

    pub(super) fn rsa_to_pkcs8(pkcs1: &[u8]) -> Option<Vec<u8>> {
        let (tag, _, _) = read(pkcs1)?;
        (tag == 0x30).then(|| pkcs8(&[RSA_ENCRYPTION, &[0x05, 0x00]].concat(), pkcs1))
    }

    /// The curve is the SEC1 key's `[0] parameters` OID.
    pub(super) fn ec_to_pkcs8(sec1: &[u8]) -> Option<Vec<u8>> {
        let (tag, mut body, _) = read(sec1)?;
        if tag != 0x30 {
            return None;
        }
        while let Some((tag, content, rest)) = read(body) {
            if tag == 0xa0 {
                return Some(pkcs8(&[EC_PUBLIC_KEY, content].concat(), sec1));
            }
            body = rest;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use lockstep_provider_api::SecretValue;

    use super::super::test_support::{ok, run};
    use crate::template::{TemplateContext, render};

    const NOPASS: &[u8] = include_bytes!("../testdata/leaf-nopass.pfx");
    const PASS_1234: &[u8] = include_bytes!("../testdata/leaf-1234.pfx");
    const LEGACY_1234: &[u8] = include_bytes!("../testdata/leaf-legacy-1234.pfx");
    const LEAF: &str = include_str!("../testdata/leaf.crt");
    const INTERMEDIATE: &str = include_str!("../testdata/intermediate.crt");
    const ROOT: &str = include_str!("../testdata/root.crt");
    const KEY: &str = include_str!("../testdata/leaf.key");

    fn render_pfx(source: &str, pfx: &[u8]) -> Result<String, String> {
        let mut ctx = TemplateContext::new();
        ctx.insert("pfx", SecretValue::new(pfx.to_vec()));
        ctx.insert(
            "pfx64",
            SecretValue::from(base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                pfx,
            )),
        );
        ctx.insert("pw", SecretValue::from("1234".to_owned()));
        render("t", source, &ctx)
            .map(|v| String::from_utf8(v.expose().to_vec()).unwrap_or_default())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn key_and_chain_from_a_binary_archive() {
        assert_eq!(render_pfx("{{ .pfx | pkcs12key }}", NOPASS).unwrap(), KEY);
        assert_eq!(
            render_pfx("{{ .pfx | pkcs12keyPass .pw }}", PASS_1234).unwrap(),
            KEY
        );
        // The archive holds leaf, root, intermediate: the output is ordered leaf -> root.
        let chain = format!("{LEAF}{INTERMEDIATE}{ROOT}");
        assert_eq!(
            render_pfx("{{ .pfx | pkcs12cert }}", NOPASS).unwrap(),
            chain
        );
        assert_eq!(
            render_pfx(r#"{{ .pfx | pkcs12certPass "1234" }}"#, PASS_1234).unwrap(),
            chain
        );
        // As most ESO users store it: base64 in the secret manager.
        assert_eq!(
            render_pfx("{{ .pfx64 | b64dec | pkcs12key }}", NOPASS).unwrap(),
            KEY
        );
    }

    #[test]
    fn legacy_rc2_and_3des_archives_open() {
        assert_eq!(
            render_pfx(r#"{{ .pfx | pkcs12keyPass "1234" }}"#, LEGACY_1234).unwrap(),
            KEY
        );
        assert_eq!(
            render_pfx(r#"{{ .pfx | pkcs12certPass "1234" }}"#, LEGACY_1234).unwrap(),
            LEAF
        );
    }

    #[test]
    fn a_wrong_password_or_a_non_archive_is_named() {
        let e = render_pfx(r#"{{ .pfx | pkcs12keyPass "nope-hunter2" }}"#, PASS_1234).unwrap_err();
        assert!(e.contains("error calling pkcs12keyPass: the PKCS#12 archive's integrity check failed: the password is wrong"), "{e}");
        assert!(!e.contains("hunter2"));
        let e = render_pfx("{{ .pfx64 | pkcs12cert }}", NOPASS).unwrap_err();
        assert!(
            e.contains(
                "not a PKCS#12 archive (if it is base64-encoded, decode it first with b64dec)"
            ),
            "{e}"
        );
    }

    #[test]
    fn pem_to_pkcs12_round_trips() {
        let data = [("crt", LEAF), ("key", KEY)];
        let out = run(
            "{{ pemToPkcs12Pass .crt .key \"pw\" | b64dec | pkcs12keyPass \"pw\" }}",
            &data,
        )
        .unwrap();
        assert_eq!(out, KEY);
        let out = run("{{ pemToPkcs12 .crt .key | b64dec | pkcs12cert }}", &data).unwrap();
        assert_eq!(out, LEAF);
        let full = format!("{LEAF}{INTERMEDIATE}{ROOT}");
        let data = [("crt", full.as_str()), ("key", KEY)];
        let out = run(
            "{{ fullPemToPkcs12 .crt .key | b64dec | pkcs12cert }}",
            &data,
        )
        .unwrap();
        assert_eq!(out, full);
        let out = run("{{ pemToPkcs12 .crt .key | b64dec | pkcs12cert }}", &data).unwrap();
        assert_eq!(out, LEAF);
    }

    #[test]
    fn pkcs1_and_sec1_keys_are_accepted() {
        let pkcs1 = include_str!("../testdata/leaf-pkcs1.key");
        assert!(pkcs1.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
        let data = [("crt", LEAF), ("key", pkcs1)];
        let out = run("{{ pemToPkcs12 .crt .key | b64dec | pkcs12key }}", &data).unwrap();
        assert_eq!(out, KEY);

        let sec1 = include_str!("../testdata/ec-sec1.key");
        let ec_crt = include_str!("../testdata/ec.crt");
        assert!(sec1.starts_with("-----BEGIN EC PRIVATE KEY-----"));
        let data = [("crt", ec_crt), ("key", sec1)];
        let out = run("{{ pemToPkcs12 .crt .key | b64dec | pkcs12key }}", &data).unwrap();
        assert!(out.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{out}");
        let out = run("{{ pemToPkcs12 .crt .key | b64dec | pkcs12cert }}", &data).unwrap();
        assert_eq!(out, ec_crt);

        let e = run(
            "{{ pemToPkcs12 .crt .key }}",
            &[
                ("crt", LEAF),
                (
                    "key",
                    "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n",
                ),
            ],
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("unable to parse private key type"),
            "{e}"
        );
    }

    #[test]
    fn truststore() {
        let cas = format!("{INTERMEDIATE}{ROOT}");
        let out = run(
            "{{ pemTruststoreToPKCS12Pass .c \"pw\" | b64dec | len }}",
            &[("c", &cas)],
        )
        .unwrap();
        assert!(out.parse::<usize>().unwrap_or(0) > 1000, "{out}");
        assert!(!ok(r#"{{ "x" | b64enc | len }}"#).is_empty());
    }
}
