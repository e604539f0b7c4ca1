//! `run`: create and start a container, waiting for it unless --detach.

use super::create::CreateArgs;
use super::runtime;
use crate::cli::GlobalOpts;
use anyhow::Result;
use clap::Args;
use ferry_runtime::lifecycle::wait_foreground;

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub create: CreateArgs,
    /// Detach from the container's process.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Keep the container's state after it exits.
    #[arg(long)]
    pub keep: bool,
    /// Accepted for compatibility; ferry waits for its own children only.
    #[arg(long = "no-subreaper")]
    pub no_subreaper: bool,
}

pub fn run(g: &GlobalOpts, a: RunArgs) -> Result<i32> {
    let rt = runtime(g);
    let id = a.create.id.clone();
    let mut opts = a.create.options();
    opts.foreground = !a.detach;
    let pid = rt.create(&id, &opts)?;
    if let Err(e) = rt.start(&id) {
        if let Err(d) = rt.delete(&id, true) {
            tracing::warn!("removing container \"{id}\" after its failed start: {d}");
        }
        return Err(e.into());
    }
    if a.detach {
        return Ok(0);
    }
    let code = wait_foreground(pid);
    if !a.keep {
        if let Err(e) = rt.delete(&id, true) {
            tracing::warn!("removing container \"{id}\" after it exited: {e}");
        }
    }
    Ok(code?)
}
