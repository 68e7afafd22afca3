//! The bundle's format: its types, the canonical form that is signed, and the
//! strict parser that accepts exactly one spelling of a bundle.

use std::collections::BTreeSet;
use std::fmt;
use std::io::{Read, Write};
use std::path::Path;

use anyhow::{bail, Context, Result};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::Key;
use crate::util::{self, exit};

/// The signature algorithm of bundles made by this kit.
pub const ALGO_HMAC: &str = "hmac-sha256";
/// The seed kit's algorithm name: sha256(key + text), not an HMAC.
pub const ALGO_SEED: &str = "sha256(HMAC-sim)";
/// The largest bundle `verify` reads (a bundle lists about 200 bytes per
/// file, so this is over a million files): a larger or endless file is
/// refused rather than read into memory.
pub const MAX_BUNDLE: u64 = 256 << 20;

/// The signed part of a bundle. Fields are declared in ascending byte order
/// of their names, so serde_json's compact output of this struct *is* the
/// canonical form (a test re-derives it by sorting keys).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    #[serde(deserialize_with = "artifact_objects")]
    pub artifacts: Vec<Artifact>,
    /// The packed directory, relative to the project root (absent in the
    /// seed's bundles, which always packed `out`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
    #[serde(deserialize_with = "object::<_, Signing>")]
    pub signing: Signing,
    pub ts: u64,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Artifact {
    pub path: String,
    pub sha256: String,
    /// Size in bytes (absent in the seed's bundles).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signing {
    pub algo: String,
    #[serde(rename = "keyRef")]
    pub key_ref: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    #[serde(deserialize_with = "object::<_, Manifest>")]
    pub manifest: Manifest,
    pub signature: String,
}

impl Manifest {
    /// The bytes that are signed: see the module documentation.
    pub fn canonical(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a manifest always serialises")
    }

    /// Writes [`Manifest::canonical`] to `w`.
    pub fn write_canonical(&self, w: impl Write) -> std::io::Result<()> {
        serde_json::to_writer(w, self).map_err(std::io::Error::from)
    }

    /// The packed directory (`out` for the seed's bundles).
    pub fn packed_dir(&self) -> &str {
        self.dir.as_deref().unwrap_or("out")
    }
}

/// The signature of `manifest`: HMAC-SHA256 of its canonical form, as hex.
pub fn sign(manifest: &Manifest, key: &Key) -> String {
    util::hex(&canonical_mac(manifest, key).finalize().into_bytes())
}

