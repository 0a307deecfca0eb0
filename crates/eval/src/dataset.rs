//! The datasets of a sweep, loaded: training set, probe/gallery set, distractor source.

use embeddings::{EmbeddingSet, Ids, Preset, SynthSpec, read_set, synth_identities};

use crate::config::DatasetConfig;
use crate::{Error, Result};

/// A dataset ready for the sweep.
pub struct Dataset {
    /// Training set for fitted methods (identities disjoint from `test`).
    pub train: Option<EmbeddingSet>,
    /// Probe + gallery set.
    pub test: EmbeddingSet,
    /// Where distractor identities come from (synthetic datasets only).
    distractors: Option<(SynthSpec, usize)>,
}

/// Distractor ids start here, far above any row number of the set they join.
const DISTRACTOR_ID_BASE: i64 = 1 << 40;

impl Dataset {
    /// Loads the files or generates the synthetic identities.
    pub fn load(config: &DatasetConfig) -> Result<Self> {
        if let Some(s) = &config.synthetic {
            let preset: Preset = s.preset.parse()?;
            let spec = SynthSpec::preset(preset, s.train_identities + s.test_identities, s.per_identity, s.seed);
            let train =
                if s.train_identities > 0 { Some(synth_identities(&spec, 0..s.train_identities)?) } else { None };
            let test = synth_identities(&spec, s.train_identities..s.train_identities + s.test_identities)?;
            let first_distractor = s.train_identities + s.test_identities;
            return Ok(Dataset { train, test, distractors: Some((spec, first_distractor)) });
        }
        let test_path =
            config.test.as_ref().ok_or_else(|| Error::Config(format!("dataset `{}` has no test file", config.name)))?;
        let test = read_set(test_path)?;
        let train = config.train.as_ref().map(read_set).transpose()?;
        if let Some(t) = &train
            && t.dim != test.dim
        {
            return Err(Error::Config(format!(
                "dataset `{}`: train is {}-D but test is {}-D",
                config.name, t.dim, test.dim
            )));
        }
        Ok(Dataset { train, test, distractors: None })
    }

    /// The probe/gallery set grown to `gallery_size` gallery templates with distractor
    /// identities of one sample each (they can only ever be false matches). `None` keeps it.
    pub fn with_gallery_size(&self, gallery_size: Option<usize>) -> Result<EmbeddingSet> {
        let Some(size) = gallery_size else { return Ok(self.test.clone()) };
        let probes = {
            let mut l = self.test.labels.clone();
            l.sort_unstable();
            l.dedup();
            l.len()
        };
        let own = self.test.len().saturating_sub(probes);
        if size <= own {
            return Ok(self.test.clone());
        }
        let Some((spec, first)) = &self.distractors else {
            return Err(Error::Config("gallery sizes need a synthetic dataset to draw distractors from".into()));
        };
        let extra = size - own;
        let spec = SynthSpec { per_identity: 1, ..spec.clone() };
        let mut d = synth_identities(&spec, *first..*first + extra)?;
        d.ids = Ids::Int((0..extra as i64).map(|i| DISTRACTOR_ID_BASE + i).collect());
        let mut set = self.test.clone();
        set.append(&d)?;
        Ok(set)
    }
}
