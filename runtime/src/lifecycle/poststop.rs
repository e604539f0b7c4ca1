//! Poststop hooks as runc treats them at delete: a hook that fails (or whose binary is gone)
//! is reported, the hooks after it are not run, and the container is removed all the same.
//! A failed poststop hook runs after the container is gone; refusing to delete for it would
//! leave a record nobody can remove.

use libcontainer::container::Container;
use libcontainer::error::LibcontainerError;

/// libcontainer's delete, with a failing poststop hook reported as a warning. libcontainer
/// runs the poststop hooks in order, stops at the first that fails, and does so after the
/// cgroup is removed: what is left to do after such a failure is the state directory, which
/// the caller removes.
pub(super) fn delete_despite_poststop_failure(
    c: &mut Container,
    force: bool,
    id: &str,
) -> Result<(), LibcontainerError> {
    match c.delete(force) {
        Err(LibcontainerError::Hook(e)) => {
            let cause = std::error::Error::source(&e)
                .map(|s| format!(": {s}"))
                .unwrap_or_default();
            tracing::warn!(
                "a poststop hook of container \"{id}\" failed: {e}{cause}; the hooks after it were not run, and the container is removed"
            );
            Ok(())
        }
        r => r,
    }
}
