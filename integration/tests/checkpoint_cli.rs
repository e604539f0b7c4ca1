//! checkpoint and restore as engines call them: the argv shapes podman and containerd send,
//! checkpoints moving between ferry and runc, paused containers, and failures that must leave
//! the container as it was (or, for restore, nothing behind).

use ferry_integration::{check, require_root, run_with};

/// The init counts in /tmp/count (renamed into place, never half-written); `count ID` reads
/// it through `$1`'s runtime, `counts_past RT ID N` whether it is past N, `grows RT ID` whether it
/// goes on.
const COUNTER: &str = r#"cfg '.root.readonly=false | .process.args=["sh","-c","i=0; while :; do i=$((i+1)); echo $i > /tmp/n; mv /tmp/n /tmp/count; sleep 0.1; done"]'
count() { root=$ST; [ "$1" = "$RUNC" ] && [ "$RT" != "$RUNC" ] && root=$RS; cat /proc/$("$1" --root $root state "$2" | jq -r .pid)/root/tmp/count; }
counts_past() { [ "$(count "$1" "$2" 2>/dev/null)" -gt "$3" ] 2>/dev/null; }
grows() { a=$(count "$1" "$2"); wait_for 5 counts_past "$1" "$2" "$a" 2>/dev/null && echo "$2 counts" || echo "$2 is stuck"; }
# runc keeps its containers under a root of its own, cleaned on exit too.
RUNC=/usr/bin/runc; RS=$W/runc-state
trap 'cleanup; for c in $($RUNC --root $RS list -q 2>/dev/null); do $RUNC --root $RS delete --force $c; done' EXIT
"#;

