//! containerd 1.6 driven with `ctr`, its runc shim (io.containerd.runc.v2) running ferry: the
//! shim learns the runtime binary from the container's runtime options (`options.BinaryName`),
//! which `ctr run --runc-binary` sets. Every scenario runs with ferry and with runc in the same
//! test, so a behaviour difference fails it.
//!
//! Each test starts its own containerd with `hack/containerd-env` (private config, root,
//! state, socket, namespace and mount namespace; CRI disabled; image imported from the OCI
//! archive of `hack/setup`) and stops it from a Drop guard, so containers, shims, cgroups and
//! mounts go away when a test fails too. Every `ctr` call has a time limit.

use ferry_integration::{describe, ferry_bin, poll_until, require_root, text, COUNTER};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const RUNTIMES: [&str; 2] = ["ferry", "runc"];
const CRIU_TAR: &str = "application/vnd.containerd.container.criu.checkpoint.criu.tar";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn runc_bin() -> String {
    for p in ["/usr/sbin/runc", "/usr/bin/runc", "/usr/local/sbin/runc"] {
        if Path::new(p).exists() {
            return p.to_string();
        }
    }
    panic!("runc not found: run hack/setup");
}

/// A private containerd; stopped (containers, shims, cgroups, mounts, directory) on drop.
struct Containerd {
    dir: PathBuf,
    ns: String,
    image: String,
}

impl Containerd {
    fn start(tag: &str) -> Containerd {
        let pid = std::process::id();
        let c = Containerd {
            dir: PathBuf::from(format!("/tmp/ferry-ctrd-{tag}-{pid}")),
            ns: format!("ferry-it-{tag}-{pid}"),
            image: "localhost/ferry-busybox:latest".to_string(),
        };
        // From here on the guard exists, so a failed start is cleaned up too.
        let t = Instant::now();
        let out = c.script(&["start"], 60);
        if !out.status.success() {
            let log = std::fs::read_to_string(c.dir.join("containerd.log")).unwrap_or_default();
            panic!(
                "hack/containerd-env start {}\n--- containerd.log\n{log}",
                describe(&out)
            );
        }
        eprintln!("containerd up with the image in {:?}", t.elapsed());
        c
    }

    /// `hack/containerd-env ARGS...` with this instance's settings, killed after `secs`.
    fn script(&self, args: &[&str], secs: u32) -> Output {
        let mut cmd = Command::new("timeout");
        cmd.args(["-k", "5", &secs.to_string()])
            .arg(repo().join("hack/containerd-env"))
            .args(args)
            .env("FERRY_CONTAINERD_DIR", &self.dir)
            .env("FERRY_CTR_NAMESPACE", &self.ns)
            .env("FERRY_CTR_IMAGE", &self.image)
            .env("FERRY_BIN", ferry_bin())
            .env("FERRY_RUNC_BIN", runc_bin());
        cmd.output()
            .unwrap_or_else(|e| panic!("running hack/containerd-env: {e}"))
    }

    /// `ctr` (through `fctr`) against the private socket and namespace, at most 30 s.
    fn ctr(&self, args: &[&str]) -> Output {
        let mut a = vec!["ctr"];
        a.extend_from_slice(args);
        self.script(&a, 30)
    }

    /// `ctr` that must succeed; its stdout.
    fn ctr_ok(&self, args: &[&str]) -> Result<String, String> {
        let o = self.ctr(args);
        if o.status.success() {
            Ok(text(&o.stdout))
        } else {
            Err(format!("ctr {} failed {}", args.join(" "), describe(&o)))
        }
    }

    /// The `ctr run` flags that select a runtime, each with its own state root.
    fn runtime_args(&self, rt: &str) -> Vec<String> {
        let bin = if rt == "ferry" {
            ferry_bin().display().to_string()
        } else {
            runc_bin()
        };
        vec![
            "--runc-binary".into(),
            bin,
            "--runc-root".into(),
            self.dir.join("runtime").join(rt).display().to_string(),
        ]
    }

    /// `ctr run [-d] <runtime> IMAGE ID sh -c SCRIPT`.
    fn run(&self, rt: &str, detach: bool, id: &str, script: &str) -> Output {
        let rta = self.runtime_args(rt);
        let mut a: Vec<&str> = vec!["run"];
        a.push(if detach { "-d" } else { "--rm" });
        a.extend(rta.iter().map(String::as_str));
        a.extend([self.image.as_str(), id, "sh", "-c", script]);
        self.ctr(&a)
    }

