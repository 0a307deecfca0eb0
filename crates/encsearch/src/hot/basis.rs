//! The multiplication basis `Q ∪ P` and the preparation of the hot form from public material:
//! every ciphertext of a chunk (or a probe) has both parts extended from Q to `Q ∪ P` and put
//! in the kernel's layout. Nothing here needs a server context, only the public parameters and
//! the number of rows a chunk packs.

use std::sync::Arc;

use fhe::bfv::{BfvParameters, Ciphertext};
use fhe_math::rq::{Context, Representation};
use fhe_math::zq::primes::generate_prime;
use rayon::prelude::*;

use super::{HotChunk, HotProbe, HotWords};
use crate::error::{Error, Result};
use crate::kernel::{Extender, IFMA_MAX_BITS, NARROW_BITS, Ntt32, PROBE_ROWS, Simd, probe_rows, scatter_row};
use crate::keys::PublicParams;
use crate::wire::{EncryptedChunk, EncryptedProbe};

/// The multiplication basis of one (key, rows per chunk) and the basis extension into it.
#[derive(Debug, Clone)]
pub struct HotBasis {
    public: PublicParams,
    rows: usize,
    bfv: Arc<BfvParameters>,
    q_ctx: Arc<Context>,
    ext_ctx: Arc<Context>,
    extender: Extender,
    /// The NTTs of the narrow basis (u32 hot words), `None` for the wide one (u64 words).
    narrow: Option<Arc<[Ntt32]>>,
}

impl HotBasis {
    /// The basis for chunks of `rows` ciphertexts (the dimension for a dimension-wise gallery,
    /// 1 for a coefficient-layout one).
    ///
    /// The basis M makes `M ≥ 4·d·N·Q²`: a coefficient of the sum of `d` tensor products of
    /// centred lifts is at most `2·d·N·(Q/2)² ≤ M/8` in magnitude, so it is exact in M before
    /// the single `t/Q` scaling, and the 1/8 margin is what down-scaling (`kernel/rescale.rs`)
    /// relies on. Two forms:
    /// * wide, `Q ∪ P` in u64 words: P of 48-bit primes when every prime of Q is below 2^48 (so
    ///   the IFMA kernel can run), 60-bit otherwise; chosen where the CPU has AVX-512 IFMA, or
    ///   has no AVX2;
    /// * narrow, primes below 2^29 (Q not among them) in u32 words: chosen where the CPU has
    ///   AVX2 and the IFMA kernel cannot run (IFMA absent or off, or a prime of Q ≥ 2^48), for
    ///   the AVX2 kernel (`kernel/narrow.rs`), unless it would take more than 8 primes.
    pub fn new(public: &PublicParams, rows: usize, simd: Simd) -> Result<Self> {
        if rows == 0 {
            return Err(Error::InvalidArgument { reason: "a chunk of 0 ciphertexts".into() });
        }
        let bfv = public.params.bfv()?;
        let n = public.params.degree;
        let q_ctx = bfv.context_at_level(0)?.clone();
        let log_q = public.params.log_q();
        let need = (rows as f64).log2() + (n as f64).log2() + 2.0 * log_q + 2.0;
        let primes = |bits: usize, mut have: f64, avoid: &[u64]| -> Result<Vec<u64>> {
            let (mut out, mut upper) = (Vec::new(), 1u64 << bits);
            while have < need {
                let p = generate_prime(bits, 2 * n as u64, upper)
                    .ok_or_else(|| Error::params(format!("ran out of {bits}-bit extension primes")))?;
                upper = p;
                if !avoid.contains(&p) {
                    out.push(p);
                    have += (p as f64).log2();
                }
            }
            Ok(out)
        };
        let q = &public.params.moduli;
        let wide = |bits: usize| primes(bits, log_q, q).map(|p| q.iter().chain(&p).copied().collect::<Vec<_>>());
        // 48-bit P keeps every prime IFMA-sized, unless that takes more primes than the
        // down-scaling's IFMA build handles (7); then fewer, 60-bit ones.
        let small = match q.iter().all(|&q| q < 1 << IFMA_MAX_BITS) {
            true => wide(IFMA_MAX_BITS as usize).ok().filter(|m| m.len() <= 7),
            false => None,
        };
        let narrow = match simd.avx2() && (!simd.ifma() || small.is_none()) && n >= 32 {
            true => primes(NARROW_BITS as usize, 0.0, q).ok().filter(|m| m.len() <= 8),
            false => None,
        };
        let (moduli, q_len) = match (narrow, small) {
            (Some(b), _) => (b, 0),
            (None, Some(m)) => (m, q.len()),
            (None, None) => (wide(60)?, q.len()),
        };
        let ext_ctx = Context::new_arc(&moduli, n)?;
        let extender = Extender::new(q, &moduli[q_len..], n, simd)?;
        let narrow = match q_len {
            0 => Some(moduli.iter().map(|&p| Ntt32::new(p, n)).collect::<Result<Vec<_>>>()?.into()),
            _ => None,
        };
        Ok(Self { public: public.clone(), rows, bfv, q_ctx, ext_ctx, extender, narrow })
    }

