//! `restore`: a container from a checkpoint, its mount tree checked against the image.

use super::criu_args::CriuArgs;
use super::runtime;
use crate::cli::GlobalOpts;
use anyhow::Result;
use clap::Args;
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
