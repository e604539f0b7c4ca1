//! Where ferry once differed from runc 1.1.5: every script runs once with ferry and once with
//! runc on the same bundle, and their outputs must be equal (and what they print is checked
//! too, so that two equal wrong answers fail as well).
//!
//! Container ids carry the prefix `pa-`.

use ferry_integration::{check, listening, require_root, run_with, same_on_both, text};

/// A new network namespace (no path) gets `lo` up, so 127.0.0.1 answers inside it.
#[test]
fn new_network_namespace_has_loopback_up() {
    if !require_root() {
        return;
    }
    let out = same_on_both(
        "loopback",
        &format!(
            r#"r run -d --bundle $B pa-net </dev/null >/dev/null 2>&1
r exec pa-net cat /sys/class/net/lo/flags
r exec pa-net sh -c 'ip -o link show lo | grep -o "<[^>]*>"'
r exec pa-net sh -c '(echo pong | nc -l -p 7777 127.0.0.1 >/dev/null &) ; {}; echo ping | nc -w 2 127.0.0.1 7777' || echo unreachable
r delete --force pa-net"#,
            listening(7777)
        ),
    );
    assert_eq!(out, "0x9\n<LOOPBACK,UP,LOWER_UP>\npong\n");
}

/// The init traps real-time signals 34, 37, 62 and 64 and logs them to /dev/shm/log (the
/// root file system of runc's default spec is read-only); it is waited for until its last
/// trap (TERM) is set. `k ID SIGNAL` sends a signal and, where a trapped one was sent, waits
/// until the init has logged it, so that the log's order is the sending order.
const RT_TRAPPER: &str = r#"cfg '.process.args=["sh","-c","for s in 34 37 62 64; do trap \"echo got$s >> /dev/shm/log\" $s; done; trap \"exit 0\" TERM; while :; do sleep 0.1; done"]'
r run -d --bundle $B pa-sig </dev/null >/dev/null 2>&1
init=$(r state pa-sig | jq -r .pid)
# The init is sh (past the runtime's own code, which may catch signals too) and catches
# SIGTERM (15: bit 14 of the mask).
traps_set() { [ "$(cat /proc/$init/comm)" = sh ] || return 1
  v=$(awk '/^SigCgt/ {print $2}' /proc/$init/status); [ $(( 0x$v >> 14 & 1 )) = 1 ]; }
wait_for 5 traps_set
logged() { cat /proc/$init/root/dev/shm/log 2>/dev/null | wc -l; }
more_logged() { [ "$(logged)" -gt "$1" ]; }
k() { n=$(logged); rc=0; r kill "$@" 2>/dev/null || rc=$?; echo "kill $* rc=$rc"
  case "${@: -1}" in 0|KILL) ;; *) [ $rc != 0 ] || wait_for 5 more_logged $n || true ;; esac; }"#;

/// `kill ID 0` is a liveness check (0 while the init lives, 1 once stopped); numbered
/// real-time signals are delivered, with and without --all; numbers beyond 64 are refused.
#[test]
fn kill_zero_and_real_time_signal_numbers() {
    if !require_root() {
        return;
    }
    let out = same_on_both(
        "signal numbers",
        &format!(
            r#"{RT_TRAPPER}
k pa-sig 0
k pa-sig 34
k pa-sig 64
k --all pa-sig 62
k pa-sig 65
k pa-sig -- -1
k pa-sig 99999999999
r exec pa-sig cat /dev/shm/log
k pa-sig KILL
wait_status pa-sig stopped
k pa-sig 0
r delete --force pa-sig"#
        ),
    );
    assert_eq!(
        out,
        "kill pa-sig 0 rc=0\nkill pa-sig 34 rc=0\nkill pa-sig 64 rc=0\nkill --all pa-sig 62 rc=0\n\
         kill pa-sig 65 rc=1\nkill pa-sig -- -1 rc=1\nkill pa-sig 99999999999 rc=1\n\
         got34\ngot64\ngot62\nkill pa-sig KILL rc=0\nkill pa-sig 0 rc=1\n"
    );
}

