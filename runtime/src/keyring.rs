//! The container's session keyring, as runc makes it: unless `create --no-new-keyring`, the
//! init gets a new session keyring named `_ses.<id>` (so that it does not share its caller's
//! keys), searchable by its owner (by others too when the container has a user namespace), and
//! `exec` joins the container's keyring when there is one.
//!
//! libcontainer makes none; ferry joins it itself just before libcontainer forks the process,
//! which inherits the session keyring of the thread that forks it.

use crate::error::{Result, RuntimeError};
use std::ffi::CString;

// keyctl(2) operations (include/uapi/linux/keyctl.h). Neither rustix nor nix wraps keyctl, so
// the three calls below are raw system calls, each allowing `unsafe` where it is made.
const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
const KEYCTL_SETPERM: libc::c_long = 5;
const KEYCTL_DESCRIBE: libc::c_long = 6;
/// KEY_USR_SEARCH and KEY_OTH_SEARCH: what runc adds to the keyring's permissions.
const USER_SEARCH: u32 = 0x0008_0000;
const OTHER_SEARCH: u32 = 0x0000_0008;

fn name_of(id: &str) -> String {
    format!("_ses.{id}")
}

/// Join (making it when missing) the session keyring `_ses.<id>` in the calling thread.
fn join(id: &str) -> std::io::Result<i64> {
    let name =
        CString::new(name_of(id)).map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: keyctl reads the NUL-terminated name only.
    #[allow(unsafe_code)]
    let serial =
        unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) };
    if serial < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(serial)
}

/// The permission mask of key `serial` (`type;uid;gid;perm;description`, perm in hex).
fn permissions(serial: i64) -> std::io::Result<u32> {
    let mut buf = vec![0u8; 512];
    // SAFETY: keyctl writes at most `buf.len()` bytes into `buf`.
    #[allow(unsafe_code)]
    let n = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_DESCRIBE,
            serial,
            buf.as_mut_ptr(),
            buf.len(),
        )
    };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let text = String::from_utf8_lossy(&buf[..(n as usize).min(buf.len())]).into_owned();
    text.split(';')
        .nth(3)
        .and_then(|p| u32::from_str_radix(p.trim_end_matches('\0'), 16).ok())
        .ok_or_else(|| std::io::Error::from_raw_os_error(libc::EINVAL))
}

/// Before libcontainer forks a new container's init: give it the session keyring
/// `_ses.<id>`, as runc does (with a new user namespace, others may search it too).
pub fn new_for_container(id: &str, spec: &oci_spec::runtime::Spec) -> Result<()> {
    let user_namespace = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| {
            ns.iter().any(|n| {
                n.typ() == oci_spec::runtime::LinuxNamespaceType::User && n.path().is_none()
            })
        });
    let serial = match join(id) {
        Ok(s) => s,
        // A kernel without keys: runc goes on without a keyring, and so does ferry.
        Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => return Ok(()),
        Err(e) => {
            return Err(RuntimeError::io(
                format!(
                    "making the session keyring {} (pass --no-new-keyring to keep the caller's)",
                    name_of(id)
                ),
                e,
            ))
        }
    };
    let add = if user_namespace {
        OTHER_SEARCH
    } else {
        USER_SEARCH
    };
    let set = permissions(serial).and_then(|perm| {
        // SAFETY: KEYCTL_SETPERM takes the key and the mask by value.
        #[allow(unsafe_code)]
        let r = unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_SETPERM, serial, perm | add) };
        if r < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(())
        }
    });
    set.map_err(|e| {
        RuntimeError::io(
            format!("setting the permissions of session keyring {}", name_of(id)),
            e,
        )
    })
}

/// Whether this host has the container's session keyring (a container created without
/// `--no-new-keyring` and still running holds it).
fn exists(id: &str) -> bool {
    let wanted = format!("{}:", name_of(id));
    std::fs::read_to_string("/proc/keys").is_ok_and(|keys| {
        keys.lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.get(7) == Some(&"keyring") && f.get(8) == Some(&wanted.as_str())
        })
    })
}

/// Before libcontainer forks an exec'd process: join the container's session keyring when it
/// has one, as runc's exec does.
pub fn join_for_exec(id: &str) -> Result<()> {
    if !exists(id) {
        return Ok(());
    }
    match join(id) {
        Ok(_) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => Ok(()),
        Err(e) => Err(RuntimeError::io(
            format!("joining the session keyring {}", name_of(id)),
            e,
        )),
    }
}
