//! What several commands share — key sets, galleries and their server contexts, probe sets,
//! result files — opened with errors that name the path and, for a gallery used with keys,
//! a check that the keys are the gallery's.

use std::collections::HashMap;
use std::path::Path;
use std::sync::OnceLock;

use anyhow::Context;
use encsearch::{ClientKeys, Gallery, Match, ServerContext, Simd, hot::HotGallery, store::LockWait};

/// The vector builds every server context of this process may use (set once from `--simd` /
/// `HERS_SIMD` in `main`).
static SIMD: OnceLock<Simd> = OnceLock::new();
static SIMD_NAME: OnceLock<String> = OnceLock::new();

/// Records the vector builds the kernels may use: `auto`, `avx2` (no AVX-512) or `off`
/// (portable builds only).
pub(crate) fn set_simd(mode: &str) {
    let simd = match mode {
        "off" => Simd::portable(),
        "avx2" => Simd::without_avx512(),
        _ => Simd::detect(),
    };
    let _ = SIMD.set(simd);
    let _ = SIMD_NAME.set(mode.to_string());
}

/// The `--simd` mode as given (passed on to processes this one starts).
pub(crate) fn simd_name() -> String {
    SIMD_NAME.get().cloned().unwrap_or_else(|| "auto".into())
}

/// The vector builds chosen for this process.
pub(crate) fn simd() -> Simd {
    *SIMD.get_or_init(Simd::detect)
}

/// Loads the key set in `path`.
pub(crate) fn load_keys(path: &Path) -> anyhow::Result<ClientKeys> {
    ClientKeys::load(path).with_context(|| format!("loading keys {}", path.display()))
}

/// The writer-lock policy of `--no-wait`.
pub(crate) fn lock_wait(no_wait: bool) -> LockWait {
    if no_wait { LockWait::NoWait } else { LockWait::Wait }
}

/// Says on stderr that this command waits for another writer of the gallery `path`.
pub(crate) fn say_waiting(path: &Path, pid: Option<u32>) {
    eprintln!(
        "waiting: {} is being written by {} (run with --no-wait to fail instead)",
        path.display(),
        pid.map_or_else(|| "another process".to_string(), |p| format!("pid {p}"))
    );
}

/// Opens the gallery in `path`.
pub(crate) fn open_gallery(path: &Path) -> anyhow::Result<Gallery> {
    Gallery::open(path).with_context(|| format!("opening gallery {}", path.display()))
}

/// Opens the gallery in `path` and checks that `keys` enrolled it.
pub(crate) fn open_gallery_for(path: &Path, keys: &ClientKeys) -> anyhow::Result<Gallery> {
    let g = open_gallery(path)?;
    g.manifest().public.key_id.ensure_eq(keys.key_id()).context("the gallery was enrolled with another key")?;
    Ok(g)
}

/// The server context of a gallery, with the process's vector builds.
pub(crate) fn server_for(g: &Gallery) -> anyhow::Result<ServerContext> {
    ServerContext::for_gallery_with(g, simd()).with_context(|| format!("preparing to score {}", g.dir().display()))
}

/// Loads a gallery's hot form, through its cache files unless `no_cache`, saying on stderr
/// what the cache did.
pub(crate) fn load_hot(g: &Gallery, server: &ServerContext, no_cache: bool) -> anyhow::Result<HotGallery> {
    if no_cache {
        return Ok(server.load_hot(g)?);
    }
    let (hot, r) = server.load_hot_cached(g, true)?;
    if let Some(e) = &r.write_error {
        eprintln!("warning: could not write the hot-form cache ({e}); the next load builds it again");
    }
    if r.built > 0 && r.written_bytes > 0 {
        eprintln!(
            "hot-form cache: {} segment(s) built and cached ({} MB), {} mapped",
            r.built,
            r.written_bytes >> 20,
            r.mapped
        );
    } else if r.mapped > 0 {
        eprintln!("hot-form cache: {} segment(s) mapped from disk", r.mapped);
    }
    Ok(hot)
}

/// Loads a probe set: ids, dimension and row-major data.
pub(crate) fn load_probes(path: &Path) -> anyhow::Result<(Vec<String>, usize, Vec<f32>)> {
    let set = embeddings::read_set(path).with_context(|| format!("reading probes {}", path.display()))?;
    let ids = (0..set.len()).map(|i| set.ids.display(i)).collect();
    Ok((ids, set.dim, set.data))
}