/// The HMAC of `manifest`'s canonical form, fed as it is serialised rather
/// than from a copy of it in memory.
pub(super) fn canonical_mac(manifest: &Manifest, key: &Key) -> Hmac<Sha256> {
    struct MacWriter(Hmac<Sha256>);
    impl Write for MacWriter {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.update(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut w = std::io::BufWriter::with_capacity(64 * 1024, MacWriter(key.hmac()));
    manifest
        .write_canonical(&mut w)
        .expect("a manifest always serialises");
    match w.into_inner() {
        Ok(MacWriter(mac)) => mac,
        Err(_) => unreachable!("writing to a MAC cannot fail"),
    }
}

/// Reads and parses the bundle at `root/file`; any problem is a one-line
/// error naming `file`, with exit code 2.
pub fn read_bundle(root: &Path, file: &Path) -> Result<Bundle> {
    let text = read_limited_bundle(root, file)?;
    parse_bundle(&text)
        .with_context(|| format!("malformed bundle {}", file.display()))
        .map_err(|e| util::fail(exit::NOT_VERIFIED, e))
}

/// The bytes of the bundle (or envelope) at `root/file`, at most
/// [`MAX_BUNDLE`]; an unreadable file is exit code 2.
pub fn read_limited_bundle(root: &Path, file: &Path) -> Result<Vec<u8>> {
    util::read_limited(&root.join(file), MAX_BUNDLE)
        .with_context(|| format!("cannot read {}", file.display()))
        .map_err(|e| util::fail(exit::NOT_VERIFIED, e))
}

/// Parses the bundle at `root/file` as it is read, through a 256 KiB buffer,
/// so its text is never held whole (on 100,000 files it is 16 MB, and it made
/// the peak of `verify`'s memory). Only a regular file of at most
/// [`MAX_BUNDLE`] that is a valid bundle gives one; anything else (an
/// envelope, a malformed bundle, a device) gives `None`, and the caller reads
/// it whole as before, which tells which it is and why.
pub fn read_streamed_bundle(root: &Path, file: &Path) -> Option<Bundle> {
    let path = root.join(file);
    let meta = std::fs::metadata(&path).ok()?;
    if !meta.is_file() || meta.len() > MAX_BUNDLE {
        return None;
    }
    let f = std::fs::File::open(&path).ok()?;
    if !f.metadata().ok()?.is_file() {
        return None;
    }
    let mut reader = std::io::BufReader::with_capacity(256 * 1024, f.take(MAX_BUNDLE));
    // `pack`'s own layout first; anything else from the start, by serde_json.
    if let Some(bundle) = super::pretty::read(&mut reader) {
        return validate(bundle).ok();
    }
    let mut f = reader.into_inner().into_inner();
    std::io::Seek::rewind(&mut f).ok()?;
    let reader = std::io::BufReader::with_capacity(256 * 1024, f.take(MAX_BUNDLE));
    let mut de = serde_json::Deserializer::from_reader(reader);
    let bundle: Bundle = object(&mut de).ok()?;
    de.end().ok()?;
    validate(bundle).ok()
}

/// Parses and validates a bundle's bytes.
pub fn parse_bundle(bytes: &[u8]) -> Result<Bundle> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let bundle: Bundle = object(&mut de)?;
    de.end()?;
    validate(bundle)
}

/// Whether `artifacts` are listed in ascending path order (those of a bundle
/// this kit packed are).
pub fn is_sorted(artifacts: &[Artifact]) -> bool {
    artifacts.windows(2).all(|w| w[0].path <= w[1].path)
}

/// What the types cannot say: a known algo, hex digests and signature, `dir`
/// and sizes in this kit's bundles, no path listed twice.
fn validate(bundle: Bundle) -> Result<Bundle> {
    let m = &bundle.manifest;
    if m.signing.algo != ALGO_HMAC && m.signing.algo != ALGO_SEED {
        bail!(
            "unknown signing algo {:?} (expected {ALGO_HMAC:?} or {ALGO_SEED:?})",
            m.signing.algo
        );
    }
    if !util::is_hex(&bundle.signature, 64) {
        bail!("signature is not 64 lowercase hex digits");
    }
    if m.signing.algo == ALGO_HMAC && m.dir.is_none() {
        bail!("manifest has no `dir`");
    }
    // The first artifact whose path came before it. A bundle this kit packed
    // lists its paths in ascending order, so a duplicate is next to its twin
    // and no set is needed.
    let twice = if is_sorted(&m.artifacts) {
        m.artifacts
            .windows(2)
            .position(|w| w[0].path == w[1].path)
            .map(|i| i + 1)
    } else {
        let mut seen = BTreeSet::new();
        m.artifacts
            .iter()
            .position(|a| !seen.insert(a.path.as_str()))
    };
    for (i, a) in m.artifacts.iter().enumerate() {
        if !util::is_hex(&a.sha256, 64) {
            bail!(
                "artifact {:?}: sha256 is not 64 lowercase hex digits",
                a.path
            );
        }
        if m.signing.algo == ALGO_HMAC && a.size.is_none() {
            bail!("artifact {:?}: missing `size`", a.path);
        }
        if twice == Some(i) {
            bail!("artifact {:?} is listed twice", a.path);
        }
    }
    Ok(bundle)
}

/// Deserialises a `T` from a JSON object only. serde's derived structs also
/// accept a JSON array of the fields in order, which would let `[manifest,
/// signature]` pass for a bundle: evidence has exactly one spelling.
pub(super) fn object<'de, D, T>(d: D) -> std::result::Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Named,
{
    struct Only<T>(std::marker::PhantomData<T>);
    impl<'de, T: Deserialize<'de> + Named> serde::de::Visitor<'de> for Only<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "{} as a JSON object", T::WHAT)
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            map: A,
        ) -> std::result::Result<T, A::Error> {
            T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
        }
    }
    d.deserialize_map(Only(std::marker::PhantomData))
}