    /// Whether this is the narrow basis (primes below 2^29, u32 hot words).
    pub fn is_narrow(&self) -> bool {
        self.narrow.is_some()
    }

    /// The NTTs of the narrow basis.
    pub(crate) fn narrow_ntts(&self) -> Option<&[Ntt32]> {
        self.narrow.as_deref()
    }

    /// The public parameters.
    pub fn public(&self) -> &PublicParams {
        &self.public
    }

    /// Ciphertexts per chunk.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// fhe's parameter object (public).
    pub fn bfv(&self) -> &Arc<BfvParameters> {
        &self.bfv
    }

    /// Moduli of the multiplication basis (`Q ∪ P`, or the narrow basis).
    pub fn extended_moduli(&self) -> &[u64] {
        self.ext_ctx.moduli()
    }

    pub(crate) fn ext_ctx(&self) -> &Arc<Context> {
        &self.ext_ctx
    }

    /// Bytes per residue in the hot form: 4 for the narrow basis, 8 for the wide one.
    fn word_bytes(&self) -> usize {
        if self.is_narrow() { 4 } else { 8 }
    }

    /// u64 words of one chunk's hot form (the narrow form packs two residues per word).
    pub fn hot_words_per_chunk(&self) -> usize {
        self.ext_ctx.moduli().len() * self.rows * 2 * self.public.params.degree * self.word_bytes() / 8
    }

    /// Bytes per template of the hot form (dimension-wise layout).
    pub fn hot_bytes_per_template(&self) -> usize {
        self.rows * 2 * self.ext_ctx.moduli().len() * self.word_bytes()
    }

