//! The go-live rehearsal (issue 5).
use anyhow::{bail, Result};
use std::path::Path;
pub fn run(_root: &Path, _args: &crate::flags::GoliveArgs) -> Result<u8> {
    bail!("golive is not built yet")
}
