//! The explorer's whole state as one serializable value, and its compact, versioned form in the
//! URL fragment: `#s=` + base64url(JSON). Opening a link rebuilds the same experiment and steps it
//! to the same step, so the picture is the same.

use base64::Engine;
use optiscope_core::align::experiment::{align_preset, AlignConfig, ALIGN_PRESETS};
use optiscope_core::experiment::presets::preset;
use optiscope_core::experiment::ExperimentConfig;
use optiscope_core::optim::{who_has_it, AdamWConfig, FieldError, OptimizerConfig, METHODS};
use optiscope_core::quant::dropbits::DropBitsConfig;
use optiscope_core::quant::{LearnBitsConfig, QuantConfig, QuantMethod};
use optiscope_core::sparsify::convert::Scoring;
use optiscope_core::sparsify::experiment::{EdgeMethod, PruneConfig};
use optiscope_core::sparsify::moe_experiment::MoeConfig;
use optiscope_core::train::lm::LmConfig;
use optiscope_core::train::{
    DataChoice, TrainConfig, MAX_BATCH_SIZE, MAX_HIDDEN_LAYERS, MAX_HIDDEN_WIDTH,
};
use serde::{Deserialize, Serialize};

/// The current format of the shared state: 2, `{version, lab, speed, labs}`. Links of version 1
/// (`{version, view, preset, experiment, step, speed, quant}`) still open.
pub const STATE_VERSION: u32 = 2;

/// Which view is shown: the experiment lab's three, and (in version-1 links and `#view=` links)
/// the Quantization lab's one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum View {
    /// The 2-D landscape with optimizer paths.
    #[default]
    Landscape,
    /// Singular values of a factorization against step.
    Spectrum,
    /// Loss curves.
    Loss,
    /// An MLP trained live with a weight quantizer: the weights' histogram on the grid.
    Quantization,
}

impl View {
    /// Every view, in the order of the top bar.
    pub const ALL: [Self; 4] = [
        Self::Landscape,
        Self::Spectrum,
        Self::Loss,
        Self::Quantization,
    ];

    /// The serde name (`landscape`, ..., `quantization`), also the page's `data-view`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Landscape => "landscape",
            Self::Spectrum => "spectrum",
            Self::Loss => "loss",
            Self::Quantization => "quantization",
        }
    }

    /// The label of its tab.
    pub fn label(self) -> &'static str {
        match self {
            Self::Landscape => "Landscape",
            Self::Spectrum => "Spectrum",
            Self::Loss => "Loss",
            Self::Quantization => "Quantization",
        }
    }

    /// Parses a serde name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.name() == name)
    }
}

/// The Quantization view's settings: the training run it shows and where it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuantViewState {
    /// The training run: data, hidden widths, optimizer, quantizer, epochs, batch size, seed.
    pub train: TrainConfig,
    /// Minibatches trained (a link reopens the run at this step: training is deterministic given
    /// the config and the step count).
    pub step: u64,
    /// The weight layer shown (0-based).
    pub layer: usize,
}

impl Default for QuantViewState {
    fn default() -> Self {
        Self {
            train: default_quant_train(),
            step: 0,
            layer: 0,
        }
    }
}

/// The Quantization view's default run, small enough to train live in a browser: the digits,
/// one hidden layer of 32, minibatches of 64, CPQ at 2 bits, AdamW with lr 1e-2, 200 epochs.
pub fn default_quant_train() -> TrainConfig {
    TrainConfig {
        data: DataChoice::Digits,
        hidden: vec![32],
        optimizer: OptimizerConfig::Adamw(AdamWConfig {
            lr: 1e-2,
            ..Default::default()
        }),
        quant: QuantConfig::new(QuantMethod::Cpq, 2),
        epochs: 200,
        batch_size: 64,
        seed: 0,
        ..TrainConfig::default()
    }
}

/// The labs of the explorer, in the order of its tabs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LabKind {
    /// Optimizers side by side on a problem: landscapes, spectra, losses.
    #[default]
    Experiment,
    /// An MLP trained live with a weight quantizer.
    Quantization,
    /// Preference learning on a contextual bandit: samplers, objectives, GRPO, ThinkSafe.
    Align,
    /// Compression: TEDDY's edge sparsification of a GCN, MoE → dense conversion.
    Compress,
    /// A character-level GPT trained live by several optimizers side by side.
    Transformer,
}

impl LabKind {
    /// Every lab, in the order of the tabs.
    pub const ALL: [Self; 5] = [
        Self::Experiment,
        Self::Quantization,
        Self::Align,
        Self::Compress,
        Self::Transformer,
    ];

    /// The name in links.
    pub fn name(self) -> &'static str {
        match self {
            Self::Experiment => "experiment",
            Self::Quantization => "quantization",
            Self::Align => "align",
            Self::Compress => "compress",
            Self::Transformer => "transformer",
        }
    }

    /// The label of its tab.
    pub fn label(self) -> &'static str {
        match self {
            Self::Experiment => "Experiment",
            Self::Quantization => "Quantization",
            Self::Align => "Alignment",
            Self::Compress => "Compression",
            Self::Transformer => "Transformer",
        }
    }
}

/// The Alignment lab's part of a link: the experiment (an `optiscope align` config), the preset
/// it started from, how many steps were taken and what is shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlignLabState {
    /// The preset the experiment started from (for the menu and the CLI command).
    pub preset: String,
    /// The experiment.
    pub config: AlignConfig,
    /// Steps taken: rounds of the sampler runs (one run's round per step), or whole runs for the
    /// other kinds. A link replays them (every draw is addressed by the seed).
    pub step: u64,
    /// The context whose arms the bars show.
    #[serde(default)]
    pub context: usize,
    /// The run whose policy the bars show.
    #[serde(default)]
    pub run: usize,
    /// The value plotted for the kinds without policies (empty: the first one).
    #[serde(default)]
    pub value: String,
}

impl AlignLabState {
    /// The state of the preset `name` (coverage if unknown) at step 0.
    pub fn from_preset(name: &str) -> Self {
        let (name, config) = match align_preset(name) {
            Some(c) => (name, c),
            None => (
                "coverage",
                align_preset("coverage").unwrap_or_else(|| unreachable!("a preset")),
            ),
        };
        Self {
            preset: name.into(),
            config,
            step: 0,
            context: 0,
            run: 0,
            value: String::new(),
        }
    }
}

impl Default for AlignLabState {
    fn default() -> Self {
        Self::from_preset("coverage")
    }
}

/// The half of the Compression lab shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CompressPart {
    /// TEDDY on the degree-corrected SBM.
    #[default]
    Teddy,
    /// MoE → dense on the tiny mixture.
    Moe,
}

