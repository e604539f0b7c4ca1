//! What an image may ask of the restoring host. A well-formed image (see [`crate::image`]) can
//! still ask for things that reach outside the target: a filesystem of this host's disks, a
//! bind of any host path, a peer group shared with the host, device nodes, setuid files. A
//! [`RestorePolicy`] says which of these the caller allows; [`RestorePolicy::check`] runs at plan
//! time, before anything is mounted, and names every entry it refuses with the way to allow it.

use crate::content::EntryKind;
use crate::image::MountImage;
use crate::model::{MountTree, PeerGroup, SuperblockIdx, SuperblockOrigin};
use std::collections::BTreeSet;
use std::fmt;

/// What the caller trusts an image with. The default allows nothing beyond what any image may
/// have: fresh superblocks of the virtual filesystems ferry knows ([`crate::scan::is_fresh_fstype`])
/// and content without device nodes or setuid/setgid files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestorePolicy {
    /// External superblocks the caller maps to a path of its own choice (`--external KEY=PATH`).
    pub externals: BTreeSet<String>,
    /// Use an image's own hint (a path on this host) for an external superblock the caller did
    /// not map (`--allow-image-hints`).
    pub image_hints: bool,
    /// Let the restored tree join peer groups outside it, at the host paths the image names, so
    /// that mounts propagate between the host and the tree (`--allow-outside-groups`).
    pub outside_groups: bool,
    /// Fresh superblocks of these types too (`--allow-fstype TYPE`): a block-device filesystem
    /// mounts this host's disk, other types take host paths in their options.
    pub fstypes: BTreeSet<String>,
    /// Device nodes in content (`--allow-devices`).
    pub devices: bool,
    /// Regular files with the setuid or setgid bit in content (`--allow-setid`).
    pub setid: bool,
}

/// One thing an image asks for that the policy does not allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The image entry, as `tree.superblocks[1]`, `tree.groups[0]`, `contents[2].entries[5]`,
    /// with what identifies it for a person (mount point, key, path).
    pub entry: String,
    /// What the entry would do to this host.
    pub reason: String,
    /// The flag (or flags) that allow it.
    pub allow: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}; {}", self.entry, self.reason, self.allow)
    }
}

/// Everything an image asks for that the policy refuses (never empty).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PolicyError {
    pub refusals: Vec<Refusal>,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the image asks for {} thing(s) that reach outside the target; refused before any mount:",
            self.refusals.len()
        )?;
        for r in &self.refusals {
            write!(f, "\n  {r}")?;
        }
        Ok(())
    }
}

impl RestorePolicy {
    /// Allow everything an image can ask for. For images this host wrote itself.
    pub fn trust_all() -> Self {
        RestorePolicy {
            externals: BTreeSet::new(),
            image_hints: true,
            outside_groups: true,
            fstypes: BTreeSet::new(),
            devices: true,
            setid: true,
        }
        .with_any_fstype()
    }

    fn with_any_fstype(mut self) -> Self {
        self.fstypes.insert(ANY_FSTYPE.to_string());
        self
    }

    fn fstype_allowed(&self, fstype: &str) -> bool {
        crate::scan::is_fresh_fstype(fstype)
            || self.fstypes.contains(fstype)
            || self.fstypes.contains(ANY_FSTYPE)
    }

    /// Check `image` (already validated) against the policy. Touches nothing.
    pub fn check(&self, image: &MountImage) -> Result<(), PolicyError> {
        let mut refusals = Vec::new();
        self.check_superblocks(&image.tree, &mut refusals);
        self.check_groups(&image.tree, &mut refusals);
        self.check_contents(image, &mut refusals);
        if refusals.is_empty() {
            Ok(())
        } else {
            Err(PolicyError { refusals })
        }
    }

