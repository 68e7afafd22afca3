//! The quick reader of a bundle as `pack` writes it: serde_json's pretty
//! layout, one artifact in five lines. serde_json's reader of a stream takes
//! a byte at a time; on 100,000 files it spent about 130 ms of `verify`'s
//! time on the 16 MB bundle, on one core, before any file was hashed. This
//! reader takes a line at a time and knows where every value stands.
//!
//! It accepts only what it can read exactly: the header and each artifact
//! spelled as `pack` spells them, strings without escapes or control
//! characters, sizes without leading zeros that fit in 64 bits. For anything
//! else it gives `None`, and the caller parses the file with serde_json, as
//! it did before, which says what is wrong. So a bundle it reads is the one
//! serde_json would have read: the artifacts are the same values, and the
//! rest of the manifest (after the artifacts) is parsed by serde_json itself.

use std::io::{BufRead, Read};

use super::bundle::{object, Artifact, Bundle};

/// The lines before the first artifact.
const HEAD: [&[u8]; 3] = [b"{\n", b"  \"manifest\": {\n", b"    \"artifacts\": [\n"];
/// The most bytes of manifest after the artifacts (a kit bundle has about 200).
const MAX_TAIL: u64 = 64 * 1024;
/// The longest line read (a path of 4,096 bytes, escaped, fits many times):
/// a bundle in another layout, all on one line, is not read into memory to
/// find out that it is not `pack`'s.
const MAX_LINE: u64 = 64 * 1024;

/// Reads a bundle in `pack`'s layout from `reader`; `None` when the text is
/// anything else (see the module documentation).
pub(super) fn read(mut reader: impl BufRead) -> Option<Bundle> {
    let mut line = Vec::with_capacity(256);
    for want in HEAD {
        next_line(&mut reader, &mut line)?;
        if line != want {
            return None;
        }
    }
    let mut artifacts = Vec::new();
    loop {
        next_line(&mut reader, &mut line)?;
        if line != b"      {\n" {
            return None;
        }
        next_line(&mut reader, &mut line)?;
        let path = string_member(&line, b"        \"path\": \"", b"\",\n")?;
        next_line(&mut reader, &mut line)?;
        let sha256 = string_member(&line, b"        \"sha256\": \"", b"\",\n")?;
        next_line(&mut reader, &mut line)?;
        let size = size_member(&line)?;
        artifacts.push(Artifact {
            path,
            sha256,
            size: Some(size),
        });
        next_line(&mut reader, &mut line)?;
        match line.as_slice() {
            b"      },\n" => continue,
            b"      }\n" => break,
            _ => return None,
        }
    }
    next_line(&mut reader, &mut line)?;
    if line != b"    ],\n" {
        return None;
    }
    // The rest of the manifest and the signature, after an empty list in
    // the artifacts' place, to serde_json.
    let mut rest = b"{\n  \"manifest\": {\n    \"artifacts\": [],\n".to_vec();
    let head = rest.len();
    reader.take(MAX_TAIL + 1).read_to_end(&mut rest).ok()?;
    if (rest.len() - head) as u64 > MAX_TAIL {
        return None;
    }
    let mut de = serde_json::Deserializer::from_slice(&rest);
    let mut bundle: Bundle = object(&mut de).ok()?;
    de.end().ok()?;
    bundle.manifest.artifacts = artifacts;
    Some(bundle)
}

/// The next line, newline included, into `line`; `None` at the end, on an
/// error, or when it is longer than [`MAX_LINE`].
fn next_line(reader: &mut impl BufRead, line: &mut Vec<u8>) -> Option<()> {
    line.clear();
    match reader.by_ref().take(MAX_LINE).read_until(b'\n', line) {
        Ok(n) if n > 0 && line.ends_with(b"\n") => Some(()),
        _ => None,
    }
}

/// The string between `before` and `after` in `line`, when it needs no
/// unescaping: no `"`, no `\`, no control character, valid UTF-8.
fn string_member(line: &[u8], before: &[u8], after: &[u8]) -> Option<String> {
    let value = line.strip_prefix(before)?.strip_suffix(after)?;
    if value.iter().any(|&b| b == b'"' || b == b'\\' || b < 0x20) {
        return None;
    }
    String::from_utf8(value.to_vec()).ok()
}

