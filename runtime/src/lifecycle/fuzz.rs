//! Bounded fuzzing of the parsers that read files from outside: deterministic mutations
//! (fixed seed) of valid documents, byte-wise and by JSON structure. Every input must give
//! a result or an error, never a panic.

use super::identity::{process_start_time, start_time_from_stat, INIT_IDENTITY};
use super::*;
use fastrand::Rng;
use libcontainer::container::state::State;
use oci_spec::runtime::Spec;

/// Runs per parser: a few thousand in all, some seconds in a debug build.
const CONFIG_RUNS: usize = 1000;
const STATE_RUNS: usize = 700;

const TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "\"",
    ":",
    ",",
    "null",
    "true",
    "false",
    "-1",
    "0",
    "1e999",
    "18446744073709551616",
    "-9223372036854775809",
    "0.5",
    "\"\"",
    "\"\\u0000\"",
    "\"\\ud800\"",
    "\"../../..\"",
    "\"/\"",
    "\"1.0.2\"",
    "\"2.0.0\"",
    "\u{feff}",
    "\u{0}",
    "\\",
    "\"running\"",
    "\"paused\"",
    "{}",
    "[]",
];

fn random_value(rng: &mut Rng, depth: u32) -> serde_json::Value {
    use serde_json::json;
    match rng.usize(..if depth > 2 { 6 } else { 8 }) {
        0 => json!(null),
        1 => json!(rng.usize(..2) == 0),
        2 => json!(rng.i64(..)),
        3 => json!(-(rng.usize(..1000) as i64)),
        4 => json!(TOKENS[rng.usize(..TOKENS.len())]),
        5 => json!("x".repeat(rng.usize(..300))),
        6 => serde_json::Value::Array(
            (0..rng.usize(..4))
                .map(|_| random_value(rng, depth + 1))
                .collect(),
        ),
        _ => serde_json::Value::Object(
            (0..rng.usize(..4))
                .map(|i| (format!("k{i}"), random_value(rng, depth + 1)))
                .collect(),
        ),
    }
}

/// Replace, remove or retype one node of the document, chosen by a random walk.
fn mutate_structure(node: &mut serde_json::Value, rng: &mut Rng) {
    let descend = rng.usize(..4) != 0;
    match node {
        serde_json::Value::Object(m) if descend && !m.is_empty() => {
            let i = rng.usize(..m.len());
            if rng.usize(..6) == 0 {
                if let Some(k) = m.keys().nth(i).cloned() {
                    m.remove(&k);
                }
                return;
            }
            if let Some(child) = m.values_mut().nth(i) {
                return mutate_structure(child, rng);
            }
        }
        serde_json::Value::Array(a) if descend && !a.is_empty() => {
            let i = rng.usize(..a.len());
            return mutate_structure(&mut a[i], rng);
        }
        _ => {}
    }
    *node = random_value(rng, 0);
}

fn mutate_bytes(data: &mut Vec<u8>, rng: &mut Rng) {
    for _ in 0..=rng.usize(..4) {
        let len = data.len();
        let at = rng.usize(..len + 1);
        match rng.usize(..6) {
            0 if len > 0 => data[at.min(len - 1)] ^= 1 << rng.usize(..8),
            1 => data.insert(at, rng.u8(..)),
            2 => {
                let end = (at + rng.usize(..64)).min(len);
                data.drain(at..end);
            }
            3 => {
                let end = (at + rng.usize(..64)).min(len);
                let copy = data[at..end].to_vec();
                let to = rng.usize(..data.len() + 1);
                data.splice(to..to, copy);
            }
            4 => data.truncate(at),
            _ => {
                let t = TOKENS[rng.usize(..TOKENS.len())].as_bytes();
                data.splice(at..at, t.iter().copied());
            }
        }
    }
}

/// A mutated copy of `seed`: half of the time by structure, else byte-wise.
fn mutant(seed: &serde_json::Value, rng: &mut Rng) -> Vec<u8> {
    if rng.usize(..2) == 0 {
        let mut doc = seed.clone();
        for _ in 0..=rng.usize(..3) {
            mutate_structure(&mut doc, rng);
        }
        serde_json::to_vec(&doc).unwrap_or_default()
    } else {
        let mut data = serde_json::to_vec(seed).unwrap_or_default();
        mutate_bytes(&mut data, rng);
        data
    }
}

