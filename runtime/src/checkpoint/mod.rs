//! runc-compatible checkpoint and restore: CRIU (over its RPC) for processes, ferry's mountv2
//! engine to record the container's mount tree beside CRIU's images and to check, after a
//! restore, that the tree came back as it was.
//!
//! The image directory holds what runc's does (CRIU's images and `descriptors.json`, the
//! targets of the init's fds 0-2) plus `ferry-mounts.json`, so runc and ferry can restore each
//! other's checkpoints.

/// The mount image ferry writes beside CRIU's.
pub const MOUNT_IMAGE: &str = "ferry-mounts.json";
pub(super) const DESCRIPTORS: &str = "descriptors.json";

mod cgroups;
mod dump;
mod files;
mod migrate;
mod namespaces;
mod options;
mod restore;

pub use options::{CgroupMode, CheckpointOptions, CriuOptions, MountMismatch, RestoreOptions};
