//! `hers cluster split`: a gallery cut into shard galleries along segment boundaries, or
//! along chunk boundaries where there are fewer segments than shards.
//!
//! Segments are self-contained (their ciphertexts and ids), so a shard is a new manifest over
//! some of them: the segment files (and their hot-form caches) are hard-linked, not copied or
//! re-encrypted — a split of a 100M gallery costs no disk. Segment files are never changed in
//! place (removal is a tombstone in the manifest; caches are replaced by rename), so a link
//! shared between the source and a shard stays correct. Shards take consecutive segments,
//! balanced by template count, so the cluster's global slot order is the source gallery's.
//! With more shards than segments, shards take consecutive chunks instead: a segment cut in
//! pieces gives each piece's chunks to a new segment file of its shard, the ciphertexts
//! copied as they are ([`Gallery::append_copy`]); segments whole in one shard are still linked.

use std::collections::HashSet;
use std::fs;
use std::ops::Range;
use std::path::Path;

use encsearch::{
    Gallery, Layout,
    store::{LockWait, MANIFEST_FILE, Manifest},
};

use crate::error::{Error, Result};
use crate::manifest::{CLUSTER_FILE, ClusterManifest, ShardEntry};

/// Splits the dimension-wise gallery `gallery` into `shards` shard galleries under `out` (which
/// must not exist or be empty) and writes `out/cluster.json`.
pub fn split(gallery: &Path, shards: usize, out: &Path) -> Result<ClusterManifest> {
    let mut g = Gallery::open(gallery)?;
    if g.layout() != Layout::DimensionWise {
        return Err(Error::Config(format!(
            "{} is a coefficient-layout gallery: a cluster serves dimension-wise galleries",
            gallery.display()
        )));
    }
    // Nothing may change the gallery while its manifest is divided.
    g.lock_for_writing(LockWait::NoWait, |_| {})?;
    let source = g.manifest().clone();
    let segments = &source.segments;
    let pieces = plan(&g, shards).map_err(|reason| Error::Config(format!("{}: {reason}", gallery.display())))?;
    if out.exists() && fs::read_dir(out).map_err(|e| Error::io(out, e))?.next().is_some() {
        return Err(Error::Config(format!("{} is not empty: give a new directory to --out", out.display())));
    }
    fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;

    let mut entries = Vec::with_capacity(shards);
    for (i, shard_pieces) in pieces.into_iter().enumerate() {
        let name = format!("shard-{i:03}");
        let dir = out.join(&name);
        fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let mut m: Manifest = source.clone();
        m.segments.clear();
        m.removed.clear();
        // The key holder sealed the whole gallery, not a shard of it: a shard is unsealed (its
        // writes come through the front door, whose merged table carries no seal).
        m.seal = None;
        let first_chunk = shard_pieces.first().map_or(0, |p| p.chunks.start);
        let last_chunk = shard_pieces.last().map_or(0, |p| p.chunks.end);
        for piece in shard_pieces {
            if piece.whole {
                let s = &segments[piece.segment];
                link(&gallery.join(&s.file), &dir.join(&s.file))?;
                let hot = Path::new(&s.file).with_extension("hot");
                if gallery.join(&hot).exists() {
                    link(&gallery.join(&hot), &dir.join(&hot))?;
                }
                m.segments.push(s.clone());
            } else {
                // The copy goes after what the shard holds so far: commit that first.
                write_manifest(&dir, &m)?;
                let mut shard = Gallery::open(&dir)?;
                shard.append_copy(&g, piece.chunks)?;
                m = shard.manifest().clone();
            }
        }
        // First without tombstones, to learn every id the shard's segments hold; then with the
        // source's tombstones among them.
        write_manifest(&dir, &m)?;
        let ids: HashSet<String> = Gallery::open(&dir)?.slot_ids().iter().flatten().cloned().collect();
        m.removed = source.removed.iter().filter(|id| ids.contains(*id)).cloned().collect();
        write_manifest(&dir, &m)?;
        let shard = Gallery::open(&dir)?;
        entries.push(ShardEntry {
            dir: name,
            segments: m.segments.iter().map(|s| s.file.clone()).collect(),
            templates: shard.len(),
            chunks: Some(first_chunk..last_chunk),
        });
    }
    let manifest = ClusterManifest { format: 1, source: gallery.display().to_string(), shards: entries };
    let text = serde_json::to_vec_pretty(&manifest).map_err(|e| Error::Config(e.to_string()))?;
    let path = out.join(CLUSTER_FILE);
    embeddings::atomic::write_atomic(&path, &text).map_err(|e| Error::io(&path, e))?;
    Ok(manifest)
}

