//! Benchmarks (issue 7).
use anyhow::{bail, Result};
use std::path::Path;
pub fn run(_root: &Path, _args: &crate::flags::BenchArgs) -> Result<u8> {
    bail!("bench is not built yet")
}