    /// The NTT-form rows mod Q of a top-level, 2-part ciphertext, each value checked below its
    /// prime (the kernels rely on it; a decoded ciphertext is not otherwise range-checked).
    fn q_rows<'a>(&self, ct: &'a Ciphertext, part: usize) -> Result<Vec<&'a [u64]>> {
        if ct.len() != 2 || ct[0].ctx() != &self.q_ctx || *ct[part].representation() != Representation::Ntt {
            return Err(Error::malformed("ciphertext", "expected 2 parts at the top level, in NTT form"));
        }
        ct[part]
            .coefficients()
            .into_outer_iter()
            .zip(&self.public.params.moduli)
            .map(|(r, &q)| {
                let r = r.to_slice().ok_or_else(|| Error::params("non-contiguous polynomial rows"))?;
                if r.iter().any(|&v| v >= q) {
                    return Err(Error::malformed("ciphertext", "coefficient not reduced"));
                }
                Ok(r)
            })
            .collect()
    }

    /// Converts a stored chunk to the hot form (basis extension + NTT, once per chunk).
    pub fn prepare_chunk(&self, chunk: &EncryptedChunk) -> Result<HotChunk> {
        let cts = &chunk.cts;
        if cts.len() != self.rows {
            return Err(Error::DimensionMismatch { expected: self.rows, actual: cts.len() });
        }
        let n = self.public.params.degree;
        let np = self.ext_ctx.moduli().len();
        let stride = self.rows * 2 * n;
        if let Some(ntts) = self.narrow_ntts() {
            let mut data = vec![0u64; np * stride / 2];
            let words: &mut [u32] = bytemuck::cast_slice_mut(&mut data);
            let (mut scratch, mut row32) = (Vec::new(), vec![0u32; n]);
            for (j, ct) in cts.iter().enumerate() {
                for part in 0..2 {
                    self.extender.lift(&self.q_rows(ct, part)?, &mut scratch, |i, row| {
                        narrow_row(&ntts[i], row, &mut row32);
                        scatter_row(self.rows, 2, j, part, &row32, &mut words[i * stride..(i + 1) * stride]);
                    })?;
                }
            }
            return Ok(HotChunk::from_words(HotWords::Owned(data.into()), true));
        }
        let mut data = vec![0u64; np * stride];
        let mut scratch = Vec::new();
        for (j, ct) in cts.iter().enumerate() {
            for part in 0..2 {
                self.extender.extend(&self.q_rows(ct, part)?, &mut scratch, |i, row| {
                    scatter_row(self.rows, 2, j, part, row, &mut data[i * stride..(i + 1) * stride]);
                })?;
            }
        }
        Ok(HotChunk::from_words(HotWords::Owned(data.into()), false))
    }

    /// Converts chunks to the hot form on all cores.
    pub fn prepare_chunks(&self, chunks: &[EncryptedChunk]) -> Result<Vec<HotChunk>> {
        chunks.par_iter().map(|c| self.prepare_chunk(c)).collect()
    }

    /// Converts a probe to the hot form (once per query).
    pub fn prepare_probe(&self, probe: &EncryptedProbe) -> Result<HotProbe> {
        if probe.cts.len() != self.rows {
            return Err(Error::DimensionMismatch { expected: self.rows, actual: probe.cts.len() });
        }
        let np = self.ext_ctx.moduli().len();
        let pstride = self.rows * PROBE_ROWS * self.public.params.degree;
        // Basis extension of every dimension on all cores (the costly part), then the layout.
        if let Some(ntts) = self.narrow_ntts() {
            let parts = self.extended_rows(probe, |ct, part, rows: &mut [Vec<u32>], scratch| {
                self.extender
                    .lift(&self.q_rows(ct, part)?, scratch, |i, row| narrow_row(&ntts[i], row, &mut rows[2 * i + part]))
            })?;
            let mut data = vec![0u64; np * pstride / 2];
            lay_out_probe(&parts, self.rows, pstride, bytemuck::cast_slice_mut(&mut data));
            return Ok(HotProbe { data, narrow: true, compact: None });
        }
        let parts = self.extended_rows(probe, |ct, part, rows: &mut [Vec<u64>], scratch| {
            self.extender.extend(&self.q_rows(ct, part)?, scratch, |i, row| rows[2 * i + part].copy_from_slice(row))
        })?;
        let mut data = vec![0u64; np * pstride];
        lay_out_probe(&parts, self.rows, pstride, &mut data);
        Ok(HotProbe { data, narrow: false, compact: None })
    }

    /// Every probe ciphertext's rows in the multiplication basis, `[dim][2·prime + part]`, on
    /// all cores: `fill(ct, part, rows, scratch)` extends one part into `rows`.
    fn extended_rows<T, F>(&self, probe: &EncryptedProbe, fill: F) -> Result<Vec<Vec<Vec<T>>>>
    where
        T: Copy + Default + Send,
        F: Fn(&Ciphertext, usize, &mut [Vec<T>], &mut Vec<u64>) -> Result<()> + Sync,
    {
        let (n, np) = (self.public.params.degree, self.ext_ctx.moduli().len());
        probe
            .cts
            .par_iter()
            .map(|ct| {
                let (mut rows, mut scratch) = (vec![vec![T::default(); n]; 2 * np], Vec::new());
                for part in 0..2 {
                    fill(ct, part, &mut rows, &mut scratch)?;
                }
                Ok(rows)
            })
            .collect()
    }
}

/// Lays out a probe's rows (`parts[dim][2·prime + part]`) in the kernel's layout, one prime's
/// `pstride` values after another.
fn lay_out_probe<T: Copy>(parts: &[Vec<Vec<T>>], dim: usize, pstride: usize, out: &mut [T]) {
    for (j, rows) in parts.iter().enumerate() {
        for (i, dst) in out.chunks_exact_mut(pstride).enumerate() {
            probe_rows(&rows[2 * i], &rows[2 * i + 1], dim, j, dst);
        }
    }
}

/// One residue row of the narrow basis (coefficient form, values below 2^29) to u32 in NTT form.
fn narrow_row(ntt: &Ntt32, row: &[u64], out: &mut [u32]) {
    for (o, &v) in out.iter_mut().zip(row) {
        *o = v as u32;
    }
    ntt.forward(out);
}
