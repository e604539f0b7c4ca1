//! Where ferry once differed from runc 1.1.5: every script runs once with ferry and once with
//! runc on the same bundle, and their outputs must be equal (and what they print is checked
//! too, so that two equal wrong answers fail as well).
//!
//! Container ids carry the prefix `pa-`.

use ferry_integration::{check, require_root, run_with};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs `script` with both runtimes; both must succeed and print the same. Returns the output.
fn same_on_both(test: &str, script: &str) -> String {
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

/// A new network namespace (no path) gets `lo` up, so 127.0.0.1 answers inside it.
#[test]
fn new_network_namespace_has_loopback_up() {
    if !require_root() {
        return;
    }
    let out = same_on_both(
        "loopback",
        r#"r run -d --bundle $B pa-net </dev/null >/dev/null 2>&1
r exec pa-net cat /sys/class/net/lo/flags
r exec pa-net sh -c 'ip -o link show lo | grep -o "<[^>]*>"'
r exec pa-net sh -c '(echo pong | nc -l -p 7777 127.0.0.1 >/dev/null &) ; sleep 0.3; echo ping | nc -w 2 127.0.0.1 7777' || echo unreachable
r delete --force pa-net"#,
    );
    assert_eq!(out, "0x9\n<LOOPBACK,UP,LOWER_UP>\npong\n");
}
