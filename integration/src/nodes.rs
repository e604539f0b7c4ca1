//! Two simulated nodes for live-migration tests: a wrapper over `hack/nodes` (router, client,
//! node A and node B, each node its own mount and network namespace with a shared volume
//! mount, a ferry root and a cgroup parent) and the migration steps of `hack/migrate/lib.sh`.
//! Dropping a [`Nodes`] tears everything down, also when a test panics.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The CRIU the migration tests use: 4.2 or newer is needed for IP sockets on this kernel
/// (`FERRY_MIGRATE_CRIU` overrides).
pub fn migrate_criu() -> PathBuf {
    std::env::var_os("FERRY_MIGRATE_CRIU")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/local/bin/criu-new"))
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The static workload binary (`hack/migrate/memserver.c`), built once with the system's C
/// compiler: it has to run in the busybox root filesystem.
pub fn memserver() -> PathBuf {
    let src = repo().join("hack/migrate/memserver.c");
    let out = repo().join("target/tmp/memserver");
    let fresh = match (std::fs::metadata(&src), std::fs::metadata(&out)) {
        (Ok(s), Ok(o)) => match (s.modified(), o.modified()) {
            (Ok(s), Ok(o)) => o >= s,
            _ => false,
        },
        _ => false,
    };
    if !fresh {
        if let Some(dir) = out.parent() {
            if let Err(e) = std::fs::create_dir_all(dir) {
                panic!("creating {}: {e}", dir.display());
            }
        }
        let status = Command::new("cc")
            .args(["-O2", "-static", "-o"])
            .arg(&out)
            .arg(&src)
            .status();
        match status {
            Ok(s) if s.success() => {}
            other => panic!(
                "building {} with cc -static failed ({other:?}): install gcc and the C library's static files",
                src.display()
            ),
        }
    }
    out
}

/// A running pair of nodes in a scratch directory.
pub struct Nodes {
    dir: tempfile::TempDir,
}

impl Nodes {
    /// `hack/nodes up`; panics with its output when it fails (it cleans up after itself).
    pub fn up() -> Nodes {
        let dir = match tempfile::Builder::new().prefix("mg-nodes.").tempdir() {
            Ok(d) => d,
            Err(e) => panic!("creating the nodes' directory: {e}"),
        };
        let nodes = Nodes { dir };
        let out = nodes.hack(&["up"]);
        crate::check(&out, "hack/nodes up");
        nodes
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn hack(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(repo().join("hack/nodes"));
        cmd.arg(args[0]).arg(self.dir()).args(&args[1..]);
        cmd.env("FERRY", crate::ferry_bin());
        match cmd.output() {
            Ok(o) => o,
            Err(e) => panic!("running hack/nodes: {e}"),
        }
    }

    /// Run a bash script with the migration steps (`hack/migrate/lib.sh`) loaded; `env` adds
    /// variables.
    pub fn script(&self, script: &str, env: &[(&str, String)]) -> Output {
        let lib = repo().join("hack/migrate/lib.sh");
        let mut cmd = Command::new("bash");
        cmd.args(["-c", &format!(". {}\n{script}", lib.display())]);
        cmd.env("FX", self.dir())
            .env("NODES_BIN", repo().join("hack/nodes"))
            .env("FERRY", crate::ferry_bin())
            .env("CRIU", migrate_criu())
            .env("MEMSERVER", memserver())
            .env("CLIENT", repo().join("hack/migrate/client.py"));
        for (k, v) in env {
            cmd.env(k, v);
        }
        match cmd.output() {
            Ok(o) => o,
            Err(e) => panic!("running a migration script: {e}"),
        }
    }
}

impl Drop for Nodes {
    fn drop(&mut self) {
        let out = self.hack(&["down"]);
        if !out.status.success() {
            eprintln!(
                "hack/nodes down: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
    }
}
