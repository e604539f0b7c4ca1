//! `ferry checkpoint` and `ferry restore`: runc-compatible flags, CRIU for processes, mountv2
//! for the mount boundary. Wired into the CLI by main.rs.
