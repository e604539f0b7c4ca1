//! ferry's runtime: runc semantics over libcontainer, CRIU orchestration, and the boundary
//! between a container's mounts and the host's.
//!
//! `unsafe` is denied; each block that no safe wrapper in the dependencies can replace allows
//! it where it is, with a `SAFETY:` comment.
#![deny(unsafe_code)]

pub mod boundary;
pub mod cgroup_paths;
pub mod checkpoint;
pub mod cleanup;
pub mod criu;
pub mod error;
pub mod fault;
pub mod features;
pub mod images;
pub mod keyring;
pub mod lifecycle;
pub mod lock;
pub mod mntns;
pub mod netns;
pub mod propagation;
pub mod repeated_errors;
pub mod rootfs_mounts;
pub mod sealed;
pub mod spec_check;
pub mod stats;
pub mod stats_v2;

pub use error::{Result, RuntimeError};
