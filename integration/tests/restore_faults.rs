//! Restore under faults: at every point where a restore can fail (bad image files, a missing
//! volume source, CRIU failing, CRIU killed or hanging, a restored mount tree that differs,
//! ferry itself killed) the bundle's root filesystem and every volume source must come out
//! byte-identical, and no mount, process, cgroup or state directory may be left behind. Also
//! a long run of checkpoint/restore cycles of one container without a single failure.

use ferry_integration::{check, require_root, run_with};

/// After `BUNDLE_PRELUDE`: a container whose init carries a marker in its command line (found
/// with pgrep whatever namespace it ends up in), its own cgroup, two volumes with content, and
/// a checkpoint of it in `$W/ck`. The marker and the hung CRIU's `sleep` carry this run's pid,
/// padded to a fixed width so that no run's marker is a prefix of another's: a second run
/// at the same time never finds (or kills) this run's processes.
///
/// `tree_sum DIR` sums names, types, modes, owners, link targets and file contents;
/// `snapshot` does so for the root filesystem and the volume sources. `leftovers` prints what
/// remains of the container (nothing, when all is well). `act STAGE CMD` makes CRIU run CMD at
/// restore stage STAGE (an action script named by the bundle's `org.criu.config`); in it
/// `$PPID` is CRIU and CRIU's parent is ferry. `restore [ENV=VALUE...]` restores into `$W/err`
/// and prints the exit code.
const FAULTS: &str = r#"M=rs-mark; MARK=$(printf '%ser-%07d' $M $$); CG="rs-faults-$$"; SLEEPER=$(printf '6173%07d' $$)
cfg '.linux.cgroupsPath="/'$CG'"
  | .process.args=["sh","-c","trap \"exit 0\" TERM; while :; do sleep 0.1; done # '$MARK'"]'
mkdir -p $W/vol/sub $W/vol2 $B/rootfs/vol $B/rootfs/vol2
echo data > $W/vol/f; head -c 300000 /dev/urandom > $W/vol/sub/big; chmod 640 $W/vol/sub/big
ln -s ../f $W/vol/sub/link; echo two > $W/vol2/g
cfg '.mounts += [{"destination":"/vol","type":"bind","source":"'$W/vol'","options":["rbind","rw"]},
  {"destination":"/vol2","type":"bind","source":"'$W/vol2'","options":["rbind","ro"]}]'
tree_sum() { (cd "$1" && find . -printf '%p %y %m %U %G %l\n' | LC_ALL=C sort \
  && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum) | sha256sum | cut -c1-16; }
