//! Shared helpers for ferry's end-to-end tests: finding the binary, running shell scripts in
//! private mount namespaces, and refusing to pass silently when the machine cannot run them.

use std::path::PathBuf;
use std::process::{Command, Output};

/// The ferry binary under test: `$FERRY_BIN`, else the workspace's debug build.
pub fn ferry_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("FERRY_BIN") {
        return PathBuf::from(p);
    }
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/debug/ferry");
    assert!(
        p.exists(),
        "ferry binary not found at {}: run `cargo build -p ferry` first (hack/test does)",
        p.display()
    );
    p
}

/// Root is needed for namespaces and mounts. Outside CI a non-root run skips loudly; in CI
/// (CI=true) it fails, so a misconfigured runner cannot pass by skipping.
pub fn require_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("these tests need root and CI runs them as root");
    }
    eprintln!("SKIPPED: needs root");
    false
}

/// Run a bash script in a new private mount namespace; nothing it mounts reaches the host and
/// everything it mounted is gone when it exits.
pub fn in_private_ns(script: &str, env: &[(&str, String)]) -> Output {
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "--propagation", "private", "bash", "-c", script]);
    cmd.env("FERRY", ferry_bin());
    for (k, v) in env {
        cmd.env(k, v);
    }
    match cmd.output() {
        Ok(o) => o,
        Err(e) => panic!("running unshare: {e}"),
    }
}

/// Panic with both streams when a command failed.
pub fn check(out: &Output, what: &str) {
    if !out.status.success() {
        panic!(
            "{what} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
