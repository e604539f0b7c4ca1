//! ferry's runtime: runc semantics over libcontainer, CRIU orchestration, and the boundary
//! between a container's mounts and the host's.
