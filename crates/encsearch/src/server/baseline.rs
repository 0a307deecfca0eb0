//! The HERS algorithm, kept as a baseline: per dimension multiply, relinearise and add through
//! fhe's public API (no lazy accumulation, no modulus switching). Every speed claim is a ratio
//! against it, measured in the same run.

use fhe::bfv::{Ciphertext, Multiplicator, RelinearizationKey};
use rayon::prelude::*;

use super::ServerContext;
use crate::error::{Error, Result};
use crate::wire::{EncryptedChunk, EncryptedProbe};

/// fhe's default multiplication strategy with relinearisation, for one context's chunk shape.
#[derive(Debug)]
pub struct HersBaseline {
    multiplicator: Multiplicator,
    rows: usize,
}

impl HersBaseline {
    /// The baseline for `server`'s chunks, with a relinearisation key (public evaluation
    /// material, see [`crate::Client::relinearization_key`]).
    pub fn new(server: &ServerContext, rk: &RelinearizationKey) -> Result<Self> {
        Ok(Self { multiplicator: Multiplicator::default(rk)?, rows: server.rows() })
    }

    /// Scores one chunk the HERS way; the result decrypts with [`crate::Client::decrypt_slots`].
    pub fn score_chunk(&self, probe: &EncryptedProbe, chunk: &EncryptedChunk) -> Result<Ciphertext> {
        if probe.cts.len() != self.rows || chunk.cts.len() != self.rows {
            return Err(Error::DimensionMismatch { expected: self.rows, actual: chunk.cts.len() });
        }
        let mut sum: Option<Ciphertext> = None;
        for (p, g) in probe.cts.iter().zip(&chunk.cts) {
            let prod = self.multiplicator.multiply(p, g)?;
            sum = Some(match sum {
                None => prod,
                Some(s) => &s + &prod,
            });
        }
        sum.ok_or_else(|| Error::InvalidArgument { reason: "dimension 0".into() })
    }

    /// Scores every chunk on all cores, as ours are.
    pub fn scan(&self, probe: &EncryptedProbe, chunks: &[EncryptedChunk]) -> Result<Vec<Ciphertext>> {
        chunks.par_iter().map(|c| self.score_chunk(probe, c)).collect()
    }
}
