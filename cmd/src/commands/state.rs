//! `state`: a container's state as runc prints it.

use super::{print_json, runtime};
use crate::cli::GlobalOpts;
use anyhow::Result;

pub fn state(g: &GlobalOpts, id: String) -> Result<i32> {
    print_json(&runtime(g).state(&id)?)
}
