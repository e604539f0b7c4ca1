//! mountv2: capture a mount tree with its propagation and recreate it exactly.
//!
//! Data flows one way through the modules: [`scan`] reads a live namespace into a raw table and
//! builds a [`model::MountTree`]; [`image`] wraps a tree (plus tmpfs [`content`]) in a
//! versioned, validated on-disk form; [`plan`] turns an image into an ordered
//! [`plan::MountPlan`] without touching the kernel; [`apply`] executes a plan; [`diff`] says
//! whether two trees are the same up to ids.
//!
//! `unsafe` is denied; the system calls neither rustix nor nix wraps (mount_setattr,
//! statmount/listmount, fchmodat2) each allow it where they are made.
#![deny(unsafe_code)]

pub mod apply;
pub mod content;
pub mod diff;
pub mod dump;
pub mod image;
pub mod model;
pub mod plan;
pub mod policy;
pub mod scan;
pub mod sys;
