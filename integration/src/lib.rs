//! Shared helpers for ferry's end-to-end tests: finding the binary, running shell scripts in
//! private mount namespaces, and refusing to pass silently when the machine cannot run them.
#![forbid(unsafe_code)]

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
    if rustix::process::geteuid().is_root() {
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

/// A command's output as text (lossy: tests only show and compare it).
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A command's exit status and both streams, for a failure message.
pub fn describe(o: &Output) -> String {
    format!(
        "({})\n--- stdout\n{}\n--- stderr\n{}",
        o.status,
        text(&o.stdout),
        text(&o.stderr)
    )
}

/// Panic with both streams when a command failed.
pub fn check(out: &Output, what: &str) {
    if !out.status.success() {
        panic!("{what} failed {}", describe(out));
    }
}

/// The rest of the first line of `out` that starts with `tag`.
pub fn tagged_line<'a>(out: &'a str, tag: &str) -> Option<&'a str> {
    out.lines().find_map(|l| l.strip_prefix(tag))
}

/// What a scenario script reported on its `RESULT ` line ("no result" when it printed none).
pub fn result_line(stdout: &[u8]) -> String {
    tagged_line(&String::from_utf8_lossy(stdout), "RESULT ")
        .unwrap_or("no result")
        .to_string()
}

/// A name (container id, cgroup) no other run of the tests uses at the same time: `prefix`,
/// this test process's pid and a number drawn once per call. Two runs of one test file at
/// once, or two tests of one run on separate threads, never meet on it.
pub fn unique_id(prefix: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{prefix}-{}-{n}", std::process::id())
}

/// Busybox shell (inside a container) that waits, up to 5 s, until something listens on TCP
/// `port` in the container's network namespace, so a client started after it finds the
/// listener instead of racing it. Uses no single quotes: it goes inside `sh -c '...'`.
pub fn listening(port: u16) -> String {
    format!(
        "for _ in $(seq 250); do grep -qs \":{port:04X} 0*:0000 0A\" /proc/net/tcp /proc/net/tcp6 && break; sleep 0.02; done"
    )
}

/// The text of [`WAIT_FOR`], a literal so that [`BUNDLE_PRELUDE`] can start with it.
macro_rules! wait_for_sh {
    () => {
        include_str!("../../hack/wait-for.sh")
    };
}

/// Shell `wait_for SECONDS COMMAND...` (hack/wait-for.sh, which hack's scripts source too): runs
/// COMMAND every 20 ms until it succeeds; after SECONDS (whole) it fails, saying on stderr what
/// it waited for. Scripts wait on a condition with it instead of sleeping for a guessed time.
pub const WAIT_FOR: &str = wait_for_sh!();

/// Polls `cond` every 20 ms until it holds (true) or `timeout` has passed (false).
pub fn poll_until(timeout: std::time::Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if std::time::Instant::now() >= end {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Prelude of scripts that drive a runtime by hand: `$RT` is the runtime, `$W` scratch, `$B` a
/// busybox bundle (from `hack/setup`) whose init loops until SIGTERM, `r` runs the runtime
/// with a private state root, `wait_for` is [`WAIT_FOR`], `cfg FILTER` edits the bundle's config.json with jq. Containers
/// left at exit are force-deleted.
pub const BUNDLE_PRELUDE: &str = concat!(
    wait_for_sh!(),
    r#"set -eu
ST=$W/state; B=$W/bundle
mkdir -p $B
cp -a /opt/ferry/images/busybox/rootfs $B/rootfs
(cd $B && /usr/bin/runc spec)
cfg() { jq "$1" $B/config.json > $W/c.json && mv $W/c.json $B/config.json; }
cfg '.process.terminal=false | del(.process.rlimits)
  | .process.args=["sh","-c","trap \"exit 0\" TERM; while :; do sleep 0.1; done"]'
r() { "$RT" --root $ST "$@"; }
status() { r state "$1" | jq -r .status; }
is_status() { [ "$(status $1 2>/dev/null)" = "$2" ]; }
wait_status() { wait_for 5 is_status "$1" "$2"; }
cleanup() { for c in $(r list -q 2>/dev/null); do r delete --force $c >/dev/null 2>&1 || true; done; }
trap cleanup EXIT
"#
);

/// A container init (`sh -c COUNTER`) that counts in /tmp/count after a token drawn once at
/// start: after a restore the token must be the checkpointed process's and the count must go
/// on. Each count goes to a new file renamed into place, so a reader on the host never meets
/// a half-written one.
pub const COUNTER: &str = "t=$RANDOM$RANDOM; i=0; while :; do i=$((i+1)); echo \"$t $i\" > /tmp/count.new; mv /tmp/count.new /tmp/count; sleep 0.1; done";

/// The binary of a runtime by name: `ferry` (the build under test) or `runc`.
pub fn runtime_bin(runtime: &str) -> String {
    match runtime {
        "ferry" => ferry_bin().display().to_string(),
        _ => "/usr/bin/runc".to_string(),
    }
}

/// Run `script` after [`BUNDLE_PRELUDE`] with `runtime` in a private mount namespace and a
/// scratch directory of its own.
pub fn run_with(runtime: &str, script: &str) -> Output {
    let w = match tempfile::tempdir() {
        Ok(w) => w,
        Err(e) => panic!("creating a scratch directory: {e}"),
    };
    in_private_ns(
        &format!("{BUNDLE_PRELUDE}\n{script}\n"),
        &[
            ("W", w.path().display().to_string()),
            ("RT", runtime_bin(runtime)),
        ],
    )
}

/// Runs `script` (after [`BUNDLE_PRELUDE`]) with ferry and with runc; both must succeed and
/// print the same. Returns the output.
pub fn same_on_both(test: &str, script: &str) -> String {
    let f = run_with("ferry", script);
    check(&f, &format!("{test} with ferry"));
    let r = run_with("runc", script);
    check(&r, &format!("{test} with runc"));
    assert_eq!(
        text(&f.stdout),
        text(&r.stdout),
        "{test}: ferry (left) and runc (right) differ; ferry's stderr:\n{}",
        text(&f.stderr)
    );
    text(&f.stdout)
}

pub mod nodes;
pub mod propagation;
pub mod table;