/// Run `f` on `input`, naming the input when it panics.
fn no_panic(what: &str, input: &[u8], f: impl FnOnce()) {
    if let Err(p) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        eprintln!("{what} panicked on: {}", String::from_utf8_lossy(input));
        std::panic::resume_unwind(p);
    }
}

fn bundle() -> tempfile::TempDir {
    let b = tempfile::tempdir().expect("temp bundle");
    std::fs::create_dir(b.path().join("rootfs")).expect("rootfs");
    b
}

#[test]
fn config_json_never_panics() {
    let b = bundle();
    let seed = serde_json::to_value(Spec::default()).expect("default spec");
    let cfg = b.path().join("config.json");
    std::fs::write(&cfg, serde_json::to_vec(&seed).expect("encode")).expect("write");
    assert!(load_bundle_spec(b.path()).is_ok(), "the seed itself loads");
    let mut rng = Rng::with_seed(0x5eed_0fc0_4f16);
    let (mut ok, mut refused) = (0, 0);
    for _ in 0..CONFIG_RUNS {
        let input = mutant(&seed, &mut rng);
        std::fs::write(&cfg, &input).expect("write config.json");
        no_panic("load_bundle_spec", &input, || {
            match load_bundle_spec(b.path()) {
                Ok(_) => ok += 1,
                Err(e) => {
                    assert!(!e.to_string().is_empty());
                    refused += 1
                }
            }
        });
    }
    // Both outcomes are reached: the mutations are neither all fatal nor all inert.
    assert!(ok > 50 && refused > 50, "ok {ok}, refused {refused}");
}

#[test]
fn state_json_never_panics() {
    let b = bundle();
    std::fs::write(
        b.path().join("config.json"),
        serde_json::to_vec(&Spec::default()).expect("encode"),
    )
    .expect("write config.json");
    let root = tempfile::tempdir().expect("state root");
    let rt = Runtime {
        root: root.path().to_path_buf(),
        systemd_cgroup: false,
    };
    let dir = root.path().join("fz");
    std::fs::create_dir(&dir).expect("container dir");
    // A live pid, so that status checks read /proc; the record is mutated too.
    let me = std::process::id() as i32;
    let mut state = State::new("fz", ContainerStatus::Running, Some(me), b.path().into());
    state.created = Some(chrono::Utc::now());
    let seed = serde_json::to_value(&state).expect("encode state");
    let start = process_start_time(me).expect("own start time");
    let record = format!("{me} {start}\n");
    std::fs::write(
        dir.join("state.json"),
        serde_json::to_vec(&seed).expect("encode"),
    )
    .expect("write");
    assert!(rt.state("fz").is_ok(), "the seed itself loads");
    let mut rng = Rng::with_seed(0x057a_7e0f_f0a2);
    let (mut ok, mut refused) = (0, 0);
    for run in 0..STATE_RUNS {
        let input = mutant(&seed, &mut rng);
        std::fs::write(dir.join("state.json"), &input).expect("write state.json");
        let mut rec = record.clone().into_bytes();
        if rng.usize(..4) == 0 {
            mutate_bytes(&mut rec, &mut rng);
        }
        std::fs::write(dir.join(INIT_IDENTITY), &rec).expect("write record");
        no_panic("state", &input, || match rt.state("fz") {
            Ok(s) => {
                assert!(s.pid == 0 || s.status != "stopped");
                ok += 1
            }
            Err(e) => {
                assert!(matches!(e, RuntimeError::CorruptState { .. }), "{e}");
                refused += 1
            }
        });
        if run % 10 == 0 {
            no_panic("list", &input, || {
                assert!(rt.list().is_ok());
            });
        }
    }
    assert!(ok > 20 && refused > 20, "ok {ok}, refused {refused}");
}

#[test]
fn proc_stat_parser_never_panics() {
    let mut rng = Rng::with_seed(0x009a_45e4);
    let stat = format!(
        "1 (init) S {}",
        (4..=52)
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(" ")
    );
    for _ in 0..5000 {
        let mut s = stat.clone().into_bytes();
        mutate_bytes(&mut s, &mut rng);
        let s = String::from_utf8_lossy(&s).into_owned();
        no_panic("start_time_from_stat", s.as_bytes(), || {
            let _ = start_time_from_stat(&s);
        });
    }
}
