//! The runc command-line contract, driven by hand as engines drive it: every script runs once
//! with ferry and once with runc, and where both must agree their outputs are compared, so a
//! behaviour difference is a test failure.
//!
//! Containers come from the busybox root filesystem of `hack/setup`; each script works in its
//! own scratch directory and private mount namespace and force-deletes what it created on exit.

use ferry_integration::{check, describe, require_root, run_with, same_on_both, text};

/// Defines `receive SOCKET OUT`: listen on SOCKET, take the pty master a runtime sends over
/// SCM_RIGHTS (as conmon and containerd's shim do) and copy what the terminal shows to OUT
/// until the last slave closes. Waits until the socket exists.
const CONSOLE_RECEIVER: &str = r#"cat > $W/recv.py <<'EOF'
import os, signal, socket, sys
# Bounded: a script that fails before the runtime connects must not leave this process
# holding the test's output pipe (the test would wait for it forever).
signal.alarm(60)
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1]); s.listen(1)
c, _ = s.accept()
_, fds, _, _ = socket.recv_fds(c, 1024, 1)
out = b""
while True:
    try:
        d = os.read(fds[0], 4096)
    except OSError:
        break
    if not d:
        break
    out += d
sys.stdout.write(out.decode().replace("\r", ""))
EOF
receive() {
  python3 $W/recv.py "$1" > "$2" &
  rp=$!
  wait_for 5 test -S "$1"
}"#;

#[test]
fn spec_writes_a_default_config() {
    if !require_root() {
        return;
    }
    let out = same_on_both(
        "spec",
        r#"mkdir $W/s && cd $W/s && "$RT" spec
jq -r '.ociVersion[0:2], .root.path, .process.terminal, (.process.args|join(" ")), (.linux.namespaces|map(.type)|sort|join(","))' config.json
rc=0; "$RT" spec 2>/dev/null || rc=$?; echo "again: rc=$rc""#,
    );
    assert_eq!(
        out,
        "1.\nrootfs\ntrue\nsh\nipc,mount,network,pid,uts\nagain: rc=1\n"
    );
}

#[test]
fn create_start_state_list_kill_delete() {
    if !require_root() {
        return;
    }
    let out = same_on_both(
        "lifecycle",
        r#"r create --bundle $B --pid-file $W/pid lc-c1 </dev/null
# The pid file holds digits only: containerd rejects a trailing newline.
grep -qx '[0-9][0-9]*' $W/pid && [ "$(tail -c1 $W/pid | od -An -c | tr -d ' ')" != '\n' ] && echo pid-file-digits
r state lc-c1 | jq -r '.ociVersion[0:2], .id, .status, (.pid|tostring == "'"$(cat $W/pid)"'"), (.bundle == "'"$B"'"), (.rootfs == "'"$B/rootfs"'")'
r list -q
r start lc-c1
wait_status lc-c1 running && echo running
r list --format json | jq -r '.[] | .id + " " + .status'
r list | head -n1 | awk '{print $1, $2, $3}'
r kill lc-c1
wait_status lc-c1 stopped && echo stopped
rc=0; r kill lc-c1 KILL 2>$W/err || rc=$?; echo "kill stopped: rc=$rc"
r delete lc-c1
rc=0; r state lc-c1 2>$W/err || rc=$?; echo "state deleted: rc=$rc"
grep -q 'does not exist' $W/err && echo says-does-not-exist
r list -q | wc -l"#,
    );
    assert_eq!(
        out,
        "pid-file-digits\n1.\nlc-c1\ncreated\ntrue\ntrue\ntrue\nlc-c1\nrunning\nlc-c1 running\nID PID STATUS\n\
         stopped\nkill stopped: rc=1\nstate deleted: rc=1\nsays-does-not-exist\n0\n"
    );
}

#[test]
fn run_foreground_gives_the_exit_status_and_detach_runs_on() {
    if !require_root() {
        return;
    }
    let out = same_on_both(
        "run",
        r#"cfg '.process.args=["sh","-c","echo out; echo err >&2; exit 5"]'
rc=0; r run --bundle $B fg <&- 2>$W/err || rc=$?; echo "rc=$rc"; cat $W/err
r list -q | wc -l
cfg '.process.args=["sh","-c","trap \"exit 0\" TERM; while :; do sleep 0.1; done"]'
r run -d --bundle $B --pid-file $W/pid bg </dev/null >/dev/null
status bg
[ -d /proc/$(cat $W/pid) ] && echo init-alive
r kill bg TERM; wait_status bg stopped && echo stopped
r delete bg"#,
    );
    assert_eq!(out, "out\nrc=5\nerr\n0\nrunning\ninit-alive\nstopped\n");
}