/// ferry also takes real-time signals by name, as podman writes them (`RTMIN+3` stops a
/// systemd container); runc 1.1 takes their numbers only.
#[test]
fn real_time_signal_names() {
    if !require_root() {
        return;
    }
    let out = run_with(
        "ferry",
        &format!(
            r#"{RT_TRAPPER}
k pa-sig RTMIN+3
k pa-sig SIGRTMIN+3
k pa-sig RTMAX-2
k pa-sig sigrtmax
k pa-sig RTMIN+31
rc=0; r kill pa-sig RTMIN+31 2>$W/err || rc=$?; grep -cF 'unknown signal \"RTMIN+31\": use a name' $W/err
r exec pa-sig cat /dev/shm/log
r delete --force pa-sig"#
        ),
    );
    check(&out, "real-time signal names");
    assert_eq!(
        text(&out.stdout),
        "kill pa-sig RTMIN+3 rc=0\nkill pa-sig SIGRTMIN+3 rc=0\nkill pa-sig RTMAX-2 rc=0\n\
         kill pa-sig sigrtmax rc=0\nkill pa-sig RTMIN+31 rc=1\n1\ngot37\ngot37\ngot62\ngot64\n"
    );
}

/// Sizes and intervals as runc reads them (decimals, `MiB`); values too large for the kernel
/// are refused with exit 1 and a message naming the value, never a panic (exit 101).
#[test]
fn update_sizes_and_event_intervals() {
    if !require_root() {
        return;
    }
    let out = same_on_both(
        "sizes and intervals",
        r#"r run -d --bundle $B pa-num </dev/null >/dev/null 2>&1
t() { rc=0; timeout 10 "$RT" --root $ST "$@" >/dev/null 2>$W/err || rc=$?; echo "$1 $2 $3 rc=$rc panics=$(grep -c panicked $W/err || true)"; }
t events --interval 99999999999999999999999s pa-num
t events --interval 0s pa-num
t update --memory 99999999999g pa-num
t update --memory 1.5g pa-num
r events --stats pa-num | jq .data.memory.usage.limit
t update --memory 64MiB pa-num
r events --stats pa-num | jq .data.memory.usage.limit
r delete --force pa-num"#,
    );
    assert_eq!(
        out,
        "events --interval 99999999999999999999999s rc=1 panics=0\n\
         events --interval 0s rc=1 panics=0\n\
         update --memory 99999999999g rc=1 panics=0\n\
         update --memory 1.5g rc=0 panics=0\n1610612736\n\
         update --memory 64MiB rc=0 panics=0\n67108864\n"
    );
}

/// `events --stats` as runc prints it: the same names at the top and inside `cpu` and
/// `memory.usage`, and CPU times in nanoseconds (a container that has spun for a while has
/// used more than 0.1 s of CPU, which in clock ticks or microseconds would read far less).
/// runc's `cpuset` object, which libcgroups does not read, is left out of the comparison.
#[test]
fn events_stats_names_and_cpu_units() {
    if !require_root() {
        return;
    }
    let out = same_on_both(
        "events --stats",
        r#"cfg '.process.args=["sh","-c","trap \"exit 0\" TERM; while :; do :; done"]'
r run -d --bundle $B pa-ev </dev/null >/dev/null 2>&1
cpu() { r events --stats pa-ev | jq '.data.cpu.usage | .user + .kernel'; }
wait_for 20 eval '[ "$(cpu)" -gt 100000000 ]'
r events --stats pa-ev | jq -c '[.type, .id, (.data | del(.cpuset) | keys), (.data.cpu.usage | keys),
  (.data.memory.usage | has("limit")), (.data.cpu.usage.user + .data.cpu.usage.kernel > 100000000),
  (.data.cpu.usage.total > 100000000)]'
r delete --force pa-ev"#,
    );
    assert_eq!(
        out,
        "[\"stats\",\"pa-ev\",[\"blkio\",\"cpu\",\"hugetlb\",\"intel_rdt\",\"memory\",\"network_interfaces\",\"pids\"],\
         [\"kernel\",\"percpu\",\"percpu_kernel\",\"percpu_user\",\"total\",\"user\"],true,true,true]\n"
    );
}

