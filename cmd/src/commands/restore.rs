//! `restore`: a container from a checkpoint, its mount tree checked against the image.

use super::criu_args::CriuArgs;
use super::runtime;
use crate::cli::GlobalOpts;
use anyhow::Result;
use clap::{Args, ValueEnum};
use ferry_runtime::checkpoint::{MountMismatch, RestoreOptions};
use ferry_runtime::lifecycle::wait_foreground;
use std::path::PathBuf;

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
    /// Accepted as runc accepts it; CRIU restores the root itself.
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    #[arg(long = "no-subreaper")]
    pub no_subreaper: bool,
    #[arg(long = "lsm-profile")]
    pub lsm_profile: Option<String>,
    #[arg(long = "lsm-mount-context")]
    pub lsm_mount_context: Option<String>,
    /// What a restored mount tree that differs from the checkpoint does.
    #[arg(long = "mount-mismatch", value_enum, value_name = "ACTION", default_value_t = MountMismatchArg::Fail)]
    pub mount_mismatch: MountMismatchArg,
}

/// `--mount-mismatch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MountMismatchArg {
    /// Abort the restore: kill the restored processes and remove the container.
    Fail,
    /// Report the differences and keep the container.
    Warn,
}

impl From<MountMismatchArg> for MountMismatch {
    fn from(action: MountMismatchArg) -> Self {
        match action {
            MountMismatchArg::Fail => MountMismatch::Fail,
            MountMismatchArg::Warn => MountMismatch::Warn,
        }
    }
}

pub fn restore(g: &GlobalOpts, a: RestoreArgs) -> Result<i32> {
    let opts = RestoreOptions {
        common: a.common.options(g),
        bundle: a.bundle,
        detach: a.detach,
        pid_file: a.pid_file,
        console_socket: a.console_socket,
        lsm_profile: a.lsm_profile,
        lsm_mount_context: a.lsm_mount_context,
        mount_mismatch: a.mount_mismatch.into(),
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