#[test]
fn exec_inline_process_file_env_cwd_user_detach() {
    if !require_root() {
        return;
    }
    let out = same_on_both(
        "exec",
        r#"r run -d --bundle $B lc-c1 </dev/null >/dev/null
r exec lc-c1 echo inline
r exec --env FOO=bar --cwd /tmp lc-c1 sh -c 'echo $FOO $(pwd)'
r exec --user 1000:1000 lc-c1 id -u
rc=0; r exec lc-c1 sh -c 'exit 7' || rc=$?; echo "exec rc=$rc"
r state lc-c1 | jq -r .status
jq '.process | .args=["sh","-c","echo from-process-file $X"] | .env += ["X=y"] | .terminal=false' $B/config.json > $W/process.json
r exec --process $W/process.json lc-c1
r exec -d --pid-file $W/epid lc-c1 sleep 1
grep -qx '[0-9][0-9]*' $W/epid && [ -d /proc/$(cat $W/epid) ] && echo detached-exec-alive
r exec --cap CAP_SYS_ADMIN lc-c1 sh -c 'grep CapEff /proc/self/status' | awk '{print ($2 != "0000000000000000") ? "has-caps" : "no-caps"}'
r exec --no-new-privs lc-c1 grep NoNewPrivs /proc/self/status | awk '{print "nnp=" $2}'
rc=0; r exec nosuch true 2>$W/err || rc=$?; echo "missing: rc=$rc"
grep -q 'does not exist' $W/err && echo says-does-not-exist"#,
    );
    assert_eq!(
        out,
        "inline\nbar /tmp\n1000\nexec rc=7\nrunning\nfrom-process-file y\ndetached-exec-alive\nhas-caps\nnnp=1\nmissing: rc=255\nsays-does-not-exist\n"
    );
}

#[test]
fn ps_pause_resume_update_events() {
    if !require_root() {
        return;
    }
    let out = same_on_both(
        "ps-pause-update",
        r#"r run -d --bundle $B --pid-file $W/pid lc-c1 </dev/null >/dev/null
r ps --format json lc-c1 | jq -r --arg p "$(cat $W/pid)" 'map(tostring) | index($p) != null'
r ps lc-c1 | head -n1 | awk '{print $1, $2}'
r pause lc-c1; status lc-c1
grep -q 'State:.*[tT]' /proc/$(cat $W/pid)/status || grep -q FROZEN /sys/fs/cgroup/freezer$(sed -n 's/^[0-9]*:freezer://p' /proc/$(cat $W/pid)/cgroup)/freezer.state && echo frozen
r resume lc-c1; status lc-c1
mem=/sys/fs/cgroup/memory$(sed -n 's/^[0-9]*:memory://p' /proc/$(cat $W/pid)/cgroup)
r update --memory 67108864 lc-c1; cat $mem/memory.limit_in_bytes
echo '{"memory":{"limit":50331648}}' > $W/res.json
r update --resources $W/res.json lc-c1; cat $mem/memory.limit_in_bytes
r events --stats lc-c1 | jq -r '.type, .id, (.data.memory.usage.usage > 0), (.data.pids.current >= 1)'
rc=0; r pause nosuch 2>/dev/null || rc=$?; echo "pause missing: rc=$rc""#,
    );
    assert_eq!(
        out,
        "true\nUID PID\npaused\nfrozen\nrunning\n67108864\n50331648\nstats\nlc-c1\ntrue\ntrue\npause missing: rc=1\n"
    );
}

#[test]
fn console_socket_receives_the_terminal() {
    if !require_root() {
        return;
    }
    // The receiver takes the pty master over SCM_RIGHTS, as conmon and containerd's shim do.
    let out = same_on_both(
        "console",
        &format!(
            r#"{CONSOLE_RECEIVER}
cfg '.process.terminal=true | .process.args=["sh","-c","tty; test -t 0 && echo stdin-is-tty"]'
receive $W/console.sock $W/console.out
r create --bundle $B --console-socket $W/console.sock lc-c1
r start lc-c1
wait $rp
cat $W/console.out
wait_status lc-c1 stopped && r delete lc-c1"#
        ),
    );
    assert_eq!(out, "/dev/pts/0\nstdin-is-tty\n");
}

