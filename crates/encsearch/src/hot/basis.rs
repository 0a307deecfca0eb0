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
use crate::kernel::{Extender, IFMA_MAX_BITS, PROBE_ROWS, Simd, probe_rows, scatter_row};
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
}

impl HotBasis {
    /// The basis for chunks of `rows` ciphertexts (the dimension for a dimension-wise gallery,
    /// 1 for a coefficient-layout one).
    ///
    /// The extension primes P make `M = Q·P ≥ 4·d·N·Q²`: a coefficient of the sum of `d`
    /// tensor products of centred lifts is at most `2·d·N·(Q/2)² ≤ M/8` in magnitude, so it is
    /// exact in `Q ∪ P` before the single `t/Q` scaling, and the 1/8 margin is what
    /// down-scaling (`kernel/rescale.rs`) relies on. They are 48-bit when every prime of Q is (so
    /// the IFMA kernel can run), 60-bit otherwise.
    pub fn new(public: &PublicParams, rows: usize, simd: Simd) -> Result<Self> {
        if rows == 0 {
            return Err(Error::InvalidArgument { reason: "a chunk of 0 ciphertexts".into() });
        }
        let bfv = public.params.bfv()?;
        let n = public.params.degree;
        let q_ctx = bfv.context_at_level(0)?.clone();
        let log_q = public.params.log_q();
        let need = (rows as f64).log2() + (n as f64).log2() + 2.0 * log_q + 2.0;
        let extend = |bits: usize| -> Result<Vec<u64>> {
            let mut moduli = public.params.moduli.clone();
            let (mut have, mut upper) = (log_q, 1u64 << bits);
            while have < need {
                let p = generate_prime(bits, 2 * n as u64, upper)
                    .ok_or_else(|| Error::params(format!("ran out of {bits}-bit extension primes")))?;
                upper = p;
                if !moduli.contains(&p) {
                    moduli.push(p);
                    have += (p as f64).log2();
                }
            }
            Ok(moduli)
        };
        // 48-bit P keeps every prime IFMA-sized, unless that takes more primes than the
        // down-scaling's IFMA build handles (7); then fewer, 60-bit ones.
        let small = match public.params.moduli.iter().all(|&q| q < 1 << IFMA_MAX_BITS) {
            true => extend(IFMA_MAX_BITS as usize).ok().filter(|m| m.len() <= 7),
            false => None,
        };
        let moduli = match small {
            Some(m) => m,
            None => extend(60)?,
        };
        let ext_ctx = Context::new_arc(&moduli, n)?;
        let q_len = public.params.moduli.len();
        let extender = Extender::new(&moduli[..q_len], &moduli[q_len..], n, simd)?;
        Ok(Self { public: public.clone(), rows, bfv, q_ctx, ext_ctx, extender })
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

    /// Moduli of the multiplication basis `Q ∪ P`.
    pub fn extended_moduli(&self) -> &[u64] {
        self.ext_ctx.moduli()
    }

    pub(crate) fn ext_ctx(&self) -> &Arc<Context> {
        &self.ext_ctx
    }

    /// u64 words of one chunk's hot form.
    pub fn hot_words_per_chunk(&self) -> usize {
        self.ext_ctx.moduli().len() * self.rows * 2 * self.public.params.degree
    }

    /// Bytes per template of the hot form (dimension-wise layout).
    pub fn hot_bytes_per_template(&self) -> usize {
        self.rows * 2 * self.ext_ctx.moduli().len() * 8
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
        let mut data = vec![0u64; np * stride];
        let mut scratch = Vec::new();
        for (j, ct) in cts.iter().enumerate() {
            for part in 0..2 {
                self.extender.extend(&self.q_rows(ct, part)?, &mut scratch, |i, row| {
                    scatter_row(self.rows, 2, j, part, row, &mut data[i * stride..(i + 1) * stride]);
                })?;
            }
        }
        Ok(HotChunk::from_words(HotWords::Owned(data.into())))
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
        let n = self.public.params.degree;
        let np = self.ext_ctx.moduli().len();
        let pstride = self.rows * PROBE_ROWS * n;
        let mut data = vec![0u64; np * pstride];
        // Basis extension of every dimension on all cores (the costly part), then the layout.
        let parts = probe
            .cts
            .par_iter()
            .map(|ct| {
                let mut rows = vec![vec![0u64; n]; 2 * np];
                let mut scratch = Vec::new();
                for part in 0..2 {
                    self.extender.extend(&self.q_rows(ct, part)?, &mut scratch, |i, row| {
                        rows[2 * i + part].copy_from_slice(row)
                    })?;
                }
                Ok(rows)
            })
            .collect::<Result<Vec<_>>>()?;
        for (j, rows) in parts.iter().enumerate() {
            for i in 0..np {
                probe_rows(&rows[2 * i], &rows[2 * i + 1], self.rows, j, &mut data[i * pstride..(i + 1) * pstride]);
            }
        }
        Ok(HotProbe { data })
    }
}
