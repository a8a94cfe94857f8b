//! The spill file: rows that could not be written, as JSON lines, bounded in bytes.

use std::io;
use std::path::{Path, PathBuf};

use tokio::io::AsyncWriteExt;

use super::sink_rows::Queued;

/// An append-only JSON-lines file with a size limit.
pub(super) struct Spill {
    path: PathBuf,
    max: u64,
    bytes: u64,
}

fn lines(rows: &[Queued]) -> Vec<String> {
    rows.iter()
        .map(|r| {
            let mut line = serde_json::to_string(r).unwrap_or_default();
            line.push('\n');
            line
        })
        .collect()
}

/// One line of the file: the row and its event id.
pub(super) fn parse_line(line: &str) -> serde_json::Result<Queued> {
    serde_json::from_str(line)
}

impl Spill {
    /// The spill at `path` (what an earlier run left there counts), at most `max` bytes.
    pub(super) fn new(path: PathBuf, max: u64) -> Self {
        let bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
        Spill { path, max, bytes }
    }

    /// Where rows Postgres refuses as data are set aside: the spill's path with
    /// `.rejected.jsonl`.
    pub(super) fn rejected_path(&self) -> PathBuf {
        self.path.with_extension("rejected.jsonl")
    }

    /// Bytes in the file.
    pub(super) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Appends the rows that fit; returns those that did not (or all, when the file cannot
    /// be written).
    pub(super) async fn append(&mut self, rows: &[Queued]) -> Vec<Queued> {
        let lines = lines(rows);
        let mut fit = 0;
        let mut size = self.bytes;
        for line in &lines {
            if size + line.len() as u64 > self.max {
                break;
            }
            size += line.len() as u64;
            fit += 1;
        }
        if fit > 0 {
            if let Err(e) = write_lines(&self.path, &lines[..fit], true).await {
                tracing::error!(error = %e, path = %self.path.display(), "cannot write the spill file");
                return rows.to_vec();
            }
            self.bytes = size;
        }
        rows[fit..].to_vec()
    }

    /// Every row in the file, oldest first (lines that do not parse are skipped and logged).
    pub(super) async fn read_all(&self) -> io::Result<Vec<Queued>> {
        let text = match tokio::fs::read_to_string(&self.path).await {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut rows = Vec::new();
        for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            match parse_line(line) {
                Ok(row) => rows.push(row),
                Err(e) => {
                    tracing::error!(line = n + 1, error = %e, path = %self.path.display(), "unreadable row in the spill file skipped")
                }
            }
        }
        Ok(rows)
    }

    /// Replaces the file's content with `rows` (removes it when there are none).
    pub(super) async fn replace(&mut self, rows: &[Queued]) -> io::Result<()> {
        if rows.is_empty() {
            match tokio::fs::remove_file(&self.path).await {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            self.bytes = 0;
            return Ok(());
        }
        let lines = lines(rows);
        let tmp = self.path.with_extension("jsonl.tmp");
        write_lines(&tmp, &lines, false).await?;
        tokio::fs::rename(&tmp, &self.path).await?;
        self.bytes = lines.iter().map(|l| l.len() as u64).sum();
        Ok(())
    }

    /// Appends `rows` to the JSON-lines file at `path` (no limit).
    pub(super) async fn append_to(path: &Path, rows: &[Queued]) -> io::Result<()> {
        write_lines(path, &lines(rows), true).await
    }
}

async fn write_lines(path: &Path, lines: &[String], append: bool) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir).await?;
    }
    let mut file = tokio::fs::OpenOptions::new()
        .create(true)
        .append(append)
        .write(true)
        .truncate(!append)
        .open(path)
        .await?;
    file.write_all(lines.concat().as_bytes()).await?;
    file.sync_data().await
}
