//! `ferry mounts ...`: the mountv2 engine on its own (dump, restore, plan, diff).
//! Owned by the engine work; wired into the CLI by main.rs.