#[test]
fn errors_name_the_problem_and_exit_1() {
    if !require_root() {
        return;
    }
    // Both runtimes must fail; ferry's messages must name the fix.
    let script = r#"try() { rc=0; "$@" >$W/out 2>$W/err || rc=$?; echo "rc=$rc $(tr '\n' ' ' < $W/err)"; }
try r create --bundle $W/nosuch lc-c1
mkdir $W/empty; try r create --bundle $W/empty lc-c1
cp -a $B $W/bad; echo '{"ociVersion": "1.0.2", "process": ' > $W/bad/config.json
try r create --bundle $W/bad lc-c1
cp -a $B $W/badtype; jq '.process.args = "sh"' $B/config.json > $W/badtype/config.json
try r create --bundle $W/badtype lc-c1
r create --bundle $B lc-c1 </dev/null
try r create --bundle $B lc-c1
try r start lc-c1
try r start lc-c1
try r kill lc-c1 NOSUCHSIGNAL
try r delete lc-c1
r kill lc-c1 KILL; wait_status lc-c1 stopped
try r kill lc-c1
try r state nosuch
try r delete --force nosuch
try r --nosuchflag list
try r create --bundle $B "bad/id"
"#;
    let f = run_with("ferry", script);
    check(&f, "errors with ferry");
    let r = run_with("runc", script);
    check(&r, "errors with runc");
    let (fo, ro) = (text(&f.stdout), text(&r.stdout));
    let fl: Vec<&str> = fo.lines().collect();
    let rl: Vec<&str> = ro.lines().collect();
    assert_eq!(fl.len(), 14, "ferry:\n{fo}");
    assert_eq!(rl.len(), fl.len(), "ferry:\n{fo}\nrunc:\n{ro}");
    // Exit codes agree with runc everywhere.
    for (a, b) in fl.iter().zip(&rl) {
        assert_eq!(
            a.split(' ').next(),
            b.split(' ').next(),
            "ferry `{a}` vs runc `{b}`"
        );
    }
    let want: [(usize, &[&str]); 14] = [
        (0, &["rc=1", "nosuch"]),
        (1, &["rc=1", "config.json"]),
        (2, &["rc=1", "config.json"]),
        (3, &["rc=1", "config.json", "args"]),
        (4, &["rc=1", "lc-c1", "already exists"]),
        (5, &["rc=0"]),
        (6, &["rc=1", "lc-c1"]),
        (7, &["rc=1", "NOSUCHSIGNAL"]),
        (8, &["rc=1", "lc-c1", "running"]),
        (9, &["rc=1", "container not running"]),
        (10, &["rc=1", "does not exist"]),
        (11, &["rc=0"]),
        (12, &["rc=1", "nosuchflag"]),
        (13, &["rc=1", "bad/id"]),
    ];
    for (i, words) in want {
        for w in words {
            assert!(
                fl[i].contains(w),
                "ferry line {i} `{}` lacks `{w}`\nall:\n{fo}",
                fl[i]
            );
        }
    }
}

#[test]
fn json_log_lines_exist_even_on_early_failure() {
    if !require_root() {
        return;
    }
    let f = run_with(
        "ferry",
        r#"rc=0; r --log $W/log.json --log-format json state nosuch 2>/dev/null || rc=$?; echo "rc=$rc"
jq -c 'select(.level == "error") | [(.msg | test("does not exist")), (.time | length > 0)]' $W/log.json
r --log=$W/log2.json --log-format=json -debug create --bundle=$B -pid-file $W/pid --pid-file $W/pid lc-c1 </dev/null
jq -e -s 'length > 0 and all(.[]; has("level") and has("msg") and has("time"))' $W/log2.json >/dev/null && echo all-lines-json
r delete --force lc-c1
"#,
    );
    check(&f, "json log with ferry");
    assert_eq!(text(&f.stdout), "rc=1\n[true,true]\nall-lines-json\n");
}