/// A hook that exits without reading the state on its stdin (here `true`, with an annotation
/// too large for the pipe) does not kill `create` with SIGPIPE; the container's processes
/// start with runc's signal dispositions; ferry's own output still ends it quietly (status
/// 141, nothing on stderr) when its reader has gone, as runc is ended.
#[test]
fn sigpipe_only_for_our_own_output() {
    if !require_root() {
        return;
    }
    let out = same_on_both(
        "SIGPIPE",
        r#"head -c 300000 /dev/zero | tr "\0" x > $W/big
jq --rawfile big $W/big '.annotations={"pa.big": $big} | .hooks={"createRuntime":[{"path":"/bin/true"}],"prestart":[{"path":"/bin/true"}]}' $B/config.json > $W/c.json && mv $W/c.json $B/config.json
rc=0; r create --bundle $B pa-pipe </dev/null >/dev/null 2>$W/err || rc=$?; echo "create rc=$rc"; status pa-pipe
r start pa-pipe
# SIGPIPE (bit 12) is neither ignored nor caught in the init or an exec'd process.
r exec pa-pipe sh -c 'for p in 1 self; do for f in SigIgn SigCgt SigBlk; do v=$(awk "/^$f/{print \$2}" /proc/$p/status); echo "$p $f pipe=$(( 0x$v >> 12 & 1 ))"; done; done'
# Standard output is a pipe whose reader is already gone (fd 5 opened the FIFO for reading
# and writing, so that opening fd 6 does not block, and is closed again).
mkfifo $W/fifo; exec 5<>$W/fifo 6>$W/fifo 5<&-
rc=0; r list 2>$W/err >&6 || rc=$?; echo "list rc=$rc stderr=$(wc -c < $W/err)"
rc=0; r state pa-pipe 2>$W/err >&6 || rc=$?; echo "state rc=$rc stderr=$(wc -c < $W/err)"
r delete --force pa-pipe"#,
    );
    assert_eq!(
        out,
        "create rc=0\ncreated\n1 SigIgn pipe=0\n1 SigCgt pipe=0\n1 SigBlk pipe=0\n\
         self SigIgn pipe=0\nself SigCgt pipe=0\nself SigBlk pipe=0\n\
         list rc=141 stderr=0\nstate rc=141 stderr=0\n"
    );
}

/// A poststop hook that fails, or whose binary is gone, does not keep the container: delete
/// succeeds, the hooks after the failing one are not run, and the record is gone.
#[test]
fn failing_poststop_hook_does_not_block_delete() {
    if !require_root() {
        return;
    }
    let out = same_on_both(
        "poststop",
        r#"cfg '.process.args=["true"] | .hooks={"poststop":[{"path":"/bin/sh","args":["sh","-c","echo one >> '$W'/hooks"]},{"path":"/bin/false"},{"path":"/bin/sh","args":["sh","-c","echo three >> '$W'/hooks"]}]}'
r run -d --bundle $B pa-post </dev/null >/dev/null 2>&1
wait_status pa-post stopped
rc=0; r delete pa-post 2>/dev/null || rc=$?; echo "delete rc=$rc"
echo "left: $(r list -q | grep -c pa-post || true)"
cat $W/hooks
cfg '.hooks={"poststop":[{"path":"/nonexistent/hook"}]}'
r run -d --bundle $B pa-post2 </dev/null >/dev/null 2>&1
wait_status pa-post2 stopped
rc=0; r delete pa-post2 2>/dev/null || rc=$?; echo "delete rc=$rc"
echo "left: $(r list -q | grep -c pa-post2 || true)""#,
    );
    assert_eq!(out, "delete rc=0\nleft: 0\none\ndelete rc=0\nleft: 0\n");
}

