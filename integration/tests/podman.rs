//! podman 4 with `--runtime <ferry>`: the commands people type, run the same way with runc so
//! a behaviour difference fails the test.
//!
//! podman runs with the private configuration and storage of `hack/podman-env` (the image
//! `localhost/ferry-busybox` comes from `hack/setup`), inside a private mount namespace so its
//! overlay mounts never reach the host's. Every script removes its containers on exit.

use ferry_integration::{check, ferry_bin, in_private_ns, require_root};
use std::process::Output;

const IMAGE: &str = "localhost/ferry-busybox:latest";

/// Run `script` with `fpodman` defined and `$RT` set to the runtime under test; `$NAME` is a
/// container name unique to this test and runtime, removed (with its checkpoints) on exit.
fn podman(runtime: &str, test: &str, script: &str) -> Output {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let rt = match runtime {
        "ferry" => ferry_bin().display().to_string(),
        _ => "/usr/bin/runc".to_string(),
    };
    let full = format!(
        r#"set -eu
export FERRY_BIN="$RT"
. "$REPO/hack/podman-env"
p() {{ fpodman --runtime "$RT" "$@"; }}
cleanup() {{ for n in "$NAME" "$NAME-copy"; do fpodman rm -f -t 0 "$n" >/dev/null 2>&1 || true; done; }}
cleanup
trap cleanup EXIT
{script}
"#
    );
    in_private_ns(
        &full,
        &[
            ("RT", rt),
            ("REPO", repo.display().to_string()),
            ("NAME", format!("ferry-it-{test}-{runtime}")),
            ("IMAGE", IMAGE.to_string()),
        ],
    )
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Both runtimes must succeed and print the same thing.
fn same_on_both(test: &str, script: &str) -> String {
    let f = podman("ferry", test, script);
    check(&f, &format!("{test} with ferry"));
    let r = podman("runc", test, script);
    check(&r, &format!("{test} with runc"));
    assert_eq!(stdout(&f), stdout(&r), "{test}: ferry and runc differ");
    stdout(&f)
}

#[test]
fn run_rm_prints_output_and_leaves_nothing() {
    if !require_root() {
        return;
    }
    let out = same_on_both(
        "rm",
        r#"p run --rm --name "$NAME" "$IMAGE" echo hello from busybox
fpodman container exists "$NAME" && echo still-there || echo gone"#,
    );
    assert_eq!(out, "hello from busybox\ngone\n");
}

#[test]
fn run_passes_the_container_exit_code() {
    if !require_root() {
        return;
    }
    let out = same_on_both(
        "exit",
        r#"rc=0; p run --rm --name "$NAME" "$IMAGE" sh -c 'exit 3' || rc=$?; echo "rc=$rc""#,
    );
    assert_eq!(out, "rc=3\n");
}

#[test]
fn detached_exec_logs_stop_rm() {
    if !require_root() {
        return;
    }
    let out = same_on_both(
        "detach",
        r#"p run -d --name "$NAME" "$IMAGE" sh -c 'echo started; trap "echo bye; exit 0" TERM; while :; do sleep 0.1; done' >/dev/null
sleep 0.5
fpodman inspect -f '{{.State.Status}}' "$NAME"
p exec "$NAME" sh -c 'echo exec-ok; id -u'
p exec -e FOO=bar -w /tmp "$NAME" sh -c 'echo $FOO $(pwd)'
rc=0; p exec "$NAME" sh -c 'exit 7' || rc=$?; echo "exec rc=$rc"
p stop -t 5 "$NAME" >/dev/null
fpodman inspect -f '{{.State.Status}} {{.State.ExitCode}}' "$NAME"
fpodman logs "$NAME"
p rm "$NAME" >/dev/null
fpodman container exists "$NAME" && echo still-there || echo removed"#,
    );
    assert_eq!(
        out,
        "running\nexec-ok\n0\nbar /tmp\nexec rc=7\nexited 0\nstarted\nbye\nremoved\n"
    );
}

#[test]
fn interactive_tty_run() {
    if !require_root() {
        return;
    }
    // `script` gives podman a pty, as a user's terminal would.
    let out = same_on_both(
        "tty",
        r#"T=$(mktemp); S=; trap 'cleanup; rm -f $T' EXIT
cat > $T <<EOF
. "$REPO/hack/podman-env"
fpodman --runtime "$RT" run -it --rm --name "$NAME" "$IMAGE" sh -c 'tty; test -t 0 && echo stdin-is-tty; test -t 1 && echo stdout-is-tty'
EOF
# Standard input stays open until the container is done, as a user's terminal does: at end of
# input podman may stop attaching before the container's output is copied, with either runtime.
F=$(mktemp -u); mkfifo "$F"; trap 'cleanup; kill $S 2>/dev/null; rm -f $T $F' EXIT
sleep 60 >"$F" 2>/dev/null </dev/null & S=$!
script -qec "bash $T" /dev/null <"$F" | tr -d '\r'"#,
    );
    assert_eq!(out, "/dev/pts/0\nstdin-is-tty\nstdout-is-tty\n");
}

/// A counter container: its init writes an increasing number to /tmp/count (renamed into
/// place, so a reader never meets it half-written).
const COUNTER: &str = r#"count() { p exec "$1" cat /tmp/count; }
grows() { a=$(count "$1"); sleep 0.5; b=$(count "$1"); [ "$b" -gt "$a" ] && echo "$2: counting"; }
p run -d --name "$NAME" "$IMAGE" sh -c 'i=0; while :; do i=$((i+1)); echo $i > /tmp/count.new; mv /tmp/count.new /tmp/count; sleep 0.1; done' >/dev/null
sleep 0.5
"#;

#[test]
fn checkpoint_restore_leave_running_export_import() {
    if !require_root() {
        return;
    }
    let script = format!(
        r#"{COUNTER}
EXP=$(mktemp -u /tmp/ferry-it-export.XXXXXX.tar.gz)
trap 'cleanup; rm -f $EXP' EXIT
c0=$(count "$NAME")
p container checkpoint "$NAME" >/dev/null
fpodman inspect -f '{{{{.State.Status}}}}' "$NAME"
p container restore "$NAME" >/dev/null
c1=$(count "$NAME"); [ "$c1" -ge "$c0" ] && echo "restored: continues"
grows "$NAME" restored
p container checkpoint --leave-running "$NAME" >/dev/null
fpodman inspect -f '{{{{.State.Status}}}}' "$NAME"
grows "$NAME" "left running"
p container checkpoint --export "$EXP" "$NAME" >/dev/null
c2=$(p inspect -f '{{{{.State.Status}}}}' "$NAME")
echo "after export: $c2"
p rm -f "$NAME" >/dev/null
p container restore --import "$EXP" >/dev/null
c3=$(count "$NAME"); [ "$c3" -ge "$c1" ] && echo "imported: continues"
grows "$NAME" imported
p container restore --import "$EXP" --name "$NAME-copy" >/dev/null
grows "$NAME-copy" copy
"#
    );
    let out = same_on_both("cr", &script);
    assert_eq!(
        out,
        "exited\nrestored: continues\nrestored: counting\nrunning\nleft running: counting\n\
         after export: exited\nimported: continues\nimported: counting\ncopy: counting\n"
    );
}
