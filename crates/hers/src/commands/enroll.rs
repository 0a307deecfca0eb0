//! `hers enroll`: encrypt an embedding set (client side, all cores) and append it to a gallery.

use std::path::PathBuf;

use anyhow::Context;
use encsearch::{Client, Gallery, Layout, MANIFEST_FILE, Metric, Quantizer};

use super::open::{load_keys, open_gallery_for};

/// Arguments of `hers enroll`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Key directory written by `hers keygen`.
    #[arg(long)]
    keys: PathBuf,
    /// Embedding set to enrol (parquet).
    #[arg(long)]
    input: PathBuf,
    /// Gallery directory (created if it does not exist, appended to otherwise).
    #[arg(long)]
    gallery: PathBuf,
    /// Quantisation scale for a new gallery (default: largest that fits the plaintext modulus).
    #[arg(long)]
    scale: Option<u32>,
    /// Matching function of a new gallery: cosine (normalised features) or euclidean (squared
    /// Euclidean distance of raw features).
    #[arg(long, default_value = "cosine")]
    metric: String,
    /// Euclidean metric: largest feature norm to provision for (sets the default scale).
    #[arg(long, default_value_t = 1.0)]
    max_norm: f64,
    /// Packing of a new gallery: `dimension-wise` (a 1:N gallery, every template scored per
    /// query) or `coefficient` (the full-dimension "fine" gallery of a two-stage search, from
    /// which the server gathers only the candidates). Default: dimension-wise.
    #[arg(long, value_enum)]
    layout: Option<LayoutArg>,
    /// Chunks per committed segment.
    #[arg(long, default_value_t = 32)]
    chunks_per_segment: usize,
}

/// `--layout` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LayoutArg {
    /// One ciphertext per dimension, N templates per chunk.
    DimensionWise,
    /// Whole templates in the coefficients of one ciphertext.
    Coefficient,
}

impl From<LayoutArg> for Layout {
    fn from(l: LayoutArg) -> Self {
        match l {
            LayoutArg::DimensionWise => Layout::DimensionWise,
            LayoutArg::Coefficient => Layout::Coefficient,
        }
    }
}

/// Encrypts `--input` and appends it to `--gallery`, one committed segment at a time.
pub fn run(a: Args) -> anyhow::Result<()> {
    let keys = load_keys(&a.keys)?;
    let set = embeddings::read_set(&a.input).with_context(|| format!("reading {}", a.input.display()))?;
    let mut gallery = if a.gallery.join(MANIFEST_FILE).exists() {
        let g = open_gallery_for(&a.gallery, &keys)?;
        if let Some(l) = a.layout.map(Layout::from).filter(|l| *l != g.layout()) {
            anyhow::bail!(
                "gallery {} has the {:?} layout, --layout asks for {l:?}; enrol into a new gallery directory instead",
                a.gallery.display(),
                g.layout()
            );
        }
        g
    } else {
        let p = &keys.public().params;
        let q = match (Metric::from_name(&a.metric)?, a.scale) {
            (Metric::Cosine, Some(s)) => Quantizer::with_scale(p, set.dim, s)?,
            (Metric::Cosine, None) => Quantizer::new(p, set.dim)?,
            (_, Some(s)) => Quantizer::euclidean_with_scale(p, set.dim, s)?,
            (_, None) => Quantizer::euclidean(p, set.dim, a.max_norm)?,
        };
        Gallery::create_with_layout(&a.gallery, keys.public(), q, a.layout.map_or(Layout::DimensionWise, Layout::from))?
    };
    if gallery.manifest().dim != set.dim {
        anyhow::bail!("gallery is {}-D, {} is {}-D", gallery.manifest().dim, a.input.display(), set.dim);
    }
    let client = Client::with_quantizer(keys, gallery.quantizer())?;
    let layout = gallery.layout();
    let batch = gallery.templates_per_chunk() * a.chunks_per_segment.max(1);
    let pb = crate::progress::bar(set.len() as u64, "enroll");
    let t = std::time::Instant::now();
    let mut rng = rand::rng();
    for start in (0..set.len()).step_by(batch) {
        let end = (start + batch).min(set.len());
        let ids: Vec<String> = (start..end).map(|i| set.ids.display(i)).collect();
        let chunks = client.encrypt_templates_as(layout, &set.data[start * set.dim..end * set.dim], &mut rng)?;
        gallery.append(client.keys().key_id(), &ids, &chunks)?;
        pb.inc((end - start) as u64);
    }
    pb.finish_and_clear();
    eprintln!(
        "enrolled {} templates in {:.1} s; gallery {} holds {} ({:.1} B/template at rest)",
        set.len(),
        t.elapsed().as_secs_f64(),
        a.gallery.display(),
        gallery.len(),
        gallery.bytes_at_rest() as f64 / (gallery.chunk_count() * gallery.templates_per_chunk()).max(1) as f64
    );
    Ok(())
}
