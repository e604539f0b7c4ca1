//! `resume`: thaw a paused container.

use super::runtime;
use crate::cli::GlobalOpts;
use anyhow::Result;

pub fn resume(g: &GlobalOpts, id: String) -> Result<i32> {
    runtime(g).resume(&id)?;
    Ok(0)
}
