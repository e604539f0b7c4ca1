//! ferry and runc 1.1.5 on a cgroup v2 host, side by side: create, pause, checkpoint a paused
//! container, restore, pause and resume the restored one, `events --stats`, `kill --all`,
//! delete.
//!
//! The test machine may be cgroup v1 with a hybrid unified hierarchy. Each script then runs
//! in a cgroup of its own in the unified hierarchy, in new mount and cgroup namespaces, with
//! `/sys/fs/cgroup` replaced by a cgroup2 mount: the namespace's root is that cgroup, so the
//! runtimes see a cgroup v2 host (libcontainer and runc both decide by the file system type of
//! `/sys/fs/cgroup`) and nothing they write reaches the host's own cgroups. The unified
//! hierarchy of a hybrid host has no controllers but the freezer (`cgroup.freeze`), so what
//! this covers is the paths: where the container's cgroup is, the freezer, CRIU's cgroup
//! handling; not limits (`memory.max`, `pids.max`, ...).
//!
//! Container ids and cgroups carry the prefix `pa-`.

use ferry_integration::{poll_until, require_root, runtime_bin, text, BUNDLE_PRELUDE};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn mountinfo() -> Vec<mountv2::scan::RawMount> {
    match mountv2::scan::read_mountinfo(Path::new("/proc/self/mountinfo")) {
        Ok(m) => m,
        Err(e) => panic!("reading this process's mountinfo: {e}"),
    }
}

/// The host's cgroup2 mount point: `/sys/fs/cgroup` on a v2 host, the unified hierarchy's on
/// a hybrid one.
fn cgroup2_mount() -> Option<PathBuf> {
    mountinfo()
        .into_iter()
        .find(|m| m.fstype == "cgroup2")
        .map(|m| m.mountpoint)
}

/// On a hybrid host, the directory of this process's cgroup in each v1 hierarchy.
fn v1_cgroups_of_self() -> Vec<PathBuf> {
    v1_hierarchies_of_self()
        .into_iter()
        .map(|(_, dir)| dir)
        .collect()
}

/// (controllers, directory) of this process's cgroup in each v1 hierarchy.
fn v1_hierarchies_of_self() -> Vec<(String, PathBuf)> {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let mounts: Vec<_> = mountinfo()
        .into_iter()
        .filter(|m| m.fstype == "cgroup")
        .collect();
    own.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            let m = mounts.iter().find(|m| {
                !controllers.is_empty()
                    && controllers
                        .split(',')
                        .all(|c| m.super_options.iter().any(|o| o == c))
            })?;
            let below_root = Path::new(path).strip_prefix(&m.root).ok()?;
            Some((controllers.to_string(), m.mountpoint.join(below_root)))
        })
        .collect()
}

/// What a restore made in the host's v1 hierarchies, removed (children first) on drop. On a
/// hybrid host the restored task's v1 cgroups are the test's own; a restore that re-roots
/// them (CRIU's default cgroup root) re-creates the subtree below each under the container's
/// cgroup name (`pa-v2`), a copy of the host's v1 cgroups, and the next run copies the copy.
struct V1Copies(Vec<PathBuf>);

impl V1Copies {
    /// The `pa-v2` cgroups beside which the restore will make its copies, those not there yet.
    fn expected() -> V1Copies {
        V1Copies(
            v1_cgroups_of_self()
                .iter()
                .map(|d| d.join("pa-v2"))
                .filter(|d| !d.exists())
                .collect(),
        )
    }
}

impl Drop for V1Copies {
    fn drop(&mut self) {
        for dir in &self.0 {
            if dir.exists() {
                remove_cgroup(dir);
            }
        }
    }
}

/// Kill what is left in the cgroup `dir` and remove it, children first.
fn remove_cgroup(dir: &Path) {
    let _ = std::fs::write(dir.join("cgroup.kill"), "1");
    fn rm(dir: &Path) {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    rm(&e.path());
                }
            }
        }
        // The killed processes leave the cgroup asynchronously.
        if !poll_until(std::time::Duration::from_secs(5), || {
            std::fs::remove_dir(dir).is_ok() || !dir.exists()
        }) {
            eprintln!("could not remove cgroup {}", dir.display());
        }
    }
    rm(dir);
}

/// The cgroup a test made; killed and removed on drop, also when the test fails.
struct TestCgroup(PathBuf);

impl Drop for TestCgroup {
    fn drop(&mut self) {
        remove_cgroup(&self.0);
    }
}

