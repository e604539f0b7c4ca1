//! `checkpoint`: dump a running container with CRIU, its mount tree recorded by mountv2.

use super::criu_args::CriuArgs;
use super::runtime;
use crate::cli::GlobalOpts;
use anyhow::Result;
use clap::Args;
use ferry_runtime::checkpoint::CheckpointOptions;

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
