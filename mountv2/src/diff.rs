//! Are two trees the same up to ids? Compares shape, fs type, root, flags, superblock sharing,
//! the partition into peer groups, the master relation and unbindable.

use crate::model::MountTree;
use serde::Serialize;

/// One difference, located by the mount point (relative to the tree roots) where it shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    pub mountpoint: String,
    pub what: String,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "/{}: {}", self.mountpoint, self.what)
    }
}

/// Every difference between `a` and `b`; empty when they are equal up to ids.
pub fn diff(_a: &MountTree, _b: &MountTree) -> Vec<Difference> {
    vec![Difference {
        mountpoint: String::new(),
        what: "diff not implemented".into(),
    }]
}
