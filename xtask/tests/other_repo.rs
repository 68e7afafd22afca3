//! Another Rust workspace adds its own `xtask` that calls this library, as the
//! README shows, and its `cargo xtask golive` works. This builds a real
//! workspace with cargo, so it is the slowest test (its target directory is
//! kept under cargo's test tmpdir, so only the first run is cold).

mod common;

use std::path::Path;
use std::process::Command;

#[test]
fn another_workspace_runs_golive_through_its_own_xtask() {
    let ws = tempfile::tempdir().unwrap();
    let root = ws.path();
    let kit = Path::new(env!("CARGO_MANIFEST_DIR"));
    let write = |rel: &str, text: &str| {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    write(
        "Cargo.toml",
        "[workspace]\nmembers = [\"xtask\"]\nresolver = \"2\"\n",
    );
    write(
        ".cargo/config.toml",
        "[alias]\nxtask = \"run --bin xtask --\"\n",
    );
    write(
        "xtask/Cargo.toml",
        &format!(
            "[package]\nname = \"xtask\"\nversion = \"0.1.0\"\nedition = \"2021\"\npublish = false\n\n\
             [dependencies]\nmc-kit = {{ package = \"xtask\", path = {:?} }}\n",
            kit.to_str().unwrap()
        ),
    );
    write(
        "xtask/src/main.rs",
        "use std::path::Path;\nuse std::process::ExitCode;\n\n\
         fn main() -> ExitCode {\n    \
         let root = Path::new(env!(\"CARGO_MANIFEST_DIR\")).parent().unwrap();\n    \
         mc_kit::xtask_main(root)\n}\n",
    );
    write("out/release-notes.txt", "their own artifact\n");
    // The same dependency versions as this workspace, so nothing new is fetched.
    std::fs::copy(kit.join("../Cargo.lock"), root.join("Cargo.lock")).unwrap();

    let mut cmd = Command::new(env!("CARGO"));
    common::hermetic(&mut cmd);
    for var in [
        "CARGO_MANIFEST_DIR",
        "CARGO_PKG_NAME",
        "CARGO_TARGET_DIR",
        "RUSTFLAGS",
    ] {
        cmd.env_remove(var);
    }
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("other-repo-target");
    let o = cmd
        .current_dir(root)
        .env("CARGO_TARGET_DIR", &target)
        .env("CARGO_TERM_COLOR", "never")
        .args(["xtask", "golive", "--seed", "1"])
        .output()
        .unwrap();
    let (out, err) = (common::stdout(&o), common::stderr(&o));
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert!(out.contains("result: PASS (exit 0)"), "{out}");
    let bundle = std::fs::read_to_string(root.join("dist/evidence-v0.3.2-mc.json")).unwrap();
    assert!(
        bundle.contains("\"out/release-notes.txt\""),
        "their artifacts are packed"
    );
    assert!(root.join("dist/golive-v0.3.2-mc.html").is_file());
}
