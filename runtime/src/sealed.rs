//! Re-exec from a sealed in-memory copy of the binary before touching a container.
//!
//! A process inside a container can open `/proc/<pid>/exe` of a runtime process that joined it
//! and write through it to the runtime's binary on the host (CVE-2019-5736). Running from a
//! memfd whose seals forbid writes, growth and shrinking leaves nothing to overwrite.

use rustix::fs::{fcntl_add_seals, fcntl_get_seals, memfd_create, MemfdFlags, SealFlags};
use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::ffi::OsStringExt;

const SEALS: SealFlags = SealFlags::SEAL
    .union(SealFlags::SHRINK)
    .union(SealFlags::GROW)
    .union(SealFlags::WRITE);

/// Whether the running binary is already a sealed copy.
pub fn is_sealed() -> bool {
    match File::open("/proc/self/exe") {
        Ok(f) => fcntl_get_seals(f.as_fd())
            .map(|s| s.contains(SEALS))
            .unwrap_or(false),
        Err(_) => false,
    }
}

/// Return if already sealed; otherwise copy the binary into a sealed memfd and exec it with
/// the same arguments and environment (this function then does not return).
pub fn ensure_sealed() -> io::Result<()> {
    if is_sealed() {
        return Ok(());
    }
    let mut exe = File::open("/proc/self/exe")?;
    let memfd = memfd_create("ferry", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)?;
    let mut copy = File::from(memfd);
    io::copy(&mut exe, &mut copy)?;
    fcntl_add_seals(copy.as_fd(), SEALS)?;
    let to_c = |s: std::ffi::OsString| {
        CString::new(s.into_vec())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL byte in an argument"))
    };
    let args = std::env::args_os()
        .map(to_c)
        .collect::<io::Result<Vec<_>>>()?;
    let env = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k.into_vec();
            kv.push(b'=');
            kv.extend(v.into_vec());
            to_c(std::ffi::OsString::from_vec(kv))
        })
        .collect::<io::Result<Vec<_>>>()?;
    // nix, not rustix: rustix's only fexecve (runtime::execveat) is unsafe.
    nix::unistd::fexecve(copy.as_raw_fd(), &args, &env).map_err(io::Error::from)?;
    Ok(())
}
