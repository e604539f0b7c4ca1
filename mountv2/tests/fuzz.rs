//! Bounded fuzzing of the parsers that read outside input: the mount image (load, validate,
//! policy, plan) and mountinfo (parse, tree building). A fixed seed makes every run the same;
//! `MOUNTV2_FUZZ_ITERATIONS` and `MOUNTV2_FUZZ_SEED` explore further. A failing input is
//! written to the temporary directory and named in the panic, so it can be replayed.
//!
//! Properties: nothing panics; an image that loads stays the same image through save and
//! load, and plans (or is refused with an error) under both the strict and the trusting policy.

use fastrand::Rng;
use mountv2::image::MountImage;
use mountv2::policy::RestorePolicy;
use serde_json::{json, Value};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

/// One item of a non-empty slice.
fn pick<'a, T>(rng: &mut Rng, items: &'a [T]) -> &'a T {
    &items[rng.usize(..items.len())]
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Run `check` on `input`; on a panic, keep the input and fail naming it.
fn guarded(kind: &str, iteration: u64, input: &[u8], check: impl FnOnce()) {
    if catch_unwind(AssertUnwindSafe(check)).is_err() {
        let keep = std::env::temp_dir().join(format!("mountv2-fuzz-{kind}-{iteration}"));
        let _ = std::fs::write(&keep, input);
        panic!(
            "{kind} input {iteration} panicked; input kept at {}",
            keep.display()
        );
    }
}

fn mount(parent: Option<u32>, mp: &str, sb: u32, root: &str, prop: Value) -> Value {
    json!({"parent": parent, "mountpoint": mp, "superblock": sb, "root": root,
           "flags": {"readonly": mp.len() % 2 == 1, "atime": "noatime"}, "propagation": prop})
}

fn entry(path: &str, mode: u32, kind: Value) -> Value {
    json!({"path": path, "meta": {"mode": mode, "uid": 0, "gid": 0}, "kind": kind})
}

/// Valid images that between them use every part of the format.
fn seeds() -> Vec<Value> {
    let tmpfs = json!({"fstype": "tmpfs", "source": "t", "options": ["size=1024k", "mode=755"],
                       "origin": {"kind": "fresh"}});
    let ext = json!({"fstype": "ext4", "source": "/dev/vda", "readonly": true,
                     "origin": {"kind": "external", "key": "ext4:/dev/vda", "hint": "/"}});
    let shared = |g: u32| json!({"shared": g});
    vec![
        json!({"format": "ferry-mountv2", "version": 1,
               "tree": {"mounts": [mount(None, "", 0, "/", json!({}))],
                        "superblocks": [tmpfs.clone()], "groups": []}}),
        json!({"format": "ferry-mountv2", "version": 1,
        "tree": {"mounts": [
             mount(None, "", 0, "/", shared(0)),
             mount(Some(0), "a", 0, "/x", shared(0)),
             mount(Some(0), "b", 1, "/", json!({"master": 1, "unbindable": true})),
             mount(Some(2), "b/c", 0, "/x/y", json!({"shared": 2, "master": 0})),
             mount(Some(3), "b/c", 0, "/", json!({})),
         ],
         "superblocks": [tmpfs.clone(), ext],
         "groups": [{"kind": "internal"}, {"kind": "external", "path": "/mnt"},
                    {"kind": "internal"}]},
        "contents": [
            {"superblock": 0, "content": {"base": "/", "base_meta": {"mode": 493, "uid": 0, "gid": 0},
             "entries": [
                 entry("x", 0o755, json!({"type": "dir"})),
                 entry("x/y", 0o1777, json!({"type": "dir"})),
                 entry("x/f", 0o644, json!({"type": "file", "data": "aGVsbG8="})),
                 entry("x/l", 0o777, json!({"type": "symlink", "target": "../x"})),
                 entry("p", 0o600, json!({"type": "fifo"})),
                 entry("s", 0o600, json!({"type": "socket"})),
                 entry("n", 0o666, json!({"type": "device", "block": false, "major": 1, "minor": 3})),
             ]}}]}),
        json!({"format": "ferry-mountv2", "version": 1,
               "tree": {"mounts": [
                    mount(None, "", 0, "/", json!({})),
                    {"parent": 0, "mountpoint": "f", "superblock": 0, "root": "/d/f",
                     "is_file": true, "root_deleted": true, "flags": {}, "propagation": {}},
                ],
                "superblocks": [tmpfs],
                "groups": []},
               "contents": [
                   {"superblock": 0, "content": {"base": "/d", "base_meta": null, "entries": [
                       entry("g", 0o4755, json!({"type": "file", "data": ""}))]}},
                   {"superblock": 0, "content": {"base": "/e", "base_meta": null, "entries": []}}]}),
    ]
}

