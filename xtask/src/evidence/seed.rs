//! The seed kit's bundles: its weak signature (sha256 of the key followed by
//! Python's `json.dumps(manifest, indent=2)`), still verified but flagged.

use serde_json::json;
use sha2::{Digest, Sha256};

use super::{Key, Manifest};
use crate::util;

/// The seed kit's weak signature of `manifest` (see the module
/// documentation). Only for migration tools and tests: this kit never signs
/// with it.
pub fn sign_seed(manifest: &Manifest, key: &Key) -> String {
    seed_signature(manifest, key)
}

/// The seed kit's scheme: sha256(key + json.dumps(manifest, indent=2)),
/// compared in constant time.
pub(super) fn seed_signature_ok(m: &Manifest, signature: &str, key: &Key) -> bool {
    let want = seed_signature(m, key);
    constant_time_eq(want.as_bytes(), signature.as_bytes())
}

fn seed_signature(m: &Manifest, key: &Key) -> String {
    let artifacts: Vec<serde_json::Value> = m
        .artifacts
        .iter()
        .map(|a| {
            let mut o = serde_json::Map::new();
            o.insert("path".into(), a.path.clone().into());
            o.insert("sha256".into(), a.sha256.clone().into());
            if let Some(size) = a.size {
                o.insert("size".into(), size.into());
            }
            serde_json::Value::Object(o)
        })
        .collect();
    // The seed writes its keys in this order; preserve_order keeps it.
    let mut o = serde_json::Map::new();
    o.insert("version".into(), m.version.clone().into());
    o.insert("ts".into(), m.ts.into());
    if let Some(dir) = &m.dir {
        o.insert("dir".into(), dir.clone().into());
    }
    o.insert("artifacts".into(), artifacts.into());
    o.insert(
        "signing".into(),
        json!({"algo": m.signing.algo, "keyRef": m.signing.key_ref}),
    );
    let mut hasher = Sha256::new();
    hasher.update(&key.bytes);
    hasher.update(python_dumps_indent2(&serde_json::Value::Object(o)).as_bytes());
    util::hex(&hasher.finalize())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Python's `json.dumps(value, indent=2)`: `", "`-free item separators at line
/// ends, `": "` after keys, and non-ASCII escaped as `\uXXXX`.
pub fn python_dumps_indent2(value: &serde_json::Value) -> String {
    fn go(v: &serde_json::Value, depth: usize, out: &mut String) {
        use serde_json::Value::*;
        let pad = |d: usize, out: &mut std::string::String| {
            out.push('\n');
            out.extend(std::iter::repeat_n(' ', 2 * d));
        };
        match v {
            Null => out.push_str("null"),
            Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Number(n) => out.push_str(&n.to_string()),
            String(s) => py_str(s, out),
            Array(a) if a.is_empty() => out.push_str("[]"),
            Object(o) if o.is_empty() => out.push_str("{}"),
            Array(a) => {
                out.push('[');
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    pad(depth + 1, out);
                    go(x, depth + 1, out);
                }
                pad(depth, out);
                out.push(']');
            }
            Object(o) => {
                out.push('{');
                for (i, (k, x)) in o.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    pad(depth + 1, out);
                    py_str(k, out);
                    out.push_str(": ");
                    go(x, depth + 1, out);
                }
                pad(depth, out);
                out.push('}');
            }
        }
    }
    fn py_str(s: &str, out: &mut String) {
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                    let mut units = [0u16; 2];
                    for u in c.encode_utf16(&mut units) {
                        out.push_str(&format!("\\u{u:04x}"));
                    }
                }
                c => out.push(c),
            }
        }
        out.push('"');
    }
    let mut out = String::new();
    go(value, 0, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_dumps_matches_python() {
        // Printed by Python 3.11: json.dumps({"a": [1, {"b": "é\n"}], "c": [], "d": {}}, indent=2)
        let v: serde_json::Value =
            serde_json::from_str(r#"{"a": [1, {"b": "é\n"}], "c": [], "d": {}}"#).unwrap();
        let want = "{\n  \"a\": [\n    1,\n    {\n      \"b\": \"\\u00e9\\n\"\n    }\n  ],\n  \"c\": [],\n  \"d\": {}\n}";
        assert_eq!(python_dumps_indent2(&v), want);
    }
}