/// The size on a `"size": N` line: digits without a leading zero, at most
/// `u64::MAX`.
fn size_member(line: &[u8]) -> Option<u64> {
    let digits = line
        .strip_prefix(b"        \"size\": ")?
        .strip_suffix(b"\n")?;
    if digits.is_empty()
        || !digits.iter().all(u8::is_ascii_digit)
        || (digits.len() > 1 && digits[0] == b'0')
    {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::super::bundle::{parse_bundle, read_streamed_bundle, Manifest, Signing};
    use super::*;

    fn bundle(paths: &[&str]) -> Bundle {
        Bundle {
            manifest: Manifest {
                artifacts: paths
                    .iter()
                    .enumerate()
                    .map(|(i, p)| Artifact {
                        path: p.to_string(),
                        sha256: format!("{i:064x}"),
                        size: Some(i as u64 * 1000),
                    })
                    .collect(),
                dir: Some("out".into()),
                signing: Signing {
                    algo: "hmac-sha256".into(),
                    key_ref: "env:MC_SIGNING_KEY".into(),
                },
                ts: 1_700_000_000,
                version: "v0.3.2-mc".into(),
            },
            signature: "ab".repeat(32),
        }
    }

    fn pretty(b: &Bundle) -> Vec<u8> {
        serde_json::to_vec_pretty(b).unwrap()
    }

    #[test]
    fn a_packed_bundle_reads_as_serde_json_reads_it() {
        let b = bundle(&[
            "out/a.txt",
            "out/dir with space/ü ñ 日本.bin",
            "out/x\u{7f}y",
            "out/0",
        ]);
        let text = pretty(&b);
        let quick = read(&text[..]).expect("pack's layout");
        assert_eq!(quick, b);
        assert_eq!(quick, parse_bundle(&text).unwrap());
    }

    #[test]
    fn anything_but_packs_layout_is_left_to_serde_json() {
        let text = String::from_utf8(pretty(&bundle(&["out/a", "out/b"]))).unwrap();
        let changed = [
            // An escape, a control character.
            text.replace("out/a", "out/\\u0061"),
            text.replace("out/a", "out/\\\"a"),
            text.replace("out/a", "out/\ta"),
            // Another layout of the same JSON.
            serde_json::to_string(&bundle(&["out/a", "out/b"])).unwrap(),
            text.replace("\n", "\r\n"),
            text.replace("      {\n        \"path\"", "      {\n         \"path\""),
            // Sizes serde_json refuses or reads otherwise.
            text.replace("\"size\": 1000", "\"size\": 01000"),
            text.replace("\"size\": 1000", "\"size\": 99999999999999999999"),
            text.replace("\"size\": 1000", "\"size\": 1e3"),
            text.replace("\"size\": 1000", "\"size\": -1"),
            // No size (the seed's bundles), another member, reordered members.
            text.replace(",\n        \"size\": 1000", ""),
            text.replace("\"size\": 1000", "\"size\": 1000,\n        \"extra\": 1"),
            text.replace("\"path\": \"out/b\",\n        \"sha256\"", "\"sha256\""),
            // No artifacts.
            serde_json::to_string_pretty(&bundle(&[])).unwrap(),
            // One line longer than any this reader takes.
            text.replace("out/a", &format!("out/{}", "a".repeat(70_000))),
            // Cut short, or something after the end.
            text[..text.len() / 2].to_string(),
            text[..text.len() - 3].to_string(),
        ];
        for (i, t) in changed.iter().enumerate() {
            assert!(read(t.as_bytes()).is_none(), "case {i}: {t}");
        }
        // The tail is serde_json's: what it refuses there, the quick reader
        // refuses too (and the caller's serde_json says why).
        for bad in [
            text.replace(
                "\"ts\": 1700000000",
                "\"ts\": 1700000000,\n    \"artifacts\": []",
            ),
            text.replace(
                "\"ts\": 1700000000",
                "\"ts\": 1700000000,\n    \"extra\": 1",
            ),
            format!("{text} x"),
        ] {
            assert!(read(bad.as_bytes()).is_none(), "{bad}");
            assert!(parse_bundle(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    /// On every bundle of the corpus of bad bundles (most of them in
    /// `pack`'s layout with one thing wrong), and the seed kit's, reading
    /// through the quick reader gives what serde_json alone gives.
    #[test]
    fn the_corpus_reads_the_same_through_the_quick_reader() {
        let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
        let corpus = data.join("bad-bundles");
        let mut quick = 0;
        let mut files: Vec<_> = std::fs::read_dir(&corpus)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.push(data.join("seed-bundle.json"));
        assert!(files.len() > 70, "{}", files.len());
        for file in files {
            let bytes = std::fs::read(&file).unwrap();
            let streamed =
                read_streamed_bundle(file.parent().unwrap(), file.file_name().unwrap().as_ref());
            assert_eq!(streamed, parse_bundle(&bytes).ok(), "{}", file.display());
            quick += usize::from(read(&bytes[..]).is_some());
        }
        // Some take the quick way (valid JSON with a bad value in it).
        assert!(quick >= 10, "{quick}");
    }
}
