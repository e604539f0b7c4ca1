//! `exec`: a process in a running container.

use super::runtime;
use crate::cli::GlobalOpts;
use anyhow::Result;
use clap::Args;
use ferry_runtime::lifecycle::{wait_foreground, ExecOptions, SpawnOptions};
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct ExecArgs {
    pub id: String,
    /// The command and its arguments (unless --process is given).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
    /// A process.json describing the process to run.
    #[arg(short = 'p', long)]
    pub process: Option<PathBuf>,
    #[arg(short = 't', long)]
    pub tty: bool,
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    #[arg(short = 'd', long)]
    pub detach: bool,
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// KEY=VALUE (repeatable).
    #[arg(short = 'e', long)]
    pub env: Vec<String>,
    /// UID[:GID].
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    #[arg(short = 'g', long = "additional-gids")]
    pub additional_gids: Vec<u32>,
    /// Add a capability (repeatable).
    #[arg(short = 'c', long)]
    pub cap: Vec<String>,
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: i32,
    #[arg(long = "process-label")]
    pub process_label: Option<String>,
    #[arg(long)]
    pub apparmor: Option<String>,
    #[arg(long = "ignore-paused")]
    pub ignore_paused: bool,
}

pub fn exec(g: &GlobalOpts, a: ExecArgs) -> Result<i32> {
    let opts = ExecOptions {
        process: a.process,
        args: a.command,
        tty: a.tty,
        spawn: SpawnOptions {
            pid_file: a.pid_file,
            console_socket: a.console_socket,
            preserve_fds: a.preserve_fds,
        },
        detach: a.detach,
        cwd: a.cwd,
        env: a.env,
        user: a.user,
        additional_gids: a.additional_gids,
        caps: a.cap,
        no_new_privs: a.no_new_privs,
        apparmor: a.apparmor,
        process_label: a.process_label,
        ignore_paused: a.ignore_paused,
    };
    let pid = runtime(g).exec(&a.id, &opts)?;
    if a.detach {
        return Ok(0);
    }
    Ok(wait_foreground(pid)?)
}