impl CompressPart {
    /// Its name in links.
    pub fn name(self) -> &'static str {
        match self {
            Self::Teddy => "teddy",
            Self::Moe => "moe",
        }
    }
}

/// The Compression lab's part of a link: the half shown, each half's experiment (the configs of
/// `optiscope prune --preset sbm` and `optiscope moe`), what the graph shows, and the steps taken
/// by the half shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CompressLabState {
    /// The half shown.
    pub part: CompressPart,
    /// TEDDY's experiment (the lab trains its own grid of fractions and the one-shot methods).
    pub prune: PruneConfig,
    /// The fraction of edges removed the graph shows.
    pub edges: f64,
    /// The method whose pruning the graph shows (teddy, random or reverse).
    pub method: EdgeMethod,
    /// The MoE experiment.
    pub moe: MoeConfig,
    /// Steps taken by the half shown: TEDDY, 10-epoch chunks of the accuracy curves' trainings;
    /// MoE, 10-step chunks of the scorers' distillations. A link replays them.
    pub step: u64,
}

impl Default for CompressLabState {
    fn default() -> Self {
        Self {
            part: CompressPart::Teddy,
            prune: PruneConfig::default(),
            edges: 0.5,
            method: EdgeMethod::Teddy,
            moe: MoeConfig::default(),
            step: 0,
        }
    }
}

/// The most nodes the Compression lab draws.
pub const MAX_LAB_NODES: usize = 2000;

/// The most edges removed the lab's slider reaches.
pub const MAX_EDGES_REMOVED: f64 = 0.95;

impl CompressLabState {
    /// Whether the lab can run it (sizes are bounded before anything is allocated for them).
    pub fn validate(&self) -> Result<(), String> {
        self.prune.validate().map_err(|e| e.to_string())?;
        self.moe.validate().map_err(|e| e.to_string())?;
        // The spring layout is quadratic in the nodes and runs while the page waits.
        if self.prune.sbm.n > MAX_LAB_NODES {
            return Err(format!(
                "sbm.n = {} is more than the explorer draws ({MAX_LAB_NODES}; `optiscope prune --config` runs it)",
                self.prune.sbm.n
            ));
        }
        if !(0.0..=MAX_EDGES_REMOVED).contains(&self.edges) {
            return Err(format!(
                "edges={} must be a fraction in [0, {MAX_EDGES_REMOVED}]",
                self.edges
            ));
        }
        if !EdgeMethod::ONE_SHOT.contains(&self.method) {
            return Err(format!(
                "method {} is not drawn by the explorer (one of teddy, random, reverse; `optiscope prune --method ugs` runs UGS)",
                self.method.name()
            ));
        }
        Ok(())
    }
}

/// The optimizers the Transformer lab offers (those whose steps need no read-back, so they run
/// on WebGPU too).
pub const TRANSFORMER_OPTIMIZERS: &[&str] = &[
    "adamw",
    "adam",
    "sgd",
    "muon",
    "amuse",
    "adamw_schedulefree",
    "sgd_schedulefree",
];

/// The optimizer `name` as the Transformer lab starts it: its defaults, with the Schedule-Free
/// family's own warm-up (`warmup_steps`: AMUSE's, which has no default and is where its growing
/// β starts, and SF-AdamW's and SF-SGD's) at 100 steps, nanoGPT's warm-up. None for a name
/// outside [`TRANSFORMER_OPTIMIZERS`].
pub fn transformer_optimizer(name: &str) -> Option<OptimizerConfig> {
    if !TRANSFORMER_OPTIMIZERS.contains(&name) {
        return None;
    }
    let mut c = OptimizerConfig::default_for(name)?;
    if matches!(name, "amuse" | "adamw_schedulefree" | "sgd_schedulefree") {
        c.set_field("warmup_steps", serde_json::json!(100)).ok()?;
    }
    Some(c)
}

/// The most runs the Transformer lab trains side by side.
pub const MAX_TRANSFORMER_RUNS: usize = 3;

/// The Transformer lab's part of a link: the run every optimizer shares (sizes, steps,
/// evaluation, schedule, seed — one initialisation and the same batches for all), the optimizers
/// side by side, and the steps taken.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TransformerLabState {
    /// The shared run (`optiscope train --model gpt`'s config; its `optimizer` is replaced by
    /// each of `optimizers`).
    pub lm: LmConfig,
    /// One run per optimizer, from the same initialisation and batches.
    pub optimizers: Vec<OptimizerConfig>,
    /// Steps taken (by every run); a link replays them.
    pub step: u64,
}

impl Default for TransformerLabState {
    /// A GPT small enough to train in a page (2 layers, 4 heads, C = 64, context 32, batch 8) on
    /// tiny Shakespeare, with AdamW, Muon and AMUSE at their defaults and a constant rate.
    fn default() -> Self {
        Self {
            lm: LmConfig {
                n_layer: 2,
                n_head: 4,
                n_embd: 64,
                block_size: 32,
                batch_size: 8,
                steps: 2000,
                eval_interval: 100,
                eval_iters: 4,
                log_interval: 10,
                spectra_every: 0,
                ..LmConfig::default()
            },
            optimizers: ["adamw", "muon", "amuse"]
                .iter()
                .filter_map(|n| transformer_optimizer(n))
                .collect(),
            step: 0,
        }
    }
}