/// `disableOOMKiller` reaches memory.oom_control (cgroup v1) at create, and an update of the
/// memory limit keeps it; a container without it keeps the OOM killer.
#[test]
fn disable_oom_killer_at_create_and_update() {
    if !require_root() {
        return;
    }
    if !std::path::Path::new("/sys/fs/cgroup/memory").is_dir() {
        eprintln!("SKIPPED: no cgroup v1 memory hierarchy (disableOOMKiller is v1 only)");
        return;
    }
    let out = same_on_both(
        "disableOOMKiller",
        r#"oom() { p=$(r state $1 | jq .pid); m=$(grep -E '^[0-9]+:([^:]*,)?memory(,[^:]*)?:' /proc/$p/cgroup | cut -d: -f3-); echo "$1 $(grep oom_kill_disable "/sys/fs/cgroup/memory$m/memory.oom_control")"; }
r create --bundle $B pa-oom0 </dev/null
oom pa-oom0
cfg '.linux.resources.memory={"limit": 268435456, "disableOOMKiller": true}'
r create --bundle $B pa-oom1 </dev/null
oom pa-oom1
r start pa-oom1
r update --memory 128m pa-oom1
oom pa-oom1
r update --memory 64m pa-oom0
oom pa-oom0
r delete --force pa-oom0; r delete --force pa-oom1"#,
    );
    assert_eq!(
        out,
        "pa-oom0 oom_kill_disable 0\npa-oom1 oom_kill_disable 1\n\
         pa-oom1 oom_kill_disable 1\npa-oom0 oom_kill_disable 0\n"
    );
}

/// `spec` writes runc's default content (host name aside: each runtime names it after
/// itself), indented with tabs, and `--rootless` the same; no `youki` anywhere.
#[test]
fn spec_content_and_layout() {
    if !require_root() {
        return;
    }
    let out = same_on_both(
        "spec",
        r#"norm() { jq -S 'del(.hostname) | walk(if type == "array" and all(.[]; type == "string") then sort else . end)' "$1"; }
mkdir $W/s $W/r
(cd $W/s && "$RT" spec)
(cd $W/r && "$RT" spec --rootless)
for f in $W/s/config.json $W/r/config.json; do
  norm $f | sha256sum | cut -c1-16
  echo "lines=$(wc -l < $f) tab-indented=$(grep -c "$(printf '^\t"ociVersion"')" $f) youki=$(grep -ci youki $f || true)"
done"#,
    );
    assert!(
        out.lines()
            .filter(|l| l.starts_with("lines="))
            .all(|l| l.ends_with("tab-indented=1 youki=0")),
        "{out}"
    );
}

/// An error is said once and names the runtime, not the library under it: a terminal
/// without a console socket in `create`.
#[test]
fn errors_said_once_without_library_names() {
    if !require_root() {
        return;
    }
    let out = same_on_both(
        "tty error",
        r#"cfg '.process.terminal=true'
rc=0; r create --bundle $B pa-tty </dev/null >/dev/null 2>$W/err || rc=$?
echo "rc=$rc tty=$(grep -o 'cannot allocate tty' $W/err | wc -l) youki=$(grep -ci youki $W/err || true) left=$(r list -q | grep -c pa-tty || true)""#,
    );
    assert_eq!(out, "rc=1 tty=1 youki=0 left=0\n");
}

