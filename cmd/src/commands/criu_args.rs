//! The flags `checkpoint` and `restore` share, with runc's names (podman and containerd send
//! them unchanged).

use crate::cli::GlobalOpts;
use clap::{Args, ValueEnum};
use ferry_runtime::checkpoint::{CgroupMode, CriuOptions};
use std::path::PathBuf;

/// `--manage-cgroups-mode`: CRIU's cgroup modes, as runc names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CgroupModeArg {
    Soft,
    Full,
    Strict,
    Ignore,
}

impl From<CgroupModeArg> for CgroupMode {
    fn from(mode: CgroupModeArg) -> Self {
        match mode {
            CgroupModeArg::Soft => CgroupMode::Soft,
            CgroupModeArg::Full => CgroupMode::Full,
            CgroupModeArg::Strict => CgroupMode::Strict,
            CgroupModeArg::Ignore => CgroupMode::Ignore,
        }
    }
}

/// `--empty-ns`: the namespaces CRIU can create empty. runc takes `network` only; `net`
/// is its kernel name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EmptyNsArg {
    #[value(alias = "net")]
    Network,
}

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
    /// How CRIU handles the container's cgroups.
    #[arg(long = "manage-cgroups-mode", value_enum, value_name = "MODE", default_value_t = CgroupModeArg::Soft)]
    pub manage_cgroups_mode: CgroupModeArg,
    /// Create this namespace empty instead of restoring it (repeatable; runc takes network
    /// only).
    #[arg(long = "empty-ns", value_enum, value_name = "NAMESPACE")]
    pub empty_ns: Vec<EmptyNsArg>,
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
            manage_cgroups_mode: self.manage_cgroups_mode.into(),
            empty_network: self.empty_ns.contains(&EmptyNsArg::Network),
            auto_dedup: self.auto_dedup,
            lazy_pages: self.lazy_pages,
            criu: g.criu.clone(),
        }
    }
}
