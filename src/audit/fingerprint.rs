//! Keyed fingerprints of values: HMAC-SHA256 under a per-installation key. A plain hash of a
//! short secret (a PIN, a port, `true`) could be reversed by trying every guess; without the key
//! a fingerprint reveals nothing, and with it an auditor can still tell whether two records saw
//! the same value.
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

/// The length of a generated key, in bytes.
pub const KEY_BYTES: usize = 32;

/// The installation's audit key. Never printed.
#[derive(Clone)]
pub struct FingerprintKey(Zeroizing<Vec<u8>>);

impl std::fmt::Debug for FingerprintKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FingerprintKey(<redacted>)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the audit key must be at least {KEY_BYTES} bytes, found {0}")]
    TooShort(usize),
    #[error("no random bytes for the audit key: {0}")]
    Random(String),
}

impl FingerprintKey {
    pub fn new(bytes: Vec<u8>) -> Result<Self, KeyError> {
        if bytes.len() < KEY_BYTES {
            return Err(KeyError::TooShort(bytes.len()));
        }
        Ok(Self(Zeroizing::new(bytes)))
    }

    /// A fresh random key.
    pub fn generate() -> Result<Self, KeyError> {
        let mut bytes = vec![0u8; KEY_BYTES];
        getrandom::fill(&mut bytes).map_err(|e| KeyError::Random(e.to_string()))?;
        Self::new(bytes)
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// `hmac-sha256:<hex>` of `value`.
    pub fn fingerprint(&self, value: &[u8]) -> String {
        // HMAC takes keys of any length; the error cannot happen, but is not unwrapped.
        let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0) else {
            return "hmac-sha256:unavailable".into();
        };
        mac.update(value);
        let digest = mac.finalize().into_bytes();
        format!("hmac-sha256:{}", base16ct::lower::encode_string(&digest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest;

    #[test]
    fn fingerprints_are_keyed_and_never_the_value_or_its_plain_hash() {
        let a = FingerprintKey::new(vec![1; 32]).unwrap();
        let b = FingerprintKey::new(vec![2; 32]).unwrap();
        let fa = a.fingerprint(b"1234");
        assert_eq!(fa, a.fingerprint(b"1234"), "stable under one key");
        assert_ne!(
            fa,
            b.fingerprint(b"1234"),
            "another installation, another fingerprint"
        );
        assert_ne!(fa, a.fingerprint(b"1235"));
        assert!(!fa.contains("1234"));
        let plain = base16ct::lower::encode_string(&sha2::Sha256::digest(b"1234"));
        assert!(!fa.contains(&plain));
        assert!(
            fa.starts_with("hmac-sha256:") && fa.len() == 12 + 64,
            "{fa}"
        );
        // RFC 4231 test case 2.
        let jefe = FingerprintKey(Zeroizing::new(b"Jefe".to_vec()));
        assert_eq!(
            jefe.fingerprint(b"what do ya want for nothing?"),
            "hmac-sha256:5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn keys_are_random_long_and_never_printed() {
        let k = FingerprintKey::generate().unwrap();
        assert_eq!(k.bytes().len(), KEY_BYTES);
        assert_ne!(k.bytes(), FingerprintKey::generate().unwrap().bytes());
        assert_eq!(format!("{k:?}"), "FingerprintKey(<redacted>)");
        assert!(matches!(
            FingerprintKey::new(vec![0; 8]),
            Err(KeyError::TooShort(8))
        ));
    }
}
