//! The public key digests are verified with, and the signatures users give.

use base64::Engine;
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier;
use rsa::RsaPublicKey;
use sha2::Sha256;

/// CTS's published public key (X.509 SubjectPublicKeyInfo, base64 DER), as
/// printed in the CTS guide's "Verifying Trace File Integrity" page.
pub const CTS_PUBLIC_KEY: &str = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAsjQDkl8COPRhOCvm7ZI8sYZ20ojl+ay/gwRSk9q0gkY3pP0RrAhSsEzgYdYjaMCqixkmbpt4AH9AROJU4drnoCAZSMqRxgv0bGC9kVd4q95l4zibswAsksjuNQo/XoJjBl+rRAqCa+1uetgVU4k4Yx8RryYxYx/tImvMe/O4mGAIaTf+rsqt3VXR1QIj5lYR/nx41BEgC/Kb1elYAfDaaab8WS5INRprj7qdu6oAo4Ug47WqbecvEtG3JRpj5+oqLyW41Fvse3osC0h5DQdxTt4x00/rVZ+gH7Kua00y7gC8YOxFVpYbfn/oW61PUDeHG/N9hUjOrIgDDJpD2YbCIQIDAQAB";

/// An RSA public key that checks `SHA256withRSA` (PKCS#1 v1.5) signatures.
///
/// ```
/// use cts_audit::integrity::{PublicKey, SignatureCheck};
/// let key = PublicKey::cts();
/// assert_eq!(key.bits(), 2048);
/// assert_eq!(key.check(b"message", "00"), SignatureCheck::Invalid);
/// assert!(matches!(key.check(b"message", "not hex"), SignatureCheck::Malformed(_)));
/// ```
#[derive(Clone, Debug)]
pub struct PublicKey {
    key: VerifyingKey<Sha256>,
    bits: usize,
}

/// What a signature check found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignatureCheck {
    /// The key signed this message.
    Valid,
    /// It did not (another message, another key, or a forged signature).
    Invalid,
    /// The signature is not hex, or not an RSA signature at all.
    Malformed(String),
}

/// Why a key could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an RSA public key (PEM, DER or base64 DER expected): {0}")]
pub struct KeyError(String);

impl PublicKey {
    /// CTS's published key, [`CTS_PUBLIC_KEY`].
    pub fn cts() -> PublicKey {
        // The constant is tested to parse (`the_published_key_parses`).
        PublicKey::parse(CTS_PUBLIC_KEY.as_bytes()).expect("the published CTS key parses")
    }

    /// Reads a key as PEM (`PUBLIC KEY` or `RSA PUBLIC KEY`), DER
    /// (SubjectPublicKeyInfo or PKCS#1), or base64 text of DER.
    ///
    /// ```
    /// use cts_audit::integrity::{PublicKey, CTS_PUBLIC_KEY};
    /// let pem = format!("-----BEGIN PUBLIC KEY-----\n{CTS_PUBLIC_KEY}\n-----END PUBLIC KEY-----\n");
    /// assert_eq!(PublicKey::parse(pem.as_bytes()).unwrap().bits(), 2048);
    /// assert!(PublicKey::parse(b"hello").is_err());
    /// ```
    pub fn parse(bytes: &[u8]) -> Result<PublicKey, KeyError> {
        let key = match std::str::from_utf8(bytes) {
            // PEM or base64 text. PEM's armour lines are dropped and its body
            // read however it is wrapped: a key pasted from a web page (CTS
            // prints its key on one line) is as good as one from openssl.
            Ok(text) => {
                let body: String = text
                    .lines()
                    .filter(|line| !line.trim_start().starts_with("-----"))
                    .flat_map(|line| line.split_whitespace())
                    .collect();
                let der = base64::engine::general_purpose::STANDARD
                    .decode(body)
                    .map_err(|e| KeyError(format!("base64: {e}")))?;
                from_der(&der)?
            }
            Err(_) => from_der(bytes)?,
        };
        let bits = rsa::traits::PublicKeyParts::size(&key) * 8;
        Ok(PublicKey {
            key: VerifyingKey::new(key),
            bits,
        })
    }

