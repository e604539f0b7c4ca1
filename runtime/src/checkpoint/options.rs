//! The options checkpoint and restore take from runc's flags, and how they map onto CRIU's
//! request.

use crate::error::{Result, RuntimeError};
use rust_criu::rust_criu_protobuf::rpc::{Criu_cg_mode, Criu_opts};
use std::path::{Path, PathBuf};

/// What checkpoint and restore share: where the images are, and the CRIU options both
/// take from runc's flags.
#[derive(Debug, Clone, Default)]
pub struct CriuOptions {
    pub image_path: PathBuf,
    pub work_path: Option<PathBuf>,
    pub parent_path: Option<PathBuf>,
    pub tcp_established: bool,
    pub ext_unix_sk: bool,
    pub shell_job: bool,
    pub file_locks: bool,
    pub manage_cgroups_mode: CgroupMode,
    /// Create the network namespace empty instead of restoring it (`--empty-ns network`).
    pub empty_network: bool,
    pub auto_dedup: bool,
    pub lazy_pages: bool,
    /// The CRIU binary (`--criu`), else the one on PATH.
    pub criu: Option<PathBuf>,
}

impl CriuOptions {
    /// CRIU's work directory: `--work-path`, else the image directory.
    pub(super) fn work_path(&self) -> PathBuf {
        self.work_path
            .clone()
            .unwrap_or_else(|| self.image_path.clone())
    }

    /// The CRIU binary these flags name (else the one on PATH), checked to be new enough.
    pub(super) fn find_criu(&self) -> Result<crate::criu::Criu> {
        let criu = crate::criu::Criu::find(self.criu.as_deref())
            .map_err(|e| RuntimeError::Invalid(e.to_string()))?;
        criu.check_version()
            .map_err(|e| RuntimeError::Invalid(e.to_string()))?;
        Ok(criu)
    }

    /// The options of a dump or restore request that come from these flags and the bundle.
    pub(super) fn apply(&self, spec: &oci_spec::runtime::Spec, o: &mut Criu_opts) -> Result<()> {
        o.set_manage_cgroups(true);
        o.set_manage_cgroups_mode(self.manage_cgroups_mode.into());
        o.set_notify_scripts(true);
        criu_config(spec, o);
        o.set_shell_job(self.shell_job);
        o.set_ext_unix_sk(self.ext_unix_sk);
        o.set_tcp_established(self.tcp_established);
        o.set_file_locks(self.file_locks);
        o.set_auto_dedup(self.auto_dedup);
        if let Some(parent) = &self.parent_path {
            o.set_parent_img(parent.display().to_string());
        }
        if self.empty_network {
            o.set_empty_ns(libc::CLONE_NEWNET as u32);
        }
        if spec
            .process()
            .as_ref()
            .and_then(|p| p.terminal())
            .unwrap_or(false)
        {
            o.set_orphan_pts_master(true);
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Default)]
pub struct CheckpointOptions {
    pub common: CriuOptions,
    pub leave_running: bool,
    pub pre_dump: bool,
    pub status_fd: Option<i32>,
    pub page_server: Option<String>,
}

/// What to do when the restored mount tree differs from the checkpointed one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MountMismatch {
    /// Kill the restored tasks, remove everything, report.
    #[default]
    Fail,
    /// Report and keep the restored container.
    Warn,
}

#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    pub common: CriuOptions,
    pub bundle: PathBuf,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub lsm_profile: Option<String>,
    pub lsm_mount_context: Option<String>,
    pub mount_mismatch: MountMismatch,
}

/// How CRIU handles the container's cgroups (`--manage-cgroups-mode`, CRIU's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CgroupMode {
    /// Restore the properties of cgroups CRIU creates; leave existing ones as they are.
    #[default]
    Soft,
    /// Restore every cgroup's properties.
    Full,
    /// Like full, and fail when a cgroup exists with other properties.
    Strict,
    /// Leave cgroups alone.
    Ignore,
}

impl From<CgroupMode> for Criu_cg_mode {
    fn from(mode: CgroupMode) -> Self {
        match mode {
            CgroupMode::Soft => Criu_cg_mode::SOFT,
            CgroupMode::Full => Criu_cg_mode::FULL,
            CgroupMode::Strict => Criu_cg_mode::STRICT,
            CgroupMode::Ignore => Criu_cg_mode::IGNORE,
        }
    }
}