/// `artifacts`: an array of objects (see [`object`]).
fn artifact_objects<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Vec<Artifact>, D::Error> {
    struct One(Artifact);
    impl<'de> Deserialize<'de> for One {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<One, D::Error> {
            object(d).map(One)
        }
    }
    let mut artifacts: Vec<Artifact> = Vec::<One>::deserialize(d)?
        .into_iter()
        .map(|o| o.0)
        .collect();
    // The list grew by doubling: give back the unused part (up to half of
    // it) before the files are walked.
    artifacts.shrink_to_fit();
    Ok(artifacts)
}

/// What a part of a bundle is called in errors.
pub(super) trait Named {
    const WHAT: &'static str;
}
impl Named for Bundle {
    const WHAT: &'static str = "the bundle";
}
impl Named for Manifest {
    const WHAT: &'static str = "`manifest`";
}
impl Named for Signing {
    const WHAT: &'static str = "`signing`";
}
impl Named for Artifact {
    const WHAT: &'static str = "each artifact";
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(v: &serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(o) => {
                let mut keys: Vec<_> = o.keys().collect();
                keys.sort();
                let mut out = serde_json::Map::new();
                for k in keys {
                    out.insert(k.clone(), sorted(&o[k]));
                }
                serde_json::Value::Object(out)
            }
            serde_json::Value::Array(a) => a.iter().map(sorted).collect(),
            v => v.clone(),
        }
    }

    #[test]
    fn canonical_form_is_sorted_compact_json() {
        let m = Manifest {
            artifacts: vec![Artifact {
                path: "out/é \"q\".txt".into(),
                sha256: "0".repeat(64),
                size: Some(3),
            }],
            dir: Some("out".into()),
            signing: Signing {
                algo: ALGO_HMAC.into(),
                key_ref: "env:MC_SIGNING_KEY".into(),
            },
            ts: 7,
            version: "v1".into(),
        };
        let value = serde_json::to_value(&m).unwrap();
        let want = serde_json::to_vec(&sorted(&value)).unwrap();
        assert_eq!(
            String::from_utf8(m.canonical()).unwrap(),
            String::from_utf8(want).unwrap()
        );
    }

    fn bundle_text(paths: &[&str]) -> String {
        let artifacts: Vec<String> = paths
            .iter()
            .map(|p| {
                format!(
                    "{{\"path\":\"{p}\",\"sha256\":\"{}\",\"size\":1}}",
                    "a".repeat(64)
                )
            })
            .collect();
        format!(
            "{{\"manifest\":{{\"artifacts\":[{}],\"dir\":\"out\",\"signing\":{{\"algo\":\"hmac-sha256\",\"keyRef\":\"k\"}},\"ts\":1,\"version\":\"v\"}},\"signature\":\"{}\"}}",
            artifacts.join(","),
            "b".repeat(64)
        )
    }

    #[test]
    fn a_path_listed_twice_is_refused_in_any_order() {
        for paths in [
            &["out/a", "out/b", "out/b"][..],
            &["out/b", "out/a", "out/b"][..],
        ] {
            let err = parse_bundle(bundle_text(paths).as_bytes()).unwrap_err();
            assert_eq!(err.to_string(), "artifact \"out/b\" is listed twice");
        }
        assert!(parse_bundle(bundle_text(&["out/b", "out/a"]).as_bytes()).is_ok());
    }

    #[test]
    fn a_bundle_file_is_parsed_as_it_is_read_and_anything_else_is_left_to_the_caller() {
        let dir = tempfile::tempdir().unwrap();
        let text = bundle_text(&["out/a", "out/c", "out/b"]);
        std::fs::write(dir.path().join("b.json"), &text).unwrap();
        let read = read_streamed_bundle(dir.path(), Path::new("b.json")).unwrap();
        assert_eq!(read, parse_bundle(text.as_bytes()).unwrap());
        assert!(!is_sorted(&read.manifest.artifacts));
        std::fs::write(dir.path().join("t.json"), &text[..text.len() - 9]).unwrap();
        assert!(read_streamed_bundle(dir.path(), Path::new("t.json")).is_none());
        let dup = bundle_text(&["out/a", "out/a"]);
        std::fs::write(dir.path().join("d.json"), dup).unwrap();
        assert!(read_streamed_bundle(dir.path(), Path::new("d.json")).is_none());
        assert!(read_streamed_bundle(dir.path(), Path::new("none.json")).is_none());
        assert!(read_streamed_bundle(dir.path(), Path::new(".")).is_none());
    }
}