/// Run `body` after [`COUNTER`] with ferry as `$RT`; its output, which must succeed.
fn ferry_script(what: &str, body: &str) -> String {
    let out = run_with("ferry", &format!("{COUNTER}\n{body}"));
    check(&out, what);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn checkpoints_move_between_ferry_and_runc() {
    if !require_root() {
        return;
    }
    let out = ferry_script(
        "checkpoints between runtimes",
        r#"$RUNC --root $RS run -d --bundle $B ckc-c1 </dev/null >/dev/null 2>&1
wait_for 5 counts_past $RUNC ckc-c1 0; c0=$(count $RUNC ckc-c1)
$RUNC --root $RS checkpoint --image-path $W/img1 ckc-c1
"$FERRY" --root $ST restore -d --image-path $W/img1 --bundle $B ckc-c1 </dev/null >/dev/null 2>$W/err1 || { cat $W/err1 >&2; tail -5 $W/img1/restore.log >&2; exit 1; }
[ "$(count "$FERRY" ckc-c1)" -ge "$c0" ] && echo "runc -> ferry: continues"
grows "$FERRY" ckc-c1
"$FERRY" --root $ST delete --force ckc-c1
"$FERRY" --root $ST run -d --bundle $B ckc-c2 </dev/null >/dev/null 2>&1
wait_for 5 counts_past "$FERRY" ckc-c2 0; c0=$(count "$FERRY" ckc-c2)
"$FERRY" --root $ST checkpoint --image-path $W/img2 ckc-c2
$RUNC --root $RS restore -d --image-path $W/img2 --bundle $B ckc-c2 </dev/null >/dev/null 2>$W/err2 || { cat $W/err2 >&2; tail -5 $W/img2/restore.log >&2; exit 1; }
[ "$(count $RUNC ckc-c2)" -ge "$c0" ] && echo "ferry -> runc: continues"
grows $RUNC ckc-c2
$RUNC --root $RS delete --force ckc-c2"#,
    );
    assert_eq!(
        out,
        "runc -> ferry: continues\nckc-c1 counts\nferry -> runc: continues\nckc-c2 counts\n"
    );
}

#[test]
fn engine_argv_shapes_and_paused_containers() {
    if !require_root() {
        return;
    }
    let out = ferry_script(
        "engine argv shapes",
        r#"# Without the /sys/fs/cgroup mount (as containerd's default spec) the cgroups are ferry's to make.
cfg 'del(.mounts[] | select(.destination == "/sys/fs/cgroup"))'
r run -d --bundle $B ckc-c1 </dev/null >/dev/null 2>&1
wait_for 5 counts_past "$RT" ckc-c1 0
# podman sends --leave-running twice; --flag=value as urfave/cli accepts it.
r checkpoint --leave-running --leave-running --image-path=$W/img0 ckc-c1
echo "after --leave-running: $(status ckc-c1)"
# containerd pauses around every checkpoint; the restored container must run.
r pause ckc-c1
r checkpoint --image-path $W/img ckc-c1
rc=0; r state ckc-c1 >/dev/null 2>&1 || rc=$?; echo "checkpointed container gone: rc=$rc"
# containerd sends -no-subreaper on every restore.
r restore -d -no-subreaper --pid-file $W/pid --image-path $W/img --bundle $B ckc-c1 </dev/null >/dev/null 2>&1
grep -qx '[0-9][0-9]*' $W/pid && echo "pid file: digits only"
echo "restored: $(status ckc-c1)"
grows "$RT" ckc-c1
r checkpoint --help >/dev/null && echo "checkpoint --help: ok"
rc=0; r restore --lsm-mount-context 2>$W/err || rc=$?
echo "lsm probe: rc=$rc $(grep -o 'flag needs an argument' $W/err)""#,
    );
    assert_eq!(
        out,
        "after --leave-running: running\ncheckpointed container gone: rc=1\npid file: digits only\n\
         restored: running\nckc-c1 counts\ncheckpoint --help: ok\nlsm probe: rc=1 flag needs an argument\n"
    );
}

#[test]
fn failures_leave_the_container_or_nothing() {
    if !require_root() {
        return;
    }
    let out = ferry_script(
        "checkpoint and restore failures",
        r#"mkdir -p $W/vol; echo v > $W/vol/f
cfg '.mounts += [{"destination":"/vol","type":"bind","source":"'$W/vol'","options":["rbind"]}]'
mkdir -p $B/rootfs/vol
r run -d --bundle $B ckc-c1 </dev/null >/dev/null 2>&1
wait_for 5 counts_past "$RT" ckc-c1 0
# No soft-dirty tracking on this kernel: pre-dump fails with CRIU's reason.
rc=0; r checkpoint --pre-dump --image-path $W/pre ckc-c1 2>$W/err || rc=$?
echo "pre-dump: rc=$rc"; grep -qi 'dirty\|pre-dump\|criu' $W/err && echo "pre-dump says why"
echo "after failed pre-dump: $(status ckc-c1)"; grows "$RT" ckc-c1
rc=0; r checkpoint --lazy-pages --image-path $W/lazy ckc-c1 2>$W/err || rc=$?
echo "lazy-pages: rc=$rc $(grep -o 'lazy-pages' $W/err | head -n1)"
r pause ckc-c1
rc=0; r checkpoint --pre-dump --image-path $W/pre2 ckc-c1 2>/dev/null || rc=$?
echo "paused, failed checkpoint: rc=$rc $(status ckc-c1)"
r resume ckc-c1
r checkpoint --image-path $W/img ckc-c1
# The volume's source is gone at restore: the error names the mount and the fix, and
# nothing (state, mounts, processes) stays behind.
rm -rf $W/vol
rc=0; r restore -d --image-path $W/img --bundle $B ckc-c1 </dev/null >/dev/null 2>$W/err || rc=$?
echo "restore without the source: rc=$rc"
grep -q '/vol' $W/err && grep -q 'does not exist' $W/err && echo "names the mount"
echo "containers left: $(r list -q | wc -l)"
echo "mounts left: $(grep -c " $W/" /proc/self/mountinfo || true)""#,
    );
    assert_eq!(
        out,
        "pre-dump: rc=1\npre-dump says why\nafter failed pre-dump: running\nckc-c1 counts\n\
         lazy-pages: rc=1 lazy-pages\npaused, failed checkpoint: rc=1 paused\n\
         restore without the source: rc=1\nnames the mount\ncontainers left: 0\nmounts left: 0\n"
    );
}

#[test]
fn named_namespaces_and_criu_config() {
    if !require_root() {
        return;
    }
    let script = format!(
        r#"{COUNTER}
# A network namespace kept by a file, as engines and CNI make them.
touch $W/netns; unshare --net=$W/netns true
: > $W/criu.conf
cfg '.linux.namespaces |= map(if .type == "network" then .path = "'$W/netns'" else . end)
  | .annotations["org.criu.config"] = "'$W/criu.conf'"'
ns() {{ readlink /proc/$(r state ckc-c1 | jq -r .pid)/ns/net | tr -dc 0-9; }}
want=$(stat -L -c %i $W/netns)
r run -d --bundle $B ckc-c1 </dev/null >/dev/null 2>&1
wait_for 5 counts_past "$RT" ckc-c1 0
[ "$(ns)" = "$want" ] && echo "runs in the named netns"
r checkpoint --image-path $W/img ckc-c1
r restore -d --image-path $W/img --bundle $B ckc-c1 </dev/null >/dev/null 2>&1
[ "$(ns)" = "$want" ] && echo "restored into the named netns"
grows "$RT" ckc-c1
# The CRIU config named by org.criu.config is read: an option CRIU does not know makes it
# refuse, and the container runs on.
echo "no-such-option" > $W/criu.conf
rc=0; r checkpoint --image-path $W/img2 ckc-c1 2>/dev/null || rc=$?
echo "bad CRIU config: rc=$rc, $(status ckc-c1)"
grows "$RT" ckc-c1
umount $W/netns"#
    );
    let f = run_with("ferry", &script);
    check(&f, "named namespaces with ferry");
    let r = run_with("runc", &script);
    check(&r, "named namespaces with runc");
    let (fo, ro) = (
        String::from_utf8_lossy(&f.stdout),
        String::from_utf8_lossy(&r.stdout),
    );
    assert_eq!(fo, ro, "ferry (left) and runc (right) differ");
    assert_eq!(
        fo,
        "runs in the named netns\nrestored into the named netns\nckc-c1 counts\n\
         bad CRIU config: rc=1, running\nckc-c1 counts\n"
    );
}
