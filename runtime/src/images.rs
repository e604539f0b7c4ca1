//! Cheap checks of CRIU's image files before a restore runs. A page image shorter than its
//! pagemap says does not make CRIU fail: the restored task's restorer retries the short read
//! without end, spinning, and the restore never finishes. Checking the lengths first turns that
//! into a clear error before anything is made.
//!
//! CRIU's image format: a file starts with magic numbers (u32, little-endian), then holds
//! entries, each a u32 length followed by a protobuf message of that length. A pagemap image
//! (`pagemap-<pid>.img`, `pagemap-shmem-<id>.img`) holds a head naming its page image
//! (`pagemap_head.pages_id`, field 1: `pages-<id>.img`, raw pages, no header), then one entry
//! per run of pages (`pagemap_entry`: vaddr = 1, nr_pages = 2, in_parent = 3, flags = 4).
//! Only the runs present in this image are in its page image: flag PE_PRESENT, or, in images
//! without flags, runs not marked in_parent; the others live in a parent (pre-dump) image or
//! were served lazily.

use crate::error::{Result, RuntimeError};
use std::collections::BTreeMap;
use std::path::Path;

const IMG_COMMON_MAGIC: u32 = 0x5456_4319;
const PAGEMAP_MAGIC: u32 = 0x5608_4025;
const PSTREE_MAGIC: u32 = 0x5027_3030;
const PE_PRESENT: u64 = 1 << 2;
/// Pagemaps are small (a few entries per memory mapping); a bigger one is not CRIU's.
const MAX_PAGEMAP_BYTES: u64 = 256 << 20;

/// What one pagemap image says.
#[derive(Debug, PartialEq, Eq)]
pub struct Pagemap {
    /// The page image it describes: `pages-<pages_id>.img`.
    pub pages_id: u32,
    /// Pages present in that page image.
    pub present_pages: u64,
}

fn malformed(file: &str, why: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::Invalid(format!(
        "checkpoint image {file} is malformed ({why}): the checkpoint is damaged; take it again"
    ))
}

/// Read a protobuf varint at `*pos`.
fn varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// The varint fields of one protobuf message (field number -> last value); other wire types
/// are skipped.
fn varint_fields(msg: &[u8]) -> Option<BTreeMap<u64, u64>> {
    let mut out = BTreeMap::new();
    let mut pos = 0;
    while pos < msg.len() {
        let key = varint(msg, &mut pos)?;
        let (field, wire) = (key >> 3, key & 7);
        match wire {
            0 => {
                let v = varint(msg, &mut pos)?;
                out.insert(field, v);
            }
            1 => pos = pos.checked_add(8)?,
            2 => {
                let len = usize::try_from(varint(msg, &mut pos)?).ok()?;
                pos = pos.checked_add(len)?;
            }
            5 => pos = pos.checked_add(4)?,
            _ => return None,
        }
        if pos > msg.len() {
            return None;
        }
    }
    Some(out)
}

