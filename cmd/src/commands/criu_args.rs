//! The flags `checkpoint` and `restore` share, with runc's names (podman and containerd send
//! them unchanged).

use crate::cli::GlobalOpts;
use clap::Args;
use ferry_runtime::checkpoint::CriuOptions;
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
    pub(super) fn options(self, g: &GlobalOpts) -> CriuOptions {
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