impl TransformerLabState {
    /// Whether the lab can run it (sizes are bounded before anything is allocated for them).
    pub fn validate(&self) -> Result<(), String> {
        let lm = &self.lm;
        lm.validate().map_err(|e| e.to_string())?;
        if lm.data != "tinyshakespeare" {
            return Err(format!(
                "data {:?}: the explorer trains on the shipped tinyshakespeare (`optiscope train --model gpt --data FILE` reads a file)",
                lm.data
            ));
        }
        if lm.init.is_some() {
            return Err("init: the explorer starts from nanoGPT's initialisation".into());
        }
        for (what, v, max) in [
            ("n_layer", lm.n_layer, 4),
            ("n_embd", lm.n_embd, 128),
            ("block_size", lm.block_size, 64),
            ("batch_size", lm.batch_size, 32),
        ] {
            if v > max {
                return Err(format!(
                    "{what} = {v} is more than the explorer trains ({max}; `optiscope train --model gpt` runs it)"
                ));
            }
        }
        for (what, v, max) in [
            ("steps", lm.steps, 100_000),
            ("eval_iters", lm.eval_iters, 50),
            ("log_interval", lm.log_interval, 100),
            ("step", self.step, lm.steps),
        ] {
            if v > max {
                return Err(format!("{what} = {v} is more than {max}"));
            }
        }
        if self.optimizers.is_empty() || self.optimizers.len() > MAX_TRANSFORMER_RUNS {
            return Err(format!(
                "{} optimizers: the lab trains 1 to {MAX_TRANSFORMER_RUNS} side by side",
                self.optimizers.len()
            ));
        }
        for o in &self.optimizers {
            if !TRANSFORMER_OPTIMIZERS.contains(&o.name()) {
                return Err(format!(
                    "optimizer {}: the lab runs {}",
                    o.name(),
                    TRANSFORMER_OPTIMIZERS.join(", ")
                ));
            }
            o.validate().map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// The config of run `i`: the shared one with its optimizer.
    pub fn run_config(&self, i: usize) -> LmConfig {
        LmConfig {
            optimizer: self.optimizers[i].clone(),
            ..self.lm.clone()
        }
    }
}

/// The experiment lab's part of a link: the view, the preset it started from, the experiment
/// (problem, runs with their configs, seed, steps) and the step shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentLabState {
    /// The view shown (landscape, spectrum or loss).
    pub view: View,
    /// The preset the experiment started from (for the menu; the experiment itself is below).
    pub preset: String,
    /// The experiment.
    pub experiment: ExperimentConfig,
    /// The step shown.
    pub step: u64,
}

impl ExperimentLabState {
    /// The state of `preset_name` (river-valley if unknown) at step 0, in its natural view.
    pub fn from_preset(preset_name: &str) -> Self {
        let (name, experiment) = match preset(preset_name) {
            Some(e) => (preset_name, e),
            None => ("river-valley", default_experiment()),
        };
        Self {
            view: natural_view(&experiment),
            preset: name.into(),
            experiment,
            step: 0,
        }
    }
}

/// The view an experiment opens in: the spectrum for factorizations, else the landscape.
fn natural_view(experiment: &ExperimentConfig) -> View {
    match experiment.problem {
        optiscope_core::problems::ProblemConfig::LoraFactorization(_) => View::Spectrum,
        _ => View::Landscape,
    }
}

/// Every lab's part of a link (the Quantization lab's only once it has been opened).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabStates {
    /// The experiment lab.
    pub experiment: ExperimentLabState,
    /// The Quantization lab.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantization: Option<QuantViewState>,
    /// The Alignment lab.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub align: Option<AlignLabState>,
    /// The Compression lab.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compress: Option<CompressLabState>,
    /// The Transformer lab.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transformer: Option<TransformerLabState>,
}

/// Everything a link reproduces: the lab shown, the speed, and each lab's own state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExplorerState {
    /// Format version ([`STATE_VERSION`]).
    pub version: u32,
    /// The lab shown.
    pub lab: LabKind,
    /// Steps per frame while playing.
    pub speed: u32,
    /// Each lab's state.
    pub labs: LabStates,
    /// Whether the "what to look for" panel is open (the default; written only when closed).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub guide: bool,
    /// How the link shows the page (`&play=1`, `&hide=…`): not part of the encoded state.
    #[serde(skip)]
    pub page: PageOptions,
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

/// How a link shows the page rather than the experiment, in the manner of TF Playground's
/// `_hide` properties: `&play=1` starts playing, `&hide=top,controls,status` hides those panels
/// (for slides and course pages that embed the explorer), `&gpu=0` keeps to the CPU path.
/// Accepted after any fragment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageOptions {
    /// Whether the explorer may compute on the GPU.
    pub gpu: GpuUse,
    /// Start playing.
    pub play: bool,
    /// The top bar (labs, play, step, reset, speed, links).
    pub hide_top: bool,
    /// The left panel of the lab's controls.
    pub hide_controls: bool,
    /// The status bar at the bottom.
    pub hide_status: bool,
}

/// Whether the explorer may use the GPU (`&gpu=` in a link).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum GpuUse {
    /// Where the browser or machine has one that runs the kernels.
    #[default]
    Auto,
    /// `&gpu=0`: the CPU path (and WebGL2 for drawing, on the web).
    Off,
    /// `&gpu=lost`: as `Off`, written by the page itself when it reloads after its WebGPU device
    /// was lost, so that the new page says why it is on the CPU. Not kept by "copy link".
    Lost,
}

impl PageOptions {
    /// The panels `&hide=` takes.
    pub const HIDEABLE: [&'static str; 3] = ["top", "controls", "status"];

    /// Takes `play=` and `hide=` off a fragment (without `#`): the rest, and the options.
    pub fn split(fragment: &str) -> Result<(String, Self), String> {
        let mut opts = Self::default();
        let mut rest = vec![];
        for part in fragment.split('&') {
            match part.split_once('=') {
                Some(("play", v)) => {
                    opts.play = match v {
                        "1" => true,
                        "0" => false,
                        _ => return Err(format!("play={:?} in the link: 1 or 0", truncate(v))),
                    }
                }
                Some(("gpu", v)) => {
                    opts.gpu = match v {
                        "1" => GpuUse::Auto,
                        "0" => GpuUse::Off,
                        "lost" => GpuUse::Lost,
                        _ => {
                            return Err(format!("gpu={:?} in the link: 1, 0 or lost", truncate(v)))
                        }
                    }
                }
                Some(("hide", v)) => {
                    for name in v.split(',').filter(|n| !n.is_empty()) {
                        match name {
                            "top" => opts.hide_top = true,
                            "controls" => opts.hide_controls = true,
                            "status" => opts.hide_status = true,
                            _ => {
                                return Err(format!(
                                    "hide={:?} in the link: one or more of {}",
                                    truncate(name),
                                    Self::HIDEABLE.join(", ")
                                ))
                            }
                        }
                    }
                }
                _ => rest.push(part),
            }
        }
        Ok((rest.join("&"), opts))
    }

    /// The fragment suffix that gives these options (empty for the defaults; a lost GPU is this
    /// page's own fact and is not passed on).
    pub fn suffix(&self) -> String {
        let mut out = String::new();
        if self.play {
            out.push_str("&play=1");
        }
        if self.gpu == GpuUse::Off {
            out.push_str("&gpu=0");
        }
        let hidden: Vec<&str> = [self.hide_top, self.hide_controls, self.hide_status]
            .iter()
            .zip(Self::HIDEABLE)
            .filter(|(h, _)| **h)
            .map(|(_, n)| n)
            .collect();
        if !hidden.is_empty() {
            out.push_str("&hide=");
            out.push_str(&hidden.join(","));
        }
        out
    }
}

/// A version-1 link's state (before labs): read, then converted.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateV1 {
    version: u32,
    view: View,
    preset: String,
    experiment: ExperimentConfig,
    step: u64,
    speed: u32,
    #[serde(default)]
    quant: Option<QuantViewState>,
}

