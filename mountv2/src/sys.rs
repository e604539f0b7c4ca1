//! Thin wrappers over the new mount API calls that rustix and nix lack (mount_setattr,
//! statmount, listmount), with `#[repr(C)]` structs whose sizes are asserted.
