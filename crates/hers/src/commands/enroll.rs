//! `hers enroll`: encrypt an embedding set (client side, all cores) and append it to a gallery,
//! holding the gallery's writer lock throughout; `--resume` finishes an interrupted enrolment.

use std::path::PathBuf;

use anyhow::Context;
use embeddings::EmbeddingReader;
use encsearch::{
    Client, Enroller, Gallery, Layout, Metric, Quantizer, Rows,
    store::{MANIFEST_FILE, fingerprint_file},
};

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
    /// Read the input block by block and commit each segment as it fills, in bounded memory
    /// (inputs larger than memory: 100M rows). Only into a new or empty gallery, without
    /// `--resume`. Rows are checked as they are read: a bad row stops the enrolment with the
    /// segments before it committed (rerun with `--resume` once the file is fixed is refused,
    /// since it is another file: enrol the fixed file into a new gallery).
    #[arg(long, conflicts_with = "resume")]
    stream: bool,
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
    let reading = || format!("reading {}", a.input.display());
    let input = if a.stream {
        Input::Streamed(Box::new(EmbeddingReader::open(&a.input).with_context(reading)?))
    } else {
        let set = embeddings::read_set(&a.input).with_context(reading)?;
        if fingerprint_file(&a.input)? != source {
            anyhow::bail!("{} changed while it was being read; enrol it again once it is complete", a.input.display());
        }
        Input::Whole(set)
    };
    let dim = match &input {
        Input::Whole(set) => set.dim,
        Input::Streamed(reader) => reader.dim(),
    };
    let wait = lock_wait(a.no_wait);
    let mut gallery = if a.gallery.join(MANIFEST_FILE).exists() {
        let mut g = open_gallery_for(&a.gallery, &keys)?;
        g.lock_for_writing(wait, |pid| say_waiting(&a.gallery, pid))?;
        g
    } else {
        let p = &keys.public().params;
        let q = Quantizer::for_metric(p, dim, Metric::from_name(&a.metric)?, a.scale, a.max_norm)?;
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
    if gallery.manifest().dim != dim {
        anyhow::bail!("gallery is {}-D, {} is {}-D", gallery.manifest().dim, a.input.display(), dim);
    }
    let set = match input {
        Input::Whole(set) => set,
        Input::Streamed(reader) => return enrol_streamed(&a, *reader, gallery, keys, &source),
    };
    let ids: Vec<String> = (0..set.len()).map(|i| set.ids.display(i)).collect();
    let input = a.input.display().to_string();
    let rows = Rows::new(&input, &ids, &set.data, set.dim)?;
    let client = Client::with_quantizer(keys, gallery.quantizer())?;
    let mut enroller = Enroller::new(&mut gallery, &client, a.chunks_per_segment, &source)?;
    let plan = enroller.plan(&rows, a.resume)?;
    if plan.held > 0 {
        eprintln!(
            "resuming: the gallery already holds {} of the {} rows of {}; enrolling the other {}",
            plan.held,
            set.len(),
            a.input.display(),
            plan.rows.len()
        );
    }
    let pb = crate::progress::bar(plan.rows.len() as u64, "enroll");
    let t = std::time::Instant::now();
    let done = enroller.enrol_planned(&rows, &plan, &mut rand::rng(), |n| {
        pb.inc(n as u64);
        Ok(())
    })?;
    pb.finish_and_clear();
    eprintln!(
        "enrolled {} templates in {:.1} s; gallery {} holds {} ({:.1} B/template at rest)",
        done.enrolled,
        t.elapsed().as_secs_f64(),
        a.gallery.display(),
        gallery.len(),
        gallery.bytes_at_rest() as f64 / (gallery.chunk_count() * gallery.templates_per_chunk()).max(1) as f64
    );
    Ok(())
}

/// The input set: read whole, or (`--stream`) opened to be read block by block.
enum Input {
    Whole(embeddings::EmbeddingSet),
    Streamed(Box<EmbeddingReader>),
}

/// `--stream`: reads `reader` block by block, encrypting and committing a segment each time one
/// fills; memory stays bounded by a segment's rows and the gallery's id index.
fn enrol_streamed(
    a: &Args,
    reader: EmbeddingReader,
    mut gallery: Gallery,
    keys: encsearch::ClientKeys,
    source: &str,
) -> anyhow::Result<()> {
    if gallery.chunk_count() > 0 {
        anyhow::bail!(
            "--stream enrols into a new or empty gallery; {} already holds {} templates (enrol without --stream)",
            a.gallery.display(),
            gallery.len()
        );
    }
    let client = Client::with_quantizer(keys, gallery.quantizer())?;
    let mut enroller = Enroller::new(&mut gallery, &client, a.chunks_per_segment, source)?;
    let batch = enroller.rows_per_segment();
    let d = reader.dim();
    let pb = crate::progress::bar(reader.num_rows() as u64, "enroll");
    let t = std::time::Instant::now();
    let mut rng = rand::rng();
    let (mut ids, mut data): (Vec<String>, Vec<f32>) = (Vec::with_capacity(batch), Vec::with_capacity(batch * d));
    let mut enrolled = 0;
    let mut commit = |ids: &mut Vec<String>, data: &mut Vec<f32>, enroller: &mut Enroller| -> anyhow::Result<()> {
        enroller.commit(ids, data, &mut rng)?;
        pb.inc(ids.len() as u64);
        enrolled += ids.len();
        ids.clear();
        data.clear();
        Ok(())
    };
    for block in reader {
        let block =
            block.with_context(|| format!("reading {} (rows before this block are enrolled)", a.input.display()))?;
        for r in 0..block.len() {
            ids.push(block.ids.display(r));
            data.extend_from_slice(&block.data[r * d..(r + 1) * d]);
            if ids.len() == batch {
                commit(&mut ids, &mut data, &mut enroller)?;
            }
        }
    }
    if !ids.is_empty() {
        commit(&mut ids, &mut data, &mut enroller)?;
    }
    pb.finish_and_clear();
    if fingerprint_file(&a.input)? != source {
        anyhow::bail!(
            "{} changed while it was being enrolled: the gallery holds {enrolled} of its rows, perhaps of two versions; \
             enrol the finished file into a new gallery",
            a.input.display()
        );
    }
    eprintln!(
        "enrolled {enrolled} templates in {:.1} s (streamed); gallery {} holds {} ({:.1} B/template at rest)",
        t.elapsed().as_secs_f64(),
        a.gallery.display(),
        gallery.len(),
        gallery.bytes_at_rest() as f64 / (gallery.chunk_count() * gallery.templates_per_chunk()).max(1) as f64
    );
    Ok(())
}
