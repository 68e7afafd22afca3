//! SLO snapshots (issue 3).
use anyhow::{bail, Result};
use std::path::Path;
pub fn run_snapshot(_root: &Path, _args: &crate::flags::SnapshotArgs) -> Result<u8> {
    bail!("slo snapshot is not built yet")
}
