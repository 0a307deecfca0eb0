//! Planning an enrolment against what a gallery already holds: duplicate ids inside the input,
//! ids the gallery holds from another input, and the rows an interrupted enrolment of this very
//! input already committed (each segment records the fingerprint of its input), so a rerun can
//! resume exactly where the crash left off.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::gallery::Gallery;
use crate::error::{Error, Result};

/// Which rows of an input to enrol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrolPlan {
    /// Rows (0-based, in input order) not yet in the gallery.
    pub rows: Vec<usize>,
    /// Rows already in the gallery from this same input (an interrupted earlier run).
    pub held: usize,
}

/// A fingerprint of a file's content (hex SHA-256, 32 digits), recorded with every segment
/// enrolled from it.
pub fn fingerprint_file(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()[..16]))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Gallery {
    /// Plans enrolling `ids` (one per input row) from the input named `input` whose content
    /// has fingerprint `source`:
    /// - an id twice in the input is an [`Error::DuplicateInInput`] (both rows named);
    /// - an id the gallery holds from another input is an [`Error::AlreadyEnrolled`] (row and
    ///   segment named);
    /// - rows the gallery holds from this same input are skipped with `resume`, and without it
    ///   are an [`Error::PartlyEnrolled`] that says how many and suggests `--resume`.
    pub fn plan_enrolment(&self, input: &str, source: &str, ids: &[String], resume: bool) -> Result<EnrolPlan> {
        let mut rows_of: HashMap<&str, usize> = HashMap::with_capacity(ids.len());
        for (row, id) in ids.iter().enumerate() {
            if let Some(&first_row) = rows_of.get(id.as_str()) {
                return Err(Error::DuplicateInInput { input: input.to_string(), row, id: id.clone(), first_row });
            }
            rows_of.insert(id, row);
        }
        // One pass over the gallery's ids: which input rows are there, and in which segment.
        let segments = self.segment_chunks();
        let mut chunk_segment = Vec::with_capacity(self.chunk_count());
        for (i, (_, range)) in segments.iter().enumerate() {
            chunk_segment.extend(std::iter::repeat_n(i, range.len()));
        }
        let mut present = vec![false; ids.len()];
        let mut foreign: Option<(usize, usize)> = None; // (row, segment) of the first foreign copy
        let mut foreign_rows = 0;
        let mut held = 0;
        for (chunk, chunk_ids) in self.chunk_ids().enumerate() {
            let seg = chunk_segment[chunk];
            for id in chunk_ids {
                let Some(&row) = rows_of.get(id.as_str()) else { continue };
                present[row] = true;
                if segments[seg].0.source.as_deref() == Some(source) {
                    held += 1;
                } else {
                    foreign_rows += 1;
                    if foreign.is_none_or(|(r, _)| row < r) {
                        foreign = Some((row, seg));
                    }
                }
            }
        }
        if let Some((row, seg)) = foreign {
            return Err(Error::AlreadyEnrolled {
                input: input.to_string(),
                row,
                id: ids[row].clone(),
                segment: segments[seg].0.file.clone(),
                more: foreign_rows - 1,
            });
        }
        if held > 0 && !resume {
            return Err(Error::PartlyEnrolled { input: input.to_string(), held, total: ids.len() });
        }
        Ok(EnrolPlan { rows: (0..ids.len()).filter(|&r| !present[r]).collect(), held })
    }
}

/// A fingerprint of rows given in memory (hex SHA-256 of the ids and values, 32 digits): the
/// `source` of rows that come from no file, so a rerun with the same rows resumes.
pub fn fingerprint_rows(ids: &[String], data: &[f32]) -> String {
    let mut hasher = Sha256::new();
    for id in ids {
        hasher.update((id.len() as u64).to_le_bytes());
        hasher.update(id.as_bytes());
    }
    for part in data.chunks(1 << 14) {
        hasher.update(part.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>());
    }
    hex(&hasher.finalize()[..16])
}
