//! The loopback interface of a container's new network namespace. The kernel creates `lo`
//! down in every new network namespace; runc brings it up (its "loopback" network), so a
//! container with no network of its own still reaches 127.0.0.1. libcontainer does not, so
//! ferry does it once the namespaces exist and before the user's process starts.

use crate::error::{Result, RuntimeError};
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use rustix::net::{AddressFamily, SocketFlags, SocketType};
use rustix::thread::{move_into_link_name_space, LinkNameSpaceType};
use std::os::fd::{AsFd, AsRawFd};

/// Whether the container gets a network namespace of its own: a `network` namespace without
/// a path. One joined by path belongs to someone else, who set it up; runc leaves it alone.
pub fn creates_network_namespace(spec: &Spec) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| {
            ns.iter()
                .any(|n| n.typ() == LinuxNamespaceType::Network && n.path().is_none())
        })
}

/// Bring `lo` up in the network namespace of process `pid` when the spec gives the container
/// a new one.
pub fn bring_up_loopback_if_new(spec: &Spec, pid: i32) -> Result<()> {
    if !creates_network_namespace(spec) {
        return Ok(());
    }
    bring_up_loopback(pid)
}

/// Set IFF_UP on `lo` in the network namespace of process `pid`. Joining a network namespace
/// changes the calling thread only, so a short-lived thread joins it and ferry's own threads
/// stay where they are.
pub fn bring_up_loopback(pid: i32) -> Result<()> {
    let what = || format!("bringing up the loopback interface of container process {pid}");
    let ns_path = format!("/proc/{pid}/ns/net");
    let ns = std::fs::File::open(&ns_path)
        .map_err(|e| RuntimeError::io(format!("{}: opening {ns_path}", what()), e))?;
    let joined = std::thread::scope(|s| {
        s.spawn(|| -> std::io::Result<()> {
            move_into_link_name_space(ns.as_fd(), Some(LinkNameSpaceType::Network))?;
            // A socket belongs to the network namespace of the thread that made it.
            set_loopback_up()
        })
        .join()
    });
    match joined {
        Ok(r) => r.map_err(|e| RuntimeError::io(what(), e)),
        Err(_) => Err(RuntimeError::Invalid(format!(
            "{}: the thread doing it failed",
            what()
        ))),
    }
}

/// SIOCGIFFLAGS then SIOCSIFFLAGS with IFF_UP on `lo`, through a socket of the calling
/// thread's network namespace. Neither rustix nor nix wraps these two ioctls safely, so the
/// request struct and the calls stay `unsafe` here.
#[allow(unsafe_code)]
fn set_loopback_up() -> std::io::Result<()> {
    let sock = rustix::net::socket_with(
        AddressFamily::INET,
        SocketType::DGRAM,
        SocketFlags::CLOEXEC,
        None,
    )?;
    // SAFETY: ifreq is plain old data; all zeroes is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: `req` is a valid ifreq naming an interface, as SIOCGIFFLAGS expects.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: SIOCGIFFLAGS filled in the flags member of the union.
    unsafe {
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
    }
    // SAFETY: `req` is a valid ifreq with the name and the new flags.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_with(namespaces: serde_json::Value) -> Spec {
        let v = serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "linux": {"namespaces": namespaces}
        });
        match serde_json::from_value(v) {
            Ok(s) => s,
            Err(e) => panic!("test spec: {e}"),
        }
    }

    #[test]
    fn only_a_new_network_namespace_is_set_up() {
        assert!(creates_network_namespace(&spec_with(serde_json::json!([
            {"type": "pid"}, {"type": "network"}
        ]))));
        assert!(!creates_network_namespace(&spec_with(serde_json::json!([
            {"type": "network", "path": "/run/netns/x"}
        ]))));
        assert!(!creates_network_namespace(&spec_with(serde_json::json!([
            {"type": "pid"}
        ]))));
    }
}
