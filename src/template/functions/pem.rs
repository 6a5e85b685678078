//! ESO's PEM helpers: `filterPEM`, `filterCertChain`, `certSANs`, and the certificate-chain
//! ordering `pkcs12cert` shares. Chains are ordered leaf -> intermediates -> root by matching
//! each certificate's Authority Key Identifier to another's Subject Key Identifier, as ESO does;
//! nothing here verifies signatures, validity or trust.

use gotmpl::Value;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::Func;
use super::args::{Args, string};

pub(super) const FUNCTIONS: &[(&str, Func)] = &[
    ("filterPEM", filter_pem),
    ("filterCertChain", filter_cert_chain),
    ("certSANs", cert_sans),
];

/// Go's `pem.Encode`: 64-character lines, `\n` line endings.
pub(super) fn encode(tag: &str, der: &[u8]) -> String {
    pem::encode_config(
        &pem::Pem::new(tag, der.to_vec()),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

/// Everything from the first `-----BEGIN` on (Go's `pem.Decode` skips leading junk).
fn from_first_block(input: &str) -> &str {
    input.find("-----BEGIN").map_or(input, |i| &input[i..])
}

/// `filterPEM "CERTIFICATE" .bundle`: the blocks of that type (case-insensitive), re-encoded.
fn filter_pem(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("filterPEM", args).exactly(2)?;
    let (kind, input) = (a.string(0)?, a.string(1)?);
    let blocks = pem::parse_many(from_first_block(&input).as_bytes())
        .map_err(|_| a.error("the input has a PEM block that cannot be decoded"))?;
    if blocks.is_empty() && !input.trim().is_empty() {
        return Err(a.error("error filtering pem: found junk (the input has no PEM block)"));
    }
    let out: String = blocks
        .iter()
        .filter(|b| b.tag().eq_ignore_ascii_case(&kind))
        .map(|b| encode(b.tag(), b.contents()))
        .collect();
    Ok(string(out))
}

/// One parsed certificate of a chain.
pub(super) struct ChainCert {
    pub(super) der: Vec<u8>,
    subject_key_id: Option<Vec<u8>>,
    authority_key_id: Option<Vec<u8>>,
}

impl ChainCert {
    pub(super) fn parse(der: &[u8]) -> Option<Self> {
        let (_, cert) = X509Certificate::from_der(der).ok()?;
        let mut subject_key_id = None;
        let mut authority_key_id = None;
        for ext in cert.extensions() {
            match ext.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(id) => subject_key_id = Some(id.0.to_vec()),
                ParsedExtension::AuthorityKeyIdentifier(aki) => {
                    authority_key_id = aki.key_identifier.as_ref().map(|id| id.0.to_vec());
                }
                _ => {}
            }
        }
        Some(Self {
            der: der.to_vec(),
            subject_key_id,
            authority_key_id,
        })
    }

    /// Self-signed or without an authority key id: a root, in ESO's sense.
    fn is_root(&self) -> bool {
        self.authority_key_id.is_none() || self.authority_key_id == self.subject_key_id
    }
}

/// Why a chain cannot be ordered (ESO's texts).
#[derive(Debug, PartialEq, Eq)]
pub(super) enum ChainError {
    NotACertificate,
    Disjunct,
    NoLeaf,
    Cycle,
}

impl std::fmt::Display for ChainError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::NotACertificate => "a PEM block is not a valid certificate",
            Self::Disjunct => "found multiple leaf or disjunct certificates",
            Self::NoLeaf => "no leaf certificate found",
            Self::Cycle => "constructing chain resulted in cycle",
        })
    }
}

/// The certificates of PEM `input` (every block parsed as a certificate).
pub(super) fn parse_certs(input: &[u8]) -> Result<Vec<ChainCert>, ChainError> {
    let blocks = pem::parse_many(input).map_err(|_| ChainError::NotACertificate)?;
    blocks
        .iter()
        .map(|b| ChainCert::parse(b.contents()).ok_or(ChainError::NotACertificate))
        .collect()
}

/// Orders leaf -> intermediates -> root (ESO's `fetchX509CertChains`).
pub(super) fn order_chain(certs: Vec<ChainCert>) -> Result<Vec<ChainCert>, ChainError> {
    let n = certs.len();
    let mut parent: Vec<Option<usize>> = vec![None; n];
    let mut is_parent = vec![false; n];
    for i in 0..n {
        for j in 0..n {
            if i != j && certs[i].authority_key_id == certs[j].subject_key_id {
                is_parent[j] = true;
                parent[i] = Some(j);
                break;
            }
        }
    }
    let mut leaves = (0..n).filter(|i| !is_parent[*i]);
    let leaf = leaves.next().ok_or(ChainError::NoLeaf)?;
    if leaves.next().is_some() {
        return Err(ChainError::Disjunct);
    }
    let mut order = Vec::new();
    let mut current = Some(leaf);
    while let Some(i) = current {
        if order.len() >= n {
            return Err(ChainError::Cycle);
        }
        order.push(i);
        current = parent[i];
    }
    let mut slots: Vec<Option<ChainCert>> = certs.into_iter().map(Some).collect();
    Ok(order.into_iter().filter_map(|i| slots[i].take()).collect())
}

