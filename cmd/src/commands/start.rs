//! `start`: run the user process of a created container.

use super::runtime;
use crate::cli::GlobalOpts;
use anyhow::Result;

pub fn start(g: &GlobalOpts, id: String) -> Result<i32> {
    runtime(g).start(&id)?;
    Ok(0)
}
