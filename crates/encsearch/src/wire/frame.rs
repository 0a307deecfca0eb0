//! Byte framing shared by every encoding: a cursor that errors instead of panicking,
//! length-prefixed fields, a trailing CRC-32, and bit-packing of values below `2^bits`.

use crate::error::{Error, Result};

/// Bit-packs values `< 2^bits` (little-endian bit order).
///
/// Each value is OR-ed into the buffer as one unaligned 64-bit word at its bit offset (fits
/// for `bits ≤ 57`: offset within a byte ≤ 7), so a 1M-template answer (15 MB) packs at memory
/// speed rather than a byte at a time; wider values take the byte-wise path.
pub(crate) fn pack_bits(values: &[u64], bits: u32, out: &mut Vec<u8>) {
    let start = out.len();
    let total = packed_len(values.len(), bits);
    if bits.is_multiple_of(8) {
        // Whole bytes (a 40-bit response modulus): the low bytes of each value, in order.
        // One 8-byte store per value, the next value's store overwriting the excess (values
        // are below 2^bits); eight bytes of slack keep the last store in bounds.
        let nb = bits as usize / 8;
        out.resize(start + total + 8, 0);
        for (at, v) in (start..).step_by(nb).zip(values) {
            out[at..at + 8].copy_from_slice(&v.to_le_bytes());
        }
        out.truncate(start + total);
        return;
    }
    if bits <= 57 {
        // Eight bytes of slack so the last word's write stays in bounds; cut off after.
        out.resize(start + total + 8, 0);
        let buf = &mut out[start..];
        let mut pos = 0usize;
        for &v in values {
            let (at, shift) = (pos / 8, pos % 8);
            let w = &mut buf[at..at + 8];
            let cur = u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]) | (v << shift);
            w.copy_from_slice(&cur.to_le_bytes());
            pos += bits as usize;
        }
        out.truncate(start + total);
        return;
    }
    pack_bits_bytewise(values, bits, out);
}

/// [`pack_bits`] a byte at a time through a 128-bit accumulator: any width up to 64 bits (the
/// reference the fast paths are tested against).
fn pack_bits_bytewise(values: &[u64], bits: u32, out: &mut Vec<u8>) {
    let mut acc: u128 = 0;
    let mut nacc = 0u32;
    for &v in values {
        acc |= (v as u128) << nacc;
        nacc += bits;
        while nacc >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            nacc -= 8;
        }
    }
    if nacc > 0 {
        out.push(acc as u8);
    }
}

/// Bytes taken by `count` values of `bits` bits.
pub(crate) fn packed_len(count: usize, bits: u32) -> usize {
    (count * bits as usize).div_ceil(8)
}

/// Inverse of [`pack_bits`]; `bytes` must be exactly [`packed_len`] long.
pub(crate) fn unpack_bits(bytes: &[u8], bits: u32, count: usize) -> Result<Vec<u64>> {
    if bytes.len() != packed_len(count, bits) || bits == 0 || bits > 64 {
        return Err(Error::malformed("bit-packed vector", "length does not match"));
    }
    let mut out = Vec::with_capacity(count);
    if bits <= 57 {
        // One unaligned 64-bit read per value while eight bytes remain; the tail from a padded copy.
        let mask = (1u64 << bits) - 1;
        // The eight bytes from `at` (callers keep them in bounds).
        let word = |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap_or_default());
        // Value `i` starts at bit `i·bits`; the first `fast` have all eight bytes in `bytes`.
        let fast = if bytes.len() >= 8 { ((bytes.len() - 8) * 8 / bits as usize + 1).min(count) } else { 0 };
        out.extend((0..fast).map(|i| {
            let p = i * bits as usize;
            (word(bytes, p / 8) >> (p % 8)) & mask
        }));
        let pos = fast * bits as usize;
        if out.len() < count {
            let base = pos / 8;
            let mut tail = bytes[base..].to_vec();
            tail.resize(tail.len() + 8, 0);
            let mut p = pos % 8;
            while out.len() < count {
                out.push((word(&tail, p / 8) >> (p % 8)) & mask);
                p += bits as usize;
            }
        }
        return Ok(out);
    }
    let mask: u128 = (1u128 << bits) - 1;
    let mut acc: u128 = 0;
    let mut nacc = 0u32;
    let mut it = bytes.iter();
    for _ in 0..count {
        while nacc < bits {
            let b = *it.next().ok_or_else(|| Error::malformed("bit-packed vector", "short"))?;
            acc |= (b as u128) << nacc;
            nacc += 8;
        }
        out.push((acc & mask) as u64);
        acc >>= bits;
        nacc -= bits;
    }
    Ok(out)
}

