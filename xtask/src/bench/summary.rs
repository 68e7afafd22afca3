//! The one table `cargo xtask bench` ends with: every figure the performance
//! issues ask for, what it is held against, and the machine's load average
//! when it was measured (figures on a busy machine are lower bounds).

use std::fmt::Write as _;

/// One measured figure beside its reference.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// What was measured.
    pub work: String,
    /// The figure.
    pub now: String,
    /// What it is held against (a target, the seed kit, another tool).
    pub reference: String,
    /// Whether the figure meets its target; `None` when there is no target.
    pub met: Option<bool>,
    /// The 1-minute load average when it was measured.
    pub load: String,
}

/// The rows, in the order they were measured.
#[derive(Debug, Default)]
pub struct Summary {
    rows: Vec<Row>,
}

impl Summary {
    /// Adds a row, stamped with the current load average.
    pub fn add(
        &mut self,
        work: impl Into<String>,
        now: impl Into<String>,
        reference: impl Into<String>,
        met: Option<bool>,
    ) {
        self.rows.push(Row {
            work: work.into(),
            now: now.into(),
            reference: reference.into(),
            met,
            load: super::load_average()
                .split_whitespace()
                .next()
                .unwrap_or("?")
                .to_string(),
        });
    }

    /// The rows.
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// The table in Markdown.
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        out.push_str("| work | now | the reference | met | load |\n|---|---:|---:|:---:|---:|\n");
        for r in &self.rows {
            let met = match r.met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "",
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {met} | {} |",
                r.work, r.now, r.reference, r.load
            );
        }
        out
    }
}

/// `12345.6` as `12,346`.
pub fn thousands(x: f64) -> String {
    let digits = (x.round() as u64).to_string();
    let head = match digits.len() % 3 {
        0 => 3.min(digits.len()),
        h => h,
    };
    let mut out = digits[..head].to_string();
    for group in digits.as_bytes()[head..].chunks(3) {
        out.push(',');
        out.push_str(std::str::from_utf8(group).expect("digits are ASCII"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0.4), "0");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(31_000.0), "31,000");
        assert_eq!(thousands(1_234_567.5), "1,234,568");
    }

    #[test]
    fn the_table_has_a_row_per_figure_and_marks_misses() {
        let mut s = Summary::default();
        s.add("a", "1 s", "2 s", Some(true));
        s.add("b", "3 s", "2 s", Some(false));
        s.add("c", "4", "", None);
        let md = s.to_markdown();
        assert_eq!(md.lines().count(), 5);
        assert!(md.contains("| a | 1 s | 2 s | yes |"), "{md}");
        assert!(md.contains("| b | 3 s | 2 s | **no** |"), "{md}");
        assert!(md.contains("| c | 4 |  |  |"), "{md}");
    }
}
