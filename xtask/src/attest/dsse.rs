//! DSSE v1 envelopes (secure-systems-lab/dsse `envelope.md`, `protocol.md`):
//!
//! ```json
//! {"payload": "<base64 of the payload>", "payloadType": "application/vnd.in-toto+json",
//!  "signatures": [{"keyid": "<key id>", "sig": "<base64 of the signature>"}]}
//! ```
//!
//! The signature is Ed25519 over the pre-authentication encoding
//! `PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`
//! ([`pae`]), so the payload type is signed with the payload and no other
//! format can be passed off under the same signature.
//!
//! Opening an envelope follows the protocol's order: decode (any base64
//! error rejects it), verify a signature over the PAE of the exact decoded
//! bytes, and only then look at the payload type and parse the payload. The
//! kit writes standard base64 with padding and reads standard or URL-safe,
//! padded or not, as verifiers must. Unknown fields are ignored, as the
//! envelope format requires of consumers; duplicate fields, arrays in place
//! of objects and more than [`MAX_SIGNATURES`] signatures make an envelope
//! malformed.
//!
//! Like securesystemslib, the kit considers only signatures whose `keyid` is
//! the verifying key's id: a signature without one, or with another, does not
//! count. The Ed25519 check is ed25519-dalek's `verify_strict` (no small-order
//! keys or points, canonical scalars), whose final comparison is constant
//! time.

use std::fmt;

use anyhow::{bail, Result};
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use serde::{Deserialize, Serialize};

use super::json::{object, objects};
use super::keys::{Ed25519Key, PublicKey};

/// At most this many signatures are looked at: each costs a signature check.
pub const MAX_SIGNATURES: usize = 64;

/// A DSSE JSON envelope, as written (fields in the order securesystemslib writes them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub payload: String,
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    #[serde(deserialize_with = "objects")]
    pub signatures: Vec<EnvelopeSignature>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvelopeSignature {
    /// Optional in DSSE; unset is the same as empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyid: Option<String>,
    pub sig: String,
}

/// `PAE(type, body)` of DSSE v1.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload_type.len() + payload.len() + 32);
    out.extend_from_slice(b"DSSEv1 ");
    out.extend_from_slice(payload_type.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload_type.as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload);
    out
}

/// Signs `payload` of `payload_type` with `key`: one signature over the PAE.
pub fn sign(payload_type: &str, payload: &[u8], key: &Ed25519Key) -> Envelope {
    let sig = key.sign(&pae(payload_type, payload));
    Envelope {
        payload: STANDARD.encode(payload),
        payload_type: payload_type.to_string(),
        signatures: vec![EnvelopeSignature {
            keyid: Some(key.keyid().to_string()),
            sig: STANDARD.encode(sig.to_bytes()),
        }],
    }
}

/// Decodes standard or URL-safe base64, with its full padding or none (a
/// partial padding, like Python's decoder, is refused).
pub fn b64_decode(text: &str) -> Option<Vec<u8>> {
    let (standard, url_safe) = if text.ends_with('=') {
        (&STANDARD, &URL_SAFE)
    } else {
        (&STANDARD_NO_PAD, &URL_SAFE_NO_PAD)
    };
    standard
        .decode(text)
        .or_else(|_| url_safe.decode(text))
        .ok()
}

/// Parses an envelope's bytes (JSON). Decoding is checked by [`open`].
pub fn parse(bytes: &[u8]) -> Result<Envelope> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let env: Envelope = object(&mut de)?;
    de.end()?;
    if env.signatures.is_empty() {
        bail!("`signatures` is empty: the envelope is not signed");
    }
    if env.signatures.len() > MAX_SIGNATURES {
        bail!(
            "{} signatures (at most {MAX_SIGNATURES} are read)",
            env.signatures.len()
        );
    }
    Ok(env)
}

/// Why an envelope was not opened.
#[derive(Debug)]
pub enum Refused {
    /// A field does not decode: the envelope is malformed.
    Malformed(String),
    /// Well-formed, but no signature by the key verifies.
    NotSigned(String),
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refused::Malformed(why) | Refused::NotSigned(why) => f.write_str(why),
        }
    }
}

/// Checks `env` against `key`; returns the payload bytes that the signature
/// covers, exactly as decoded.
pub fn open(env: &Envelope, key: &PublicKey) -> std::result::Result<Vec<u8>, Refused> {
    let payload = b64_decode(&env.payload)
        .ok_or_else(|| Refused::Malformed("`payload` is not base64".to_string()))?;
    let mut sigs = Vec::with_capacity(env.signatures.len());
    for (i, s) in env.signatures.iter().enumerate() {
        let bytes = b64_decode(&s.sig)
            .ok_or_else(|| Refused::Malformed(format!("signature {i}: `sig` is not base64")))?;
        sigs.push((s.keyid.as_deref().unwrap_or(""), bytes));
    }
    let message = pae(&env.payload_type, &payload);
    let mut named = 0;
    for (keyid, bytes) in &sigs {
        if *keyid != key.keyid {
            continue;
        }
        named += 1;
        let Ok(sig) = ed25519_dalek::Signature::from_slice(bytes) else {
            continue;
        };
        if key.key.verify_strict(&message, &sig).is_ok() {
            return Ok(payload);
        }
    }
    Err(Refused::NotSigned(if named == 0 {
        let found: Vec<&str> = sigs
            .iter()
            .map(|(k, _)| if k.is_empty() { "none" } else { k })
            .collect();
        format!(
            "no signature names the key {} (key ids found: {}): signed by another key, \
             or the keyid is missing or wrong",
            key.keyid,
            found.join(", ")
        )
    } else {
        format!(
            "the signature by key {} does not verify: the payload or payloadType was changed, \
             or it was made by another key",
            key.keyid
        )
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test vector of DSSE's protocol.md.
    #[test]
    fn pae_is_the_specs() {
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
        assert_eq!(pae("", b""), b"DSSEv1 0  0 ");
    }

    #[test]
    fn base64_standard_and_url_safe_padded_or_not() {
        // 0xfb 0xff: `+/8=` in standard, `-_8=` in URL-safe.
        for text in ["+/8=", "+/8", "-_8=", "-_8"] {
            assert_eq!(b64_decode(text), Some(vec![0xfb, 0xff]), "{text}");
        }
        for bad in ["+_8=", "!!!!", "+/8==", "+/9=", "+/8A=", "+/8A==="] {
            assert_eq!(b64_decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn arrays_and_duplicates_are_malformed() {
        assert!(parse(br#"["e30=", "t", [{"sig": ""}]]"#).is_err());
        assert!(parse(
            br#"{"payload": "", "payload": "", "payloadType": "t", "signatures": [{"sig": ""}]}"#
        )
        .is_err());
        assert!(parse(br#"{"payload": "", "payloadType": "t", "signatures": []}"#).is_err());
        let ok =
            parse(br#"{"payload": "", "payloadType": "t", "signatures": [{"sig": ""}], "x": 1}"#);
        assert!(ok.is_ok(), "unknown fields are ignored: {ok:?}");
    }
}