/// CRIU's configuration file, as runc picks it: the `org.criu.config` annotation (empty:
/// none), else /etc/criu/runc.conf when it exists.
pub(super) fn criu_config(spec: &oci_spec::runtime::Spec, o: &mut Criu_opts) {
    let annotated = spec
        .annotations()
        .as_ref()
        .and_then(|a| a.get("org.criu.config").cloned());
    match annotated {
        Some(p) if p.is_empty() => {}
        Some(p) => o.set_config_file(p),
        None if Path::new("/etc/criu/runc.conf").exists() => {
            o.set_config_file("/etc/criu/runc.conf".into())
        }
        None => {}
    }
}

pub(super) fn criu_failed(op: &'static str, e: crate::criu::CriuError, log: &Path) -> RuntimeError {
    // CRIU reports its first error, which without CAP_SYS_RESOURCE is its failure to raise
    // its own open-file limit: harmless, and it would hide the real cause.
    let noise = |l: &str| l.contains("Can't setup RLIMIT_NOFILE");
    let msg = match e {
        crate::criu::CriuError::Failed { msg, .. } if noise(&msg) => String::new(),
        crate::criu::CriuError::Failed { msg, .. } => msg,
        other => other.to_string(),
    };
    // The last error lines of CRIU's log say why; include them so one message is enough.
    let tail = std::fs::read_to_string(log)
        .map(|t| {
            t.lines()
                .filter(|l| (l.contains("Error") || l.contains("error")) && !noise(l))
                .rev()
                .take(3)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join(" | ")
        })
        .unwrap_or_default();
    RuntimeError::Invalid(format!(
        "CRIU {op} failed: {msg}{}{} (log: {})",
        if tail.is_empty() || msg.is_empty() {
            ""
        } else {
            ": "
        },
        tail,
        log.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: serde_json::Value) -> oci_spec::runtime::Spec {
        serde_json::from_value(json).expect("a spec")
    }

    #[test]
    fn cgroup_modes_map_onto_criu() {
        assert_eq!(
            Criu_cg_mode::from(CgroupMode::default()),
            Criu_cg_mode::SOFT
        );
        assert_eq!(Criu_cg_mode::from(CgroupMode::Full), Criu_cg_mode::FULL);
        assert_eq!(Criu_cg_mode::from(CgroupMode::Strict), Criu_cg_mode::STRICT);
        assert_eq!(Criu_cg_mode::from(CgroupMode::Ignore), Criu_cg_mode::IGNORE);
    }

    #[test]
    fn flags_map_onto_the_request() {
        let opts = CriuOptions {
            image_path: "/img".into(),
            parent_path: Some("../pre".into()),
            tcp_established: true,
            ext_unix_sk: true,
            shell_job: true,
            file_locks: true,
            auto_dedup: true,
            manage_cgroups_mode: CgroupMode::Strict,
            empty_network: true,
            ..Default::default()
        };
        let s = spec(serde_json::json!({
            "ociVersion": "1.0.2",
            "process": {"terminal": true, "cwd": "/", "args": ["sh"], "user": {"uid": 0, "gid": 0}},
            "annotations": {"org.criu.config": "/etc/my-criu.conf"}
        }));
        let mut o = Criu_opts::new();
        opts.apply(&s, &mut o).expect("apply");
        assert!(o.manage_cgroups() && o.notify_scripts());
        assert_eq!(o.manage_cgroups_mode(), Criu_cg_mode::STRICT);
        assert!(o.tcp_established() && o.ext_unix_sk() && o.shell_job());
        assert!(o.file_locks() && o.auto_dedup());
        assert_eq!(o.parent_img(), "../pre");
        assert_eq!(o.empty_ns(), libc::CLONE_NEWNET as u32);
        assert!(o.orphan_pts_master(), "a terminal's master must come back");
        assert_eq!(o.config_file(), "/etc/my-criu.conf");
        assert_eq!(opts.work_path(), PathBuf::from("/img"));

        // An empty annotation means no configuration file; no terminal, no pty master.
        let s = spec(serde_json::json!({
            "ociVersion": "1.0.2",
            "annotations": {"org.criu.config": ""}
        }));
        let mut o = Criu_opts::new();
        CriuOptions::default().apply(&s, &mut o).expect("apply");
        assert!(!o.has_config_file());
        assert!(!o.orphan_pts_master() && !o.tcp_established() && !o.has_empty_ns());
        assert_eq!(o.manage_cgroups_mode(), Criu_cg_mode::SOFT);
    }
}
