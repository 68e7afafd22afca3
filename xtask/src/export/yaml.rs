//! A small YAML writer for the exported manifests: block mappings and
//! sequences, and every string double-quoted.
//!
//! A double-quoted string with JSON's escapes is a valid YAML scalar (YAML's
//! escapes are a superset of JSON's); the writer also escapes the few
//! characters YAML does not take as they are. Quoting every string keeps the
//! writer trivially correct: no plain scalar can turn into a number, a boolean
//! or a comment (`"true"`, `"1e3"`, `"a # b"` stay strings), and a PromQL query
//! with quotes, braces or newlines is written exactly. The tests parse the
//! output back with a YAML crate. A YAML library would cost the xtask's cold
//! build about 10 s (serde_yaml_ng and unsafe-libyaml, measured) for what
//! these hundred lines do; the tests use one as a dev-dependency.

use serde_json::{Map, Value};

/// Writes `doc` (a mapping) as a YAML block document, after `comments` (one
/// `# ` line each) and a `---` marker.
pub fn document(out: &mut String, comments: &[String], doc: &Value) {
    out.push_str("---\n");
    for line in comments {
        comment(out, line);
    }
    match doc {
        Value::Object(map) if !map.is_empty() => mapping(out, map, 0, false),
        other => {
            scalar(out, other);
            out.push('\n');
        }
    }
}

/// Writes `# line`; a line break inside `line` starts another comment line.
pub fn comment(out: &mut String, line: &str) {
    for part in line.split('\n') {
        if part.is_empty() {
            out.push_str("#\n");
        } else {
            out.push_str("# ");
            out.push_str(part);
            out.push('\n');
        }
    }
}

fn pad(out: &mut String, indent: usize) {
    out.push_str(&" ".repeat(indent));
}

/// The entries of `map` at `indent`; with `inline_first`, the first entry
/// follows a `- ` already written.
fn mapping(out: &mut String, map: &Map<String, Value>, indent: usize, inline_first: bool) {
    for (i, (key, value)) in map.iter().enumerate() {
        if i > 0 || !inline_first {
            pad(out, indent);
        }
        self::key(out, key);
        out.push(':');
        after_colon(out, value, indent);
    }
}

/// A value after `key:` or `-`: a scalar on the same line, a collection on the
/// lines below, indented.
fn after_colon(out: &mut String, value: &Value, indent: usize) {
    match value {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            mapping(out, m, indent + 2, false);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            sequence(out, a, indent + 2);
        }
        other => {
            out.push(' ');
            scalar(out, other);
            out.push('\n');
        }
    }
}

fn sequence(out: &mut String, items: &[Value], indent: usize) {
    for item in items {
        pad(out, indent);
        match item {
            Value::Object(m) if !m.is_empty() => {
                out.push_str("- ");
                mapping(out, m, indent + 2, true);
            }
            other => {
                out.push('-');
                after_colon(out, other, indent);
            }
        }
    }
}

/// A key: plain when it is a simple identifier (every Kubernetes field name),
/// else quoted.
fn key(out: &mut String, key: &str) {
    let plain = key.starts_with(|c: char| c.is_ascii_alphabetic())
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'))
        && !matches!(
            key.to_ascii_lowercase().as_str(),
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n"
        );
    if plain {
        out.push_str(key);
    } else {
        scalar(out, &Value::from(key));
    }
}

/// A scalar (or an empty collection) in JSON syntax, which YAML reads the same.
fn scalar(out: &mut String, value: &Value) {
    match value {
        Value::String(text) => string(out, text),
        other => out.push_str(&other.to_string()),
    }
}

/// A double-quoted string. JSON's escapes, and also every character YAML
/// does not allow unescaped in a document (DEL, the C1 controls, U+FFFE and
/// U+FFFF) or that an older reader takes for a line break (U+2028, U+2029),
/// which JSON leaves as they are.
fn string(out: &mut String, text: &str) {
    use std::fmt::Write;
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            // U+2028 and U+2029 are line breaks to a YAML 1.1 reader (libyaml).
            '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            '\u{20}'..='\u{7e}' | '\u{a0}'..='\u{fffd}' | '\u{10000}'.. => out.push(c),
            _ => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Parses `text` back with a YAML crate (one document).
    fn parse(text: &str) -> Value {
        serde_yaml_ng::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
    }

    #[test]
    fn any_string_reads_back_the_same() {
        let mut hostile: Vec<String> = (0..0x3000u32)
            .chain([
                0xd7ff, 0xe000, 0xfeff, 0xfffd, 0xfffe, 0xffff, 0x10000, 0x10ffff,
            ])
            .filter_map(char::from_u32)
            .map(String::from)
            .collect();
        hostile.extend(
            [
                "",
                " ",
                "true",
                "null",
                "~",
                "1e3",
                "0x10",
                "- a",
                "a: b",
                "# c",
                "'q'",
                "{{ interval }}",
                "x{a=\"b\"}[$window]\n",
                "---",
                "...",
                "a\u{2028}b",
                "\u{85}",
                " lead",
                "trail ",
            ]
            .map(String::from),
        );
        for text in hostile {
            let doc = json!({ "k": text, "list": [text], text.clone(): 1 });
            let mut out = String::new();
            document(&mut out, &[], &doc);
            assert_eq!(parse(&out), doc, "{text:?} as {out:?}");
        }
    }

    #[test]
    fn nested_collections_are_indented_blocks() {
        let mut out = String::new();
        let doc = json!({
            "kind": "X",
            "spec": {"metrics": [{"name": "a", "provider": {"p": {"q": "x{a=\"b\"}\nc"}}}, 3],
                     "empty": {}, "none": [], "nested": [[1, 2]]},
            "true": "false",
        });
        document(&mut out, &["one".into(), "two\nthree".into()], &doc);
        assert_eq!(parse(&out), doc);
        assert_eq!(
            out,
            "---\n# one\n# two\n# three\nkind: \"X\"\nspec:\n  metrics:\n    - name: \"a\"\n      \
             provider:\n        p:\n          q: \"x{a=\\\"b\\\"}\\nc\"\n    - 3\n  empty: {}\n  \
             none: []\n  nested:\n    -\n      - 1\n      - 2\n\"true\": \"false\"\n"
        );
    }
}