/// A cursor over bytes that errors instead of panicking.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// Reads `bytes`, naming them `what` in errors.
    pub fn new(bytes: &'a [u8], what: &'static str) -> Self {
        Self { bytes, pos: 0, what }
    }
    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end =
            self.pos.checked_add(n).filter(|&e| e <= self.bytes.len()).ok_or_else(|| {
                Error::malformed(self.what, format!("truncated at byte {} (wanted {n} more)", self.pos))
            })?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    /// A little-endian u32.
    pub fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    /// A little-endian u64.
    pub fn u64(&mut self) -> Result<u64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    /// A u32-length-prefixed byte string, at most `max` long.
    pub fn bytes(&mut self, max: usize) -> Result<&'a [u8]> {
        let n = self.u32()? as usize;
        if n > max {
            return Err(Error::malformed(self.what, format!("field of {n} bytes exceeds {max}")));
        }
        self.take(n)
    }
    /// A u32-length-prefixed UTF-8 string.
    pub fn string(&mut self, max: usize) -> Result<String> {
        let b = self.bytes(max)?;
        String::from_utf8(b.to_vec()).map_err(|_| Error::malformed(self.what, "invalid utf-8"))
    }
    /// Errors unless every byte was consumed.
    pub fn finish(&self) -> Result<()> {
        if self.pos == self.bytes.len() {
            Ok(())
        } else {
            Err(Error::malformed(self.what, format!("{} trailing bytes", self.bytes.len() - self.pos)))
        }
    }
}

/// Appends a u32-length-prefixed byte string.
pub(crate) fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

/// Appends a CRC-32 of everything in `out` so far.
pub(crate) fn seal_crc(out: &mut Vec<u8>) {
    let c = crc32fast::hash(out);
    out.extend_from_slice(&c.to_le_bytes());
}

/// Checks and strips a trailing CRC-32 (see [`seal_crc`]).
pub(crate) fn open_crc<'a>(bytes: &'a [u8], what: &str) -> Result<&'a [u8]> {
    if bytes.len() < 4 {
        return Err(Error::Checksum { what: what.to_string(), stored: 0, computed: 0 });
    }
    let (body, tail) = bytes.split_at(bytes.len() - 4);
    let stored = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]);
    let computed = crc32fast::hash(body);
    if stored != computed {
        return Err(Error::Checksum { what: what.to_string(), stored, computed });
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_roundtrip_at_every_width_and_length() {
        for bits in [1u32, 7, 8, 13, 20, 24, 33, 40, 41, 56, 57, 58, 60, 63, 64] {
            for count in [0usize, 1, 2, 7, 8, 9, 63, 64, 65, 1000] {
                let mask = if bits == 64 { u64::MAX } else { (1u64 << bits) - 1 };
                let v: Vec<u64> =
                    (0..count as u64).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(17) & mask).collect();
                let mut b = vec![0xAA];
                pack_bits(&v, bits, &mut b);
                assert_eq!(b.len(), 1 + packed_len(count, bits), "{bits} bits × {count}");
                assert_eq!(b[0], 0xAA, "packing leaves what precedes it");
                assert_eq!(unpack_bits(&b[1..], bits, count).expect("unpack"), v, "{bits} bits × {count}");
                // The byte-wise reference encoding is the same bytes.
                let mut reference = Vec::new();
                pack_bits_bytewise(&v, bits, &mut reference);
                assert_eq!(&b[1..], &reference[..], "{bits} bits × {count}");
            }
        }
    }

    #[test]
    fn bits_roundtrip() {
        let v: Vec<u64> = (0..1000u64).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15) & ((1 << 40) - 1)).collect();
        let mut b = Vec::new();
        pack_bits(&v, 40, &mut b);
        assert_eq!(b.len(), packed_len(1000, 40));
        assert_eq!(unpack_bits(&b, 40, 1000).expect("ok"), v);
        assert!(unpack_bits(&b[1..], 40, 1000).is_err());
    }
}