    /// New superblocks of types a restore does not make on its own, and external ones
    /// without a path given (or a hint allowed).
    fn check_superblocks(&self, tree: &MountTree, refusals: &mut Vec<Refusal>) {
        // Where each superblock shows up, so that a person can find it.
        let mounted_at = |sb: SuperblockIdx| {
            tree.mounts
                .iter()
                .find(|m| m.superblock == sb)
                .map(|m| format!("/{}", m.mountpoint))
        };
        let used: BTreeSet<SuperblockIdx> = tree.mounts.iter().map(|m| m.superblock).collect();
        for (i, sb) in tree.superblocks.iter().enumerate() {
            let idx = SuperblockIdx(i as u32);
            if !used.contains(&idx) {
                continue;
            }
            let at = mounted_at(idx).unwrap_or_default();
            match &sb.origin {
                SuperblockOrigin::Fresh if !self.fstype_allowed(&sb.fstype) => {
                    refusals.push(Refusal {
                        entry: format!(
                            "tree.superblocks[{i}] ({} from {:?}, mounted at {at})",
                            sb.fstype, sb.source
                        ),
                        reason: format!(
                            "a new {} superblock is not one of the virtual filesystems a restore \
                             makes on its own (it may mount a disk or a path of this host)",
                            sb.fstype
                        ),
                        allow: format!("allow it with --allow-fstype {}", sb.fstype),
                    })
                }
                SuperblockOrigin::Fresh => {}
                SuperblockOrigin::External { key, hint } => {
                    if self.externals.contains(key) || (self.image_hints && hint.is_some()) {
                        continue;
                    }
                    let entry = format!(
                        "tree.superblocks[{i}] (external {key:?}, {} from {:?}, mounted at {at})",
                        sb.fstype, sb.source
                    );
                    match hint {
                        Some(h) => refusals.push(Refusal {
                            entry,
                            reason: format!("the image's hint would bind {h} of this host"),
                            allow: format!(
                                "pass --external {key}=PATH naming a mount of its root, or \
                                 --allow-image-hints to use {h}"
                            ),
                        }),
                        None => refusals.push(Refusal {
                            entry,
                            reason: "it has no path on this host".into(),
                            allow: format!("pass --external {key}=PATH naming a mount of its root"),
                        }),
                    }
                }
            }
        }
    }

    /// Peer groups outside the tree, unless they are allowed.
    fn check_groups(&self, tree: &MountTree, refusals: &mut Vec<Refusal>) {
        if !self.outside_groups {
            for (i, g) in tree.groups.iter().enumerate() {
                if let PeerGroup::External { path } = g {
                    refusals.push(Refusal {
                        entry: format!("tree.groups[{i}] (outside, at {path})"),
                        reason: format!(
                            "the restored tree would join the peer group of this host's mount at \
                             {path}, and mounts would propagate between them"
                        ),
                        allow: "allow it with --allow-outside-groups".into(),
                    });
                }
            }
        }
    }

    /// Device nodes and set-id files in the contents, unless they are allowed.
    fn check_contents(&self, image: &MountImage, refusals: &mut Vec<Refusal>) {
        for (i, c) in image.contents.iter().enumerate() {
            for (j, e) in c.content.entries.iter().enumerate() {
                let entry = || {
                    format!(
                        "contents[{i}].entries[{j}] (superblock {}, {:?} below {})",
                        c.superblock.0, e.path, c.content.base
                    )
                };
                match &e.kind {
                    EntryKind::Device {
                        block,
                        major,
                        minor,
                    } if !self.devices => refusals.push(Refusal {
                        entry: entry(),
                        reason: format!(
                            "a {} device node {major}:{minor} would give access to this host's device",
                            if *block { "block" } else { "character" }
                        ),
                        allow: "allow device nodes with --allow-devices".into(),
                    }),
                    EntryKind::File { .. } if !self.setid && e.meta.mode & 0o6000 != 0 => {
                        refusals.push(Refusal {
                            entry: entry(),
                            reason: format!(
                                "a set-id file (mode {:04o}, owner {}:{}) would run with its \
                                 owner's rights for anyone who can reach the target",
                                e.meta.mode, e.meta.uid, e.meta.gid
                            ),
                            allow: "allow setuid/setgid files with --allow-setid".into(),
                        })
                    }
                    _ => {}
                }
            }
        }
    }
}