/// `filterCertChain "leaf"|"intermediate"|"root" .chain`.
fn filter_cert_chain(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("filterCertChain", args).exactly(2)?;
    let (kind, input) = (a.string(0)?, a.string(1)?);
    let ordered = parse_certs(input.as_bytes())
        .and_then(order_chain)
        .map_err(|e| a.error(e))?;
    let pems = |certs: &[ChainCert]| -> String {
        certs
            .iter()
            .map(|c| encode("CERTIFICATE", &c.der))
            .collect()
    };
    let out = match &*kind {
        "leaf" => match ordered.first() {
            Some(leaf) if !leaf.is_root() => pems(std::slice::from_ref(leaf)),
            _ => String::new(),
        },
        "intermediate" => {
            let rest = ordered.get(1..).unwrap_or_default();
            let end = rest
                .iter()
                .position(ChainCert::is_root)
                .unwrap_or(rest.len());
            pems(&rest[..end])
        }
        "root" => match ordered.last() {
            Some(root) if root.is_root() => pems(std::slice::from_ref(root)),
            _ => String::new(),
        },
        _ => String::new(),
    };
    Ok(string(out))
}

/// `certSANs .crt`: DNS names, IP addresses, e-mail addresses, URIs (Go's order).
fn cert_sans(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("certSANs", args).exactly(1)?;
    let input = a.string(0)?;
    let block = pem::parse(from_first_block(&input).as_bytes())
        .map_err(|_| a.error("failed to decode PEM block"))?;
    let (_, cert) = X509Certificate::from_der(block.contents())
        .map_err(|_| a.error("failed to parse certificate"))?;
    let names = match cert.subject_alternative_name() {
        Ok(Some(ext)) => ext.value.general_names.clone(),
        Ok(None) => Vec::new(),
        Err(_) => return Err(a.error("failed to parse certificate: invalid SAN extension")),
    };
    let pick = |want: fn(&GeneralName<'_>) -> Option<String>| -> Vec<Value> {
        names.iter().filter_map(want).map(string).collect()
    };
    let mut out = pick(|n| match n {
        GeneralName::DNSName(s) => Some((*s).to_owned()),
        _ => None,
    });
    out.extend(pick(|n| match n {
        GeneralName::IPAddress(ip) => ip_string(ip),
        _ => None,
    }));
    out.extend(pick(|n| match n {
        GeneralName::RFC822Name(s) => Some((*s).to_owned()),
        _ => None,
    }));
    out.extend(pick(|n| match n {
        GeneralName::URI(s) => Some((*s).to_owned()),
        _ => None,
    }));
    Ok(Value::List(out.into()))
}

fn ip_string(ip: &[u8]) -> Option<String> {
    match ip.len() {
        4 => <[u8; 4]>::try_from(ip)
            .ok()
            .map(|b| std::net::Ipv4Addr::from(b).to_string()),
        16 => <[u8; 16]>::try_from(ip)
            .ok()
            .map(|b| std::net::Ipv6Addr::from(b).to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::run;

    const LEAF: &str = include_str!("../testdata/leaf.crt");
    const INTERMEDIATE: &str = include_str!("../testdata/intermediate.crt");
    const ROOT: &str = include_str!("../testdata/root.crt");
    const KEY: &str = include_str!("../testdata/leaf.key");

    #[test]
    fn filter_pem_keeps_blocks_of_one_type() {
        let bundle = format!("junk before\n{KEY}{LEAF}{ROOT}");
        let data = [("b", bundle.as_str())];
        assert_eq!(
            run(r#"{{ .b | filterPEM "CERTIFICATE" }}"#, &data).unwrap(),
            format!("{LEAF}{ROOT}")
        );
        assert_eq!(
            run(r#"{{ .b | filterPEM "private key" }}"#, &data).unwrap(),
            KEY
        );
        assert_eq!(
            run(r#"{{ .b | filterPEM "EC PRIVATE KEY" }}"#, &data).unwrap(),
            ""
        );
        let e = run(
            r#"{{ .b | filterPEM "CERTIFICATE" }}"#,
            &[("b", "hunter2 no pem")],
        )
        .unwrap_err();
        assert!(e.to_string().ends_with("error calling filterPEM: error filtering pem: found junk (the input has no PEM block)"), "{e}");
    }

    #[test]
    fn cert_chain_is_ordered_and_filtered() {
        let shuffled = format!("{ROOT}{LEAF}{INTERMEDIATE}");
        let data = [("c", shuffled.as_str())];
        assert_eq!(
            run(r#"{{ .c | filterCertChain "leaf" }}"#, &data).unwrap(),
            LEAF
        );
        assert_eq!(
            run(r#"{{ .c | filterCertChain "intermediate" }}"#, &data).unwrap(),
            INTERMEDIATE
        );
        assert_eq!(
            run(r#"{{ .c | filterCertChain "root" }}"#, &data).unwrap(),
            ROOT
        );
        let disjunct = format!("{LEAF}{ROOT}");
        let e = run(r#"{{ .c | filterCertChain "leaf" }}"#, &[("c", &disjunct)]).unwrap_err();
        assert!(
            e.to_string()
                .contains("found multiple leaf or disjunct certificates"),
            "{e}"
        );
        let e = run(r#"{{ .c | filterCertChain "leaf" }}"#, &[("c", KEY)]).unwrap_err();
        assert!(
            e.to_string()
                .contains("a PEM block is not a valid certificate"),
            "{e}"
        );
    }

    #[test]
    fn sans_in_go_order() {
        let out = run(r#"{{ .c | certSANs | join "," }}"#, &[("c", LEAF)]).unwrap();
        assert_eq!(
            out,
            "foo.example,www.foo.example,10.0.0.1,ops@foo.example,spiffe://foo/bar"
        );
        assert_eq!(run(r#"{{ .c | certSANs }}"#, &[("c", ROOT)]).unwrap(), "[]");
        let e = run(r#"{{ .c | certSANs }}"#, &[("c", "x")]).unwrap_err();
        assert!(e.to_string().contains("failed to decode PEM block"), "{e}");
    }
}
