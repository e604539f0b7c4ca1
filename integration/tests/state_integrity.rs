//! State that cannot be fooled or torn: container ids never meet ferry's internal files, a
//! reused pid is never taken for a container's init, state is readable by root alone, and a
//! container whose state is torn, missing or has a mount below it is reported clearly and
//! removed by `delete --force` without reaching through a mount.
//!
//! Where runc's behaviour is the contract, the same script runs with both runtimes and both
//! must print what the test expects. Every script runs in its own scratch directory and
//! private mount namespace; besides the containers it lists, it kills the processes it
//! tracked (`track PID`), so that a failing run leaves nothing behind either.

use ferry_integration::{require_root, run_with, text};

/// Kills tracked processes at exit, after the prelude's cleanup of listed containers, and
/// removes the cgroups ferry would have made for the ids given to `track_cgroup`.
///
/// `start ID`: runs container ID of `$B` detached, its init (pid in `$init`) and cgroups
/// tracked.
/// `alive PID`: the process runs (a zombie, whose /proc entry stays until it is reaped, does
/// not). `dead PID`: it does not. `force_delete ID PID WHAT`: `delete --force ID`, then what
/// is left of it: WHAT (process PID) alive, its state directory, its cgroups.
const TRACKING: &str = r#"track() { echo "$1" >> $W/tracked-pids; }
track_cgroup() { echo "$1" >> $W/tracked-cgroups; }
# A container's cgroup directories, wherever the caller's cgroup puts them (runc's rule: the
# id below the caller's own cgroup in every hierarchy); deepest first.
cgroups_of() { find /sys/fs/cgroup/ -mindepth 1 -maxdepth 8 -type d -name "$1" 2>/dev/null | sort -r; }
start() {
  track_cgroup $1
  r run -d -b $B --pid-file $W/pid-$1 $1 </dev/null >/dev/null
  init=$(cat $W/pid-$1); track $init
}
alive() { [ -d /proc/$1 ] && ! grep -q '^State:[[:space:]]*Z' /proc/$1/status 2>/dev/null; }
dead() { ! alive $1; }
force_delete() {
  r delete --force $1 && echo "force delete ok"
  wait_for 3 dead $2 2>/dev/null || echo "$3 still alive"
  [ -e $ST/$1 ] && echo "state dir left"
  cgroups_of $1 | sed 's/^/cgroup left: /'
}
finish() {
  cleanup
  for p in $(cat $W/tracked-pids 2>/dev/null); do kill -9 $p 2>/dev/null || true; done
  for p in $(cat $W/tracked-pids 2>/dev/null); do wait_for 3 dead $p || true; done
  for id in $(cat $W/tracked-cgroups 2>/dev/null); do
    for d in $(cgroups_of $id); do rmdir "$d" 2>/dev/null || true; done
  done
}
trap finish EXIT
"#;

/// Run `script` with `runtime` and return its stdout; the script must succeed.
fn run_script(runtime: &str, test: &str, script: &str) -> String {
    let out = run_with(runtime, &format!("{TRACKING}\n{script}"));
    assert!(
        out.status.success(),
        "{test} with {runtime} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

#[test]
fn st_ids_do_not_collide_with_internal_files() {
    if !require_root() {
        return;
    }
    // rootfsPropagation "rprivate" makes ferry keep a translated copy of config.json for the
    // container (its shadow bundle); a container named like that copy must stay untouched.
    let out = run_script(
        "ferry",
        "internal files",
        r#"cp -a $B $W/prop
jq '.linux.rootfsPropagation="rprivate"' $B/config.json > $W/prop/config.json
track_cgroup .config-st-foo; track_cgroup st-foo; track_cgroup st-bar; track_cgroup .config-st-bar
r run -d -b $B --pid-file $W/p1 .config-st-foo </dev/null >/dev/null
track $(cat $W/p1)
r run -d -b $W/prop --pid-file $W/p2 st-foo </dev/null >/dev/null
track $(cat $W/p2)
r delete -f st-foo
echo "after delete of st-foo: $(status .config-st-foo 2>/dev/null || echo gone)"
[ -d /proc/$(cat $W/p1) ] && echo ".config-st-foo init alive"
# The other order: the shadow copy exists first and the id is free all the same.
r run -d -b $W/prop --pid-file $W/p3 st-bar </dev/null >/dev/null
track $(cat $W/p3)
if r run -d -b $B --pid-file $W/p4 .config-st-bar </dev/null >/dev/null 2>$W/err; then
  track $(cat $W/p4); echo ".config-st-bar created"
else
  echo ".config-st-bar refused: $(cat $W/err)"
fi
r delete -f st-bar
echo "after delete of st-bar: $(status .config-st-bar 2>/dev/null || echo gone)"
r list -q"#,
    );
    assert_eq!(
        out,
        "after delete of st-foo: running\n.config-st-foo init alive\n.config-st-bar created\n\
         after delete of st-bar: running\n.config-st-bar\n.config-st-foo\n"
    );
}

/// The init dies and the kernel gives its pid to an unrelated process. Waiting for the pid
/// counter to wrap is slow and racy, so the test does what reuse does to the state: it
/// points the recorded pid at a process it started itself (a `sleep`, whose start time is not
/// the init's). Both runtimes must then call the container stopped, refuse to exec in, pause
/// or signal it, and leave the other process alive.
#[test]
fn st_reused_pid_is_not_the_container() {
    if !require_root() {
        return;
    }
    for runtime in ["runc", "ferry"] {
        let pid_field = if runtime == "runc" {
            "init_process_pid"
        } else {
            "pid"
        };
        let out = run_script(
            runtime,
            "pid reuse",
            &format!(
                r#"start st-reuse
sleep 1000 </dev/null >/dev/null 2>&1 &
other=$!; track $other
kill -9 $init
wait_for 5 dead $init
# Rewritten in place, so that the state file keeps its owner and mode.
jq -c ".{pid_field}=$other" $ST/st-reuse/state.json > $W/state.json
cat $W/state.json > $ST/st-reuse/state.json
echo "state: $(status st-reuse)"
r list -f json | jq -r '.[] | .id + " " + .status + " " + (.pid|tostring)'
if r exec st-reuse true 2>/dev/null; then echo "exec: ran"; else echo "exec: refused"; fi
if r pause st-reuse 2>/dev/null; then echo "pause: done"; else echo "pause: refused"; fi
if r kill st-reuse KILL 2>$W/err; then echo "kill: signalled"; else echo "kill: refused"; fi
grep -q 'not running' $W/err && echo "says not running"
# A signal that must not have reached it cannot be waited for: give it time to act.
sleep 0.2
alive $other && echo "other process alive"
r delete st-reuse && echo deleted
alive $other && echo "other process alive""#
            ),
        );
        assert_eq!(
            out,
            "state: stopped\nst-reuse stopped 0\nexec: refused\npause: refused\n\
             kill: refused\nsays not running\n\
             other process alive\ndeleted\nother process alive\n",
            "{runtime}"
        );
    }
}

#[test]
fn st_state_is_readable_by_root_alone() {
    if !require_root() {
        return;
    }
    for runtime in ["runc", "ferry"] {
        let out = run_script(
            runtime,
            "permissions",
            r#"track_cgroup st-perm
r run -d -b $B st-perm </dev/null >/dev/null
echo "root $(stat -c %a $ST)"
# runc's container directory is 0711; stricter is as good.
d=$(stat -c %a $ST/st-perm); case $d in 711|710|701|700) echo "container dir ok";; *) echo "container dir $d";; esac
echo "state.json $(stat -c %a $ST/st-perm/state.json)"
find $ST -type f -perm /077 -printf 'open to others: %P %m\n'
# A restored container's state is made by another path: the same rules hold.
r checkpoint --image-path $W/img st-perm
r restore -d --image-path $W/img --bundle $B st-perm </dev/null >/dev/null 2>$W/err || { cat $W/err >&2; exit 1; }
echo "restored: $(status st-perm)"
d=$(stat -c %a $ST/st-perm); case $d in 711|710|701|700) echo "container dir ok";; *) echo "container dir $d";; esac
echo "state.json $(stat -c %a $ST/st-perm/state.json)"
find $ST -type f -perm /077 -printf 'open to others: %P %m\n'
r delete -f st-perm"#,
        );
        assert_eq!(
            out,
            "root 700\ncontainer dir ok\nstate.json 600\n\
             restored: running\ncontainer dir ok\nstate.json 600\n",
            "{runtime}"
        );
    }
}

