//! podman with `--runtime <ferry>`: the commands people type, run the same way with runc so a
//! behaviour difference fails the test. Every test runs twice, once with the system's podman
//! 4.3 (module `podman4`) and once with podman 5 from hack/setup's private prefix (module
//! `podman5`), each with ferry and with runc.
//!
//! podman runs with the private configuration and storage of `hack/podman-env` (one set per
//! podman version; the image `localhost/ferry-busybox` comes from `hack/setup`), inside a
//! private mount namespace so its overlay mounts never reach the host's. Every script removes
//! its containers, pods and checkpoint images on exit.

use ferry_integration::{check, ferry_bin, in_private_ns, listening, require_root, WAIT_FOR};
use std::process::Output;

const IMAGE: &str = "localhost/ferry-busybox:latest";

/// Which podman drives the runtime: hack/podman-env's `FERRY_PODMAN`.
#[derive(Clone, Copy, Debug)]
enum Podman {
    /// The system's podman 4.3 (Debian 12).
    V4,
    /// podman 5.8 from Debian unstable in /opt/ferry/podman-5 (hack/setup).
    V5,
}

impl Podman {
    fn env(self) -> &'static str {
        match self {
            Podman::V4 => "4",
            Podman::V5 => "5",
        }
    }
}

/// Run `script` with `fpodman` defined for podman `v` and `$RT` set to the runtime under test;
/// `$NAME` is a container name unique to this test, podman and runtime, and `wait_for` is
/// [`WAIT_FOR`]. On exit the containers `$NAME` and `$NAME-copy`, the pod `$NAME-pod` and the
/// image `localhost/$NAME-ckpt` are removed, and before the script too: the name is the same
/// in every run, so what a run killed before its exit trap left behind is removed by the next
/// one (runs of this file take turns: podman's storage is one for all of them).
fn podman(v: Podman, runtime: &str, test: &str, script: &str) -> Output {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    if let Podman::V5 = v {
        let bin = std::path::Path::new("/opt/ferry/podman-5/root/usr/bin/podman");
        assert!(
            bin.exists(),
            "podman 5 is not installed at {}: run hack/setup",
            bin.display()
        );
    }
    let rt = match runtime {
        "ferry" => ferry_bin().display().to_string(),
        _ => "/usr/bin/runc".to_string(),
    };
    let full = format!(
        r#"{WAIT_FOR}set -eu
export FERRY_BIN="$RT" FERRY_PODMAN
. "$REPO/hack/podman-env"
p() {{ fpodman --runtime "$RT" "$@"; }}
cleanup() {{
    for n in "$NAME" "$NAME-copy"; do fpodman rm -f -t 0 "$n" >/dev/null 2>&1 || true; done
    fpodman pod rm -f -t 0 "$NAME-pod" >/dev/null 2>&1 || true
    fpodman rmi -f "localhost/$NAME-ckpt" >/dev/null 2>&1 || true
}}
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
            ("FERRY_PODMAN", v.env().to_string()),
            ("NAME", format!("p5-it{}-{test}-{runtime}", v.env())),
            ("IMAGE", IMAGE.to_string()),
        ],
    )
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Both runtimes must succeed and print the same thing.
fn same_on_both(v: Podman, test: &str, script: &str) -> String {
    let f = podman(v, "ferry", test, script);
    check(&f, &format!("{test} with ferry under podman {}", v.env()));
    let r = podman(v, "runc", test, script);
    check(&r, &format!("{test} with runc under podman {}", v.env()));
    assert_eq!(
        stdout(&f),
        stdout(&r),
        "{test} under podman {}: ferry and runc differ",
        v.env()
    );
    stdout(&f)
}

/// One `#[test]` per podman version for each test body `fn NAME(v: Podman)`.
macro_rules! on_each_podman {
    ($($name:ident),* $(,)?) => {
        mod podman4 {
            $(#[test]
            fn $name() {
                if super::require_root() {
                    super::$name(super::Podman::V4);
                }
            })*
        }
        mod podman5 {
            $(#[test]
            fn $name() {
                if super::require_root() {
                    super::$name(super::Podman::V5);
                }
            })*
        }
    };
}

