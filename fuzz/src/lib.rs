//! Shared fixtures of the fuzz targets: one key set per process and CRC resealing.

use std::sync::OnceLock;

use encsearch::{Client, ClientKeys, Preset, PublicParams, ServerContext};

/// Packed rows of the fixtures' templates and probes.
pub const DIM: usize = 2;

fn keys() -> &'static ClientKeys {
    static K: OnceLock<ClientKeys> = OnceLock::new();
    K.get_or_init(|| ClientKeys::generate(Preset::N4096.params().expect("preset"), &mut rand::rng()).expect("keys"))
}

/// A server context for [`DIM`]-row templates.
pub fn server() -> &'static ServerContext {
    static S: OnceLock<ServerContext> = OnceLock::new();
    S.get_or_init(|| ServerContext::new(keys().public(), DIM).expect("server"))
}

/// A client for [`DIM`]-row templates (its own key set: decrypting foreign responses must fail cleanly).
pub fn client() -> &'static Client {
    static C: OnceLock<Client> = OnceLock::new();
    C.get_or_init(|| {
        let keys = ClientKeys::generate(Preset::N4096.params().expect("preset"), &mut rand::rng()).expect("keys");
        Client::new(keys, DIM).expect("client")
    })
}

/// The public parameters of the fixture key set.
pub fn public() -> &'static PublicParams {
    keys().public()
}

/// `data` followed by its CRC-32, so mutations reach the decoder behind the checksum.
pub fn sealed(data: &[u8]) -> Vec<u8> {
    let mut b = data.to_vec();
    b.extend_from_slice(&crc32fast::hash(data).to_le_bytes());
    b
}

/// `data` as frames of a streamed answer: split at every `0xFF 0xFE` pair, each piece given its
/// length and CRC-32 (see `encsearch::wire::ScoreStream`), so mutations reach the frame decoder
/// behind both.
pub fn framed(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = data;
    loop {
        let at = rest.windows(2).position(|w| w == [0xFF, 0xFE]);
        let piece = &rest[..at.unwrap_or(rest.len())];
        out.extend_from_slice(&((piece.len() + 4) as u32).to_le_bytes());
        out.extend_from_slice(&sealed(piece));
        match at {
            Some(i) => rest = &rest[i + 2..],
            None => return out,
        }
    }
}
