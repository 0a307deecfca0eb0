//! `hers enroll`: encrypt an embedding set (client side, all cores) and append it to a gallery,
//! holding the gallery's writer lock throughout; `--resume` finishes an interrupted enrolment.

use std::path::PathBuf;

use anyhow::Context;
use encsearch::{Client, Gallery, Layout, MANIFEST_FILE, Metric, Quantizer, fingerprint_file};

use super::open::{load_keys, lock_wait, open_gallery_for, say_waiting};

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
    /// Finish an interrupted enrolment of this same file: enrol only the rows the gallery does
    /// not hold yet.
    #[arg(long)]
    resume: bool,
    /// Fail at once when another process is writing to the gallery (default: wait for it).
    #[arg(long)]
    no_wait: bool,
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
    // The fingerprint each segment records: taken before the read and checked after it, so it
    // is the fingerprint of the rows enrolled (a rerun with --resume relies on it).
    let source = fingerprint_file(&a.input)?;
    let set = embeddings::read_set(&a.input).with_context(|| format!("reading {}", a.input.display()))?;
    if fingerprint_file(&a.input)? != source {
        anyhow::bail!("{} changed while it was being read; enrol it again once it is complete", a.input.display());
    }
    let wait = lock_wait(a.no_wait);
    let mut gallery = if a.gallery.join(MANIFEST_FILE).exists() {
        let mut g = open_gallery_for(&a.gallery, &keys)?;
        g.lock_for_writing(wait, |pid| say_waiting(&a.gallery, pid))?;
        g
    } else {
        let p = &keys.public().params;
        let q = match (Metric::from_name(&a.metric)?, a.scale) {
            (Metric::Cosine, Some(s)) => Quantizer::with_scale(p, set.dim, s)?,
            (Metric::Cosine, None) => Quantizer::new(p, set.dim)?,
            (_, Some(s)) => Quantizer::euclidean_with_scale(p, set.dim, s)?,
            (_, None) => Quantizer::euclidean(p, set.dim, a.max_norm)?,
        };
        let layout = a.layout.map_or(Layout::DimensionWise, Layout::from);
        let (g, _) =
            Gallery::open_or_create(&a.gallery, keys.public(), q, layout, wait, |pid| say_waiting(&a.gallery, pid))?;
        g.manifest().public.key_id.ensure_eq(keys.key_id()).context("the gallery was enrolled with another key")?;
        g
    };
    if let Some(l) = a.layout.map(Layout::from).filter(|l| *l != gallery.layout()) {
        anyhow::bail!(
            "gallery {} has the {:?} layout, --layout asks for {l:?}; enrol into a new gallery directory instead",
            a.gallery.display(),
            gallery.layout()
        );
    }
    if gallery.manifest().dim != set.dim {
        anyhow::bail!("gallery is {}-D, {} is {}-D", gallery.manifest().dim, a.input.display(), set.dim);
    }
    let ids: Vec<String> = (0..set.len()).map(|i| set.ids.display(i)).collect();
    let plan = gallery.plan_enrolment(&a.input.display().to_string(), &source, &ids, a.resume)?;
    if plan.held > 0 {
        eprintln!(
            "resuming: the gallery already holds {} of the {} rows of {}; enrolling the other {}",
            plan.held,
            set.len(),
            a.input.display(),
            plan.rows.len()
        );
    }
    let client = Client::with_quantizer(keys, gallery.quantizer())?;
    let layout = gallery.layout();
    let batch = gallery.templates_per_chunk() * a.chunks_per_segment.max(1);
    let pb = crate::progress::bar(plan.rows.len() as u64, "enroll");
    let t = std::time::Instant::now();
    let mut rng = rand::rng();
    let d = set.dim;
    for rows in plan.rows.chunks(batch) {
        let batch_ids: Vec<String> = rows.iter().map(|&r| ids[r].clone()).collect();
        let mut data = Vec::with_capacity(rows.len() * d);
        rows.iter().for_each(|&r| data.extend_from_slice(&set.data[r * d..(r + 1) * d]));
        let chunks = client.encrypt_templates_as(layout, &data, &mut rng)?;
        gallery.append_from(client.keys().key_id(), &batch_ids, &chunks, Some(&source))?;
        pb.inc(rows.len() as u64);
    }
    pb.finish_and_clear();
    eprintln!(
        "enrolled {} templates in {:.1} s; gallery {} holds {} ({:.1} B/template at rest)",
        plan.rows.len(),
        t.elapsed().as_secs_f64(),
        a.gallery.display(),
        gallery.len(),
        gallery.bytes_at_rest() as f64 / (gallery.chunk_count() * gallery.templates_per_chunk()).max(1) as f64
    );
    Ok(())
}