/// A run of consecutive chunks of one source segment that goes to one shard.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Piece {
    /// Index of the source segment.
    segment: usize,
    /// Global chunk indices.
    chunks: Range<usize>,
    /// The whole segment (linked) or a part of it (copied into a new segment).
    whole: bool,
}

/// Each shard's pieces, in slot order: whole segments balanced by templates when there are at
/// least as many segments as shards, else chunks balanced by live templates, cut into pieces
/// at segment boundaries.
fn plan(g: &Gallery, shards: usize) -> std::result::Result<Vec<Vec<Piece>>, String> {
    let segments = &g.manifest().segments;
    let mut bounds = Vec::with_capacity(segments.len());
    let mut at = 0;
    for s in segments {
        bounds.push(at..at + s.chunks);
        at += s.chunks;
    }
    if shards == 0 || at < shards {
        return Err(format!(
            "{at} chunks, and each of {shards} shards needs at least one: split into at most {at} shards"
        ));
    }
    if segments.len() >= shards {
        let ranges = balance(&segments.iter().map(|s| s.templates).collect::<Vec<_>>(), shards);
        return Ok(ranges
            .into_iter()
            .map(|r| r.map(|i| Piece { segment: i, chunks: bounds[i].clone(), whole: true }).collect())
            .collect());
    }
    let live: Vec<usize> = (0..at).map(|c| g.chunk_slot_ids(c).iter().flatten().count()).collect();
    Ok(balance(&live, shards)
        .into_iter()
        .map(|r| {
            bounds
                .iter()
                .enumerate()
                .filter_map(|(i, b)| {
                    let chunks = b.start.max(r.start)..b.end.min(r.end);
                    (!chunks.is_empty()).then(|| Piece { segment: i, whole: chunks == *b, chunks })
                })
                .collect()
        })
        .collect())
}

/// Consecutive ranges of `sizes`, one per shard, each non-empty, closest to equal sums.
fn balance(sizes: &[usize], shards: usize) -> Vec<Range<usize>> {
    let total: usize = sizes.iter().sum();
    let mut out = Vec::with_capacity(shards);
    let (mut start, mut sum) = (0, 0);
    for i in 0..shards {
        let left = shards - i - 1;
        let target = total * (i + 1) / shards;
        let mut end = start + 1;
        sum += sizes[start];
        // Take more while it brings the sum closer to the target and leaves one for each
        // shard still to come.
        while end + left < sizes.len() && (sum + sizes[end]).abs_diff(target) <= sum.abs_diff(target) {
            sum += sizes[end];
            end += 1;
        }
        if left == 0 {
            end = sizes.len();
        }
        out.push(start..end);
        start = end;
    }
    out
}

fn link(from: &Path, to: &Path) -> Result<()> {
    if fs::hard_link(from, to).is_err() {
        // Another file system: copy instead.
        fs::copy(from, to).map_err(|e| Error::io(to, e))?;
    }
    Ok(())
}

fn write_manifest(dir: &Path, m: &Manifest) -> Result<()> {
    let path = dir.join(MANIFEST_FILE);
    let text = serde_json::to_vec_pretty(m).map_err(|e| Error::Config(e.to_string()))?;
    embeddings::atomic::write_atomic(&path, &text).map_err(|e| Error::io(&path, e))
}

#[cfg(test)]
mod tests {
    use super::balance;

    #[test]
    fn shards_take_consecutive_segments_of_near_equal_size() {
        assert_eq!(balance(&[10, 10, 10, 10], 2), vec![0..2, 2..4]);
        assert_eq!(balance(&[10, 10, 10, 10], 4), vec![0..1, 1..2, 2..3, 3..4]);
        assert_eq!(balance(&[32, 32, 32, 32, 32, 32, 32, 21], 3), vec![0..3, 3..5, 5..8]);
        assert_eq!(balance(&[100, 1, 1], 3), vec![0..1, 1..2, 2..3]);
        assert_eq!(balance(&[5], 1), vec![0..1]);
        for shards in 1..=6 {
            let sizes = [7, 3, 9, 1, 4, 4];
            let r = balance(&sizes, shards);
            assert_eq!(r.len(), shards);
            assert_eq!(r[0].start, 0);
            assert_eq!(r[shards - 1].end, sizes.len());
            assert!(r.windows(2).all(|w| w[0].end == w[1].start && !w[0].is_empty()));
        }
    }
}