impl From<StateV1> for ExplorerState {
    fn from(v1: StateV1) -> Self {
        let quant = v1.view == View::Quantization;
        let view = if quant {
            natural_view(&v1.experiment)
        } else {
            v1.view
        };
        Self {
            version: STATE_VERSION,
            page: PageOptions::default(),
            guide: true,
            lab: if quant {
                LabKind::Quantization
            } else {
                LabKind::Experiment
            },
            speed: v1.speed,
            labs: LabStates {
                experiment: ExperimentLabState {
                    view,
                    preset: v1.preset,
                    experiment: v1.experiment,
                    step: v1.step,
                },
                quantization: v1.quant,
                align: None,
                compress: None,
                transformer: None,
            },
        }
    }
}

impl ExplorerState {
    /// The experiment lab on `preset_name` (river-valley if unknown) at step 0.
    pub fn from_preset(preset_name: &str) -> Self {
        Self {
            version: STATE_VERSION,
            page: PageOptions::default(),
            guide: true,
            lab: LabKind::Experiment,
            speed: 4,
            labs: LabStates {
                experiment: ExperimentLabState::from_preset(preset_name),
                quantization: None,
                align: None,
                compress: None,
                transformer: None,
            },
        }
    }

    /// The Quantization lab's settings, created with the defaults when absent.
    pub fn quant_mut(&mut self) -> &mut QuantViewState {
        self.labs
            .quantization
            .get_or_insert_with(QuantViewState::default)
    }

    /// The Alignment lab's settings, created with the defaults when absent.
    pub fn align_mut(&mut self) -> &mut AlignLabState {
        self.labs.align.get_or_insert_with(AlignLabState::default)
    }

    /// The Compression lab's settings, created with the defaults when absent.
    pub fn compress_mut(&mut self) -> &mut CompressLabState {
        self.labs
            .compress
            .get_or_insert_with(CompressLabState::default)
    }

    /// The Transformer lab's settings, created with the defaults when absent.
    pub fn transformer_mut(&mut self) -> &mut TransformerLabState {
        self.labs
            .transformer
            .get_or_insert_with(TransformerLabState::default)
    }

    /// The state of a version-1 link, as this version reads it.
    pub fn from_v1_value(value: serde_json::Value) -> Result<Self, String> {
        let v1: StateV1 = optiscope_core::tagged::from_json_value(value)
            .map_err(|e| format!("the link's state is not usable: {e}"))?;
        Ok(v1.into())
    }

    /// The fragment (without `#`) that encodes this state, with its page options.
    pub fn to_fragment(&self) -> String {
        let json = serde_json::to_string(self).unwrap_or_default();
        format!(
            "s={}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json),
            self.page.suffix()
        )
    }

    /// Parses a fragment (with or without `#`), with any page options ([`PageOptions`]).
    /// `Ok(None)` for an empty fragment; an error message for anything malformed or from another
    /// version.
    pub fn from_fragment(fragment: &str) -> Result<Option<Self>, String> {
        // A message names a bad value; it does not repeat a long one.
        let short = |e: String| optiscope_core::tagged::shorten_quoted(&e);
        let (f, page) = PageOptions::split(fragment.trim_start_matches('#')).map_err(short)?;
        Ok(match Self::from_state_fragment(&f).map_err(short)? {
            Some(s) => Some(Self { page, ..s }),
            // `#play=1` alone: the default experiment, shown so.
            None if page != PageOptions::default() => Some(Self {
                page,
                ..Self::from_preset("river-valley")
            }),
            None => None,
        })
    }

