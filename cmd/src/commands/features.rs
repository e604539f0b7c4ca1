//! `features`: what this runtime supports (OCI features JSON).

use super::print_json;
use anyhow::Result;

pub fn features() -> Result<i32> {
    print_json(&ferry_runtime::features::features())
}
