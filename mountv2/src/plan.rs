//! Image -> [`MountPlan`]: the ordered kernel steps that rebuild the tree. Pure: no syscalls.
