//! Enrolling rows as the key holder: the rows are checked once ([`Rows`]: dimension, at least
//! one row, unique ids), then encrypted and committed to a gallery one sealed segment at a
//! time ([`Enroller`]). `hers enroll` (whole or streamed), the Python package and the service
//! client all enrol through these two types.

use std::collections::HashMap;

use rand::{CryptoRng, RngCore};

use crate::client::Client;
use crate::error::{Error, Result};
use crate::seal::{Expect, SealKey};
use crate::store::{EnrolPlan, Gallery};

/// Rows to enrol: `ids[i]` names row `i` of `data` (row-major, `dim` values each), checked.
#[derive(Debug, Clone, Copy)]
pub struct Rows<'a> {
    input: &'a str,
    ids: &'a [String],
    data: &'a [f32],
    dim: usize,
}

impl<'a> Rows<'a> {
    /// Checks that there is at least one row, that `data` holds `dim` values per id, all
    /// finite (a NaN found here stores nothing, found later it would stop the enrolment half
    /// way), and that no id appears twice ([`Error::DuplicateInInput`] names both rows). `input` names the rows
    /// in errors (a file name, "the rows to enrol").
    pub fn new(input: &'a str, ids: &'a [String], data: &'a [f32], dim: usize) -> Result<Self> {
        if ids.is_empty() {
            return Err(Error::InvalidArgument { reason: format!("{input}: no rows to enrol") });
        }
        if dim == 0 || data.len() != ids.len() * dim {
            return Err(Error::InvalidArgument {
                reason: format!(
                    "{input}: {} ids for {} values; {} rows of {dim}-D templates are {} values",
                    ids.len(),
                    data.len(),
                    ids.len(),
                    ids.len() * dim
                ),
            });
        }
        if let Some(i) = data.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite { index: i / dim, component: i % dim });
        }
        let mut first_row: HashMap<&str, usize> = HashMap::with_capacity(ids.len());
        for (row, id) in ids.iter().enumerate() {
            if let Some(&first) = first_row.get(id.as_str()) {
                return Err(Error::DuplicateInInput {
                    input: input.to_string(),
                    row,
                    id: id.clone(),
                    first_row: first,
                });
            }
            first_row.insert(id, row);
        }
        Ok(Self { input, ids, data, dim })
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Never true: [`Rows::new`] refuses an empty input.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The ids, one per row.
    pub fn ids(&self) -> &'a [String] {
        self.ids
    }

    /// Values per row.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// What the rows are called in errors.
    pub fn input(&self) -> &'a str {
        self.input
    }

    /// The ids and row-major values of rows `which`, in that order.
    pub fn gather(&self, which: &[usize]) -> (Vec<String>, Vec<f32>) {
        let d = self.dim;
        let ids = which.iter().map(|&r| self.ids[r].clone()).collect();
        let data = which.iter().flat_map(|&r| self.data[r * d..(r + 1) * d].iter().copied()).collect();
        (ids, data)
    }
}

/// What [`Enroller::enrol`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnrolReport {
    /// Rows encrypted and committed by this call.
    pub enrolled: usize,
    /// Rows skipped because the gallery held them already from this same input (`resume`).
    pub held: usize,
}

/// The key holder's writer of one gallery: encrypts rows, seals the state after them and
/// commits them as one segment, through the gallery's writer lock.
pub struct Enroller<'g> {
    gallery: &'g mut Gallery,
    client: &'g Client,
    seal_key: SealKey,
    source: String,
    chunks_per_segment: usize,
}

impl<'g> Enroller<'g> {
    /// Writes to `gallery` with `client`'s keys (they must be the gallery's), `chunks_per_segment`
    /// chunks per committed segment; `source` is the input's fingerprint each segment records
    /// (what a resumed enrolment recognises).
    pub fn new(gallery: &'g mut Gallery, client: &'g Client, chunks_per_segment: usize, source: &str) -> Result<Self> {
        gallery.manifest().public.key_id.ensure_eq(client.keys().key_id())?;
        if gallery.manifest().dim != client.quantizer().dim {
            return Err(Error::DimensionMismatch { expected: gallery.manifest().dim, actual: client.quantizer().dim });
        }
        let seal_key = client.keys().seal_key()?;
        Ok(Self {
            gallery,
            client,
            seal_key,
            source: source.to_string(),
            chunks_per_segment: chunks_per_segment.max(1),
        })
    }

    /// Rows in one committed segment (the last may hold fewer).
    pub fn rows_per_segment(&self) -> usize {
        self.gallery.templates_per_chunk() * self.chunks_per_segment
    }

    /// The gallery written to.
    pub fn gallery(&self) -> &Gallery {
        self.gallery
    }

    /// Encrypts `data` (row-major rows of `ids`, best at most [`Enroller::rows_per_segment`])
    /// in the gallery's layout and commits it as one segment with the seal of the state after
    /// it. Durable when this returns; nothing is written when it fails.
    pub fn commit<R: RngCore + CryptoRng>(&mut self, ids: &[String], data: &[f32], rng: &mut R) -> Result<()> {
        let chunks = self.client.encrypt_templates_as(self.gallery.layout(), data, rng)?;
        let expect = Expect { key_id: self.client.keys().key_id(), quantizer: self.client.quantizer() };
        let base = self.gallery.chunk_hashes()?;
        let seal = self.seal_key.seal_append_to(
            self.gallery.manifest().seal.as_ref(),
            &base,
            expect,
            ids,
            &chunks,
            self.gallery.templates_per_chunk(),
            rng,
        )?;
        self.gallery.append_sealed(self.client.keys().key_id(), ids, &chunks, Some(&self.source), Some(seal))
    }

    /// Which of `rows` to enrol: ids the gallery holds from another input are refused, rows it
    /// holds from this input (an interrupted run) are skipped with `resume` and refused without
    /// it ([`Gallery::plan_enrolment`]).
    pub fn plan(&self, rows: &Rows<'_>, resume: bool) -> Result<EnrolPlan> {
        if rows.dim() != self.gallery.manifest().dim {
            return Err(Error::DimensionMismatch { expected: self.gallery.manifest().dim, actual: rows.dim() });
        }
        self.gallery.plan_enrolment(rows.input(), &self.source, rows.ids(), resume)
    }

    /// Enrols `rows` as [`Enroller::plan`] says, a segment at a time.
    pub fn enrol<R: RngCore + CryptoRng>(
        &mut self,
        rows: &Rows<'_>,
        resume: bool,
        rng: &mut R,
        progress: impl FnMut(usize) -> Result<()>,
    ) -> Result<EnrolReport> {
        let plan = self.plan(rows, resume)?;
        self.enrol_planned(rows, &plan, rng, progress)
    }

    /// Enrols the rows `plan` names. `progress(n)` runs after each committed segment of n rows
    /// and may stop the enrolment by returning an error (the segments before stay committed: a
    /// rerun with `resume` enrols the rest).
    pub fn enrol_planned<R: RngCore + CryptoRng>(
        &mut self,
        rows: &Rows<'_>,
        plan: &EnrolPlan,
        rng: &mut R,
        mut progress: impl FnMut(usize) -> Result<()>,
    ) -> Result<EnrolReport> {
        let mut enrolled = 0;
        for part in plan.rows.chunks(self.rows_per_segment()) {
            let (ids, data) = rows.gather(part);
            self.commit(&ids, &data, rng)?;
            enrolled += part.len();
            progress(part.len())?;
        }
        Ok(EnrolReport { enrolled, held: plan.held })
    }
}
