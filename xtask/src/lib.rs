//! The MC go-live kit as a library: every task of `cargo xtask` and of the
//! drop-in `mc` binary lives here, one module per capability, so another
//! Rust workspace can call it from its own xtask (see the README).
//!
//! The binaries only parse their command line ([`flags`]) and hand it to
//! [`run_xtask`] or [`run_mc`]; [`util::finish`] turns the result into the
//! process exit code ([`util::exit`], the README's table). An adopter's
//! snapshot test of its gate reports calls [`rehearse`].

pub mod a2a;
pub mod attest;
/// This repository's own benchmarks (the `bench` feature): they build this
/// workspace's binaries and compare with the seed kit, so adopters do not get them.
#[cfg(feature = "bench")]
pub mod bench;
pub mod evidence;
pub mod export;
pub mod flags;
pub mod gates;
pub mod golive;
pub mod prometheus;
pub mod rehearse;
pub mod report;
pub mod slo;
pub mod util;

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;

use flags::{A2aCmd, EvidenceCmd, GatesCmd, GatesSub, McCmd, SloCmd, XtaskCmd};

/// The whole `cargo xtask` program for the workspace at `root`: parses the
/// process's arguments, runs the task, prints any error once, and returns the
/// documented exit code. Another workspace's `xtask/src/main.rs` can be just
/// `fn main() -> ExitCode { xtask::xtask_main(&root) }` (see the README).
pub fn xtask_main(root: &Path) -> ExitCode {
    let args = flags::Xtask::parse();
    util::finish("xtask", run_xtask(args.cmd, root))
}

/// Runs one `cargo xtask` command with `root` as the project root.
pub fn run_xtask(cmd: XtaskCmd, root: &Path) -> Result<u8> {
    const PROG: &str = "xtask";
    match cmd {
        XtaskCmd::Golive(args) => golive::run(root, &args),
        XtaskCmd::Evidence(cmd) => run_evidence(cmd, root, PROG),
        XtaskCmd::Slo(SloCmd::Snapshot(args)) => slo::run_snapshot(root, &args),
        XtaskCmd::Gates(cmd) => run_gates(cmd, root),
        XtaskCmd::A2a(A2aCmd::Serve(args)) => a2a::run_serve(root, &args),
        XtaskCmd::A2a(A2aCmd::Probe(args)) => a2a::run_probe(root, &args),
        #[cfg(feature = "bench")]
        XtaskCmd::Bench(args) => bench::run(root, &args),
    }
}

/// Runs one `mc` command with `root` (the current directory) as the project root.
pub fn run_mc(cmd: McCmd, root: &Path) -> Result<u8> {
    const PROG: &str = "mc";
    match cmd {
        McCmd::Evidence(cmd) => run_evidence(cmd, root, PROG),
        McCmd::Slo(SloCmd::Snapshot(args)) => slo::run_snapshot(root, &args),
        McCmd::Gates(cmd) => run_gates(cmd, root),
    }
}

fn run_gates(cmd: GatesCmd, root: &Path) -> Result<u8> {
    match (cmd.sub, cmd.judge) {
        (Some(GatesSub::Export(args)), _) => export::run(root, &args),
        (None, Some(args)) => gates::run(root, &args),
        // clap requires --stage and --report when there is no subcommand.
        (None, None) => Err(util::fail(
            util::exit::USAGE,
            anyhow::anyhow!("gates needs --stage and --report, or a subcommand (export)"),
        )),
    }
}

fn run_evidence(cmd: EvidenceCmd, root: &Path, prog: &str) -> Result<u8> {
    match cmd {
        EvidenceCmd::Pack(args) => evidence::run_pack(root, &args, prog),
        EvidenceCmd::Verify(args) => evidence::run_verify(root, &args, prog),
        EvidenceCmd::Keygen(args) => attest::run_keygen(root, &args),
    }
}
