//! Decryption of score chunks: half of every query's work, and all of it the key holder's.
//!
//! A chunk's scores are a degree-2 ciphertext `(c0, c1, c2)` modulo the response modulus q0
//! (compact ones first lifted to q0). Decryption is `m = c0 + c1·s + c2·s²`, then
//! `round(t·m/q0) mod t`, then the slot decoding (an NTT modulo t and fhe's slot order). fhe's
//! general `try_decrypt` recomputes `s` and `s²` in NTT form for every ciphertext, runs its
//! 64-bit transforms and scales through big-integer arithmetic; here `s` and `s²` are kept in
//! NTT form once per key set, the three transforms (two forward, one inverse, plus the one
//! modulo t) take the vector builds of `kernel/ntt.rs`, the products are Shoup products
//! (`kernel/pointwise.rs`), and the scaling is one double-precision product per coefficient
//! (the switch to t of `kernel/switch.rs`, four at a time with AVX2):
//! `t·m/q0` is within `2^-20` of the exact quotient for any q0 < 2^64, while a decryption
//! inside its noise bound (`params.rs`) leaves the quotient at least 1/4 away from a rounding
//! boundary, so the result is exactly fhe's. Tests compare both on real answers, at the
//! largest magnitudes too, on every build the CPU has.

use fhe_math::zq::Modulus;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::kernel::{Ntt, Ntt32, ShoupRow, Simd, Switch};
use crate::keys::ClientKeys;

/// How decrypted coefficients are read: as slots (SIMD, the 1:N scores) or as the coefficients
/// themselves (the second stage's coefficient packing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Read {
    Slots,
    Coefficients,
}

/// A key set's decryption of score ciphertexts modulo q0, with its tables.
#[derive(Debug)]
pub(crate) struct ScoreDecryptor {
    n: usize,
    q: Modulus,
    ntt_q: Ntt,
    s: Secret,
    s2: Secret,
    t: u64,
    /// `m ↦ round(t·m/q0) mod t`.
    to_t: Switch,
    ntt_t: Ntt,
    /// Slot i is output `slot_of[i]` of the NTT modulo t (fhe's SIMD order).
    slot_of: Vec<u32>,
    /// Where the CPU has no IFMA: the 32-bit transform modulo t (eight lanes of AVX2 against
    /// four of the double-precision 64-bit build), with slot i at its output `.1[i]`.
    narrow_t: Option<(Ntt32, Vec<u32>)>,
}

/// A row of the secret (`s` or `s²` in NTT form), wiped when dropped, never printed.
struct Secret(ShoupRow);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl ScoreDecryptor {
    /// The tables of `keys` for the builds `simd` allows.
    pub(crate) fn new(keys: &ClientKeys, simd: Simd) -> Result<Self> {
        let params = &keys.public().params;
        let n = params.degree;
        let q0 = params.response_modulus();
        let q = Modulus::new(q0).map_err(|e| Error::params(format!("response modulus {q0}: {e}")))?;
        let ntt_q = Ntt::new(&q, n, simd)?;
        let lift = |c: i64| if c < 0 { q0 - c.unsigned_abs() } else { c as u64 };
        let mut s: Zeroizing<Vec<u64>> = Zeroizing::new(keys.secret_coefficients()?.iter().map(|&c| lift(c)).collect());
        ntt_q.forward(&mut s);
        let s2: Zeroizing<Vec<u64>> = Zeroizing::new(s.iter().map(|&v| q.mul(v, v)).collect());
        let t = params.plaintext;
        let tm = Modulus::new(t).map_err(|e| Error::params(format!("plaintext modulus {t}: {e}")))?;
        let ntt_t = Ntt::new(&tm, n, simd)?;
        let slot_of = slot_order(n);
        let narrow_t = match simd.ifma() {
            true => None,
            false => Ntt32::new(t, n).ok().and_then(|p| narrow_slot_order(&p, &ntt_t, &slot_of).map(|m| (p, m))),
        };
        Ok(Self {
            n,
            ntt_q,
            s: Secret(ShoupRow::new(&q, s.to_vec(), simd)),
            s2: Secret(ShoupRow::new(&q, s2.to_vec(), simd)),
            q,
            t,
            to_t: Switch::new(q0, t, simd)?,
            ntt_t,
            slot_of,
            narrow_t,
        })
    }