snapshot() { echo "rootfs=$(tree_sum $B/rootfs) vol=$(tree_sum $W/vol) vol2=$(tree_sum $W/vol2)"; }
procs() { pgrep -f "$MARK|sleep $SLEEPER" || true; }
no_procs() { [ -z "$(procs)" ]; }
# The init of container $1 runs its own command line (past the runtime's init code).
started() { grep -q "$MARK" /proc/$(r state $1 | jq -r .pid)/cmdline 2>/dev/null; }
leftovers() {
  [ -z "$(ls -A $ST 2>/dev/null)" ] || echo "state left: $(ls -A $ST | tr '\n' ' ')"
  grep -E " ($ST|$B/rootfs|$W/vol)[/ ]" /proc/self/mountinfo && echo "mounts left"
  ls -d /sys/fs/cgroup/*/$CG 2>/dev/null && echo "cgroups left"
  [ -z "$(procs)" ] || echo "processes left: $(procs | tr '\n' ' ')"
}
act() {
  printf '%s' "$1" > $W/act.at; printf '%s\n' "$2" > $W/act.do
  cat > $W/act.sh <<EOS
#!/bin/sh
[ "\$CRTOOLS_SCRIPT_ACTION" = "\$(cat $W/act.at)" ] || exit 0
. $W/act.do
EOS
  chmod +x $W/act.sh; echo "action-script $W/act.sh" > $W/criu.conf
  cfg '.annotations["org.criu.config"]="'$W/criu.conf'"'
}
restore() {
  rc=0; env "$@" timeout -s KILL 30 "$RT" --root $ST restore -d --image-path $W/ck --bundle $B rs-c1 \
    </dev/null >/dev/null 2>$W/err || rc=$?
  echo "restore: rc=$rc"
}
# For act: SIGKILL ferry (CRIU's parent; CRIU runs each script twice, and once ferry is gone its
# parent is another process, spared), noting CRIU's pid. `settle` waits until that CRIU ended.
KILL_FERRY='p=$(awk "{print \$4}" /proc/$PPID/stat); [ "$(cat /proc/$p/comm)" = ferry ] || exit 0
echo $PPID > '$W'/criu.pid; kill -9 $p'
criu_gone() { ! kill -0 $(cat $W/criu.pid) 2>/dev/null; }
settle() { wait_for 10 criu_gone 2>/dev/null || echo "CRIU still runs"; }
says() { grep -q -- "$1" $W/err && echo "says: $1" || { echo "does not say: $1"; cat $W/err >&2; }; }
trap 'cleanup; pkill -9 -f "$MARK|sleep $SLEEPER" || true; wait_for 5 no_procs || true; for d in /sys/fs/cgroup/*/$CG; do [ -d $d ] && rmdir $d; done; true' EXIT
r run -d --bundle $B rs-c1 </dev/null >/dev/null 2>&1
wait_for 5 started rs-c1
r checkpoint --image-path $W/ck rs-c1
BEFORE=$(snapshot)
intact() { [ "$(snapshot)" = "$BEFORE" ] && echo "bundle and volumes intact" || echo "CHANGED: $BEFORE -> $(snapshot)"; }
"#;

/// Run `body` after [`FAULTS`] with ferry; its output, which must succeed.
fn faults(what: &str, body: &str) -> String {
    let out = run_with("ferry", &format!("{FAULTS}\n{body}"));
    check(&out, what);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!(
        "--- {what}\n{stdout}--- stderr\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The lines every failed restore must end with: nothing lost, nothing left.
const NOTHING_LOST: &str = "bundle and volumes intact\n";

#[test]
fn malformed_mount_image() {
    if !require_root() {
        return;
    }
    let out = faults(
        "malformed ferry-mounts.json",
        r#"echo '{"format":"ferry-mountv2","version":1,"tree":' > $W/ck/ferry-mounts.json
restore; says ferry-mounts.json; intact; leftovers"#,
    );
    assert_eq!(
        out,
        format!("restore: rc=1\nsays: ferry-mounts.json\n{NOTHING_LOST}")
    );
}

#[test]
fn malformed_boundary_file() {
    if !require_root() {
        return;
    }
    let out = faults(
        "malformed ferry-boundary.json",
        r#"echo '{"host_propagated":' > $W/ck/ferry-boundary.json
restore; says ferry-boundary.json; intact; leftovers"#,
    );
    assert_eq!(
        out,
        format!("restore: rc=1\nsays: ferry-boundary.json\n{NOTHING_LOST}")
    );
}

#[test]
fn truncated_page_image_is_refused_without_hanging() {
    if !require_root() {
        return;
    }
    let out = faults(
        "truncated pages image",
        r#"big=$(ls -S $W/ck/pages-*.img | head -n1)
truncate -s -4096 $big
start=$(date +%s)
restore; says truncated
grep -q "$(basename $big) holds" $W/err && echo "names the page image"
[ $(( $(date +%s) - start )) -lt 10 ] && echo "fails at once"
intact; leftovers"#,
    );
    assert_eq!(
        out,
        format!(
            "restore: rc=1\nsays: truncated\nnames the page image\nfails at once\n{NOTHING_LOST}"
        )
    );
}

#[test]
fn missing_volume_source() {
    if !require_root() {
        return;
    }
    let out = faults(
        "missing volume source",
        r#"mv $W/vol2 $W/vol2.away
restore; says /vol2; says "does not exist"
mv $W/vol2.away $W/vol2
intact; leftovers"#,
    );
    assert_eq!(
        out,
        format!("restore: rc=1\nsays: /vol2\nsays: does not exist\n{NOTHING_LOST}")
    );
}

#[test]
fn criu_fails_on_a_corrupted_core_image() {
    if !require_root() {
        return;
    }
    // The init's core image: magic numbers kept, its first entry's length made impossible.
    let out = faults(
        "corrupted core image",
        r#"printf '\377\377\377\177' | dd of=$W/ck/core-1.img bs=1 seek=8 conv=notrunc status=none
restore; says "CRIU restore failed"; intact; leftovers"#,
    );
    assert_eq!(
        out,
        format!("restore: rc=1\nsays: CRIU restore failed\n{NOTHING_LOST}")
    );
}

#[test]
fn criu_killed_mid_restore() {
    if !require_root() {
        return;
    }
    // Killed once the tasks exist (their memory restored, not yet running), then at the start.
    let out = faults(
        "CRIU killed",
        r#"act post-restore 'kill -9 $PPID'
restore; says "crashed or was killed"; intact; leftovers
act setup-namespaces 'kill -9 $PPID'
restore; says "crashed or was killed"; intact; leftovers"#,
    );
    assert_eq!(
        out,
        format!(
            "restore: rc=1\nsays: crashed or was killed\n{NOTHING_LOST}\
             restore: rc=1\nsays: crashed or was killed\n{NOTHING_LOST}"
        )
    );
}

#[test]
fn hung_criu_is_bounded_and_killed() {
    if !require_root() {
        return;
    }
    // CRIU stops at post-restore (the tasks exist) and never goes on.
    let out = faults(
        "CRIU hangs",
        r#"act post-restore "exec sleep $SLEEPER"
start=$(date +%s)
restore FERRY_CRIU_TIMEOUT=3; says FERRY_CRIU_TIMEOUT
t=$(( $(date +%s) - start )); [ $t -ge 3 ] && [ $t -lt 20 ] && echo "gave up after the limit"
intact; leftovers
rc=0; FERRY_CRIU_TIMEOUT=soon "$RT" --root $ST restore -d --image-path $W/ck --bundle $B rs-c1 </dev/null >/dev/null 2>$W/err || rc=$?
echo "bad limit: rc=$rc"; says "give whole seconds""#,
    );
    assert_eq!(
        out,
        format!(
            "restore: rc=1\nsays: FERRY_CRIU_TIMEOUT\ngave up after the limit\n{NOTHING_LOST}\
             bad limit: rc=1\nsays: give whole seconds\n"
        )
    );
}

#[test]
fn mount_check_mismatch() {
    if !require_root() {
        return;
    }
    // The image says /dev's tmpfs had another mode than the restored one has: the post-restore
    // check fails after CRIU has restored and resumed the tasks.
    let out = faults(
        "mount check mismatch",
        r#"jq '(.tree.superblocks[] | select(.fstype == "tmpfs" and ((.options // []) | index("mode=755")) != null)).options
  |= map(if . == "mode=755" then "mode=711" else . end)' $W/ck/ferry-mounts.json > $W/m.json
mv $W/m.json $W/ck/ferry-mounts.json
restore; says "differs from the checkpoint"; intact; leftovers"#,
    );
    assert_eq!(
        out,
        format!("restore: rc=1\nsays: differs from the checkpoint\n{NOTHING_LOST}")
    );
}

#[test]
fn ferry_killed_during_restore() {
    if !require_root() {
        return;
    }
    // ferry is SIGKILLed (no cleanup of its own can run) at three moments: before any task
    // exists, once the init exists (its pid recorded), and after the tasks resumed. Afterwards
    // `state` tells the truth, `kill` and `delete` work, and nothing is left.
    let out = faults(
        "ferry killed",
        r#"killer="$KILL_FERRY"
tell() { s=$(r state rs-c1); st=$(echo "$s" | jq -r .status); pid=$(echo "$s" | jq -r .pid)
  live=no; [ "$pid" -gt 0 ] && grep -q "$MARK" /proc/$pid/cmdline 2>/dev/null && live=yes
  echo "state: $st, pid is the restored init: $live"; }
for stage in pre-restore post-setup-namespaces post-resume; do
  echo "== $stage"
  act $stage "$killer"
  restore; settle; tell
  if [ "$st" = creating ]; then
    r kill rs-c1 KILL && echo "kill: ok"
    wait_for 5 no_procs && echo "init gone"
    r delete rs-c1 && echo "delete: ok"
  else
    r delete --force rs-c1 && echo "delete --force: ok"
  fi
  intact; leftovers
done"#,
    );
    assert_eq!(
        out,
        format!(
            "== pre-restore\nrestore: rc=137\nstate: stopped, pid is the restored init: no\n\
             delete --force: ok\n{NOTHING_LOST}\
             == post-setup-namespaces\nrestore: rc=137\nstate: stopped, pid is the restored init: no\n\
             delete --force: ok\n{NOTHING_LOST}\
             == post-resume\nrestore: rc=137\nstate: creating, pid is the restored init: yes\n\
             kill: ok\ninit gone\ndelete: ok\n{NOTHING_LOST}"
        )
    );
}

#[test]
fn ferry_killed_after_restore_then_delete_force() {
    if !require_root() {
        return;
    }
    // A restore whose tasks run on after ferry died (and after CRIU, left alone, finished):
    // `delete --force` alone ends them.
    let out = faults(
        "ferry killed, delete --force",
        r#"act post-resume "$KILL_FERRY"
restore; settle
[ -n "$(procs)" ] && echo "restored tasks run"
r delete rs-c1 2>/dev/null || echo "delete without --force: refused"
r delete --force rs-c1 && echo "delete --force: ok"
intact; leftovers"#,
    );
    assert_eq!(
        out,
        format!(
            "restore: rc=137\nrestored tasks run\ndelete without --force: refused\n\
             delete --force: ok\n{NOTHING_LOST}"
        )
    );
}

#[test]
fn checkpoint_images_are_private() {
    if !require_root() {
        return;
    }
    let out = faults(
        "image permissions",
        r#"echo "image dir: $(stat -c %a $W/ck)"
echo "files not 600: $(find $W/ck -type f ! -perm 600 | wc -l)"
echo "ferry's files: $(stat -c %a $W/ck/ferry-mounts.json $W/ck/ferry-boundary.json $W/ck/descriptors.json | sort -u)""#,
    );
    assert_eq!(
        out,
        "image dir: 700\nfiles not 600: 0\nferry's files: 600\n"
    );
}

/// One container, checkpointed and restored again and again: every cycle succeeds and the
/// init's counter never goes back. `CYCLES` overrides the number (default 100).
#[test]
fn hundred_checkpoint_restore_cycles() {
    if !require_root() {
        return;
    }
    let cycles: u32 = std::env::var("CYCLES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(100);
    let script = format!(
        r#"N={cycles}; CG="rs-cycles-$$"
cfg '.root.readonly=false | .linux.cgroupsPath="/'$CG'"
  | .process.args=["sh","-c","i=0; while :; do i=$((i+1)); echo $i > /tmp/n; mv /tmp/n /tmp/count; sleep 0.1; done"]'
trap 'cleanup; for d in /sys/fs/cgroup/*/$CG; do [ -d $d ] && rmdir $d; done; true' EXIT
count() {{ cat /proc/$(r state rs-cyc | jq -r .pid)/root/tmp/count; }}
counted() {{ [ -n "$(count 2>/dev/null)" ]; }}
counts_past() {{ [ "$(count)" -gt "$1" ]; }}
r run -d --bundle $B rs-cyc </dev/null >/dev/null 2>&1
wait_for 5 counted
prev=$(count); ok=0; start=$(date +%s%N)
for i in $(seq $N); do
  rm -rf $W/ck
  r checkpoint --image-path $W/ck rs-cyc 2>$W/err || {{ echo "cycle $i: checkpoint failed: $(cat $W/err)"; break; }}
  r restore -d --image-path $W/ck --bundle $B rs-cyc </dev/null >/dev/null 2>$W/err \
    || {{ echo "cycle $i: restore failed: $(cat $W/err)"; break; }}
  c=$(count)
  [ "$c" -gt "$prev" ] || {{ echo "cycle $i: counter $prev -> $c"; break; }}
  prev=$c; ok=$((ok+1))
done
ms=$(( ($(date +%s%N) - start) / 1000000 ))
echo "cycles: $ok of $N" 
echo "time: $ms ms for $ok cycles, $(( ms / (ok > 0 ? ok : 1) )) ms per cycle" >&2
[ "$(r state rs-cyc | jq -r .status)" = running ] && echo "running"
wait_for 5 counts_past $prev && echo "counts""#
    );
    let out = run_with("ferry", &script);
    check(&out, "checkpoint/restore cycles");
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("cycles: {cycles} of {cycles}\nrunning\ncounts\n")
    );
}

#[test]
fn delete_and_checkpoint_never_reach_into_mounts_in_the_state_dir() {
    if !require_root() {
        return;
    }
    // Something mounted inside a container's state directory (as CRIU's root bind is during a
    // restore): removing the container must unmount it, not delete through it.
    let out = faults(
        "mounts in the state directory",
        r#"r run -d --bundle $B rs-c2 </dev/null >/dev/null 2>&1
mkdir $ST/rs-c2/x; mount --bind $B/rootfs $ST/rs-c2/x
r delete --force rs-c2 && echo "delete: ok"
intact; leftovers
r run -d --bundle $B rs-c3 </dev/null >/dev/null 2>&1; wait_for 5 started rs-c3
mkdir $ST/rs-c3/x; mount --bind $W/vol $ST/rs-c3/x
r checkpoint --image-path $W/ck3 rs-c3 && echo "checkpoint: ok"
intact; leftovers"#,
    );
    assert_eq!(
        out,
        format!("delete: ok\n{NOTHING_LOST}checkpoint: ok\n{NOTHING_LOST}")
    );
}
