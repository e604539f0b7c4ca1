//! Who a container's init is: its pid and start time, recorded at create and restore, checked
//! at every load so a reused pid is never taken for the init.

use super::bundle::write_private;
use super::Runtime;
use crate::error::{Result, RuntimeError};
use std::path::Path;

/// In a container's state directory: the identity of its init, "PID START" with START the
/// process's start time. A pid alone is not an identity: once the init is gone the kernel
/// hands the number to any new process.
pub(super) const INIT_IDENTITY: &str = "ferry-init";

/// The start time of process `pid` (field 22 of /proc/PID/stat, clock ticks after boot), or
/// `None` when there is no such process.
pub(super) fn process_start_time(pid: i32) -> Option<u64> {
    start_time_from_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Field 22 of a /proc/PID/stat line.
pub(super) fn start_time_from_stat(stat: &str) -> Option<u64> {
    // The command name (field 2) may hold spaces and ')': the fixed fields follow the last ')'.
    let fixed = &stat[stat.rfind(')')? + 1..];
    fixed.split_whitespace().nth(19)?.parse().ok()
}

/// Whether `pid`, the pid a container's state names, is the init recorded in container
/// directory `dir`: a process whose start time is the init's. A container without a record
/// (made by an older ferry) is taken at its word, as before records existed.
pub(super) fn init_identity_holds(dir: &Path, pid: i32) -> bool {
    let Ok(text) = std::fs::read_to_string(dir.join(INIT_IDENTITY)) else {
        return true;
    };
    // "PID START": the pid is there for people reading the file; the start time decides.
    match text.split_whitespace().nth(1).map(str::parse::<u64>) {
        Some(Ok(start)) => process_start_time(pid) == Some(start),
        _ => true,
    }
}

impl Runtime {
    /// Record the identity of a container's new init, and give its state directory runc's
    /// permissions: the directory 0711, the files in it 0600 (libcontainer writes them with
    /// the umask's 0644; its later rewrites keep the mode).
    pub(crate) fn record_init(&self, dir: &Path, pid: i32) -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let io = |what: &str, e| RuntimeError::io(format!("{what} {}", dir.display()), e);
        if let Some(start) = process_start_time(pid) {
            // Written whole and renamed into place: a crash leaves the old record or the new.
            write_private(
                &dir.join(INIT_IDENTITY),
                format!("{pid} {start}\n").as_bytes(),
            )?;
        }
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711))
            .map_err(|e| io("restricting", e))?;
        for entry in std::fs::read_dir(dir)
            .map_err(|e| io("reading", e))?
            .flatten()
        {
            if entry.file_type().is_ok_and(|t| t.is_file()) {
                std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(0o600))
                    .map_err(|e| io("restricting the files of", e))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_is_field_22_after_any_command_name() {
        let fields = (3..=25)
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(" ");
        assert_eq!(
            start_time_from_stat(&format!("7 (a) b) c) {fields}")),
            Some(22)
        );
        assert_eq!(start_time_from_stat("7 (sh) S 1 2"), None);
        assert_eq!(start_time_from_stat("no parenthesis"), None);
        let me = std::process::id() as i32;
        assert!(process_start_time(me).is_some_and(|t| t > 0));
    }

    #[test]
    fn init_identity_is_the_start_time() {
        let dir = tempfile::tempdir().expect("temp dir");
        let me = std::process::id() as i32;
        // No record: taken at its word.
        assert!(init_identity_holds(dir.path(), me));
        let start = process_start_time(me).expect("own start time");
        std::fs::write(dir.path().join(INIT_IDENTITY), format!("{me} {start}\n")).expect("write");
        assert!(init_identity_holds(dir.path(), me));
        std::fs::write(
            dir.path().join(INIT_IDENTITY),
            format!("{me} {}\n", start + 1),
        )
        .expect("write");
        assert!(!init_identity_holds(dir.path(), me));
    }
}
