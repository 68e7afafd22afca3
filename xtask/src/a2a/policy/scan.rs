//! What a policy's text can read, found by scanning its tokens: which fields of
//! `input` it names, and whether it calls a builtin whose answer can change
//! from one call to the next. The memo in [`super`] trusts this scan, so the
//! scan errs on one side only: when in doubt it says "the whole input" or
//! "nondeterministic", which costs speed, never correctness.
//!
//! Rego reaches the input document only through the root name `input` (there
//! is no other path to it: `data` does not contain it and a function cannot be
//! called through a variable). So if every `input` token of the text is
//! followed at once by `.name` or `["name"]`, the policy's decision depends on
//! those top-level fields of the input and nothing else. Any other use (`input`
//! alone, `input[x]`, `walk(input)`, `import input as i`, `input .x`) means the
//! whole input. Comments and string literals are skipped, so a comment that
//! mentions `input` costs nothing; a field name after `.input` (as in
//! `data.input`) is not the input document.
//!
//! A builtin is named by a dotted reference whose first name is its namespace
//! (`rand.intn`, `time.now_ns`). Every root name in [`NONDETERMINISTIC_ROOTS`]
//! marks the policy nondeterministic, whatever follows it, so a new builtin in
//! one of those namespaces is covered before this list knows it. A template
//! string (`$"...{input.x}..."`, which newer Rego has and this regorus does
//! not) holds code inside quotes: a policy with one is taken to read all of
//! the input and is not memoised.

use std::collections::BTreeSet;

/// Namespaces of builtins whose answer can change between calls (or that
/// reach outside the process): `rand.intn`, `time.now_ns` (and the rest of
/// `time`, to be safe), `uuid.rfc4122`, `opa.runtime`, `http.send`,
/// `net.lookup_ip_addr`, `io.jwt.encode_sign` (random signatures).
pub const NONDETERMINISTIC_ROOTS: [&str; 7] = ["rand", "time", "uuid", "opa", "http", "net", "io"];

/// What a policy's text reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reads {
    /// The top-level input fields the policy names, or `None` when it may read
    /// the input in a way the scan cannot bound (then all of it counts).
    pub fields: Option<BTreeSet<String>>,
    /// The nondeterministic namespaces the policy names (empty: deterministic).
    pub nondeterministic: BTreeSet<String>,
}

/// Scans Rego text; see the module documentation.
pub fn scan(rego: &str) -> Reads {
    let b = rego.as_bytes();
    let mut fields = Some(BTreeSet::new());
    let mut nondeterministic = BTreeSet::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'#' => i = skip_until(b, i + 1, b'\n'),
            // A template string (`$"..{expr}.."`, newer Rego) holds code the
            // scan does not read: then nothing is known.
            b'$' if matches!(b.get(i + 1), Some(b'"' | b'`')) => {
                fields = None;
                nondeterministic.insert("$\"...\" (template string)".to_string());
                i += 1;
            }
            b'`' => i = skip_until(b, i + 1, b'`') + 1,
            b'"' => i = skip_string(b, i + 1),
            c if is_ident_start(c) => {
                let start = i;
                while i < b.len() && is_ident(b[i]) {
                    i += 1;
                }
                let after_dot = start > 0 && b[start - 1] == b'.';
                if after_dot {
                    continue;
                }
                let name = &rego[start..i];
                if NONDETERMINISTIC_ROOTS.contains(&name) {
                    nondeterministic.insert(name.to_string());
                }
                if name == "input" {
                    match input_field(rego, i) {
                        Some((field, end)) => {
                            if let Some(f) = fields.as_mut() {
                                f.insert(field);
                            }
                            i = end;
                        }
                        None => fields = None,
                    }
                }
            }
            _ => i += 1,
        }
    }
    Reads {
        fields,
        nondeterministic,
    }
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// The index of the next `end` byte at or after `i` (or the text's length).
fn skip_until(b: &[u8], i: usize, end: u8) -> usize {
    b[i.min(b.len())..]
        .iter()
        .position(|&c| c == end)
        .map_or(b.len(), |p| i + p)
}

