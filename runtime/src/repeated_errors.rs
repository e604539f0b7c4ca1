//! libcontainer logs some errors on their way out of a failed call; ferry then reports the
//! same error, with its causes, as the command's one error line. Those log lines are left out
//! so that an error is said once.

/// Whether a log event of ferry's own process is an error ferry reports again itself.
pub fn repeated_by_ferry(meta: &tracing::Metadata<'_>, message: &str) -> bool {
    if *meta.level() != tracing::Level::ERROR {
        return false;
    }
    match meta.target() {
        // Each error logged while driving the container's processes is returned as well.
        "libcontainer::process::container_main_process" => true,
        "libcontainer::container::builder_impl" => {
            message.starts_with("failed to run container process")
        }
        // A state file that cannot be read or written is an error libcontainer returns;
        // ferry reports it naming the container, or has a reason to go on without it (the
        // state of a create that failed early).
        "libcontainer::container::state" => true,
        _ => false,
    }
}