/// exec builds its process as runc does: `--user UID` keeps the spec's group and
/// supplementary groups, `--additional-gids` adds to them, `--cap` reaches bounding,
/// effective and permitted but not inheritable, and ambient only where inheritable holds
/// it; a paused container, `--apparmor` and `--process-label` on a host without AppArmor or
/// SELinux are refused (exit 255). (runc 1.1 leaves an exec'd process with its own umask
/// instead of the spec's, which ferry applies: the umask is not compared.)
#[test]
fn exec_process_like_runc() {
    if !require_root() {
        return;
    }
    let out = same_on_both(
        "exec process",
        r#"cfg '.process.user={"uid":0,"gid":7,"umask":63,"additionalGids":[11,12]} | .process.capabilities.inheritable=["CAP_KILL"]'
r run -d --bundle $B pa-ex </dev/null >/dev/null 2>&1
show='grep -E "^(Cap|Uid|Gid|Groups)" /proc/self/status'
r exec pa-ex sh -c "$show"
echo --- user
r exec --user 1000 pa-ex sh -c "$show"
echo --- user gid addgids
r exec --user 1000:5 --additional-gids 30 pa-ex sh -c "$show"
echo --- cap
r exec --cap CAP_SYS_ADMIN pa-ex sh -c "$show"
echo --- cap without inheritable
r delete --force pa-ex
cfg 'del(.process.capabilities.inheritable)'
r run -d --bundle $B pa-ex </dev/null >/dev/null 2>&1
r exec --cap CAP_SYS_ADMIN pa-ex sh -c "$show"
echo --- refused
t() { rc=0; timeout 10 "$RT" --root $ST exec "$@" pa-ex true 2>/dev/null || rc=$?; echo "$* rc=$rc"; }
if [ "$(cat /sys/module/apparmor/parameters/enabled 2>/dev/null)" != Y ]; then t --apparmor unconfined; else echo "--apparmor unconfined rc=255"; fi
if [ ! -e /sys/fs/selinux/enforce ]; then t --process-label foo; else echo "--process-label foo rc=255"; fi
r pause pa-ex
t --cwd /
r resume pa-ex
r delete --force pa-ex"#,
    );
    for want in [
        "--- user\nUid:\t1000\t1000\t1000\t1000\nGid:\t7\t7\t7\t7\nGroups:\t11 12 \n",
        "--- user gid addgids\nUid:\t1000\t1000\t1000\t1000\nGid:\t5\t5\t5\t5\nGroups:\t11 12 30 \n",
        "--apparmor unconfined rc=255\n--process-label foo rc=255\n--cwd / rc=255\n",
    ] {
        assert!(out.contains(want), "{want:?} missing from:\n{out}");
    }
}

/// A mount destination reached through a symlink in the rootfs to something that does not
/// exist yet is created inside the rootfs, never outside it: an absolute symlink to a
/// directory, a relative one climbing above the root, and one to a file for a file source.
#[test]
fn mount_through_dangling_symlink_is_made_inside_the_rootfs() {
    if !require_root() {
        return;
    }
    let out = same_on_both(
        "dangling symlink destination",
        r#"[ ! -e /pa-outside ] || { echo "/pa-outside exists on the host: remove it first" >&2; exit 1; }
ln -s /pa-outside/data $B/rootfs/data
ln -s ../../../../pa-outside/up $B/rootfs/up
ln -s /pa-outside/conf $B/rootfs/etc/pa-conf
mkdir $W/src; echo hello > $W/src/f; echo conf > $W/conf
cfg '.process.args=["sh","-c","cat /data/f /up/f /etc/pa-conf"]
  | .mounts += [{"destination":"/data","type":"bind","source":"'$W/src'","options":["rbind"]},
                {"destination":"/up","type":"bind","source":"'$W/src'","options":["rbind"]},
                {"destination":"/etc/pa-conf","type":"bind","source":"'$W/conf'","options":["bind"]}]'
rc=0; r run --bundle $B pa-sym </dev/null || rc=$?; echo "run rc=$rc"
for p in pa-outside/data pa-outside/up pa-outside/conf; do
  if [ -d $B/rootfs/$p ]; then echo "$p: directory in the rootfs"; elif [ -f $B/rootfs/$p ]; then echo "$p: file in the rootfs"; else echo "$p: missing"; fi
done
if [ -e /pa-outside ]; then echo "made on the host!"; rm -r /pa-outside; fi
r delete --force pa-sym 2>/dev/null || true"#,
    );
    assert_eq!(
        out,
        "hello\nhello\nconf\nrun rc=0\npa-outside/data: directory in the rootfs\n\
         pa-outside/up: directory in the rootfs\npa-outside/conf: file in the rootfs\n"
    );
}