on_each_podman!(
    run_rm_prints_output_and_leaves_nothing,
    run_passes_the_container_exit_code,
    detached_exec_logs_stop_rm,
    interactive_tty_run,
    checkpoint_restore_leave_running_export_import,
    checkpoint_to_an_image_and_restore_from_it,
    checkpoint_restore_print_stats,
    restore_into_a_pod,
    checkpoint_restore_established_tcp,
    established_tcp_in_a_private_network_namespace,
);

fn run_rm_prints_output_and_leaves_nothing(v: Podman) {
    let out = same_on_both(
        v,
        "rm",
        r#"p run --rm --name "$NAME" "$IMAGE" echo hello from busybox
fpodman container exists "$NAME" && echo still-there || echo gone"#,
    );
    assert_eq!(out, "hello from busybox\ngone\n");
}

fn run_passes_the_container_exit_code(v: Podman) {
    let out = same_on_both(
        v,
        "exit",
        r#"rc=0; p run --rm --name "$NAME" "$IMAGE" sh -c 'exit 3' || rc=$?; echo "rc=$rc""#,
    );
    assert_eq!(out, "rc=3\n");
}

fn detached_exec_logs_stop_rm(v: Podman) {
    let out = same_on_both(
        v,
        "detach",
        r#"p run -d --name "$NAME" "$IMAGE" sh -c 'trap "echo bye; exit 0" TERM; echo started; while :; do sleep 0.1; done' >/dev/null
# "started" comes after the trap is set: from then on `stop` ends it through the trap.
started() { fpodman logs "$NAME" 2>/dev/null | grep -q started; }
wait_for 10 started
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

fn interactive_tty_run(v: Podman) {
    // `script` gives podman a pty, as a user's terminal would.
    let out = same_on_both(
        v,
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
/// place, so a reader never meets it half-written). `grows NAME WHAT` says "WHAT: counting"
/// once the count of container NAME has gone past what it was.
const COUNTER: &str = r#"count() { p exec "$1" cat /tmp/count; }
counts_past() { [ "$(count "$1" 2>/dev/null)" -gt "$2" ] 2>/dev/null; }
grows() { a=$(count "$1"); wait_for 10 counts_past "$1" $a && echo "$2: counting"; }
p run -d --name "$NAME" "$IMAGE" sh -c 'i=0; while :; do i=$((i+1)); echo $i > /tmp/count.new; mv /tmp/count.new /tmp/count; sleep 0.1; done' >/dev/null
wait_for 10 counts_past "$NAME" 0
"#;

fn checkpoint_restore_leave_running_export_import(v: Podman) {
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
    let out = same_on_both(v, "cr", &script);
    assert_eq!(
        out,
        "exited\nrestored: continues\nrestored: counting\nrunning\nleft running: counting\n\
         after export: exited\nimported: continues\nimported: counting\ncopy: counting\n"
    );
}

fn checkpoint_to_an_image_and_restore_from_it(v: Podman) {
    let script = format!(
        r#"{COUNTER}
IMG="localhost/$NAME-ckpt"
c0=$(count "$NAME")
p container checkpoint --create-image "$IMG" "$NAME" >/dev/null
fpodman inspect -f '{{{{.State.Status}}}}' "$NAME"
fpodman image exists "$IMG" && echo "image made"
p rm -f "$NAME" >/dev/null
p container restore "$IMG" >/dev/null
[ "$(fpodman inspect -f '{{{{.Name}}}}' "$NAME")" = "$NAME" ] && echo "restored under its own name"
fpodman inspect -f '{{{{.State.Status}}}}' "$NAME"
c1=$(count "$NAME"); [ "$c1" -ge "$c0" ] && echo "restored from the image: continues"
grows "$NAME" restored
p container restore --name "$NAME-copy" "$IMG" >/dev/null
c2=$(count "$NAME-copy"); [ "$c2" -ge "$c0" ] && echo "copy: continues"
grows "$NAME-copy" copy
[ "$(fpodman inspect -f '{{{{.Id}}}}' "$NAME")" != "$(fpodman inspect -f '{{{{.Id}}}}' "$NAME-copy")" ] && echo "copy is a new container"
"#
    );
    let out = same_on_both(v, "img", &script);
    assert_eq!(
        out,
        "exited\nimage made\nrestored under its own name\nrunning\nrestored from the image: continues\n\
         restored: counting\ncopy: continues\ncopy: counting\ncopy is a new container\n"
    );
}

/// `--print-stats` prints JSON: podman's own duration, then per container the runtime's
/// duration and CRIU's statistics, which the runtime reads from CRIU's stats files.
fn checkpoint_restore_print_stats(v: Podman) {
    let script = format!(
        r#"{COUNTER}
p container checkpoint --print-stats "$NAME"
echo "--- restore"
p container restore --print-stats "$NAME"
echo "--- id"
fpodman inspect -f '{{{{.Id}}}}' "$NAME"
"#
    );
    for runtime in ["ferry", "runc"] {
        let what = format!("--print-stats with {runtime} under podman {}", v.env());
        let o = podman(v, runtime, "stats", &script);
        check(&o, &what);
        let out = stdout(&o);
        let parts: Vec<&str> = out.split("--- ").collect();
        assert_eq!(parts.len(), 3, "{what}: unexpected output:\n{out}");
        let dump: serde_json::Value = serde_json::from_str(parts[0])
            .unwrap_or_else(|e| panic!("{what}: checkpoint stats are not JSON ({e}):\n{out}"));
        let restore: serde_json::Value =
            serde_json::from_str(parts[1].trim_start_matches("restore"))
                .unwrap_or_else(|e| panic!("{what}: restore stats are not JSON ({e}):\n{out}"));
        let id = parts[2].trim_start_matches("id").trim();
        let positive = |v: &serde_json::Value, path: &[&str]| {
            let mut cur = v;
            for k in path {
                cur = &cur[*k];
            }
            assert!(
                cur.as_u64().is_some_and(|n| n > 0),
                "{what}: {} is {cur}, expected a positive number in\n{v:#}",
                path.join(".")
            );
        };
        positive(&dump, &["podman_checkpoint_duration"]);
        positive(&restore, &["podman_restore_duration"]);
        for (stats, duration, criu) in [
            (
                &dump,
                "runtime_checkpoint_duration",
                &[
                    "freezing_time",
                    "frozen_time",
                    "memdump_time",
                    "pages_written",
                ][..],
            ),
            (
                &restore,
                "runtime_restore_duration",
                &["restore_time", "pages_restored"][..],
            ),
        ] {
            let containers = stats["container_statistics"]
                .as_array()
                .unwrap_or_else(|| panic!("{what}: no container_statistics in\n{stats:#}"));
            assert_eq!(
                containers.len(),
                1,
                "{what}: one container expected:\n{stats:#}"
            );
            let c = &containers[0];
            assert_eq!(
                c["Id"].as_str(),
                Some(id),
                "{what}: container id in\n{stats:#}"
            );
            positive(c, &[duration]);
            for k in criu {
                positive(c, &["criu_statistics", k]);
            }
        }
    }
}

/// A container checkpointed in a pod is restored from its checkpoint image into a pod (by
/// the pod's ID: podman 4.3 looks `--pod` up as an ID only, "pod with ID NAME not found")
/// and joins the namespaces the pod's infra container holds.
fn restore_into_a_pod(v: Podman) {
    let script = COUNTER.replace(
        r#"p run -d --name "$NAME" "#,
        r#"pod=$(p pod create --name "$NAME-pod")
p run -d --pod "$pod" --name "$NAME" "#,
    ) + r#"IMG="localhost/$NAME-ckpt"
p container checkpoint --create-image "$IMG" "$NAME" >/dev/null
p rm -f "$NAME" >/dev/null
p container restore --pod "$pod" --name "$NAME-copy" "$IMG" >/dev/null
[ "$(fpodman inspect -f '{{.Pod}}' "$NAME-copy")" = "$pod" ] && echo "in the pod"
grows "$NAME-copy" "restored in the pod"
infra=$(fpodman inspect -f '{{.State.Pid}}' "$(fpodman pod inspect -f '{{.InfraContainerID}}' "$pod")")
ctr=$(fpodman inspect -f '{{.State.Pid}}' "$NAME-copy")
for ns in net ipc uts pid; do
    [ "$(readlink /proc/$infra/ns/$ns)" = "$(readlink /proc/$ctr/ns/$ns)" ] && echo "$ns: the pod's" || echo "$ns: its own"
done
[ "$(p exec "$NAME-copy" hostname)" = "$NAME-pod" ] && echo "hostname: the pod's"
"#;
    let out = same_on_both(v, "pod", &script);
    assert_eq!(
        out,
        "in the pod\nrestored in the pod: counting\nnet: the pod's\nipc: the pod's\n\
         uts: the pod's\npid: its own\nhostname: the pod's\n"
    );
}

/// [`tcp`] in a pod: the connection runs over the loopback of the network namespace the pod's
/// infra container holds.
fn checkpoint_restore_established_tcp(v: Podman) {
    let script = format!(
        "{CRIU_43}pod=$(p pod create --name \"$NAME-pod\")\nWHERE=\"--pod $pod\"\n{}",
        tcp()
    );
    let out = same_on_both(v, "tcp", &script);
    assert_eq!(
        out,
        "plain checkpoint refused\nrunning\nexited\nrunning\nthe connection carries on\n\
         1..N in order\n"
    );
}

/// The same connection in a container of its own network namespace (podman's `--network
/// none`, hack/podman-env's default): ferry restores it. runc 1.1.5 does not: in the
/// namespace its restore makes, CRIU cannot reconnect the sockets ("Can't connect inet socket
/// back: Network is unreachable"), so podman's restore fails and the container is gone. This checks runc still fails, so a runc that learns it shows up here.
fn established_tcp_in_a_private_network_namespace(v: Podman) {
    let script = format!("{CRIU_43}WHERE=\n{}", tcp());
    let f = podman(v, "ferry", "tcpnone", &script);
    check(
        &f,
        &format!("tcp in --network none with ferry, podman {}", v.env()),
    );
    assert_eq!(
        stdout(&f),
        "plain checkpoint refused\nrunning\nexited\nrunning\nthe connection carries on\n\
         1..N in order\n"
    );
    let r = podman(v, "runc", "tcpnone", &script);
    assert!(
        !r.status.success(),
        "runc restored it now: compare with ferry instead"
    );
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        stdout(&r).ends_with("running\nexited\n") && err.contains("criu failed"),
        "runc failed elsewhere than in CRIU's restore:\n{}\n{err}",
        stdout(&r)
    );
}

/// CRIU 4.1 cannot dump IP sockets on this kernel, so both runtimes (and podman's own CRIU
/// check) find CRIU 4.3 first on PATH.
const CRIU_43: &str = r#"CRIU_DIR=$(mktemp -d); ln -s /usr/local/bin/criu-new "$CRIU_DIR/criu"
trap 'cleanup; rm -rf "$CRIU_DIR"' EXIT
export PATH="$CRIU_DIR:$PATH"
"#;

/// A container (`$WHERE` holds the options placing it) with a listener that writes what it
/// receives to /tmp/recv and a sender of 1, 2, 3, ... on one connection to it over loopback
/// (started once the listener listens).
/// It is checkpointed (without `--tcp-established` that is refused and the container keeps
/// running) and restored with `--tcp-established`: the connection carries on where it was.
fn tcp() -> String {
    format!(
        r#"p run -d $WHERE --name "$NAME" "$IMAGE" sh -c 'sleep 999999 | nc -l -p 5000 > /tmp/recv & {listen}; i=0; while :; do i=$((i+1)); echo $i; sleep 0.1; done | nc 127.0.0.1 5000' >/dev/null
last() {{ p exec "$NAME" tail -n 1 /tmp/recv; }}
past() {{ [ "$(last 2>/dev/null)" -gt "$1" ] 2>/dev/null; }}
wait_for 10 past 0
a=$(last)
rc=0; p container checkpoint "$NAME" >/dev/null 2>&1 || rc=$?
[ $rc -ne 0 ] && echo "plain checkpoint refused"
fpodman inspect -f '{{{{.State.Status}}}}' "$NAME"
p container checkpoint --tcp-established "$NAME" >/dev/null
fpodman inspect -f '{{{{.State.Status}}}}' "$NAME"
p container restore --tcp-established "$NAME" >/dev/null
fpodman inspect -f '{{{{.State.Status}}}}' "$NAME"
wait_for 10 past "$a" && echo "the connection carries on"
# Every number arrived once and in order: the sender was not restarted on a new connection.
p exec "$NAME" awk 'NR != $1 {{ bad = 1 }} END {{ print (bad ? "gap or restart" : "1.." NR " in order") }}' /tmp/recv | sed 's/1\.\.[0-9]*/1..N/'
"#,
        listen = listening(5000)
    )
}