/// Run `script` after [`BUNDLE_PRELUDE`] with `runtime` on a cgroup v2 `/sys/fs/cgroup` (see
/// the module's comment).
fn on_v2(runtime: &str, script: &str) -> Output {
    let Some(unified) = cgroup2_mount() else {
        panic!("this host mounts no cgroup2 file system: nothing to test cgroup v2 on");
    };
    // Dropped after the unified cgroup, whose cgroup.kill ends the processes in the copies.
    let copies = V1Copies::expected();
    let name = format!("pa-v2-{runtime}-{}", std::process::id());
    let cg = TestCgroup(unified.join(&name));
    if let Err(e) = std::fs::create_dir(&cg.0) {
        panic!("creating cgroup {}: {e}", cg.0.display());
    }
    let join = [cg.0.join("cgroup.procs")];
    let w = match tempfile::tempdir() {
        Ok(w) => w,
        Err(e) => panic!("creating a scratch directory: {e}"),
    };
    let full = format!(
        "{BUNDLE_PRELUDE}\numount -l /sys/fs/cgroup\nmount -t cgroup2 cgroup2 /sys/fs/cgroup\n{script}\n"
    );
    let out = Command::new("bash")
        .args([
            "-c",
            r#"for f in $JOIN; do echo $$ > "$f" || exit 1; done
exec unshare -m -C --propagation private bash -c "$SCRIPT""#,
        ])
        .env(
            "JOIN",
            join.iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(" "),
        )
        .env("SCRIPT", full)
        .env("W", w.path())
        .env("RT", runtime_bin(runtime))
        .output();
    let made: Vec<PathBuf> = copies.0.iter().filter(|d| d.exists()).cloned().collect();
    drop(cg);
    drop(copies);
    assert!(
        made.is_empty(),
        "{runtime}'s restore made the container's cgroup in the host's v1 hierarchies, which a \
         cgroup v2 container has none of: {made:?}"
    );
    match out {
        Ok(o) => o,
        Err(e) => panic!("running bash: {e}"),
    }
}

/// The whole life of a container on cgroup v2, the checkpoint of a paused container among it
/// (CRIU is told where its frozen freezer is), statistics without controllers, `kill --all`
/// through the cgroup and a plain delete: ferry and runc print the same.
#[test]
fn create_pause_checkpoint_restore_delete_on_cgroup_v2() {
    if !require_root() {
        return;
    }
    let script = r#"cfg '.process.args=["sh","-c","trap \"exit 0\" TERM; i=0; while :; do i=$((i+1)); echo $i > /dev/shm/n.new; mv /dev/shm/n.new /dev/shm/n; sleep 0.1; done"]'
CG=/sys/fs/cgroup/pa-v2
in_cgroup() { grep -qx "$(r state pa-v2 | jq .pid)" $CG/cgroup.procs && echo "init in $CG" || echo "init not in $CG"; }
# The counter's file is there once the init ran its first round.
n() { r exec pa-v2 cat /dev/shm/n 2>/dev/null || echo 0; }
past() { [ "$(n)" -gt "$1" ]; }
advances() { a=$(n); wait_for 5 past "$a" 2>/dev/null && echo advances || echo "stands at $a"; }
stat -f -c %T /sys/fs/cgroup
r run -d --bundle $B pa-v2 </dev/null >/dev/null
status pa-v2
in_cgroup
advances
# Only the freezer is there: statistics come from cpu.stat and cgroup.procs.
r events --stats pa-v2 | jq -c '[.type, .data.cpu.usage.total > 0, .data.pids.current > 0]'
r pause pa-v2
status pa-v2
echo "cgroup.freeze $(cat $CG/cgroup.freeze)"
r checkpoint --image-path $W/img pa-v2 && echo checkpointed
echo "containers: $(r list -q | wc -l)"
[ -d $CG ] && echo "cgroup kept" || echo "cgroup removed"
r restore -d --image-path $W/img --bundle $B pa-v2 </dev/null >/dev/null && echo restored
status pa-v2
in_cgroup
echo "cgroup.freeze $(cat $CG/cgroup.freeze)"
advances
r pause pa-v2
status pa-v2
echo "cgroup.freeze $(cat $CG/cgroup.freeze)"
r resume pa-v2
status pa-v2
advances
r kill --all pa-v2 KILL
wait_status pa-v2 stopped
status pa-v2
echo "processes left: $(wc -l < $CG/cgroup.procs)"
r delete pa-v2
[ -d $CG ] && echo "cgroup kept" || echo "cgroup removed"
echo "containers: $(r list -q | wc -l)""#;
    let f = on_v2("ferry", script);
    let r = on_v2("runc", script);
    assert!(
        r.status.success(),
        "runc failed on cgroup v2:\n{}\n{}",
        text(&r.stdout),
        text(&r.stderr)
    );
    assert!(
        f.status.success(),
        "ferry failed on cgroup v2:\n{}\n{}",
        text(&f.stdout),
        text(&f.stderr)
    );
    assert_eq!(
        text(&f.stdout),
        text(&r.stdout),
        "ferry (left) and runc (right) differ on cgroup v2; ferry's stderr:\n{}",
        text(&f.stderr)
    );
    assert_eq!(
        text(&f.stdout),
        "cgroup2fs\nrunning\ninit in /sys/fs/cgroup/pa-v2\nadvances\n[\"stats\",true,true]\npaused\ncgroup.freeze 1\n\
         checkpointed\ncontainers: 0\ncgroup removed\nrestored\nrunning\n\
         init in /sys/fs/cgroup/pa-v2\ncgroup.freeze 0\nadvances\npaused\ncgroup.freeze 1\n\
         running\nadvances\nstopped\nprocesses left: 0\ncgroup removed\ncontainers: 0\n"
    );
}