/// Every error of the root file system names the mount as runc does (`error mounting "SRC"
/// to rootfs at "DEST"`, quotes escaped in the log line): a bind source that does not exist (found before the init starts),
/// a directory bound onto a file and a tmpfs with a bad option (found by the init).
#[test]
fn rootfs_errors_name_the_mount() {
    if !require_root() {
        return;
    }
    let out = same_on_both(
        "rootfs errors",
        r#"cp $B/config.json $W/orig.json
mkdir $W/src
t() { cp $W/orig.json $B/config.json; cfg ".mounts += [$1]"; rc=0; r run --bundle $B pa-merr </dev/null >/dev/null 2>$W/err || rc=$?
  echo "rc=$rc named=$(grep -cF 'error mounting \"'"$2"'\" to rootfs at \"'"$3"'\"' $W/err) lines=$(grep -c . $W/err) left=$(r list -q | grep -c pa-merr || true)"; }
t '{"destination":"/data","type":"bind","source":"/pa-nonexistent-src","options":["rbind"]}' /pa-nonexistent-src /data
t '{"destination":"/etc/passwd","type":"bind","source":"'$W/src'","options":["rbind"]}' $W/src /etc/passwd
t '{"destination":"/pa-t","type":"tmpfs","source":"tmpfs","options":["size=banana"]}' tmpfs /pa-t"#,
    );
    assert_eq!(
        out,
        "rc=1 named=1 lines=1 left=0\nrc=1 named=1 lines=1 left=0\nrc=1 named=1 lines=1 left=0\n"
    );
}

/// `list` reports each container whose state cannot be read (no state file, a malformed one)
/// once on its standard error, lists the others, and succeeds.
#[test]
fn list_reports_unreadable_containers() {
    if !require_root() {
        return;
    }
    let out = same_on_both(
        "list unreadable",
        r#"r run -d --bundle $B pa-lok </dev/null >/dev/null 2>&1
mkdir $ST/pa-lempty $ST/pa-lcorrupt
echo '{bad' > $ST/pa-lcorrupt/state.json
rc=0; r list -q >$W/out 2>$W/err || rc=$?
cat $W/out; echo "rc=$rc"
for c in pa-lempty pa-lcorrupt; do echo "$c reported $(grep -c "$c" $W/err) time(s)"; done
echo "other lines: $(grep -v -e pa-lempty -e pa-lcorrupt $W/err | grep -c . || true)"
rmdir $ST/pa-lempty; rm -r $ST/pa-lcorrupt
r delete --force pa-lok"#,
    );
    assert_eq!(
        out,
        "pa-lok\nrc=0\npa-lempty reported 1 time(s)\npa-lcorrupt reported 1 time(s)\nother lines: 0\n"
    );
}

/// A `run -d` whose process cannot start says so once, and nothing else (no unrelated
/// complaint about a state file).
#[test]
fn failing_run_says_its_error_once() {
    if !require_root() {
        return;
    }
    let out = same_on_both(
        "failing run",
        r#"cfg '.process.args=["/pa-nonexistent"]'
rc=0; r run -d --bundle $B pa-fail </dev/null >/dev/null 2>$W/err || rc=$?
echo "rc=$rc lines=$(grep -c . $W/err) named=$(grep -c pa-nonexistent $W/err) state-file=$(grep -c 'state file' $W/err || true) left=$(r list -q | grep -c pa-fail || true)""#,
    );
    assert_eq!(out, "rc=1 lines=1 named=1 state-file=0 left=0\n");
}