#[test]
fn st_torn_or_missing_state_is_reported_and_force_deleted() {
    if !require_root() {
        return;
    }
    let out = run_script(
        "ferry",
        "torn state",
        r#"start st-torn
# A write cut short: half of the file.
n=$(stat -c %s $ST/st-torn/state.json)
head -c $((n / 2)) $ST/st-torn/state.json > $W/half
cat $W/half > $ST/st-torn/state.json
if r state st-torn 2>$W/err; then echo "state: read"; else echo "state: refused"; fi
grep -q 'st-torn.*cannot be read.*delete --force st-torn' $W/err && echo "says how to remove it"
r list -q >/dev/null && echo "list still works"
force_delete st-torn $init init
# No state.json at all.
start st-gone
rm $ST/st-gone/state.json
force_delete st-gone $init init
# A readable state beside a torn youki_config.json (where libcontainer keeps the cgroup).
start st-cfg
echo '{"cgroup_pa' > $W/torn; cat $W/torn > $ST/st-cfg/youki_config.json
force_delete st-cfg $init init"#,
    );
    assert_eq!(
        out,
        "state: refused\nsays how to remove it\nlist still works\nforce delete ok\nforce delete ok\n\
         force delete ok\n"
    );
}

#[test]
fn st_stopped_container_with_live_cgroup_is_emptied_by_delete() {
    if !require_root() {
        return;
    }
    // Without a pid namespace, a process exec'd into the container outlives its init: the
    // container is stopped while its cgroup still holds a task.
    let out = run_script(
        "ferry",
        "live cgroup",
        r#"cfg 'del(.linux.namespaces[] | select(.type == "pid"))'
start st-orphan
r exec -d --pid-file $W/p2 st-orphan sleep 1000
left=$(cat $W/p2); track $left
kill -9 $init
wait_for 5 dead $init
echo "state: $(status st-orphan)"
force_delete st-orphan $left "left-behind process""#,
    );
    assert_eq!(out, "state: stopped\nforce delete ok\n");
}

#[test]
fn st_delete_never_reaches_through_a_mount() {
    if !require_root() {
        return;
    }
    let out = run_script(
        "ferry",
        "mount below state",
        r#"start st-mnt
mkdir $W/precious && echo keep > $W/precious/file
mkdir $ST/st-mnt/vol && mount --bind $W/precious $ST/st-mnt/vol
# The mount is taken off first, then the state removed: nothing below the mount is touched.
if r delete --force st-mnt 2>$W/err; then echo "delete: done"; else echo "delete: refused"; cat $W/err; fi
cat $W/precious/file
grep -q " $ST/st-mnt/vol " /proc/self/mountinfo && echo "mount left"
[ -e $ST/st-mnt ] && echo "state dir left"
echo "state: $(r state st-mnt >/dev/null 2>&1 && echo present || echo gone)""#,
    );
    assert_eq!(out, "delete: done\nkeep\nstate: gone\n");
}