    /// [`Self::from_fragment`] without the page options.
    fn from_state_fragment(f: &str) -> Result<Option<Self>, String> {
        if f.is_empty() {
            return Ok(None);
        }
        if let Some(rest) = f.strip_prefix("preset=") {
            return Self::from_preset_fragment(rest).map(Some);
        }
        if let Some(rest) = f.strip_prefix("view=") {
            return Self::from_view_fragment(rest).map(Some);
        }
        if let Some(rest) = f.strip_prefix("align=") {
            return Self::from_align_fragment(rest).map(Some);
        }
        if let Some(rest) = f.strip_prefix("compress=") {
            return Self::from_compress_fragment(rest).map(Some);
        }
        if let Some(rest) = f.strip_prefix("transformer=") {
            return Self::from_transformer_fragment(rest).map(Some);
        }
        let Some(data) = f.strip_prefix("s=") else {
            return Err(format!("the link's fragment {:?} is not an optiscope state (expected #s=..., #preset=NAME, #view=NAME, #align=NAME, #compress=teddy|moe or #transformer=OPT[,OPT...])", truncate(f)));
        };
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(data.trim_end_matches('='))
            .map_err(|e| format!("the link's state is not valid base64url: {e}"))?;
        let value: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| format!("the link's state is not valid JSON: {e}"))?;
        let version = value
            .get("version")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0);
        let state = match version {
            1 => Self::from_v1_value(value)?,
            v if v == u64::from(STATE_VERSION) => optiscope_core::tagged::from_json_value(value)
                .map_err(|e| format!("the link's state is not usable: {e}"))?,
            _ => return Err(format!("the link was made by another version of optiscope (state version {version}, this one reads 1 and {STATE_VERSION})")),
        };
        if let Some(q) = &state.labs.quantization {
            // Sizes are bounded before anything is allocated for them.
            q.train
                .validate()
                .map_err(|e| format!("the link's training config is not usable: {e}"))?;
        }
        if let Some(a) = &state.labs.align {
            // Sizes are bounded before anything is allocated for them.
            a.config
                .build()
                .map_err(|e| format!("the link's alignment config is not usable: {e}"))?;
        }
        if let Some(c) = &state.labs.compress {
            c.validate()
                .map_err(|e| format!("the link's compression settings are not usable: {e}"))?;
        }
        if let Some(t) = &state.labs.transformer {
            t.validate()
                .map_err(|e| format!("the link's transformer settings are not usable: {e}"))?;
        }
        Ok(Some(state))
    }

    /// `OPT[,OPT...][&seed=N][&step=N][&speed=N][&steps=N][&eval=N]`: the Transformer lab with up to three
    /// optimizers (each as [`transformer_optimizer`] starts it) side by side.
    fn from_transformer_fragment(rest: &str) -> Result<Self, String> {
        let mut parts = rest.split('&');
        let mut state = Self::from_preset("river-valley");
        state.lab = LabKind::Transformer;
        let names = parts.next().unwrap_or_default();
        let mut optimizers = vec![];
        for name in names.split(',').filter(|n| !n.is_empty()) {
            if !TRANSFORMER_OPTIMIZERS.contains(&name) {
                return Err(format!(
                    "optimizer {:?} in the link is not one the Transformer lab runs (one of {})",
                    truncate(name),
                    TRANSFORMER_OPTIMIZERS.join(", ")
                ));
            }
            optimizers.extend(transformer_optimizer(name));
        }
        const ALLOWED: &str = "seed=N, step=N, speed=N, steps=N, eval=N";
        let t = state.transformer_mut();
        if !optimizers.is_empty() {
            t.optimizers = optimizers;
        }
        let mut speed = None;
        for p in parts {
            let Some((key, v)) = p.split_once('=') else {
                return Err(format!(
                    "link parameter {:?} has no value (allowed: {ALLOWED})",
                    truncate(p)
                ));
            };
            let n = v
                .parse::<u64>()
                .map_err(|_| format!("{key}={v:?} in the link is not a whole number"))?;
            match key {
                "seed" => t.lm.seed = n,
                "step" => t.step = n,
                "steps" => t.lm.steps = n,
                "eval" => t.lm.eval_interval = n,
                "speed" => speed = Some(n.clamp(1, 10_000) as u32),
                other => {
                    return Err(format!(
                        "unknown link parameter {:?} (allowed: {ALLOWED})",
                        truncate(other)
                    ))
                }
            }
        }
        t.step = t.step.min(t.lm.steps);
        t.validate()
            .map_err(|e| format!("the link's transformer settings are not usable: {e}"))?;
        if let Some(speed) = speed {
            state.speed = speed;
        }
        Ok(state)
    }

    /// `teddy|moe[&seed=N][&step=N][&speed=N]` and, for TEDDY, `[&edges=F][&method=M]`, for MoE
    /// `[&scoring=NAME][&k=N]`: a short, hand-writable link to the Compression lab.
    fn from_compress_fragment(rest: &str) -> Result<Self, String> {
        let mut parts = rest.split('&');
        let part = match parts.next().unwrap_or_default() {
            "teddy" => CompressPart::Teddy,
            "moe" => CompressPart::Moe,
            other => {
                return Err(format!(
                    "unknown compression lab {other:?} in the link (teddy or moe)"
                ))
            }
        };
        let mut state = Self::from_preset("river-valley");
        state.lab = LabKind::Compress;
        state.compress_mut().part = part;
        const ALLOWED: &str =
            "seed=N, step=N, speed=N, edges=F, method=teddy|random|reverse, scoring=NAME, k=N";
        for p in parts {
            let Some((key, v)) = p.split_once('=') else {
                return Err(format!(
                    "link parameter {:?} has no value (allowed: {ALLOWED})",
                    truncate(p)
                ));
            };
            let num = |what: &str| {
                v.parse::<u64>()
                    .map_err(|_| format!("{what}={v:?} in the link is not a whole number"))
            };
            let c = state.compress_mut();
            match key {
                "seed" => {
                    let seed = num(key)?;
                    c.prune.seed = seed;
                    c.moe.seed = seed;
                }
                "step" => c.step = num(key)?.min(1_000_000),
                "speed" => state.speed = num(key)?.clamp(1, 10_000) as u32,
                "edges" => {
                    c.edges = v
                        .parse::<f64>()
                        .ok()
                        .filter(|x| (0.0..=MAX_EDGES_REMOVED).contains(x))
                        .ok_or_else(|| {
                            format!(
                            "edges={v:?} in the link is not a fraction in [0, {MAX_EDGES_REMOVED}]"
                        )
                        })?
                }
                "method" => {
                    c.method = EdgeMethod::ONE_SHOT
                        .into_iter()
                        .find(|m| m.name() == v)
                        .ok_or_else(|| {
                            format!("method={v:?} in the link (allowed: teddy, random, reverse)")
                        })?
                }
                "scoring" => {
                    c.moe.scoring = Scoring::from_name(v).ok_or_else(|| {
                        let names: Vec<_> = Scoring::ALL.iter().map(|s| s.name()).collect();
                        format!("scoring={v:?} in the link (allowed: {})", names.join(", "))
                    })?
                }
                "k" => {
                    c.moe.k = usize::try_from(num(key)?)
                        .map_err(|_| format!("k={v:?} in the link is too large"))?
                }
                _ => {
                    return Err(format!(
                        "unknown link parameter {:?} (allowed: {ALLOWED})",
                        truncate(p)
                    ))
                }
            }
        }
        state
            .compress_mut()
            .validate()
            .map_err(|e| format!("the link's compression settings are not usable: {e}"))?;
        Ok(state)
    }

    /// `NAME[&seed=N][&step=N][&speed=N]`: a short, hand-writable link to the Alignment lab on
    /// one of `optiscope align`'s presets.
    fn from_align_fragment(rest: &str) -> Result<Self, String> {
        let mut parts = rest.split('&');
        let name = parts.next().unwrap_or_default();
        if align_preset(name).is_none() {
            let names: Vec<_> = ALIGN_PRESETS.iter().map(|p| p.name).collect();
            return Err(format!(
                "unknown alignment preset {name:?} in the link (presets: {})",
                names.join(", ")
            ));
        }
        let mut state = Self::from_preset("river-valley");
        state.lab = LabKind::Align;
        *state.align_mut() = AlignLabState::from_preset(name);
        for part in parts {
            let num = |v: &str, what: &str| {
                v.parse::<u64>()
                    .map_err(|_| format!("{what}={v:?} in the link is not a whole number"))
            };
            let a = state.align_mut();
            match part.split_once('=') {
                Some(("seed", v)) => *a.config.seed_mut() = num(v, "seed")?,
                Some(("step", v)) => a.step = num(v, "step")?.min(1_000_000),
                Some(("speed", v)) => state.speed = num(v, "speed")?.clamp(1, 10_000) as u32,
                _ => {
                    return Err(format!(
                        "unknown link parameter {:?} (allowed: seed=N, step=N, speed=N)",
                        truncate(part)
                    ))
                }
            }
        }
        Ok(state)
    }
}

impl ExplorerState {
    /// `NAME[&speed=N][&steps=N]`: a short, hand-writable link to a preset.
    fn from_preset_fragment(rest: &str) -> Result<Self, String> {
        let mut parts = rest.split('&');
        let name = parts.next().unwrap_or_default();
        if preset(name).is_none() {
            let names: Vec<_> = optiscope_core::experiment::presets::PRESETS
                .iter()
                .map(|p| p.name)
                .collect();
            return Err(format!(
                "unknown preset {name:?} in the link (presets: {})",
                names.join(", ")
            ));
        }
        let mut state = Self::from_preset(name);
        for part in parts {
            match part.split_once('=') {
                Some(("speed", v)) => {
                    state.speed = v
                        .parse::<u32>()
                        .map_err(|_| format!("speed={v:?} in the link is not a number"))?
                        .clamp(1, 10_000)
                }
                Some(("steps", v)) => {
                    state.labs.experiment.experiment.steps = v
                        .parse::<u64>()
                        .map_err(|_| format!("steps={v:?} in the link is not a number"))?
                        .clamp(1, 10_000_000)
                }
                _ => {
                    return Err(format!(
                        "unknown link parameter {part:?} (allowed: speed=N, steps=N)"
                    ))
                }
            }
        }
        Ok(state)
    }
}

