//! The byte encoding of a [`CompactKey`]: its seed, then every `b` row bit-packed at its
//! prime's width (`a` is expanded from the seed on the server).

use std::sync::Arc;

use fhe::bfv::BfvParameters;

use super::frame::{Reader, pack_bits, packed_len, unpack_bits};
use crate::compact::{CompactKey, q_context};
use crate::error::{Error, Result};

impl CompactKey {
    /// Appends the key: its seed, then every `b` row bit-packed at its prime's width.
    pub(crate) fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.seed);
        for (r, row) in self.b.iter().enumerate() {
            pack_bits(row, 64 - self.moduli[r % self.moduli.len()].leading_zeros(), out);
        }
    }

    /// Reads [`CompactKey::put`], checking every residue is reduced.
    pub(crate) fn take(r: &mut Reader<'_>, bfv: &Arc<BfvParameters>, what: &'static str) -> Result<Self> {
        let ctx = q_context(bfv)?;
        let (moduli, n) = (ctx.moduli(), bfv.degree());
        let seed: [u8; 32] = r.take(32)?.try_into().map_err(|_| Error::malformed(what, "short seed"))?;
        let mut b = Vec::with_capacity(moduli.len() * moduli.len());
        for _ in 0..moduli.len() {
            for &q in moduli {
                let bits = 64 - q.leading_zeros();
                let row = unpack_bits(r.take(packed_len(n, bits))?, bits, n)?;
                if row.iter().any(|&v| v >= q) {
                    return Err(Error::malformed(what, "compact key residue not reduced"));
                }
                b.push(row);
            }
        }
        Ok(Self { seed, b, moduli: moduli.to_vec() })
    }
}
