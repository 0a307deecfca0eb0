//! Key material: the client's secret key set and the public parameters the server gets.
//!
//! A key directory holds `public.json` (parameters + key id, readable by anyone) and
//! `secret.key` (mode 0600). The server side of the crate only ever sees [`PublicParams`].

use std::fs;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use fhe::bfv::{BfvParameters, SecretKey};
use fhe_traits::{DeserializeParametrized, Serialize as _};
use rand::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::params::SearchParams;

/// File name of the public parameters in a key directory.
pub const PUBLIC_FILE: &str = "public.json";
/// File name of the secret key in a key directory.
pub const SECRET_FILE: &str = "secret.key";
const SECRET_MAGIC: &[u8; 8] = b"HERSSK01";

/// Reads a protobuf varint at `*pos`, advancing it.
fn varint(b: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*pos)?;
        *pos += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// Identifier of a key set: hex of a hash of the parameters and a commitment to the secret.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KeyId(pub String);

impl std::fmt::Display for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl KeyId {
    /// Errors with [`Error::KeyMismatch`] unless `other` is the same id.
    pub fn ensure_eq(&self, other: &KeyId) -> Result<()> {
        if self == other {
            Ok(())
        } else {
            Err(Error::KeyMismatch { expected: self.0.clone(), actual: other.0.clone() })
        }
    }
}

/// Public material of a key set: everything the server needs (no secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicParams {
    /// Which key set this is.
    pub key_id: KeyId,
    /// BFV parameters.
    pub params: SearchParams,
}

impl PublicParams {
    /// Reads `public.json` from a key directory (or the file itself).
    pub fn load(path: &Path) -> Result<Self> {
        let file = if path.is_dir() { path.join(PUBLIC_FILE) } else { path.to_path_buf() };
        let text = fs::read(&file).map_err(|e| Error::io(&file, e))?;
        Self::from_json(&text, &file)
    }

    /// Parses and validates the bytes of a `public.json` (`path` names it in errors).
    pub fn from_json(bytes: &[u8], path: &Path) -> Result<Self> {
        let p: Self =
            serde_json::from_slice(bytes).map_err(|source| Error::Json { path: path.to_path_buf(), source })?;
        p.params.validate()?;
        Ok(p)
    }

    /// Writes `public.json` into a directory.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let file = dir.join(PUBLIC_FILE);
        let text = serde_json::to_string_pretty(self).map_err(|source| Error::Json { path: file.clone(), source })?;
        embeddings::atomic::write_atomic(&file, text.as_bytes()).map_err(|e| Error::io(&file, e))
    }
}

/// The client's key set: public parameters plus the BFV secret key. Never given to the server.
pub struct ClientKeys {
    public: PublicParams,
    bfv: Arc<BfvParameters>,
    secret: SecretKey,
    /// The secret's coefficients, read once (see [`ClientKeys::secret_coefficients`]).
    coeffs: std::sync::OnceLock<Zeroizing<Vec<i64>>>,
}

impl std::fmt::Debug for ClientKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientKeys").field("public", &self.public).finish_non_exhaustive()
    }
}

fn key_id(params: &SearchParams, secret_bytes: &[u8]) -> KeyId {
    let commit = Sha256::digest(secret_bytes);
    let mut h = Sha256::new();
    h.update(b"hers-encsearch-key-v1");
    h.update(params.canonical_bytes());
    h.update(commit);
    let d = h.finalize();
    KeyId(d[..16].iter().map(|b| format!("{b:02x}")).collect())
}

impl ClientKeys {
    /// Generates a fresh key set.
    pub fn generate<R: RngCore + CryptoRng>(params: SearchParams, rng: &mut R) -> Result<Self> {
        let bfv = params.bfv()?;
        let secret = SecretKey::random(&bfv, rng);
        let bytes = Zeroizing::new(secret.to_bytes());
        let key_id = key_id(&params, &bytes);
        Ok(Self { public: PublicParams { key_id, params }, bfv, secret, coeffs: Default::default() })
    }

    /// The public half (what a gallery records and the server gets).
    pub fn public(&self) -> &PublicParams {
        &self.public
    }

    /// The key id.
    pub fn key_id(&self) -> &KeyId {
        &self.public.key_id
    }

    /// fhe's parameter object shared by everything this key encrypts.
    pub fn bfv(&self) -> &Arc<BfvParameters> {
        &self.bfv
    }

    pub(crate) fn secret(&self) -> &SecretKey {
        &self.secret
    }

    /// The secret polynomial's coefficients, for key material fhe does not make itself (the
    /// compact-answer key). fhe exposes them only through its encoding of the key, a protobuf
    /// message whose field 1 is the packed `sint64` coefficients; this reads that field, once
    /// per key set (fhe's encoder leaves a copy of the secret in freed memory each time).
    pub(crate) fn secret_coefficients(&self) -> Result<&[i64]> {
        if let Some(c) = self.coeffs.get() {
            return Ok(c);
        }
        let c = self.parse_secret_coefficients()?;
        Ok(self.coeffs.get_or_init(|| c))
    }

