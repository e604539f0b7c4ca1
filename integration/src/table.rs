//! Side-by-side tables (ferry and runc) that many tests fill, one row each, and that
//! `hack/test` prints after the run from `<name>.txt`.
//!
//! Each test is its own `#[test]`, so that one failing scenario does not hide the others; the
//! table still has to come out whole and in a stable order. A row is appended to `<name>.rows`
//! (one JSON line, one `O_APPEND` write) and the table is then rewritten from every row
//! recorded so far, sorted by key, to a temporary file renamed over `<name>.txt`. Both happen
//! under an exclusive lock on the rows file, so two test binaries never lose each other's rows
//! and a reader never sees half a table. A key recorded again (a test run twice) keeps its
//! latest row; `hack/test` removes both files before a run.

use rustix::fs::{flock, FlockOperation};
use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

#[derive(serde::Serialize, serde::Deserialize)]
struct Row {
    key: String,
    text: String,
}

/// Records `text` (one or more lines, without a final newline) as the row `key` of the table
/// at `table` (a `.txt` path), below `header` (lines printed above the rows; may be empty).
/// The table is a report: a failure to write it is said on stderr and does not fail the test.
pub fn record_row(table: &Path, header: &str, key: &str, text: &str) {
    if let Err(e) = try_record_row(table, header, key, text) {
        eprintln!("could not record row {key:?} in {}: {e}", table.display());
    }
}

fn rows_path(table: &Path) -> PathBuf {
    table.with_extension("rows")
}

fn try_record_row(table: &Path, header: &str, key: &str, text: &str) -> std::io::Result<()> {
    if let Some(dir) = table.parent() {
        fs::create_dir_all(dir)?;
    }
    let mut rows = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(rows_path(table))?;
    // Released when `rows` is closed, also on an early return.
    flock(&rows, FlockOperation::LockExclusive)?;
    let mut line = serde_json::to_string(&Row {
        key: key.to_string(),
        text: text.to_string(),
    })?;
    line.push('\n');
    rows.write_all(line.as_bytes())?;

    let mut all = String::new();
    rows.seek(SeekFrom::Start(0))?;
    rows.read_to_string(&mut all)?;
    let by_key: BTreeMap<String, String> = all
        .lines()
        .filter_map(|l| serde_json::from_str::<Row>(l).ok())
        .map(|r| (r.key, r.text))
        .collect();
    let mut out = String::new();
    if !header.is_empty() {
        out.push_str(header.trim_end_matches('\n'));
        out.push('\n');
    }
    for text in by_key.values() {
        out.push_str(text.trim_end_matches('\n'));
        out.push('\n');
    }
    let tmp = table.with_extension(format!("txt.{}", std::process::id()));
    fs::write(&tmp, out)?;
    fs::rename(&tmp, table)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_come_out_sorted_by_key_and_a_key_keeps_its_latest_row() {
        let d = tempfile::tempdir().expect("tempdir");
        let t = d.path().join("x-table.txt");
        record_row(&t, "head", "b", "row b\n  second line of b");
        record_row(&t, "head", "a", "row a (old)");
        record_row(&t, "head", "c", "row c");
        record_row(&t, "head", "a", "row a");
        let got = fs::read_to_string(&t).expect("table written");
        assert_eq!(got, "head\nrow a\nrow b\n  second line of b\nrow c\n");
        assert!(
            !fs::read_dir(d.path())
                .expect("read dir")
                .any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().contains(".txt."))),
            "no temporary file is left"
        );
    }
}