    /// The modulus size in bits.
    pub fn bits(&self) -> usize {
        self.bits
    }

    /// Checks a hex signature of `message`.
    pub fn check(&self, message: &[u8], signature_hex: &str) -> SignatureCheck {
        let bytes = match hex::decode(signature_hex.trim()) {
            Ok(bytes) => bytes,
            Err(e) => return SignatureCheck::Malformed(format!("not hex: {e}")),
        };
        let signature = match Signature::try_from(bytes.as_slice()) {
            Ok(signature) => signature,
            Err(e) => return SignatureCheck::Malformed(e.to_string()),
        };
        match self.key.verify(message, &signature) {
            Ok(()) => SignatureCheck::Valid,
            Err(_) => SignatureCheck::Invalid,
        }
    }
}

fn from_der(der: &[u8]) -> Result<RsaPublicKey, KeyError> {
    RsaPublicKey::from_public_key_der(der)
        .or_else(|_| RsaPublicKey::from_pkcs1_der(der))
        .map_err(|e| KeyError(e.to_string()))
}

/// Reads the newest digests' signatures, one `OBJECT HEX` a line (as
/// `obsutil stat` shows `meta-signature`); blank lines and `#` comments are
/// passed over. Returns `(object key, hex)` pairs, or the first bad line.
///
/// ```
/// let text = "# from obsutil stat\nobs://bucket/CloudTraces/r/x.json.gz  ABCD01\n";
/// let pairs = cts_audit::integrity::parse_signatures(text).unwrap();
/// assert_eq!(pairs, [("CloudTraces/r/x.json.gz".to_owned(), "abcd01".to_owned())]);
/// assert!(cts_audit::integrity::parse_signatures("just-one-field").is_err());
/// ```
pub fn parse_signatures(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split_whitespace();
        match (fields.next(), fields.next(), fields.next()) {
            (Some(object), Some(hex), None) => pairs.push(signature_pair(object, hex)),
            _ => return Err(format!("line {}: expected `OBJECT HEX`", i + 1)),
        }
    }
    Ok(pairs)
}

/// One given signature, its object reduced to its key (from `CloudTraces/`
/// on, so `obs://bucket/…` and a local path name the same digest).
pub fn signature_pair(object: &str, hex: &str) -> (String, String) {
    let key = match object.find("CloudTraces/") {
        Some(at) => &object[at..],
        None => object,
    };
    (key.to_owned(), hex.trim().to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_published_key_parses() {
        assert_eq!(PublicKey::cts().bits(), 2048);
    }

    #[test]
    fn every_key_form_reads_the_same_key() {
        let der = base64::engine::general_purpose::STANDARD
            .decode(CTS_PUBLIC_KEY)
            .unwrap();
        let wrapped: Vec<String> = CTS_PUBLIC_KEY
            .as_bytes()
            .chunks(64)
            .map(|c| String::from_utf8(c.to_vec()).unwrap())
            .collect();
        let pem = format!(
            "-----BEGIN PUBLIC KEY-----\r\n{}\r\n-----END PUBLIC KEY-----\r\n",
            wrapped.join("\r\n")
        );
        for form in [
            der.clone(),
            pem.into_bytes(),
            format!(" {CTS_PUBLIC_KEY}\n").into_bytes(),
        ] {
            let key = PublicKey::parse(&form).unwrap();
            assert_eq!(key.key.as_ref(), PublicKey::cts().key.as_ref());
        }
        // Cut short, or not a key at all: an error, never a panic.
        assert!(PublicKey::parse(&der[..100]).is_err());
        assert!(PublicKey::parse(b"").is_err());
        assert!(PublicKey::parse(&[0xff, 0xfe, 0x00]).is_err());
    }

    #[test]
    fn odd_signatures_are_malformed_or_invalid_never_a_panic() {
        let key = PublicKey::cts();
        for signature in [
            "",
            "0",
            "zz",
            &"00".repeat(256),
            &"ff".repeat(256),
            &"ab".repeat(4096),
        ] {
            assert_ne!(
                key.check(b"m", signature),
                SignatureCheck::Valid,
                "{signature}"
            );
        }
    }
}