/// Values that tend to find edges.
fn interesting_value(rng: &mut Rng) -> Value {
    match rng.usize(..16) {
        0 => json!(null),
        1 => json!(0),
        2 => json!(u32::MAX),
        3 => json!(-1),
        4 => json!(1),
        5 => json!(""),
        6 => json!(".."),
        7 => json!("/"),
        8 => json!("a/../../b"),
        9 => json!("a\u{0}b"),
        10 => json!([]),
        11 => json!({}),
        12 => json!(true),
        13 => json!(2),
        14 => json!("x".repeat(5000)),
        _ => json!("a//b"),
    }
}

/// Change one node of the tree: replace, remove, duplicate, or swap in another value.
fn mutate_value(v: &mut Value, rng: &mut Rng, depth: u32) {
    let descend = depth < 12 && rng.usize(..16) != 0;
    match v {
        Value::Object(map) if descend && !map.is_empty() => {
            // The header has its own tests; mutate what lies behind it.
            let keys: Vec<String> = map
                .keys()
                .filter(|k| depth > 0 || (k.as_str() != "format" && k.as_str() != "version"))
                .cloned()
                .collect();
            if keys.is_empty() {
                return;
            }
            let k = pick(rng, &keys).clone();
            match rng.usize(..16) {
                0 => {
                    map.remove(&k);
                }
                _ => {
                    if let Some(child) = map.get_mut(&k) {
                        mutate_value(child, rng, depth + 1);
                    }
                }
            }
        }
        Value::Array(items) if descend && !items.is_empty() => {
            let i = rng.usize(..items.len());
            match rng.usize(..8) {
                0 => {
                    items.remove(i);
                }
                1 => {
                    let dup = items[i].clone();
                    items.insert(rng.usize(..items.len() + 1), dup);
                }
                2 => {
                    let j = rng.usize(..items.len());
                    items.swap(i, j);
                }
                _ => mutate_value(&mut items[i], rng, depth + 1),
            }
        }
        Value::Bool(b) if rng.usize(..8) != 0 => *b = !*b,
        Value::Number(n) if rng.usize(..8) != 0 => {
            let x = n.as_u64().unwrap_or(0);
            *v = json!(match rng.usize(..4) {
                0 => x.wrapping_add(1),
                1 => x.saturating_sub(1),
                2 => x.wrapping_mul(1000),
                _ => rng.u64(..8),
            });
        }
        Value::String(s) if rng.usize(..8) != 0 => {
            let mut t = s.clone();
            match rng.usize(..7) {
                5 => t.push_str("/z"),
                6 => t.truncate(rng.usize(..t.len() + 1)),
                0 => t.push_str("/.."),
                1 => t.insert(0, '/'),
                2 => t = t.replace('/', "//"),
                3 => t.push('\n'),
                _ => t = format!("{t}/{t}"),
            }
            *v = json!(t);
        }
        _ => *v = interesting_value(rng),
    }
}

/// Byte-level damage to serialized text.
fn mutate_bytes(bytes: &mut Vec<u8>, rng: &mut Rng) {
    for _ in 0..1 + rng.usize(..4) {
        if bytes.is_empty() {
            bytes.push(b'{');
        }
        let i = rng.usize(..bytes.len());
        match rng.usize(..5) {
            0 => bytes[i] ^= 1 << rng.usize(..8),
            1 => {
                bytes.remove(i);
            }
            2 => bytes.insert(i, *pick(rng, b"{}[],:\"0-9eE \\/\n\x80\xff")),
            3 => {
                let j = (i + rng.usize(..64)).min(bytes.len());
                let chunk = bytes[i..j].to_vec();
                let at = rng.usize(..bytes.len());
                bytes.splice(at..at, chunk);
            }
            _ => bytes.truncate(i),
        }
    }
}

/// Returns whether the input loaded, and whether it planned under the trusting policy.
fn check_image(bytes: &[u8]) -> (bool, bool) {
    let Ok(img) = MountImage::from_json(bytes) else {
        return (false, false);
    };
    let mut planned = false;
    let text = img.to_json().expect("a loaded image serializes");
    let again = MountImage::from_json(text.as_bytes()).expect("a saved valid image loads again");
    assert_eq!(again, img, "save and load changed the image");
    for policy in [RestorePolicy::default(), RestorePolicy::trust_all()] {
        if let Ok(plan) = mountv2::plan::plan(&img, &policy) {
            planned |= policy == RestorePolicy::trust_all();
            // Rendering the steps is what `ferry mounts plan` does.
            for s in &plan.steps {
                let _ = s.to_string();
            }
        }
    }
    assert!(
        mountv2::diff::diff(&img.tree, &again.tree).is_empty(),
        "a tree differs from its own copy"
    );
    (true, planned)
}