/// Parse a pagemap image's bytes (`file` names it in errors).
pub fn parse_pagemap(file: &str, buf: &[u8]) -> Result<Pagemap> {
    let u32_at = |at: usize| -> Option<u32> {
        let b = buf.get(at..at.checked_add(4)?)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    if u32_at(0) != Some(IMG_COMMON_MAGIC) || u32_at(4) != Some(PAGEMAP_MAGIC) {
        return Err(malformed(file, "not a CRIU pagemap image"));
    }
    let mut pos = 8;
    let mut head = None;
    let mut present: u64 = 0;
    while pos < buf.len() {
        let len = u32_at(pos).ok_or_else(|| malformed(file, "truncated entry length"))? as usize;
        pos += 4;
        let msg = pos
            .checked_add(len)
            .and_then(|end| buf.get(pos..end))
            .ok_or_else(|| malformed(file, "truncated entry"))?;
        pos += len;
        let fields = varint_fields(msg).ok_or_else(|| malformed(file, "undecodable entry"))?;
        match head {
            None => {
                let id = fields
                    .get(&1)
                    .and_then(|v| u32::try_from(*v).ok())
                    .ok_or_else(|| malformed(file, "no pages_id in its head"))?;
                head = Some(id);
            }
            Some(_) => {
                let nr_pages = *fields
                    .get(&2)
                    .ok_or_else(|| malformed(file, "an entry without nr_pages"))?;
                let here = match fields.get(&4) {
                    Some(flags) => flags & PE_PRESENT != 0,
                    None => fields.get(&3).copied().unwrap_or(0) == 0,
                };
                if here {
                    present = present
                        .checked_add(nr_pages)
                        .ok_or_else(|| malformed(file, "page count overflows"))?;
                }
            }
        }
    }
    let pages_id = head.ok_or_else(|| malformed(file, "no head"))?;
    Ok(Pagemap {
        pages_id,
        present_pages: present,
    })
}

/// The pids of the dumped process tree (`pstree.img`): only their pagemaps belong to this
/// checkpoint. A directory checkpointed into more than once (engines reuse one) keeps stale
/// pagemaps of processes that have since gone, whose page ids the newer dump reuses; CRIU
/// never reads them. `None` when the file is missing or not a pstree image (then every
/// pagemap is checked).
fn dumped_pids(dir: &Path) -> Option<std::collections::BTreeSet<u64>> {
    let buf = std::fs::read(dir.join("pstree.img")).ok()?;
    let u32_at = |at: usize| -> Option<u32> {
        let b = buf.get(at..at.checked_add(4)?)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    if u32_at(0)? != IMG_COMMON_MAGIC || u32_at(4)? != PSTREE_MAGIC {
        return None;
    }
    let mut pids = std::collections::BTreeSet::new();
    let mut pos = 8;
    while pos < buf.len() {
        let len = u32_at(pos)? as usize;
        pos += 4;
        let msg = buf.get(pos..pos.checked_add(len)?)?;
        pos += len;
        pids.insert(*varint_fields(msg)?.get(&1)?);
    }
    Some(pids)
}

/// Check that every page image in `dir` is as long as its pagemaps say.
pub fn check_page_images(dir: &Path) -> Result<()> {
    let page_size = u64::try_from(rustix::param::page_size()).unwrap_or(4096);
    let entries = std::fs::read_dir(dir)
        .map_err(|e| RuntimeError::io(format!("reading image directory {}", dir.display()), e))?;
    // pages_id -> (pages needed, the pagemap that says so)
    let pids = dumped_pids(dir);
    let mut needed: BTreeMap<u32, (u64, String)> = BTreeMap::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(owner) = name
            .strip_prefix("pagemap-")
            .and_then(|n| n.strip_suffix(".img"))
        else {
            continue;
        };
        // A process's pagemap is `pagemap-PID.img`; others (shared memory) are always checked.
        let stale = match (&pids, owner.parse::<u64>()) {
            (Some(pids), Ok(pid)) => !pids.contains(&pid),
            _ => false,
        };
        if stale {
            continue;
        }
        let path = e.path();
        let len = std::fs::symlink_metadata(&path)
            .map_err(|err| RuntimeError::io(format!("reading {}", path.display()), err))?
            .len();
        if len > MAX_PAGEMAP_BYTES {
            return Err(malformed(&name, format!("{len} bytes")));
        }
        let buf = std::fs::read(&path)
            .map_err(|err| RuntimeError::io(format!("reading {}", path.display()), err))?;
        let map = parse_pagemap(&name, &buf)?;
        let slot = needed.entry(map.pages_id).or_insert((0, name.clone()));
        slot.0 = slot.0.saturating_add(map.present_pages);
    }
    for (id, (pages, pagemap)) in needed {
        if pages == 0 {
            continue;
        }
        let file = format!("pages-{id}.img");
        let want = pages.saturating_mul(page_size);
        let have = match std::fs::metadata(dir.join(&file)) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(RuntimeError::io(format!("reading {file}"), e)),
        };
        if have < want {
            return Err(RuntimeError::Invalid(format!(
                "checkpoint {} is truncated: {file} holds {have} bytes, but {pagemap} lists {pages} pages ({want} bytes) in it; restoring it would hang, so nothing was restored: copy the checkpoint again or take a new one",
                dir.display()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(msg: &[u8]) -> Vec<u8> {
        let mut v = (msg.len() as u32).to_le_bytes().to_vec();
        v.extend_from_slice(msg);
        v
    }

    fn pagemap(pages_id: u8, entries: &[Vec<u8>]) -> Vec<u8> {
        let mut v = IMG_COMMON_MAGIC.to_le_bytes().to_vec();
        v.extend_from_slice(&PAGEMAP_MAGIC.to_le_bytes());
        v.extend(entry(&[0x08, pages_id]));
        for e in entries {
            v.extend(entry(e));
        }
        v
    }

    #[test]
    fn counts_only_present_pages() {
        // vaddr 0x1000 (varint 0x80 0x20), nr_pages, flags.
        let present = vec![0x08, 0x80, 0x20, 0x10, 3, 0x20, 0x04];
        let parent = vec![0x08, 0x80, 0x20, 0x10, 5, 0x20, 0x01];
        let lazy_present = vec![0x08, 0x80, 0x20, 0x10, 2, 0x20, 0x06];
        let old_style = vec![0x08, 0x80, 0x20, 0x10, 7];
        let old_in_parent = vec![0x08, 0x80, 0x20, 0x10, 11, 0x18, 0x01];
        let buf = pagemap(
            2,
            &[present, parent, lazy_present, old_style, old_in_parent],
        );
        let m = parse_pagemap("pagemap-1.img", &buf).expect("parses");
        assert_eq!(
            m,
            Pagemap {
                pages_id: 2,
                present_pages: 3 + 2 + 7
            }
        );
    }

    #[test]
    fn refuses_garbage() {
        assert!(parse_pagemap("x", b"").is_err());
        assert!(parse_pagemap("x", &[0u8; 16]).is_err());
        let mut buf = pagemap(1, &[vec![0x08, 0x80]]);
        assert!(parse_pagemap("x", &buf).is_err(), "truncated varint");
        buf = pagemap(1, &[]);
        buf.extend_from_slice(&100u32.to_le_bytes());
        assert!(parse_pagemap("x", &buf).is_err(), "entry past the end");
    }

    #[test]
    fn short_page_image_is_refused() {
        let d = tempfile::tempdir().expect("tempdir");
        let ps = rustix::param::page_size();
        let buf = pagemap(1, &[vec![0x08, 0x80, 0x20, 0x10, 2, 0x20, 0x04]]);
        std::fs::write(d.path().join("pagemap-7.img"), buf).expect("write");
        std::fs::write(d.path().join("pages-1.img"), vec![0u8; 2 * ps]).expect("write");
        check_page_images(d.path()).expect("complete image");
        std::fs::write(d.path().join("pages-1.img"), vec![0u8; 2 * ps - 1]).expect("write");
        let e = check_page_images(d.path()).expect_err("short image");
        assert!(e.to_string().contains("pages-1.img"), "{e}");
        std::fs::remove_file(d.path().join("pages-1.img")).expect("rm");
        assert!(check_page_images(d.path()).is_err(), "missing page image");
    }

    #[test]
    fn pagemaps_of_processes_not_in_the_pstree_are_stale() {
        let d = tempfile::tempdir().expect("tempdir");
        let ps = rustix::param::page_size();
        // This dump: pid 7 with 2 pages in pages-1.img. A dump before it into the same
        // directory left pid 9's pagemap, which also names pages-1.img.
        let current = pagemap(1, &[vec![0x08, 0x80, 0x20, 0x10, 2, 0x20, 0x04]]);
        let stale = pagemap(1, &[vec![0x08, 0x80, 0x20, 0x10, 30, 0x20, 0x04]]);
        std::fs::write(d.path().join("pagemap-7.img"), current).expect("write");
        std::fs::write(d.path().join("pagemap-9.img"), stale).expect("write");
        std::fs::write(d.path().join("pages-1.img"), vec![0u8; 2 * ps]).expect("write");
        assert!(
            check_page_images(d.path()).is_err(),
            "without a pstree all count"
        );
        // pstree.img: one entry, pid (field 1) 7, ppid (field 2) 0.
        let mut tree = Vec::new();
        tree.extend_from_slice(&IMG_COMMON_MAGIC.to_le_bytes());
        tree.extend_from_slice(&PSTREE_MAGIC.to_le_bytes());
        let entry = [0x08, 7, 0x10, 0];
        tree.extend_from_slice(&(entry.len() as u32).to_le_bytes());
        tree.extend_from_slice(&entry);
        std::fs::write(d.path().join("pstree.img"), tree).expect("write");
        check_page_images(d.path()).expect("the stale pagemap is not this dump's");
    }
}