    /// Decrypts `(c0, c1, c2)` (a full answer) or `(c0, c1)` (a compact one, relinearised):
    /// coefficients modulo q0, each part N values below q0; reads the plaintext as `read` says
    /// and writes value i, centred modulo t, to `out[i]` (N of them). Works in two scratch rows
    /// per thread; the phase `c0 + c1·s + c2·s²`, from which the secret could be solved for,
    /// is overwritten in place by the plaintext before the call returns.
    pub(crate) fn decrypt_into(&self, parts: &[&[u64]], read: Read, out: &mut [i64]) -> Result<()> {
        let n = self.n;
        if !(2..=3).contains(&parts.len()) {
            return Err(Error::malformed("response", format!("a score ciphertext of {} parts", parts.len())));
        }
        if parts.iter().any(|p| p.len() != n) || out.len() != n {
            return Err(Error::malformed("response", "polynomial of wrong length"));
        }
        let q0 = *self.q;
        // One pass over each part, branch-free, before anything reaches a transform that
        // assumes reduced inputs.
        if parts.iter().any(|p| p.iter().fold(false, |bad, &v| bad | (v >= q0))) {
            return Err(Error::malformed("response", "coefficient beyond the response modulus"));
        }
        SCRATCH.with_borrow_mut(|(x, acc)| {
            x.resize(n, 0);
            acc.clear();
            acc.resize(n, 0);
            // c1·s (+ c2·s²), in the NTT domain.
            x.copy_from_slice(parts[1]);
            self.ntt_q.forward(x);
            self.s.0.mul_acc(&self.q, x, acc);
            if let Some(c2) = parts.get(2) {
                x.copy_from_slice(c2);
                self.ntt_q.forward(x);
                self.s2.0.mul_acc(&self.q, x, acc);
            }
            self.ntt_q.backward(acc);
            // m = c0 + …, then round(t·m/q0) mod t, in place.
            self.to_t.round_sum(acc, parts[0]);
            let t = self.t;
            let half = t / 2;
            let centre = |v: u64| if v > half { v as i64 - t as i64 } else { v as i64 };
            match read {
                Read::Coefficients => out.iter_mut().zip(acc.iter()).for_each(|(o, &v)| *o = centre(v)),
                Read::Slots => match &self.narrow_t {
                    Some((ntt, slot_of)) => NARROW.with_borrow_mut(|w| {
                        w.clear();
                        w.extend(acc.iter().map(|&v| v as u32));
                        ntt.forward(w);
                        out.iter_mut().zip(slot_of).for_each(|(o, &j)| *o = centre(u64::from(w[j as usize])));
                    }),
                    None => {
                        self.ntt_t.forward(acc);
                        out.iter_mut().zip(&self.slot_of).for_each(|(o, &j)| *o = centre(acc[j as usize]));
                    }
                },
            }
        });
        Ok(())
    }
}

thread_local! {
    /// Two rows of N words per thread: a transformed part, and the accumulator.
    static SCRATCH: std::cell::RefCell<(Vec<u64>, Vec<u64>)> = const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
    /// The plaintext row of the 32-bit transform modulo t.
    static NARROW: std::cell::RefCell<Vec<u32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The slot order of the 32-bit transform `narrow`, read off it rather than assumed: the
/// transform of `x` lists its evaluation points, and slot i is where the point of fhe's slot i
/// (`reference`'s output `slot_of[i]`) appears. `None` unless the transform of 1 is all ones
/// (no factor on the output) and every point appears exactly once.
fn narrow_slot_order(narrow: &Ntt32, reference: &Ntt, slot_of: &[u32]) -> Option<Vec<u32>> {
    let n = slot_of.len();
    let (mut one, mut x, mut x64) = (vec![0u32; n], vec![0u32; n], vec![0u64; n]);
    (one[0], x[1], x64[1]) = (1, 1, 1);
    narrow.forward(&mut one);
    narrow.forward(&mut x);
    reference.forward(&mut x64);
    if one.iter().any(|&v| v != 1) {
        return None;
    }
    let at: std::collections::HashMap<u64, u32> =
        x.iter().enumerate().map(|(j, &p)| (u64::from(p), j as u32)).collect();
    if at.len() != n {
        return None;
    }
    slot_of.iter().map(|&j| at.get(&x64[j as usize]).copied()).collect()
}

/// fhe's SIMD slot order (SEAL's batch encoder): slot i of row 0 is the evaluation at
/// `ψ^(3^i)`, of row 1 at `ψ^(-3^i)`, found at the bit-reversed position the forward NTT puts it.
fn slot_order(n: usize) -> Vec<u32> {
    let row = n >> 1;
    let m = n << 1;
    let shift = n.leading_zeros() + 1;
    let mut pos = 1usize;
    let mut map = vec![0u32; n];
    for i in 0..row {
        map[i] = (((pos - 1) >> 1).reverse_bits() >> shift) as u32;
        map[row | i] = (((m - pos - 1) >> 1).reverse_bits() >> shift) as u32;
        pos = (pos * 3) & (m - 1);
    }
    map
}
