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
    pub manage_cgroups_mode: Option<String>,
    pub empty_ns: Vec<String>,
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

    /// The options of a dump or restore request that come from these flags and the bundle.
    pub(super) fn apply(&self, spec: &oci_spec::runtime::Spec, o: &mut Criu_opts) -> Result<()> {
        o.set_manage_cgroups(true);
        o.set_manage_cgroups_mode(cg_mode(self.manage_cgroups_mode.as_deref())?);
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
        if self
            .empty_ns
            .iter()
            .any(|ns| ns == "network" || ns == "net")
        {
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
    pub no_pivot: bool,
    pub lsm_profile: Option<String>,
    pub lsm_mount_context: Option<String>,
    pub mount_mismatch: MountMismatch,
}

pub(super) fn cg_mode(mode: Option<&str>) -> Result<Criu_cg_mode> {
    Ok(match mode.unwrap_or("soft") {
        "soft" => Criu_cg_mode::SOFT,
        "full" => Criu_cg_mode::FULL,
        "strict" => Criu_cg_mode::STRICT,
        "ignore" => Criu_cg_mode::IGNORE,
        other => {
            return Err(RuntimeError::Invalid(format!(
                "--manage-cgroups-mode {other:?}: use soft, full, strict or ignore"
            )))
        }
    })
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
