//! The byte encoding of a [`CompactKey`]: its seed, its number of digits, then every `b` row
//! bit-packed at the gadget prime's width (`a` is expanded from the seed on the server).

use std::sync::Arc;

use fhe::bfv::BfvParameters;

use super::frame::{Reader, pack_bits, packed_len, unpack_bits};
use crate::compact::{CompactKey, Gadget, MAX_DIGITS};
use crate::error::{Error, Result};

impl CompactKey {
    /// Appends the key: its seed, its number of digits, then every `b` row bit-packed at the
    /// prime's width.
    pub(crate) fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.seed);
        out.push(self.b.len() as u8);
        for row in &self.b {
            pack_bits(row, 64 - self.prime.leading_zeros(), out);
        }
    }

    /// Reads [`CompactKey::put`], checking every residue is reduced (the server checks the
    /// number of digits against its parameters when it prepares the key).
    pub(crate) fn take(r: &mut Reader<'_>, bfv: &Arc<BfvParameters>, what: &'static str) -> Result<Self> {
        let n = bfv.degree();
        let prime = Gadget::prime_for(n, bfv.moduli()[0])?;
        let seed: [u8; 32] = r.take(32)?.try_into().map_err(|_| Error::malformed(what, "short seed"))?;
        let digits = r.take(1)?[0] as usize;
        if !(1..=MAX_DIGITS).contains(&digits) {
            return Err(Error::malformed(what, format!("a compact-answer key of {digits} digits")));
        }
        let bits = 64 - prime.leading_zeros();
        let mut b = Vec::with_capacity(digits);
        for _ in 0..digits {
            let row = unpack_bits(r.take(packed_len(n, bits))?, bits, n)?;
            if row.iter().any(|&v| v >= prime) {
                return Err(Error::malformed(what, "compact key residue not reduced"));
            }
            b.push(row);
        }
        Ok(Self { seed, b, prime })
    }
}