#[test]
fn concurrent_commands_never_corrupt_state() {
    if !require_root() {
        return;
    }
    // Every command's exit code and stderr go to $L/<step>.rc and .err; at exit they are listed
    // on stderr with the state directory, so that a failure says which step failed and how.
    let f = run_with(
        "ferry",
        r#"L=$W/steps; mkdir -p $L
# STEP ARGS...: run `r ARGS`, keeping its exit code and stderr under the name STEP.
logged() { local n=$1; shift; local rc=0; r "$@" >/dev/null 2>$L/$n.err || rc=$?; echo $rc > $L/$n.rc; return $rc; }
# A step that must succeed: on failure it names itself and shows its stderr.
must() { logged "$@" || { echo "step $1 failed: r ${*:2}" >&2; exit 1; }; }
report() {
  echo "--- every command (step rc stderr):"
  for f in $(ls $L/*.rc 2>/dev/null | sort -V); do n=$(basename $f .rc); echo "$n rc=$(cat $f) $(tr '\n' ' ' < $L/$n.err | cut -c1-300)"; done
  echo "--- state directory:"; ls -la $ST 2>&1
}
trap 'report >&2; cleanup' EXIT
for i in 1 2 3; do
  must c$i-run run -d --bundle $B lc-c$i </dev/null
  for j in $(seq 8); do logged c$i-state-before-$j state lc-c$i & done
  logged c$i-kill kill lc-c$i KILL & logged c$i-delete delete --force lc-c$i &
  for j in $(seq 8); do logged c$i-state-after-$j state lc-c$i & done
  wait
  must c$i-delete-again delete --force lc-c$i
  rc=0; logged c$i-gone state lc-c$i || rc=$?; echo "lc-c$i gone: rc=$rc"
done
# ferry:internal holds ferry's own files, never a container.
ls $ST | grep -v -e '^\.' -e '^ferry:internal$' | wc -l
"#,
    );
    let report = describe(&f);
    assert!(
        f.status.success(),
        "concurrent commands with ferry: a step failed\n{report}"
    );
    assert_eq!(
        text(&f.stdout),
        "lc-c1 gone: rc=1\nlc-c2 gone: rc=1\nlc-c3 gone: rc=1\n0\n",
        "concurrent commands with ferry\n{report}"
    );
}

#[test]
fn features_reports_the_oci_features() {
    if !require_root() {
        return;
    }
    let f = run_with(
        "ferry",
        r#""$RT" features | jq -r '.ociVersionMin, (.ociVersionMax[0:2]), (.mountOptions | index("rbind") != null), (.linux.namespaces | index("mount") != null)'
"$RT" --version | head -n1 | cut -d' ' -f1-2
rc=0; "$RT" checkpoint --help >/dev/null || rc=$?; echo "checkpoint --help: rc=$rc""#,
    );
    check(&f, "features with ferry");
    assert_eq!(
        text(&f.stdout),
        "1.0.0\n1.\ntrue\ntrue\nferry version\ncheckpoint --help: rc=0\n"
    );
}

#[test]
fn exec_tty_preserved_fds_and_signal_numbers() {
    if !require_root() {
        return;
    }
    let out = same_on_both(
        "exec-tty-fds-signals",
        &format!(
            r#"{CONSOLE_RECEIVER}
echo "passed in" > $W/fd3
cfg '.root.readonly=false | .process.args=["sh","-c","cat <&3 > /tmp/got; trap \"exit 0\" TERM; while :; do sleep 0.1; done"]'
r run -d --preserve-fds 1 --bundle $B lc-c1 3<$W/fd3 </dev/null >/dev/null 2>&1
wait_for 5 r exec lc-c1 test -s /tmp/got
r exec lc-c1 cat /tmp/got
receive $W/exec.sock $W/exec.out
r exec -t --console-socket $W/exec.sock -d lc-c1 sh -c 'tty >/dev/null && echo exec-has-tty'
wait $rp
cat $W/exec.out
r exec --preserve-fds 1 lc-c1 sh -c 'cat <&3' 3<$W/fd3
r kill lc-c1 15; wait_status lc-c1 stopped && echo "signal 15: stopped"
r delete lc-c1
cfg '.process.args=["sleep","1000"]'
r run -d --bundle $B lc-c2 </dev/null >/dev/null 2>&1
r exec -d lc-c2 sleep 1000
r kill --all lc-c2 KILL; wait_status lc-c2 stopped && echo "kill --all: stopped"
r delete lc-c2"#
        ),
    );
    assert_eq!(
        out,
        "passed in\nexec-has-tty\npassed in\nsignal 15: stopped\nkill --all: stopped\n"
    );
}
