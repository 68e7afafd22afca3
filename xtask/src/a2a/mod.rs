//! The A2A gateway (issue 4).
use anyhow::{bail, Result};
use std::path::Path;
pub fn run_serve(_root: &Path, _args: &crate::flags::ServeArgs) -> Result<u8> {
    bail!("a2a serve is not built yet")
}
pub fn run_probe(_root: &Path, _args: &crate::flags::ProbeArgs) -> Result<u8> {
    bail!("a2a probe is not built yet")
}
