//! `checkpoint` and `restore`, with runc's flags (podman and containerd send them unchanged).

use crate::cli::GlobalOpts;
use crate::lifecycle::runtime;
use anyhow::Result;
use clap::Args;
use ferry_runtime::checkpoint::{CheckpointOptions, CriuOptions, MountMismatch, RestoreOptions};
use ferry_runtime::lifecycle::wait_foreground;
use std::path::PathBuf;

/// The flags checkpoint and restore share.
#[derive(Args, Debug)]
pub struct CriuArgs {
    /// Directory for CRIU's images (default: ./checkpoint).
    #[arg(long = "image-path")]
    pub image_path: Option<PathBuf>,
    /// Directory for CRIU's logs and statistics (default: the image path).
    #[arg(long = "work-path")]
    pub work_path: Option<PathBuf>,
    /// A previous pre-dump's images, relative to the image path.
    #[arg(long = "parent-path")]
    pub parent_path: Option<PathBuf>,
    #[arg(long = "tcp-established")]
    pub tcp_established: bool,
    #[arg(long = "ext-unix-sk")]
    pub ext_unix_sk: bool,
    #[arg(long = "shell-job")]
    pub shell_job: bool,
    #[arg(long = "file-locks")]
    pub file_locks: bool,
    /// soft, full, strict or ignore.
    #[arg(long = "manage-cgroups-mode")]
    pub manage_cgroups_mode: Option<String>,
    /// Namespaces to leave empty (network).
    #[arg(long = "empty-ns")]
    pub empty_ns: Vec<String>,
    #[arg(long = "auto-dedup")]
    pub auto_dedup: bool,
    #[arg(long = "lazy-pages")]
    pub lazy_pages: bool,
}

impl CriuArgs {
    fn options(self, g: &GlobalOpts) -> CriuOptions {
        CriuOptions {
            image_path: self
                .image_path
                .unwrap_or_else(|| PathBuf::from("checkpoint")),
            work_path: self.work_path,
            parent_path: self.parent_path,
            tcp_established: self.tcp_established,
            ext_unix_sk: self.ext_unix_sk,
            shell_job: self.shell_job,
            file_locks: self.file_locks,
            manage_cgroups_mode: self.manage_cgroups_mode,
            empty_ns: self.empty_ns,
            auto_dedup: self.auto_dedup,
            lazy_pages: self.lazy_pages,
            criu: g.criu.clone(),
        }
    }
}

#[derive(Args, Debug)]
pub struct CheckpointArgs {
    pub id: String,
    #[command(flatten)]
    pub common: CriuArgs,
    #[arg(long = "leave-running")]
    pub leave_running: bool,
    #[arg(long = "pre-dump")]
    pub pre_dump: bool,
    #[arg(long = "status-fd")]
    pub status_fd: Option<i32>,
    /// ADDRESS:PORT of a CRIU page server.
    #[arg(long = "page-server")]
    pub page_server: Option<String>,
}

#[derive(Args, Debug)]
pub struct RestoreArgs {
    pub id: String,
    #[command(flatten)]
    pub common: CriuArgs,
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
    #[arg(short = 'd', long)]
    pub detach: bool,
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    #[arg(long = "no-subreaper")]
    pub no_subreaper: bool,
    #[arg(long = "lsm-profile")]
    pub lsm_profile: Option<String>,
    #[arg(long = "lsm-mount-context")]
    pub lsm_mount_context: Option<String>,
    /// fail (default): a restored mount tree that differs from the checkpoint aborts the
    /// restore; warn: report it and keep the container.
    #[arg(long = "mount-mismatch", default_value = "fail")]
    pub mount_mismatch: String,
}

pub fn checkpoint(g: &GlobalOpts, a: CheckpointArgs) -> Result<i32> {
    let opts = CheckpointOptions {
        common: a.common.options(g),
        leave_running: a.leave_running,
        pre_dump: a.pre_dump,
        status_fd: a.status_fd,
        page_server: a.page_server,
    };
    runtime(g).checkpoint(&a.id, &opts)?;
    Ok(0)
}

pub fn restore(g: &GlobalOpts, a: RestoreArgs) -> Result<i32> {
    let mount_mismatch = match a.mount_mismatch.as_str() {
        "fail" => MountMismatch::Fail,
        "warn" => MountMismatch::Warn,
        other => anyhow::bail!("--mount-mismatch {other:?}: use fail or warn"),
    };
    let opts = RestoreOptions {
        common: a.common.options(g),
        bundle: a.bundle,
        detach: a.detach,
        pid_file: a.pid_file,
        console_socket: a.console_socket,
        no_pivot: a.no_pivot,
        lsm_profile: a.lsm_profile,
        lsm_mount_context: a.lsm_mount_context,
        mount_mismatch,
    };
    let rt = runtime(g);
    let pid = rt.restore(&a.id, &opts)?;
    if a.detach {
        return Ok(0);
    }
    let code = wait_foreground(pid);
    if let Err(e) = rt.delete(&a.id, true) {
        tracing::warn!("removing container \"{}\" after it exited: {e}", a.id);
    }
    Ok(code?)
}
