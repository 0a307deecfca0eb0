//! `hers gallery check`: verify a gallery directory file by file — the manifest, every listed
//! segment (present, size, CRC, structure), the id map (no id in two slots, every tombstone an
//! enrolled id) — and find the files no manifest names: segments and hot-form caches written
//! by an enrolment that died before committing, and stray temporary files of atomic writes.
//! Repair removes only those, under the writer lock, never a committed segment.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use super::lock::{LOCK_FILE, LockWait, WriterLock};
use super::manifest::{MANIFEST_FILE, Manifest};
use super::segment::open_segment;
use crate::error::{Error, Result};
use crate::keys::PUBLIC_FILE;

/// What a check found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Segments the manifest lists.
    pub segments: usize,
    /// Templates the manifest lists (removed ones included).
    pub templates: usize,
    /// Problems with committed data, one sentence each (empty: the gallery is sound).
    pub problems: Vec<String>,
    /// Files no manifest names (left by a crash), by path.
    pub unlisted: Vec<PathBuf>,
    /// The unlisted files that were removed (with `repair`).
    pub removed: Vec<PathBuf>,
}

impl CheckReport {
    /// True when the committed data has no problem (unlisted files are not a problem).
    pub fn is_sound(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks the gallery in `dir`; with `repair`, also removes the unlisted files, holding the
/// writer lock (so a running enrolment's not-yet-committed segment is never taken for debris:
/// `wait` says whether to wait for it or fail at once, `on_wait` hears the holder's pid).
pub fn check_gallery(
    dir: &Path,
    repair: bool,
    wait: LockWait,
    on_wait: impl FnOnce(Option<u32>),
) -> Result<CheckReport> {
    let lock = if repair { Some(WriterLock::acquire(dir, wait, on_wait)?) } else { None };
    let path = dir.join(MANIFEST_FILE);
    let text = fs::read(&path).map_err(|e| Error::io(&path, e))?;
    let manifest = Manifest::from_json(&text, &path)?;
    let per_chunk = manifest.templates_per_chunk();
    let mut report = CheckReport { segments: manifest.segments.len(), ..Default::default() };
    let mut seen: HashMap<String, String> = HashMap::new();
    for entry in &manifest.segments {
        report.templates += entry.templates;
        let seg = match open_segment(dir, entry, per_chunk) {
            Ok(seg) => seg,
            Err(e) => {
                report.problems.push(e.to_string());
                continue;
            }
        };
        let count: usize = seg.chunks.iter().map(|c| c.ids.len()).sum();
        if count != entry.templates {
            report.problems.push(format!("{}: {count} templates, the manifest says {}", entry.file, entry.templates));
        }
        for id in seg.chunks.into_iter().flat_map(|c| c.ids) {
            if let Some(other) = seen.get(&id) {
                report.problems.push(format!("id {id} is in both {other} and {}", entry.file));
            } else {
                seen.insert(id, entry.file.clone());
            }
        }
    }
    let unknown_removed = manifest.removed.iter().filter(|id| !seen.contains_key(*id)).count();
    if unknown_removed > 0 && report.problems.is_empty() {
        report.problems.push(format!("{unknown_removed} removed ids were never enrolled"));
    }

    let listed: HashSet<&str> = manifest.segments.iter().map(|s| s.file.as_str()).collect();
    let entries = fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if [MANIFEST_FILE, LOCK_FILE, PUBLIC_FILE].contains(&name.as_str()) {
            continue;
        }
        let unlisted = if name.starts_with(".hers-tmp-") {
            true
        } else if let Some(stem) = name.strip_suffix(".bin").or_else(|| name.strip_suffix(".hot")) {
            stem.starts_with("seg-") && !listed.contains(format!("{stem}.bin").as_str())
        } else {
            false
        };
        if unlisted {
            report.unlisted.push(entry.path());
        }
    }
    report.unlisted.sort();
    if lock.is_some() {
        for p in &report.unlisted {
            fs::remove_file(p).map_err(|e| Error::io(p, e))?;
            report.removed.push(p.clone());
        }
        embeddings::atomic::sync_dir(dir);
    }
    Ok(report)
}