/// The rows of probes `ids` (in that order) read from `probes`, which must be `dim`-D: the
/// full-dimension probes of a two-stage search.
pub(crate) fn probe_rows(probes: &Path, dim: usize, ids: &[String]) -> anyhow::Result<Vec<f32>> {
    let (fids, fdim, fdata) = load_probes(probes)?;
    if fdim != dim {
        anyhow::bail!("fine probes {} are {fdim}-D, the fine gallery is {dim}-D", probes.display());
    }
    let row_of: HashMap<&str, usize> = fids.iter().enumerate().map(|(i, id)| (id.as_str(), i)).collect();
    let mut rows = Vec::with_capacity(ids.len() * fdim);
    for id in ids {
        let i = *row_of
            .get(id.as_str())
            .with_context(|| format!("probe {id} is missing from the fine probes {}", probes.display()))?;
        rows.extend_from_slice(&fdata[i * fdim..(i + 1) * fdim]);
    }
    Ok(rows)
}

/// Writes results (`probe_id, rank, gallery_id, score, similarity`): parquet, or CSV for `.csv`.
pub(crate) fn write_matches(path: &Path, matches: &[Match]) -> anyhow::Result<()> {
    embeddings::write_matches(path, matches).with_context(|| format!("writing {}", path.display()))
}

/// Reads results written by [`write_matches`].
pub(crate) fn read_matches(path: &Path) -> anyhow::Result<Vec<Match>> {
    embeddings::read_matches(path).with_context(|| format!("reading results {}", path.display()))
}

/// `--tls-cert` and `--tls-key`: HTTPS for a server, the same flags for `hers serve` and a
/// cluster's public address.
#[derive(Debug, Clone, clap::Args)]
pub struct TlsArgs {
    /// Serve HTTPS with this certificate chain (PEM, leaf first).
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// Private key of `--tls-cert` (PEM).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
}

impl TlsArgs {
    /// The certificate and key files, when both are given.
    pub fn files(&self) -> Option<service::TlsFiles> {
        self.tls_cert.clone().zip(self.tls_key.clone()).map(|(cert, key)| service::TlsFiles { cert, key })
    }
}

/// Tokens and request limits of a server's HTTP API: the same flags for `hers serve` and a
/// cluster (`service::Access`).
#[derive(Debug, Clone, clap::Args)]
pub struct AccessArgs {
    /// File holding the bearer token that enrolment and removal need; without it the server
    /// refuses every write.
    #[arg(long)]
    pub token_file: Option<std::path::PathBuf>,
    /// File holding the bearer token that searches, verification, /v1/ids and /v1/config
    /// need (the write token also serves); without it they are open to anyone who can connect.
    /// /healthz and /metrics stay open.
    #[arg(long)]
    pub read_token_file: Option<std::path::PathBuf>,
    /// Largest request body in MiB (413 beyond).
    #[arg(long, default_value_t = 64)]
    pub max_body_mib: usize,
    /// Most probes in one query (400 beyond; clients split larger searches).
    #[arg(long, default_value_t = 64)]
    pub max_probes: usize,
    /// Searches admitted beyond those being worked on; more get 429 + Retry-After
    /// (`hers serve`: waiting beyond the pass being scored, 0 admitting one only while the
    /// scorer is idle; a cluster: in flight at once).
    #[arg(long, default_value_t = 64)]
    pub max_inflight: usize,
}

impl AccessArgs {
    /// The tokens read from their files, and the limits.
    pub fn access(&self) -> anyhow::Result<service::Access> {
        Ok(service::Access {
            token: self.token_file.as_deref().map(service::read_token).transpose()?,
            read_token: self.read_token_file.as_deref().map(service::read_token).transpose()?,
            max_body_bytes: self.max_body_mib << 20,
            max_probes: self.max_probes,
            max_inflight: self.max_inflight,
        })
    }

    /// The same flags as arguments for another `hers` process.
    pub fn to_args(&self) -> Vec<String> {
        let mut a = vec![
            "--max-body-mib".to_string(),
            self.max_body_mib.to_string(),
            "--max-probes".into(),
            self.max_probes.to_string(),
            "--max-inflight".into(),
            self.max_inflight.to_string(),
        ];
        for (flag, file) in [("--token-file", &self.token_file), ("--read-token-file", &self.read_token_file)] {
            if let Some(f) = file {
                a.extend([flag.to_string(), f.display().to_string()]);
            }
        }
        a
    }
}