/// config.json as runc reads it: an unknown capability name is ignored with a warning naming
/// it (also in exec's `--cap` and `--process`), and an ociVersion that is not 1.x (2.0.0,
/// 0.9, none) runs.
#[test]
fn unknown_capabilities_and_other_oci_versions_run() {
    if !require_root() {
        return;
    }
    let out = same_on_both(
        "capabilities and versions",
        r#"cp $B/config.json $W/orig.json
cfg '.process.args=["sh","-c","grep -E \"^Cap(Bnd|Eff)\" /proc/self/status"]
  | .process.capabilities.bounding += ["CAP_PA_FOO"] | .process.capabilities.effective += ["CAP_PA_FOO","CAP_PA_BAR"]'
rc=0; r run --bundle $B pa-spec </dev/null 2>$W/err || rc=$?
echo "rc=$rc warned-foo=$(grep -c CAP_PA_FOO $W/err) warned-bar=$(grep -c CAP_PA_BAR $W/err)"
for v in '"2.0.0"' '"0.9"' null; do
  cp $W/orig.json $B/config.json
  cfg ".process.args=[\"true\"] | .ociVersion=$v | if .ociVersion == null then del(.ociVersion) else . end"
  rc=0; r run --bundle $B pa-spec </dev/null >/dev/null 2>&1 || rc=$?; echo "ociVersion $v rc=$rc"
done
cp $W/orig.json $B/config.json
r run -d --bundle $B pa-spec2 </dev/null >/dev/null 2>&1
rc=0; r exec --cap CAP_PA_BAZ pa-spec2 true 2>$W/err || rc=$?; echo "exec --cap rc=$rc warned=$(grep -c CAP_PA_BAZ $W/err)"
jq '.process | .args=["true"] | .capabilities.bounding += ["CAP_PA_QUX"]' $B/config.json > $W/p.json
rc=0; r exec -p $W/p.json pa-spec2 2>$W/err || rc=$?; echo "exec -p rc=$rc warned=$(grep -c CAP_PA_QUX $W/err)"
r delete --force pa-spec2"#,
    );
    assert_eq!(
        out,
        "CapEff:\t0000000020000420\nCapBnd:\t0000000020000420\nrc=0 warned-foo=1 warned-bar=1\n\
         ociVersion \"2.0.0\" rc=0\nociVersion \"0.9\" rc=0\nociVersion null rc=0\n\
         exec --cap rc=0 warned=1\nexec -p rc=0 warned=1\n"
    );
}

/// `exec --ignore-paused` into a paused container is accepted: the process runs once the
/// container is resumed (without the flag it is refused).
#[test]
fn exec_ignore_paused_waits_for_resume() {
    if !require_root() {
        return;
    }
    let out = same_on_both(
        "ignore paused",
        r#"r run -d --bundle $B pa-ign </dev/null >/dev/null 2>&1
r pause pa-ign
rc=0; r exec pa-ign true 2>/dev/null || rc=$?; echo "exec rc=$rc"
(rc=0; timeout 20 "$RT" --root $ST exec --ignore-paused pa-ign sh -c 'echo ran' > $W/out 2>$W/err || rc=$?; echo "ignore-paused rc=$rc" >> $W/out) &
# What must not happen (the process running while paused) cannot be waited for: give it time.
sleep 1.5
echo "before resume: $(grep -c . $W/out || true)"
r resume pa-ign
wait
cat $W/out
r delete --force pa-ign"#,
    );
    assert_eq!(
        out,
        "exec rc=255\nbefore resume: 0\nran\nignore-paused rc=0\n"
    );
}

/// A container gets a session keyring of its own, `_ses.<id>` (searchable by its owner), and
/// an exec'd process works inside it; `create --no-new-keyring` keeps the caller's.
#[test]
fn session_keyring_unless_no_new_keyring() {
    if !require_root() {
        return;
    }
    let out = same_on_both(
        "session keyring",
        r#"keyring() { awk -v d="_ses.$1:" '$8 == "keyring" && $9 == d {print $5, $6, $7, $8, $9}' /proc/keys; }
r run -d --bundle $B pa-key </dev/null >/dev/null 2>&1
keyring pa-key
r exec pa-key true && echo "exec ok"
r delete --force pa-key
r create --no-new-keyring --bundle $B pa-key2 </dev/null >/dev/null
echo "no-new-keyring: $(keyring pa-key2 | grep -c . || true)"
r delete --force pa-key2"#,
    );
    assert_eq!(
        out,
        "3f1b0000 0 0 keyring _ses.pa-key:\nexec ok\nno-new-keyring: 0\n"
    );
}
