//! `pause`: freeze every process of a container.

use super::runtime;
use crate::cli::GlobalOpts;
use anyhow::Result;

pub fn pause(g: &GlobalOpts, id: String) -> Result<i32> {
    runtime(g).pause(&id)?;
    Ok(0)
}