#[test]
fn mount_images_never_panic_and_valid_ones_roundtrip() {
    let iterations = env_u64("MOUNTV2_FUZZ_ITERATIONS", 3000);
    let mut rng = Rng::with_seed(env_u64("MOUNTV2_FUZZ_SEED", 0x5eed_1a9e));
    let seeds = seeds();
    for s in &seeds {
        let bytes = serde_json::to_vec(s).expect("serialize seed");
        MountImage::from_json(&bytes).expect("every seed is a valid image");
        assert_eq!(check_image(&bytes), (true, true), "every seed plans");
    }
    let (mut loaded, mut planned) = (0u64, 0u64);
    for it in 0..iterations {
        let mut v = pick(&mut rng, &seeds).clone();
        for _ in 0..1 + rng.usize(..3) {
            mutate_value(&mut v, &mut rng, 0);
        }
        let mut bytes = serde_json::to_vec(&v).expect("serialize");
        if rng.usize(..4) == 0 {
            mutate_bytes(&mut bytes, &mut rng);
        }
        guarded("image", it, &bytes, || {
            let (l, p) = check_image(&bytes);
            loaded += l as u64;
            planned += p as u64;
        });
    }
    // Mutations must not all be refused at the door, or the planner goes untested.
    assert!(
        loaded * 20 >= iterations && planned * 40 >= iterations,
        "only {loaded} of {iterations} mutated images loaded and {planned} planned"
    );
    eprintln!("{iterations} mutated images: {loaded} loaded, {planned} planned");
}

/// Lines as the kernel writes them, with the escapes it uses (`\040` space, `\012` newline,
/// `\134` backslash) and the optional fields.
const MOUNTINFO: &str = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
23 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
24 22 0:22 / /tmp rw shared:2 master:1 propagate_from:1 - tmpfs tmpfs rw,size=1024k
25 24 0:22 /a\\040b /tmp/x\\012y rw,noatime unbindable - tmpfs tmpfs rw
26 24 0:23 /gone//deleted /tmp/f\\134g ro - tmpfs  ro
27 22 0:24 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate
";

fn check_mountinfo(bytes: &[u8]) {
    let Ok(table) = mountv2::scan::parse_mountinfo(bytes, Path::new("mountinfo")) else {
        return;
    };
    for root in ["/", "/tmp", "/tmp/x\ny"] {
        if let Ok(tree) = mountv2::scan::tree_at(&table, Path::new(root)) {
            let img = MountImage::new(tree, vec![]);
            if img.validate().is_ok() {
                let (loaded, _) = check_image(img.to_json().expect("serialize").as_bytes());
                assert!(loaded, "a valid scanned tree must load after saving");
            }
        }
    }
}

#[test]
fn mountinfo_never_panics() {
    let iterations = env_u64("MOUNTV2_FUZZ_ITERATIONS", 3000);
    let mut rng = Rng::with_seed(env_u64("MOUNTV2_FUZZ_SEED", 0x5eed_1a9e) ^ 0x6d6f_756e);
    let table = mountv2::scan::parse_mountinfo(MOUNTINFO.as_bytes(), Path::new("mountinfo"))
        .expect("the sample parses");
    assert_eq!(table.len(), 6);
    let mut corpus: Vec<Vec<u8>> = vec![MOUNTINFO.as_bytes().to_vec()];
    if let Ok(live) = std::fs::read("/proc/self/mountinfo") {
        check_mountinfo(&live);
        corpus.push(live);
    }
    let tokens: &[&[u8]] = &[
        b" ",
        b"-",
        b" - ",
        b"shared:",
        b"master:0",
        b"propagate_from:",
        b"\\",
        b"\\0",
        b"\\777",
        b"\\040",
        b"//deleted",
        b"4294967296",
        b"0:0",
        b":",
        b"\n",
        b"\xff",
    ];
    for it in 0..iterations {
        let mut bytes = pick(&mut rng, &corpus).clone();
        // Work on a few lines at most, so that each input stays small.
        if bytes.len() > 2048 {
            let start = rng.usize(..bytes.len() - 1024);
            bytes = bytes[start..start + 1024].to_vec();
        }
        for _ in 0..1 + rng.usize(..4) {
            if rng.usize(..2) == 0 {
                let at = rng.usize(..bytes.len() + 1);
                bytes.splice(at..at, pick(&mut rng, tokens).iter().copied());
            } else {
                mutate_bytes(&mut bytes, &mut rng);
            }
        }
        guarded("mountinfo", it, &bytes, || check_mountinfo(&bytes));
    }
}
