//! `cargo xtask`: the kit's tasks, run from the root of this workspace (the
//! parent of the xtask crate, as the cargo-xtask convention has it).

use std::process::ExitCode;

/// See the `mimalloc` feature in `xtask/Cargo.toml`.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    xtask::xtask_main(&xtask::util::project_root())
}
