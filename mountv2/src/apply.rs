//! Execute a [`crate::plan::MountPlan`] through the kernel.