/// The index just past the string literal whose body starts at `i`.
fn skip_string(b: &[u8], mut i: usize) -> usize {
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    b.len()
}

/// The field named right after an `input` token that ends at `i`: `.name` or
/// `["name"]` (a plain string, no escapes); with the index after it.
fn input_field(rego: &str, i: usize) -> Option<(String, usize)> {
    let b = rego.as_bytes();
    match b.get(i)? {
        b'.' => {
            let start = i + 1;
            if !b.get(start).is_some_and(|&c| is_ident_start(c)) {
                return None;
            }
            let mut end = start;
            while end < b.len() && is_ident(b[end]) {
                end += 1;
            }
            Some((rego[start..end].to_string(), end))
        }
        b'[' if b.get(i + 1) == Some(&b'"') => {
            let start = i + 2;
            let len = b[start..].iter().position(|&c| c == b'"')?;
            let field = &rego[start..start + len];
            let end = start + len + 1;
            (!field.contains('\\') && b.get(end) == Some(&b']'))
                .then(|| (field.to_string(), end + 1))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(rego: &str) -> Option<Vec<String>> {
        scan(rego).fields.map(|f| f.into_iter().collect())
    }

    #[test]
    fn the_default_policy_reads_four_fields_and_is_deterministic() {
        let reads = scan(crate::a2a::DEFAULT_POLICY);
        assert_eq!(
            fields(crate::a2a::DEFAULT_POLICY).unwrap(),
            ["pqid", "purpose", "residency", "tenantId"]
        );
        assert!(reads.nondeterministic.is_empty());
    }

    #[test]
    fn fields_by_dot_and_by_bracket_are_collected() {
        let rego = "package a2a\nx := input.task.goal\ny := input[\"agent\"]\n";
        assert_eq!(fields(rego).unwrap(), ["agent", "task"]);
    }

    #[test]
    fn any_other_use_of_input_means_the_whole_input() {
        for rego in [
            "x := input",
            "x := input[k]",
            "x := input[_]",
            "x := walk(input)",
            "import input as i",
            "x := input .tenantId",
            "x := object.get(input, \"a\", 1)",
            "x := input[\"a\\\"b\"]",
            "x := input.",
            "x := count(input)",
            "x := json.marshal(input)",
        ] {
            assert_eq!(fields(rego), None, "{rego}");
        }
    }

    #[test]
    fn comments_strings_and_fields_named_input_are_not_reads() {
        let rego = "# reads input wholesale? no\nx := \"input\"\ny := `input`\nz := data.input\nw := input.a # input\n";
        assert_eq!(fields(rego).unwrap(), ["a"]);
        assert!(scan(rego).nondeterministic.is_empty());
    }

    #[test]
    fn a_template_string_means_nothing_is_known() {
        let reads = scan("x := $\"{input.a} {rand.intn(\"k\", 2)}\"\ny := input.b\n");
        assert_eq!(reads.fields, None);
        assert!(!reads.nondeterministic.is_empty());
    }

    #[test]
    fn nondeterministic_namespaces_are_found_outside_comments_and_strings() {
        let det = "# rand.intn is not used\nx := \"time.now_ns()\"\ny := data.rand.z\n";
        assert!(scan(det).nondeterministic.is_empty());
        for (rego, root) in [
            ("x := rand.intn(\"a\", 10)", "rand"),
            ("x := time.now_ns()", "time"),
            ("x := uuid.rfc4122(\"k\")", "uuid"),
            ("x := opa.runtime()", "opa"),
            ("x := http.send({})", "http"),
            ("x := net.lookup_ip_addr(\"a\")", "net"),
            ("x := io.jwt.encode_sign({}, {}, {})", "io"),
            ("x := time . now_ns()", "time"),
        ] {
            assert_eq!(
                scan(rego).nondeterministic.into_iter().collect::<Vec<_>>(),
                [root],
                "{rego}"
            );
        }
    }
}
