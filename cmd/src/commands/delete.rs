//! `delete`: a container and its resources.

use super::runtime;
use crate::cli::GlobalOpts;
use anyhow::Result;
use clap::Args;

#[derive(Args, Debug)]
pub struct DeleteArgs {
    pub id: String,
    /// Kill a running container first; succeed when it does not exist.
    #[arg(short = 'f', long)]
    pub force: bool,
}

pub fn delete(g: &GlobalOpts, a: DeleteArgs) -> Result<i32> {
    runtime(g).delete(&a.id, a.force)?;
    Ok(0)
}
