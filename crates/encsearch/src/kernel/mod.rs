//! The arithmetic of the hot loop, each piece with an AVX-512 IFMA build and a portable one,
//! chosen once when it is built from a [`Simd`] value:
//!
//! * `tensor.rs`: the scoring kernel (lazy sums of tensor products in the NTT domain) and the
//!   hot layout it reads;
//! * `narrow.rs`: the AVX2 scoring kernel of the narrow hot form (29-bit primes in u32 words);
//! * `ntt.rs`: a negacyclic NTT for primes below 2^48; `ntt32.rs`: the narrow basis' NTT;
//! * `extend.rs`: exact basis extension Q → Q ∪ P;
//! * `rescale.rs`: the one down-scaling from Q ∪ P to the response modulus;
//! * `pointwise.rs`: products of NTT-domain rows by constant rows (compact answers' key);
//!   `digits.rs`: the signed digits they are multiplied with; `switch.rs`: a modulus switch
//!   from one modulus to a smaller one (their last step, and decryption's);
//! * `ifma.rs`: the AVX-512 IFMA helpers they share; `avx2.rs`: the AVX2/FMA ones of the
//!   narrow path; `cpu.rs`: the detection.
//!
//! Everything here but [`Simd`] and [`Kernel`] is private to the crate.

mod avx2;
mod cpu;
mod digits;
mod extend;
mod ifma;
mod narrow;
mod ntt;
mod ntt32;
mod pointwise;
mod rescale;
mod switch;
mod tensor;

pub use cpu::Simd;
pub(crate) use digits::Digits;
pub(crate) use extend::Extender;
pub(crate) use narrow::{NARROW_BITS, tensor_sum_narrow};
pub(crate) use ntt::{FAST_BITS as NTT_FAST_BITS, Ntt};
pub(crate) use ntt32::Ntt32;
pub(crate) use pointwise::ShoupRow;
pub(crate) use rescale::Rescaler;
pub(crate) use switch::Switch;
pub use tensor::Kernel;
pub(crate) use tensor::{IFMA_MAX_BITS, LANES, PROBE_ROWS, probe_rows, scatter_row};