    /// The key for sealing gallery states and checking their seals (`seal.rs`), derived from
    /// the secret key.
    pub fn seal_key(&self) -> Result<crate::seal::SealKey> {
        Ok(crate::seal::SealKey::derive(self.secret_coefficients()?))
    }

    fn parse_secret_coefficients(&self) -> Result<Zeroizing<Vec<i64>>> {
        let bytes = Zeroizing::new(self.secret.to_bytes());
        let bad = || Error::params("unexpected encoding of the secret key");
        let mut pos = 0usize;
        let mut coeffs = Zeroizing::new(Vec::with_capacity(self.public.params.degree));
        // Field 1, length-delimited (packed), then zigzag varints.
        if varint(&bytes, &mut pos) != Some((1 << 3) | 2) {
            return Err(bad());
        }
        let len = varint(&bytes, &mut pos).and_then(|l| usize::try_from(l).ok()).ok_or_else(bad)?;
        let end = pos.checked_add(len).filter(|&e| e == bytes.len()).ok_or_else(bad)?;
        while pos < end {
            let z = varint(&bytes, &mut pos).ok_or_else(bad)?;
            coeffs.push((z >> 1) as i64 ^ -((z & 1) as i64));
        }
        if coeffs.len() != self.public.params.degree {
            return Err(bad());
        }
        Ok(coeffs)
    }

    /// Writes `public.json` and `secret.key` (mode 0600) into `dir` (created if needed).
    pub fn save(&self, dir: &Path) -> Result<()> {
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        self.public.save(dir)?;
        let file = dir.join(SECRET_FILE);
        let sk = Zeroizing::new(self.secret.to_bytes());
        let mut buf = Zeroizing::new(Vec::with_capacity(sk.len() + 16));
        buf.extend_from_slice(SECRET_MAGIC);
        buf.extend_from_slice(&(sk.len() as u32).to_le_bytes());
        buf.extend_from_slice(&sk);
        let crc = crc32fast::hash(&buf);
        buf.extend_from_slice(&crc.to_le_bytes());
        // Owner-only from the moment the file exists, written atomically like every other file.
        embeddings::atomic::write_atomic_with(&file, true, |f| f.write_all(&buf)).map_err(|e| Error::io(&file, e))
    }

    /// Reads a key directory written by [`ClientKeys::save`], checking the key id. A secret
    /// key file that group or others may read is refused (as ssh refuses such a private key).
    pub fn load(dir: &Path) -> Result<Self> {
        let public = PublicParams::load(&dir.join(PUBLIC_FILE))?;
        let file = dir.join(SECRET_FILE);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&file).map_err(|e| Error::io(&file, e))?.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(Error::KeyPermissions { path: file, mode });
            }
        }
        let buf = Zeroizing::new(fs::read(&file).map_err(|e| Error::io(&file, e))?);
        Self::from_secret_bytes(public, &buf, &file.display().to_string())
    }

    /// Decodes the bytes of a `secret.key` file against its public parameters (`what` names
    /// the file in errors), checking magic, length, CRC and the key id.
    pub fn from_secret_bytes(public: PublicParams, buf: &[u8], what: &str) -> Result<Self> {
        if buf.len() < 16 || &buf[..8] != SECRET_MAGIC {
            return Err(Error::malformed("secret key", "bad magic or too short"));
        }
        let (body, tail) = buf.split_at(buf.len() - 4);
        let stored = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]);
        let computed = crc32fast::hash(body);
        if stored != computed {
            return Err(Error::Checksum { what: what.to_string(), stored, computed });
        }
        let len = u32::from_le_bytes([body[8], body[9], body[10], body[11]]) as usize;
        if body.len() != 12 + len {
            return Err(Error::malformed("secret key", "length field does not match file"));
        }
        let bfv = public.params.bfv()?;
        let secret = SecretKey::from_bytes(&body[12..], &bfv)?;
        let id = key_id(&public.params, &body[12..]);
        public.key_id.ensure_eq(&id)?;
        Ok(Self { public, bfv, secret, coeffs: Default::default() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::Preset;
    use rand::SeedableRng;

    #[test]
    fn save_load_roundtrip_and_mode() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        let k = ClientKeys::generate(Preset::N4096.params().expect("p"), &mut rng).expect("keys");
        k.save(dir.path()).expect("save");
        let l = ClientKeys::load(dir.path()).expect("load");
        assert_eq!(l.key_id(), k.key_id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let m = fs::metadata(dir.path().join(SECRET_FILE)).expect("meta").permissions().mode();
            assert_eq!(m & 0o777, 0o600);
        }
        let k2 = ClientKeys::generate(Preset::N4096.params().expect("p"), &mut rng).expect("keys");
        assert_ne!(k2.key_id(), k.key_id());
        // A public.json of another key next to this secret is rejected.
        k2.public().save(dir.path()).expect("save");
        assert!(matches!(ClientKeys::load(dir.path()), Err(Error::KeyMismatch { .. })));
    }
}