/// The parameters `#view=NAME&...` accepts, for the error message.
const VIEW_PARAMS: &str = "speed=N, step=N, data=digits|moons|spirals, hidden=W[,W...], \
     method=none|ste|lsq|rq|srq|cpq|proxquant, bits=N, dropbits=P|off, learn_bits=LAMBDA|off, \
     optimizer=NAME, lr=X, regularizer=l1|l0|l1/2|l2/3, penalty=X (proxgen, prox_sgd), batch=N, \
     epochs=N, seed=N, layer=N";

impl ExplorerState {
    /// `NAME[&speed=N][&step=N][&data=...][&method=...]...`: a short, hand-writable link to a
    /// view of the default experiment; the other parameters set the Quantization view's run
    /// ([`VIEW_PARAMS`]), `step=N` reopening it N minibatches in.
    fn from_view_fragment(rest: &str) -> Result<Self, String> {
        let mut parts = rest.split('&');
        let name = parts.next().unwrap_or_default();
        let view = View::from_name(name).ok_or_else(|| {
            let names: Vec<_> = View::ALL.iter().map(|v| v.name()).collect();
            format!(
                "unknown view {name:?} in the link (views: {})",
                names.join(", ")
            )
        })?;
        let mut state = Self::from_preset("river-valley");
        if view == View::Quantization {
            state.lab = LabKind::Quantization;
            state.quant_mut();
        } else {
            state.labs.experiment.view = view;
        }
        let mut params = parts
            .map(|part| {
                part.split_once('=').ok_or_else(|| {
                    format!("link parameter {part:?} has no value (allowed: {VIEW_PARAMS})")
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        // The method first (it resets the quantizer's other settings), then the optimizer (it
        // resets the optimizer's fields but keeps the run's learning rate).
        params.sort_by_key(|(key, _)| match *key {
            "method" => 0,
            "optimizer" => 1,
            _ => 2,
        });
        for (key, v) in params {
            let part = format!("{key}={v}");
            let num = |what: &str| {
                v.parse::<u64>()
                    .map_err(|_| format!("{what}={v:?} in the link is not a whole number"))
            };
            let float = |what: &str| {
                v.parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite())
                    .ok_or_else(|| format!("{what}={v:?} in the link is not a number"))
            };
            if key == "speed" {
                state.speed = num(key)?.clamp(1, 10_000) as u32;
                continue;
            }
            let q = state.quant_mut();
            let t = &mut q.train;
            match key {
                "step" => q.step = num(key)?.min(10_000_000),
                "layer" => q.layer = num(key)? as usize,
                "seed" => t.seed = num(key)?,
                "epochs" => t.epochs = num(key)?.clamp(1, 100_000),
                "batch" => t.batch_size = num(key)?.clamp(1, MAX_BATCH_SIZE as u64) as usize,
                "bits" => t.quant.bits = num(key)?.clamp(2, 8) as u32,
                "lr" => {
                    let lr = float(key)?;
                    let mut value = serde_json::to_value(&t.optimizer).unwrap_or_default();
                    value["lr"] = lr.into();
                    t.optimizer = serde_json::from_value(value)
                        .map_err(|e| format!("lr={v:?} in the link: {e}"))?;
                }
                "optimizer" => {
                    let lr = t.optimizer.lr();
                    let mut value = OptimizerConfig::default_for(v)
                        .and_then(|o| serde_json::to_value(o).ok())
                        .ok_or_else(|| {
                            let names: Vec<_> = METHODS.iter().map(|m| m.name).collect();
                            format!(
                                "optimizer={v:?} in the link (allowed: {})",
                                names.join(", ")
                            )
                        })?;
                    value["lr"] = lr.into();
                    t.optimizer = serde_json::from_value(value)
                        .map_err(|e| format!("optimizer={v:?} in the link: {e}"))?;
                }
                "regularizer" | "penalty" => {
                    let new: serde_json::Value = if key == "penalty" {
                        float(key)?.into()
                    } else {
                        v.into()
                    };
                    t.optimizer.set_field(key, new).map_err(|e| match e {
                        FieldError::Missing {
                            optimizer, have, ..
                        } => format!(
                            "{key}={v:?} in the link: the optimizer {optimizer} has none ({}: \
                             optimizer={})",
                            who_has_it(&have),
                            have.first().copied().unwrap_or("?")
                        ),
                        FieldError::Invalid(e) => format!("{key}={v:?} in the link: {e}"),
                    })?;
                }
                "data" => {
                    t.data = DataChoice::from_name(v).ok_or_else(|| {
                        let names: Vec<_> = DataChoice::ALL.iter().map(|d| d.name()).collect();
                        format!("data={v:?} in the link (allowed: {})", names.join(", "))
                    })?
                }
                "hidden" => {
                    t.hidden = v
                        .split(',')
                        .map(|w| {
                            w.parse::<usize>()
                                .ok()
                                .filter(|w| (1..=MAX_HIDDEN_WIDTH).contains(w))
                        })
                        .collect::<Option<Vec<_>>>()
                        .filter(|h| h.len() <= MAX_HIDDEN_LAYERS)
                        .ok_or_else(|| {
                            format!(
                                "hidden={v:?} in the link: up to {MAX_HIDDEN_LAYERS} widths in \
                                 1..={MAX_HIDDEN_WIDTH}, comma-separated"
                            )
                        })?
                }
                "method" => {
                    let method = QuantMethod::from_name(v).ok_or_else(|| {
                        let names: Vec<_> = QuantMethod::ALL.iter().map(|m| m.name()).collect();
                        format!("method={v:?} in the link (allowed: {})", names.join(", "))
                    })?;
                    let bits = t.quant.bits;
                    t.quant = QuantConfig::new(method, bits);
                }
                "dropbits" => {
                    let p = if v == "off" { 0.0 } else { float(key)? };
                    set_dropbits(&mut t.quant, p);
                }
                "learn_bits" => {
                    t.quant.learn_bits = match v {
                        "off" => None,
                        _ => Some(LearnBitsConfig {
                            lambda: float(key)?,
                            ..Default::default()
                        }),
                    }
                }
                _ => {
                    return Err(format!(
                        "unknown link parameter {:?} (allowed: {VIEW_PARAMS})",
                        truncate(&part)
                    ))
                }
            }
        }
        if let Some(q) = &state.labs.quantization {
            q.train
                .quant
                .validate()
                .map_err(|e| format!("the link's quantizer: {e}"))?;
        }
        Ok(state)
    }
}

/// DropBits on with `p`, or off for `p = 0` (CPQ, which turns DropBits on when unset, keeps
/// `p = 0`: no level is ever dropped).
pub fn set_dropbits(q: &mut QuantConfig, p: f64) {
    q.dropbits = if p > 0.0 {
        Some(DropBitsConfig {
            p,
            ..Default::default()
        })
    } else if q.method == QuantMethod::Cpq {
        Some(DropBitsConfig {
            p: 0.0,
            ..Default::default()
        })
    } else {
        None
    };
}

/// Whether DropBits drops anything.
pub fn dropbits_on(q: &QuantConfig) -> bool {
    q.dropbits
        .as_ref()
        .is_some_and(|d| d.p > 0.0 || d.drop_prob.iter().any(|&p| p > 0.0))
}

fn truncate(s: &str) -> String {
    s.chars().take(40).collect()
}

fn default_experiment() -> ExperimentConfig {
    // river-valley always exists; fall back to an empty-run config only if presets change.
    preset("river-valley").unwrap_or_else(|| unreachable!("the river-valley preset is built in"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fragment_of(value: &serde_json::Value) -> String {
        format!(
            "s={}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
        )
    }

    #[test]
    fn round_trip_through_the_fragment() {
        let mut s = ExplorerState::from_preset("lora-spectrum");
        s.labs.experiment.step = 123;
        s.labs.experiment.experiment.seed = 9;
        let f = s.to_fragment();
        assert!(f.len() < 3000, "fragment is {} chars", f.len());
        assert_eq!(
            ExplorerState::from_fragment(&format!("#{f}")).unwrap(),
            Some(s)
        );
    }

    #[test]
    fn malformed_and_old_fragments_are_errors_not_panics() {
        assert_eq!(ExplorerState::from_fragment("").unwrap(), None);
        assert_eq!(
            ExplorerState::from_fragment("#preset=rosenbrock&speed=50")
                .unwrap()
                .unwrap()
                .speed,
            50
        );
        assert!(ExplorerState::from_fragment("#preset=nope")
            .unwrap_err()
            .contains("unknown preset"));
        assert!(ExplorerState::from_fragment("#x=1")
            .unwrap_err()
            .contains("not an optiscope state"));
        assert!(ExplorerState::from_fragment("#s=!!!")
            .unwrap_err()
            .contains("base64url"));
        let old = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"version":0}"#);
        assert!(ExplorerState::from_fragment(&format!("#s={old}"))
            .unwrap_err()
            .contains("another version"));
        for bad in [
            serde_json::json!({"version": 1, "view": "nope"}),
            serde_json::json!({"version": 2, "lab": "nope"}),
        ] {
            let e = ExplorerState::from_fragment(&fragment_of(&bad)).unwrap_err();
            assert!(e.contains("not usable"), "{e}");
        }
    }

    /// Sizes in a link are bounded before anything is allocated: a `#s=` state with a hidden
    /// width of 10¹¹ (which aborted on allocation) and the short form past the bounds are errors.
    #[test]
    fn oversized_links_are_errors_naming_the_bound() {
        let mut s = ExplorerState::from_preset("river-valley");
        s.lab = LabKind::Quantization;
        s.quant_mut().train.hidden = vec![100_000_000_000];
        let err = ExplorerState::from_fragment(&s.to_fragment()).unwrap_err();
        assert!(err.contains("1..=4096"), "{err}");
        s.quant_mut().train.hidden = vec![8; MAX_HIDDEN_LAYERS + 1];
        let err = ExplorerState::from_fragment(&s.to_fragment()).unwrap_err();
        assert!(err.contains("at most 16"), "{err}");
        let err =
            ExplorerState::from_fragment("#view=quantization&hidden=100000000000").unwrap_err();
        assert!(err.contains("1..=4096"), "{err}");
        let many = vec!["8"; MAX_HIDDEN_LAYERS + 1].join(",");
        let err =
            ExplorerState::from_fragment(&format!("#view=quantization&hidden={many}")).unwrap_err();
        assert!(err.contains("up to 16 widths"), "{err}");
    }

    #[test]
    fn the_quantization_lab_round_trips_through_the_fragment() {
        let mut s = ExplorerState::from_preset("river-valley");
        s.lab = LabKind::Quantization;
        let q = s.quant_mut();
        q.step = 321;
        q.layer = 1;
        q.train.data = DataChoice::Moons;
        q.train.hidden = vec![16, 16];
        q.train.quant = QuantConfig::new(QuantMethod::Srq, 3);
        set_dropbits(&mut q.train.quant, 0.25);
        q.train.seed = 7;
        let f = s.to_fragment();
        assert!(f.len() < 3000, "fragment is {} chars", f.len());
        let back = ExplorerState::from_fragment(&f).unwrap().unwrap();
        assert_eq!(back, s);
        let json = serde_json::to_value(&back).unwrap();
        assert_eq!(json["version"], 2);
        assert_eq!(json["lab"], "quantization");
        assert_eq!(json["labs"]["quantization"]["step"], 321);
        assert_eq!(json["labs"]["experiment"]["preset"], "river-valley");
    }

    /// Version-1 links (before labs) still open: the view picks the lab, the experiment and the
    /// Quantization view's settings land in their labs; unknown fields are still refused.
    #[test]
    fn version_1_links_still_open() {
        let exp = ExperimentLabState::from_preset("rosenbrock");
        let v1 = serde_json::json!({
            "version": 1,
            "view": "loss",
            "preset": "rosenbrock",
            "experiment": exp.experiment,
            "step": 12,
            "speed": 9,
        });
        let s = ExplorerState::from_fragment(&fragment_of(&v1))
            .unwrap()
            .unwrap();
        assert_eq!(s.lab, LabKind::Experiment);
        assert_eq!(s.speed, 9);
        assert_eq!(s.labs.experiment.view, View::Loss);
        assert_eq!(s.labs.experiment.step, 12);
        assert_eq!(s.labs.experiment.experiment, exp.experiment);
        assert_eq!(s.labs.quantization, None);
        // The Quantization view of a v1 link opens the Quantization lab, the experiment in its
        // natural view; partial settings take the defaults for the rest.
        let mut q = v1.clone();
        q["view"] = "quantization".into();
        q["quant"] = serde_json::json!({"step": 5, "train": {"seed": 3}});
        let s = ExplorerState::from_fragment(&fragment_of(&q))
            .unwrap()
            .unwrap();
        assert_eq!(s.lab, LabKind::Quantization);
        assert_eq!(s.labs.experiment.view, View::Landscape);
        let qs = s.labs.quantization.unwrap();
        assert_eq!((qs.step, qs.train.seed, qs.layer), (5, 3, 0));
        for (k, x) in [
            ("quant", serde_json::json!({"stepz": 5})),
            ("quantization", serde_json::json!({})),
        ] {
            let mut v = v1.clone();
            v[k] = x;
            let e = ExplorerState::from_fragment(&fragment_of(&v)).unwrap_err();
            assert!(e.contains("unknown field"), "{e}");
        }
    }

    #[test]
    fn a_hand_written_view_fragment_opens_the_quantization_lab() {
        let s = ExplorerState::from_fragment("#view=quantization")
            .unwrap()
            .unwrap();
        assert_eq!(s.lab, LabKind::Quantization);
        assert_eq!(s.labs.quantization, Some(QuantViewState::default()));
        let q = ExplorerState::from_fragment(
            "#view=quantization&dropbits=off&bits=3&method=srq&data=spirals&hidden=8,8&seed=2&\
             step=40&speed=9&lr=0.003&epochs=5&batch=32&layer=1",
        )
        .unwrap()
        .unwrap();
        assert_eq!(q.speed, 9);
        let qs = q.labs.quantization.unwrap();
        assert_eq!(qs.step, 40);
        assert_eq!(qs.layer, 1);
        let t = qs.train;
        assert_eq!(t.quant.method, QuantMethod::Srq);
        assert_eq!(t.quant.bits, 3);
        assert_eq!(t.quant.dropbits, None);
        assert_eq!(t.data, DataChoice::Spirals);
        assert_eq!(t.hidden, vec![8, 8]);
        assert_eq!((t.seed, t.epochs, t.batch_size), (2, 5, 32));
        assert_eq!(t.optimizer.lr(), 0.003);
        // CPQ turns DropBits on unless told otherwise; off keeps p = 0 (nothing dropped).
        let cpq = ExplorerState::from_fragment("#view=quantization&method=cpq&dropbits=off")
            .unwrap()
            .unwrap()
            .labs
            .quantization
            .unwrap();
        assert!(!dropbits_on(&cpq.train.quant));
        assert!(!dropbits_on(&cpq.train.quant.clone().resolved()));
        let loss = ExplorerState::from_fragment("#view=loss").unwrap().unwrap();
        assert_eq!(
            (loss.lab, loss.labs.experiment.view),
            (LabKind::Experiment, View::Loss)
        );
        for (bad, why) in [
            ("#view=nope", "unknown view"),
            ("#view=quantization&bits=7", "supports 2..=4"),
            ("#view=quantization&method=lsq&learn_bits=0.1", "only cpq"),
            ("#view=quantization&data=mnist", "data="),
            ("#view=quantization&frobnicate=1", "unknown link parameter"),
            ("#view=quantization&step", "has no value"),
            ("#view=quantization&step=x", "not a whole number"),
        ] {
            let e = ExplorerState::from_fragment(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    /// A hand-written link picks the optimizer and ProxGen's penalty; the penalty is refused for
    /// an optimizer without one, and an unknown optimizer names the allowed ones.
    #[test]
    fn short_links_pick_the_optimizer_and_its_penalty() {
        let st = ExplorerState::from_fragment(
            "#view=quantization&penalty=0.002&regularizer=l1/2&optimizer=proxgen&lr=0.05",
        )
        .unwrap()
        .unwrap();
        let opt = serde_json::to_value(&st.labs.quantization.unwrap().train.optimizer).unwrap();
        assert_eq!(opt["name"], "proxgen");
        assert_eq!(opt["regularizer"], "l1/2");
        assert_eq!(opt["penalty"], 0.002);
        assert_eq!(opt["lr"], 0.05);
        let err = ExplorerState::from_fragment("#view=quantization&penalty=0.1").unwrap_err();
        assert!(err.contains("penalty") && err.contains("proxgen"), "{err}");
        let err = ExplorerState::from_fragment("#view=quantization&optimizer=adan").unwrap_err();
        assert!(err.contains("optimizer") && err.contains("amuse"), "{err}");
    }

    /// `&play=1` and `&hide=` ride on any link, survive the state → link → state round trip,
    /// leave the experiment as the link without them gives it, and bad values are refused.
    #[test]
    fn page_options_ride_on_any_link() {
        for base in [
            "preset=river-valley",
            "transformer=adamw,muon&step=10",
            "compress=teddy",
        ] {
            let plain = ExplorerState::from_fragment(base).unwrap().unwrap();
            let with = ExplorerState::from_fragment(&format!("#{base}&play=1&hide=controls,top"))
                .unwrap()
                .unwrap();
            assert_eq!(
                with.page,
                PageOptions {
                    play: true,
                    hide_top: true,
                    hide_controls: true,
                    hide_status: false,
                    gpu: GpuUse::Auto,
                }
            );
            assert_eq!(
                ExplorerState {
                    page: PageOptions::default(),
                    ..with.clone()
                },
                plain
            );
            let back = ExplorerState::from_fragment(&with.to_fragment())
                .unwrap()
                .unwrap();
            assert_eq!(back, with, "{base}");
            assert!(with.to_fragment().ends_with("&play=1&hide=top,controls"));
        }
        assert!(
            ExplorerState::from_fragment("play=1")
                .unwrap()
                .unwrap()
                .page
                .play
        );
        assert!(!ExplorerState::from_preset("river-valley")
            .to_fragment()
            .contains('&'));
        let e = ExplorerState::from_fragment("preset=river-valley&hide=sidebar").unwrap_err();
        assert_eq!(
            e,
            r#"hide="sidebar" in the link: one or more of top, controls, status"#
        );
        let e = ExplorerState::from_fragment("preset=river-valley&play=yes").unwrap_err();
        assert_eq!(e, r#"play="yes" in the link: 1 or 0"#);
    }

    /// `&gpu=0` is kept by the link; `&gpu=lost` (the page's own note after losing its device)
    /// is read but not passed on; other values are refused.
    #[test]
    fn gpu_option_is_read_and_only_off_is_kept() {
        let off = ExplorerState::from_fragment("preset=saddle&gpu=0")
            .unwrap()
            .unwrap();
        assert_eq!(off.page.gpu, GpuUse::Off);
        assert!(off.to_fragment().ends_with("&gpu=0"));
        let lost = ExplorerState::from_fragment("preset=saddle&gpu=lost")
            .unwrap()
            .unwrap();
        assert_eq!(lost.page.gpu, GpuUse::Lost);
        assert!(!lost.to_fragment().contains("gpu"));
        let e = ExplorerState::from_fragment("preset=saddle&gpu=yes").unwrap_err();
        assert_eq!(e, r#"gpu="yes" in the link: 1, 0 or lost"#);
    }
}