    /// Containers the runtime itself knows in this namespace (`<rt> --root ... list -q`).
    fn runtime_list(&self, rt: &str) -> Vec<String> {
        let bin = if rt == "ferry" {
            ferry_bin().display().to_string()
        } else {
            runc_bin()
        };
        let root = self.dir.join("runtime").join(rt).join(&self.ns);
        if !root.exists() {
            return vec![];
        }
        let o = Command::new(bin)
            .arg("--root")
            .arg(&root)
            .args(["list", "-q"])
            .output();
        match o {
            Ok(o) => text(&o.stdout).lines().map(str::to_string).collect(),
            Err(_) => vec![],
        }
    }

    /// (pid, status) of a task, from `ctr task ls`.
    fn task(&self, id: &str) -> Option<(u32, String)> {
        let out = self.ctr_ok(&["task", "ls"]).ok()?;
        out.lines().skip(1).find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 3 && f[0] == id).then(|| (f[1].parse().unwrap_or(0), f[2].to_string()))
        })
    }

    fn wait_status(&self, id: &str, want: &str, secs: u64) -> Result<u32, String> {
        let mut t = None;
        let done = poll_until(Duration::from_secs(secs), || {
            t = self.task(id);
            t.as_ref().is_some_and(|(_, st)| st == want)
        });
        match t {
            Some((pid, _)) if done => Ok(pid),
            _ => Err(format!("task {id} not {want} after {secs}s: {t:?}")),
        }
    }

    /// The container's counter read from the host (works even if the container is frozen).
    fn count(&self, id: &str) -> Option<(String, u64)> {
        let (pid, _) = self.task(id)?;
        let s = std::fs::read_to_string(format!("/proc/{pid}/root/tmp/count")).ok()?;
        let mut f = s.split_whitespace();
        Some((f.next()?.to_string(), f.next()?.parse().ok()?))
    }

    /// Wait until the counter shows `token` (if given) and a count above `above`.
    fn wait_count(
        &self,
        id: &str,
        token: Option<&str>,
        above: u64,
        secs: u64,
    ) -> Result<(String, u64), String> {
        let mut c = None;
        let done = poll_until(Duration::from_secs(secs), || {
            c = self.count(id);
            c.as_ref()
                .is_some_and(|(t, n)| token.is_none_or(|want| want == t) && *n > above)
        });
        match c {
            Some(c) if done => Ok(c),
            _ => Err(format!(
                "counter of {id} did not pass {above} (token {token:?}) within {secs}s: last {c:?}; {}",
                self.freezer(id)
            )),
        }
    }

    fn freezer(&self, id: &str) -> String {
        let p = format!("/sys/fs/cgroup/freezer/{}/{id}/freezer.state", self.ns);
        match std::fs::read_to_string(&p) {
            Ok(s) => format!("{p} = {}", s.trim()),
            Err(e) => format!("{p}: {e}"),
        }
    }

    /// The digest of an image in the store, from `ctr image ls`.
    fn image_digest(&self, name: &str) -> Result<String, String> {
        let out = self.ctr_ok(&["image", "ls"])?;
        out.lines()
            .find_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.first() == Some(&name))
                    .then(|| f.get(2).map(|s| s.to_string()))
                    .flatten()
            })
            .ok_or_else(|| format!("image {name} not in the store:\n{out}"))
    }

    /// The media types an image's index lists.
    fn index_media_types(&self, name: &str) -> Result<Vec<String>, String> {
        let digest = self.image_digest(name)?;
        let index = self.ctr_ok(&["content", "get", &digest])?;
        let v: serde_json::Value =
            serde_json::from_str(&index).map_err(|e| format!("index of {name}: {e}: {index}"))?;
        Ok(v["manifests"]
            .as_array()
            .map(|m| {
                m.iter()
                    .filter_map(|d| d["mediaType"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Kill, delete the task and delete the container, checking each step.
    fn remove(&self, id: &str) -> Result<(), String> {
        if self.task(id).is_some() {
            let _ = self.ctr(&["task", "kill", "-s", "SIGKILL", id]);
            self.wait_status(id, "STOPPED", 10)?;
            self.ctr_ok(&["task", "delete", id])?;
        }
        self.ctr_ok(&["container", "delete", id])?;
        Ok(())
    }

    /// A failure message with what the runtime and CRIU logged for this container.
    fn logs(&self, id: &str) -> String {
        let mut s = String::new();
        for (dir, files) in [
            ("state", &["log.json"][..]),
            ("root", &["dump.log", "restore.log"][..]),
        ] {
            for f in files {
                let p = self
                    .dir
                    .join(dir)
                    .join("io.containerd.runtime.v2.task")
                    .join(&self.ns)
                    .join(id)
                    .join(f);
                if let Ok(t) = std::fs::read_to_string(&p) {
                    let lines: Vec<&str> = t.lines().collect();
                    // What CRIU did with the freezer cgroup, then how the log ends.
                    let freezer: Vec<&str> = lines
                        .iter()
                        .filter(|l| {
                            l.contains("freezer")
                                && ["Created", "exist", "FROZEN", "THAWED"]
                                    .iter()
                                    .any(|w| l.contains(w))
                        })
                        .copied()
                        .collect();
                    let tail = lines[lines.len().saturating_sub(6)..].join("\n");
                    s += &format!("\n--- {}\n{}\n...\n{tail}", p.display(), freezer.join("\n"));
                }
            }
        }
        s
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let out = self.script(&["stop"], 60);
        let left = self.dir.exists();
        if (!out.status.success() || left) && !std::thread::panicking() {
            panic!(
                "hack/containerd-env stop {} (directory left: {left})",
                describe(&out)
            );
        }
    }
}

/// Run a scenario with both runtimes; fail with both outcomes when either failed.
fn both(what: &str, mut scenario: impl FnMut(&str) -> Result<String, String>) -> Vec<String> {
    let mut results = vec![];
    for rt in RUNTIMES {
        let t = Instant::now();
        let r = scenario(rt);
        eprintln!(
            "{what} with {rt}: {} in {:?}",
            if r.is_ok() { "ok" } else { "FAILED" },
            t.elapsed()
        );
        results.push((rt, r));
    }
    if results.iter().any(|(_, r)| r.is_err()) {
        let mut msg = format!("{what}:");
        for (rt, r) in &results {
            match r {
                Ok(_) => msg += &format!("\n=== {rt}: ok"),
                Err(e) => msg += &format!("\n=== {rt}: FAILED: {e}"),
            }
        }
        panic!("{msg}");
    }
    results.into_iter().map(|(_, r)| r.unwrap()).collect()
}

fn ensure(cond: bool, msg: impl FnOnce() -> String) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(msg())
    }
}

/// `ctr run --rm` in the foreground: the exit code, stdout and stderr come through; nothing is
/// left behind.
#[test]
fn run_foreground_exit_code_and_output() {
    if !require_root() {
        return;
    }
    let c = Containerd::start("fg");
    let script = r#"echo "pid=$$ uid=$(id -u) cwd=$PWD comm1=$(cat /proc/1/comm)"; echo "root: $(ls / | tr '\n' ' ')"; echo oops >&2; exit 7"#;
    let outs = both("ctr run --rm, exit 7", |rt| {
        let id = format!("fg-{rt}");
        let o = c.run(rt, false, &id, script);
        ensure(o.status.code() == Some(7), || {
            format!("want exit code 7, got {}", describe(&o))
        })?;
        let out = text(&o.stdout);
        ensure(
            out.starts_with("pid=1 uid=0 cwd=/ comm1=sh\nroot: "),
            || format!("stdout: {out:?}"),
        )?;
        ensure(out.contains(" bin ") && out.contains(" proc "), || {
            format!("stdout: {out:?}")
        })?;
        ensure(text(&o.stderr).contains("oops"), || {
            format!("stderr lacks oops: {}", describe(&o))
        })?;
        let cs = c.ctr_ok(&["container", "ls", "-q"])?;
        ensure(!cs.lines().any(|l| l == id), || {
            format!("--rm left the container: {cs}")
        })?;
        ensure(c.runtime_list(rt).is_empty(), || {
            format!("{rt} still lists {:?}", c.runtime_list(rt))
        })?;
        Ok(out)
    });
    assert_eq!(outs[0], outs[1], "ferry and runc print differently");
}

/// `ctr run -d`, `ctr task exec`, `task ps`, `task kill` (SIGTERM, trapped: exit 42),
/// `task delete`, `container delete`.
#[test]
fn detached_exec_kill_delete() {
    if !require_root() {
        return;
    }
    let c = Containerd::start("exec");
    let init = r#"trap "exit 42" TERM; echo started > /tmp/marker; while :; do sleep 0.1; done"#;
    let outs = both("run -d, exec, kill, delete", |rt| {
        let id = format!("ex-{rt}");
        let o = c.run(rt, true, &id, init);
        ensure(o.status.success(), || {
            format!("ctr run -d {}", describe(&o))
        })?;
        let pid = c.wait_status(&id, "RUNNING", 10)?;
        ensure(c.runtime_list(rt).contains(&id), || {
            format!("{rt} does not list {id}: the shim ran another runtime")
        })?;
        let other = if rt == "ferry" { "runc" } else { "ferry" };
        ensure(!c.runtime_list(other).contains(&id), || {
            format!("{other} lists {id}")
        })?;
        // The init writes the marker first thing; give it a moment.
        let marker = PathBuf::from(format!("/proc/{pid}/root/tmp/marker"));
        poll_until(Duration::from_secs(5), || marker.exists());
        let o = c.ctr(&[
            "task", "exec", "--exec-id", "e1", &id, "sh", "-c",
            "cat /tmp/marker; echo \"init=$(cat /proc/1/comm) me=$(cat /proc/self/comm) uid=$(id -u)\"; echo err >&2; exit 3",
        ]);
        ensure(o.status.code() == Some(3), || {
            format!("exec: want exit code 3, got {}", describe(&o))
        })?;
        let exec_out = text(&o.stdout);
        ensure(exec_out == "started\ninit=sh me=cat uid=0\n", || {
            format!("exec stdout: {exec_out:?}")
        })?;
        ensure(text(&o.stderr).contains("err"), || {
            format!("exec stderr: {}", describe(&o))
        })?;
        let ps = c.ctr_ok(&["task", "ps", &id])?;
        ensure(
            ps.lines()
                .any(|l| l.split_whitespace().next() == Some(&pid.to_string())),
            || format!("task ps lacks the init {pid}:\n{ps}"),
        )?;
        c.ctr_ok(&["task", "kill", &id])?;
        c.wait_status(&id, "STOPPED", 10)?;
        let o = c.ctr(&["task", "delete", &id]);
        ensure(o.status.success(), || {
            format!("task delete {}", describe(&o))
        })?;
        ensure(text(&o.stderr).contains("exit code 42"), || {
            format!("task delete does not report exit code 42: {}", describe(&o))
        })?;
        c.ctr_ok(&["container", "delete", &id])?;
        let cs = c.ctr_ok(&["container", "ls", "-q"])?;
        ensure(!cs.lines().any(|l| l == id), || {
            format!("container still listed: {cs}")
        })?;
        ensure(!Path::new(&format!("/proc/{pid}")).exists(), || {
            format!("init {pid} still alive")
        })?;
        ensure(c.runtime_list(rt).is_empty(), || {
            format!("{rt} still lists {:?}", c.runtime_list(rt))
        })?;
        let cg = format!("/sys/fs/cgroup/pids/{}/{id}", c.ns);
        ensure(!Path::new(&cg).exists(), || format!("{cg} left behind"))?;
        Ok(exec_out)
    });
    assert_eq!(outs[0], outs[1], "ferry and runc exec output differ");
}

/// `ctr task checkpoint` of a running counter: to a directory (`--image-path`, the task keeps
/// running and counting), then into the content store with `--exit` (the task stops).
#[test]
fn task_checkpoint_leave_running_then_exit() {
    if !require_root() {
        return;
    }
    let c = Containerd::start("tckpt");
    both("task checkpoint", |rt| {
        let id = format!("tc-{rt}");
        let o = c.run(rt, true, &id, COUNTER);
        ensure(o.status.success(), || {
            format!("ctr run -d {}", describe(&o))
        })?;
        c.wait_status(&id, "RUNNING", 10)?;
        let (token, _) = c.wait_count(&id, None, 3, 10)?;
        let img = c.dir.join(format!("img-{rt}"));
        let work = c.dir.join(format!("work-{rt}"));
        let (img_s, work_s) = (img.display().to_string(), work.display().to_string());
        c.ctr_ok(&[
            "task",
            "checkpoint",
            "--image-path",
            &img_s,
            "--work-path",
            &work_s,
            &id,
        ])
        .map_err(|e| e + &c.logs(&id))?;
        for f in ["inventory.img", "pstree.img", "pages-1.img"] {
            ensure(img.join(f).exists(), || format!("{f} missing in {img_s}"))?;
        }
        ensure(work.join("dump.log").exists(), || {
            format!("dump.log missing in {work_s}")
        })?;
        let (_, at) = c.count(&id).ok_or("no count after checkpoint")?;
        c.wait_status(&id, "RUNNING", 5)?;
        c.wait_count(&id, Some(&token), at + 2, 5)?;

        let name = c
            .ctr_ok(&["task", "checkpoint", "--exit", &id])
            .map_err(|e| e + &c.logs(&id))?;
        let name = name.trim();
        ensure(
            name.starts_with(&format!("containerd.io/checkpoint/{id}:")),
            || format!("checkpoint image name {name:?}"),
        )?;
        c.wait_status(&id, "STOPPED", 10)?;
        let types = c.index_media_types(name)?;
        ensure(types.iter().any(|t| t == CRIU_TAR), || {
            format!("{name} has no CRIU images: {types:?}")
        })?;
        c.remove(&id)?;
        Ok(String::new())
    });
}

/// `ctr containers checkpoint --task --rw` of a running counter, the original removed, then
/// `ctr containers restore --live --rw`: the restored init must be the same shell (same token)
/// and go on counting, run by the same runtime.
#[test]
fn container_checkpoint_restore_counter_continues() {
    if !require_root() {
        return;
    }
    let c = Containerd::start("restore");
    both(
        "containers checkpoint --task, containers restore --live",
        |rt| {
            let id = format!("cr-{rt}");
            let reference = format!("ferry-test/checkpoint/{id}:1");
            let o = c.run(rt, true, &id, COUNTER);
            ensure(o.status.success(), || {
                format!("ctr run -d {}", describe(&o))
            })?;
            c.wait_status(&id, "RUNNING", 10)?;
            c.wait_count(&id, None, 5, 10)?;
            let t = Instant::now();
            c.ctr_ok(&[
                "containers",
                "checkpoint",
                "--task",
                "--rw",
                &id,
                &reference,
            ])
            .map_err(|e| e + &c.logs(&id))?;
            eprintln!("  {rt}: checkpoint took {:?}", t.elapsed());
            let types = c.index_media_types(&reference)?;
            ensure(types.iter().any(|t| t == CRIU_TAR), || {
                format!("{reference} has no CRIU images: {types:?}")
            })?;
            // ctr paused the task for the checkpoint and resumed it: it still counts.
            c.wait_status(&id, "RUNNING", 5)?;
            let (token, seen) = c.count(&id).ok_or("no count after checkpoint")?;
            c.wait_count(&id, Some(&token), seen, 5)?;
            c.remove(&id)?;

            let t = Instant::now();
            c.ctr_ok(&["containers", "restore", "--live", "--rw", &id, &reference])
                .map_err(|e| e + &c.logs(&id))?;
            eprintln!("  {rt}: restore took {:?}", t.elapsed());
            c.wait_status(&id, "RUNNING", 10)
                .map_err(|e| e + &c.logs(&id))?;
            ensure(c.runtime_list(rt).contains(&id), || {
                format!("{rt} does not list the restored {id}")
            })?;
            // The memory state came back: same token, and the count goes past what it was before
            // the original was killed (a fresh start would draw a new token and count from 1).
            let (_, n) = c
                .wait_count(&id, Some(&token), seen + 2, 5)
                .map_err(|e| e + &c.logs(&id))?;
            // And the restored container takes new processes.
            let o = c.ctr(&[
                "task",
                "exec",
                "--exec-id",
                "after",
                &id,
                "cat",
                "/tmp/count",
            ]);
            ensure(o.status.success(), || {
                format!("exec after restore {}", describe(&o))
            })?;
            let after: u64 = text(&o.stdout)
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            ensure(
                text(&o.stdout).starts_with(&format!("{token} ")) && after >= n,
                || {
                    format!(
                        "exec after restore read {:?}, want {token} >= {n}",
                        text(&o.stdout)
                    )
                },
            )?;
            c.remove(&id)?;
            Ok(String::new())
        },
    );
}
