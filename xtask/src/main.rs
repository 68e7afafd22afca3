//! `cargo xtask`: parse the command line, run the task from the project root,
//! print any error once, and exit with its documented code.

use std::process::ExitCode;

use clap::Parser;
use xtask::{flags::Xtask, util};

fn main() -> ExitCode {
    let args = Xtask::parse();
    let root = util::project_root();
    match xtask::run_xtask(args.cmd, &root) {
        Ok(code) => ExitCode::from(code),
        Err(err) => ExitCode::from(util::report_error("xtask", &err)),
    }
}