/// Stands for every fstype in [`RestorePolicy::fstypes`]; not a valid fstype itself (validation
/// refuses ',' in fstypes), so an image cannot name it.
const ANY_FSTYPE: &str = ",any";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::{Content, Entry, Meta};
    use crate::image::SuperblockContent;
    use crate::model::*;

    fn image(origin: SuperblockOrigin, fstype: &str) -> MountImage {
        let mount = Mount::new(None, "", SuperblockIdx(0));
        MountImage::new(
            MountTree {
                mounts: vec![mount],
                superblocks: vec![Superblock {
                    fstype: fstype.into(),
                    source: "/dev/vda1".into(),
                    options: vec![],
                    readonly: false,
                    origin,
                }],
                groups: vec![],
            },
            vec![],
        )
    }

    fn refused(p: &RestorePolicy, img: &MountImage) -> String {
        img.validate().expect("the test image is well-formed");
        p.check(img).expect_err("refused").to_string()
    }

    #[test]
    fn fresh_block_filesystem_needs_its_fstype_allowed() {
        let img = image(SuperblockOrigin::Fresh, "ext4");
        let err = refused(&RestorePolicy::default(), &img);
        assert!(err.contains("tree.superblocks[0]"), "{err}");
        assert!(err.contains("--allow-fstype ext4"), "{err}");
        let mut p = RestorePolicy::default();
        p.fstypes.insert("ext4".into());
        assert_eq!(p.check(&img), Ok(()));
        assert_eq!(
            RestorePolicy::default().check(&image(SuperblockOrigin::Fresh, "tmpfs")),
            Ok(())
        );
    }

    #[test]
    fn external_needs_a_mapping_or_allowed_hints() {
        let img = image(
            SuperblockOrigin::External {
                key: "disk".into(),
                hint: Some("/etc".into()),
            },
            "ext4",
        );
        let err = refused(&RestorePolicy::default(), &img);
        assert!(err.contains("--external disk=PATH"), "{err}");
        assert!(err.contains("--allow-image-hints"), "{err}");
        let mut p = RestorePolicy::default();
        p.externals.insert("disk".into());
        assert_eq!(p.check(&img), Ok(()));
        let p = RestorePolicy {
            image_hints: true,
            ..Default::default()
        };
        assert_eq!(p.check(&img), Ok(()));
    }

    #[test]
    fn outside_group_devices_and_setid_are_refused_by_default() {
        let mut img = image(SuperblockOrigin::Fresh, "tmpfs");
        img.tree
            .groups
            .push(PeerGroup::External { path: "/".into() });
        img.tree.mounts[0].propagation.master = Some(GroupIdx(0));
        let meta = |mode| Meta {
            mode,
            uid: 0,
            gid: 0,
        };
        img.contents.push(SuperblockContent {
            superblock: SuperblockIdx(0),
            content: Content {
                base: "/".into(),
                base_meta: None,
                entries: vec![
                    Entry {
                        path: "sda".into(),
                        meta: meta(0o666),
                        kind: EntryKind::Device {
                            block: true,
                            major: 8,
                            minor: 0,
                        },
                    },
                    Entry {
                        path: "sh".into(),
                        meta: meta(0o4755),
                        kind: EntryKind::File { data: "".into() },
                    },
                ],
            },
        });
        let err = refused(&RestorePolicy::default(), &img);
        for want in [
            "tree.groups[0]",
            "--allow-outside-groups",
            "contents[0].entries[0]",
            "--allow-devices",
            "contents[0].entries[1]",
            "--allow-setid",
        ] {
            assert!(err.contains(want), "{want} missing in: {err}");
        }
        assert_eq!(RestorePolicy::trust_all().check(&img), Ok(()));
    }
}
