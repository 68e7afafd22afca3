//! `mc`: the drop-in replacement for the seed kit's `tools/mc.py`. It works on
//! the current directory, like the seed; all behaviour lives in the xtask library.

use std::process::ExitCode;

use clap::Parser;
use xtask::{flags::Mc, util};

fn main() -> ExitCode {
    let args = Mc::parse();
    let root = match std::env::current_dir() {
        Ok(dir) => dir,
        Err(err) => {
            eprintln!("mc: cannot read the current directory: {err}");
            return ExitCode::from(util::exit::ERROR);
        }
    };
    util::finish("mc", xtask::run_mc(args.cmd, &root))
}
