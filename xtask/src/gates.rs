//! Stage gates (issue 3).
use anyhow::{bail, Result};
use std::path::Path;
pub fn run(_root: &Path, _args: &crate::flags::GatesArgs) -> Result<u8> {
    bail!("gates is not built yet")
}
