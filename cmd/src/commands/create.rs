//! `create`: set up a container from a bundle; its process waits for `start`.

use super::runtime;
use crate::cli::GlobalOpts;
use anyhow::Result;
use clap::Args;
use ferry_runtime::lifecycle::{CreateOptions, SpawnOptions};
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct CreateArgs {
    pub id: String,
    /// Path to the bundle directory (holding config.json).
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
    /// Unix socket that receives the pty master of a container with a terminal.
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// File to write the init's pid to (digits only).
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Use MS_MOVE instead of pivot_root (for a ramdisk root).
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Do not create a new session keyring.
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Pass this many extra file descriptors (3 and up) to the container.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: i32,
}

impl CreateArgs {
    pub(super) fn options(&self) -> CreateOptions {
        CreateOptions {
            bundle: self.bundle.clone(),
            spawn: SpawnOptions {
                pid_file: self.pid_file.clone(),
                console_socket: self.console_socket.clone(),
                preserve_fds: self.preserve_fds,
            },
            no_pivot: self.no_pivot,
            foreground: false,
            no_new_keyring: self.no_new_keyring,
        }
    }
}

pub fn create(g: &GlobalOpts, a: CreateArgs) -> Result<i32> {
    runtime(g).create(&a.id, &a.options())?;
    Ok(0)
}
