//! The two packing layouts of templates into plaintexts, and byte packing.
//!
//! * Dimension-wise (the 1:N gallery): SIMD slot k of plaintext j holds `g_k[j]`, so one
//!   ciphertext per dimension covers N templates and the score of template k lands in slot k.
//! * Coefficient (the fine gallery of the two-stage search): template b occupies coefficients
//!   `b·R .. b·R + R` of one plaintext (R packed rows), and a probe `p` is encoded as
//!   `p(x⁻¹) = p0 − Σ_{i≥1} p_i·x^{N−i}` (negacyclic, `x^N = −1`). Coefficient `b·R` of the
//!   product is then exactly `Σ_i g_b[i]·p_i` (the wrapped terms pick up `−1` twice, and
//!   neighbouring blocks cannot reach a block start because `|i − i'| < R`): one
//!   ciphertext–ciphertext product scores ⌊N/R⌋ templates with the sum over dimensions done
//!   under encryption, no rotation keys needed, and the client sees only the scores.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How a gallery packs its templates (recorded in the manifest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// One ciphertext per dimension, N templates per chunk: every template is scored per query.
    #[default]
    DimensionWise,
    /// One ciphertext per chunk holding ⌊N/R⌋ whole templates: cheap to gather a few candidates.
    Coefficient,
}

impl Layout {
    /// Templates one chunk holds, for ring degree `n` and `rows` packed rows per template.
    pub fn templates_per_chunk(self, n: usize, rows: usize) -> usize {
        match self {
            Layout::DimensionWise => n,
            Layout::Coefficient => n / rows.max(1),
        }
    }

    /// Ciphertexts in one chunk (and in one probe).
    pub fn cts_per_chunk(self, rows: usize) -> usize {
        match self {
            Layout::DimensionWise => rows,
            Layout::Coefficient => 1,
        }
    }
}

/// Coefficient layout: packs up to ⌊n/rows⌋ templates into one coefficient vector of length n.
pub fn pack_coefficients(templates: &[Vec<i64>], rows: usize, n: usize) -> Result<Vec<i64>> {
    if rows == 0 || rows > n || templates.len() > n / rows {
        return Err(Error::InvalidArgument {
            reason: format!("{} templates of {rows} rows do not fit {n} coefficients", templates.len()),
        });
    }
    let mut c = vec![0i64; n];
    for (b, t) in templates.iter().enumerate() {
        if t.len() != rows {
            return Err(Error::DimensionMismatch { expected: rows, actual: t.len() });
        }
        c[b * rows..(b + 1) * rows].copy_from_slice(t);
    }
    Ok(c)
}

/// Coefficient layout: the probe polynomial `p(x⁻¹)` mod `x^n + 1` (see the module docs).
pub fn pack_probe_coefficients(probe: &[i64], n: usize) -> Result<Vec<i64>> {
    if probe.is_empty() || probe.len() > n {
        return Err(Error::InvalidArgument { reason: format!("probe of {} rows for {n} coefficients", probe.len()) });
    }
    let mut c = vec![0i64; n];
    c[0] = probe[0];
    for (i, &v) in probe.iter().enumerate().skip(1) {
        c[n - i] = -v;
    }
    Ok(c)
}

/// Transposes up to `n` quantised templates (each of length `dim`) into `dim` slot vectors of
/// length `n`; unused slots are 0.
pub fn pack_chunk(templates: &[Vec<i64>], dim: usize, n: usize) -> Result<Vec<Vec<i64>>> {
    if templates.len() > n {
        return Err(Error::InvalidArgument {
            reason: format!("{} templates do not fit a chunk of {n} slots", templates.len()),
        });
    }
    let mut cols = vec![vec![0i64; n]; dim];
    for (k, t) in templates.iter().enumerate() {
        if t.len() != dim {
            return Err(Error::DimensionMismatch { expected: dim, actual: t.len() });
        }
        for (j, &v) in t.iter().enumerate() {
            cols[j][k] = v;
        }
    }
    Ok(cols)
}

/// Bit-packs values `< 2^bits` (little-endian bit order).
pub fn pack_bits(values: &[u64], bits: u32, out: &mut Vec<u8>) {
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
pub fn packed_len(count: usize, bits: u32) -> usize {
    (count * bits as usize).div_ceil(8)
}

/// Inverse of [`pack_bits`]; `bytes` must be exactly [`packed_len`] long.
pub fn unpack_bits(bytes: &[u8], bits: u32, count: usize) -> Result<Vec<u64>> {
    if bytes.len() != packed_len(count, bits) || bits == 0 || bits > 64 {
        return Err(Error::malformed("bit-packed vector", "length does not match"));
    }
    let mask: u128 = (1u128 << bits) - 1;
    let mut out = Vec::with_capacity(count);
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
pub struct Reader<'a> {
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
pub fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

/// Appends a CRC-32 of everything in `out` so far.
pub fn seal_crc(out: &mut Vec<u8>) {
    let c = crc32fast::hash(out);
    out.extend_from_slice(&c.to_le_bytes());
}

/// Checks and strips a trailing CRC-32 (see [`seal_crc`]).
pub fn open_crc<'a>(bytes: &'a [u8], what: &str) -> Result<&'a [u8]> {
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
    fn bits_roundtrip() {
        let v: Vec<u64> = (0..1000u64).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15) & ((1 << 40) - 1)).collect();
        let mut b = Vec::new();
        pack_bits(&v, 40, &mut b);
        assert_eq!(b.len(), packed_len(1000, 40));
        assert_eq!(unpack_bits(&b, 40, 1000).expect("ok"), v);
        assert!(unpack_bits(&b[1..], 40, 1000).is_err());
    }

    /// Negacyclic product mod x^n + 1, over the integers.
    #[allow(clippy::needless_range_loop, reason = "the exponent arithmetic is the point")]
    fn negacyclic(a: &[i64], b: &[i64]) -> Vec<i64> {
        let n = a.len();
        let mut c = vec![0i64; n];
        for i in 0..n {
            for j in 0..n {
                let (k, sign) = if i + j < n { (i + j, 1) } else { (i + j - n, -1) };
                c[k] += sign * a[i] * b[j];
            }
        }
        c
    }

    #[test]
    fn coefficient_product_holds_every_inner_product() {
        let (n, rows) = (64, 5);
        let mut x = 7i64;
        let mut next = || {
            x = (x * 1_103_515_245 + 12_345) % 2_147_483_648;
            x % 41 - 20
        };
        let templates: Vec<Vec<i64>> = (0..n / rows).map(|_| (0..rows).map(|_| next()).collect()).collect();
        let probe: Vec<i64> = (0..rows).map(|_| next()).collect();
        let c = negacyclic(
            &pack_coefficients(&templates, rows, n).expect("fits"),
            &pack_probe_coefficients(&probe, n).expect("fits"),
        );
        for (b, t) in templates.iter().enumerate() {
            let dot: i64 = t.iter().zip(&probe).map(|(a, b)| a * b).sum();
            assert_eq!(c[b * rows], dot, "template {b}");
        }
        assert!(pack_coefficients(&vec![vec![0; rows]; n / rows + 1], rows, n).is_err());
        assert_eq!(Layout::Coefficient.templates_per_chunk(n, rows), 12);
    }

    #[test]
    fn chunk_is_transposed() {
        let c = pack_chunk(&[vec![1, 2], vec![3, 4]], 2, 4).expect("ok");
        assert_eq!(c, vec![vec![1, 3, 0, 0], vec![2, 4, 0, 0]]);
        assert!(pack_chunk(&[vec![1]], 2, 4).is_err());
    }
}
