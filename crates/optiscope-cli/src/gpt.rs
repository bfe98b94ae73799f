//! The character-level GPT on the command line: `optiscope train --model gpt` (nanoGPT's
//! shakespeare_char, trained by optiscope's kernels on the CPU or a GPU), `optiscope sample`
//! (text from a run's `model.safetensors`) and `optiscope eval DIR` on a GPT run (the loss of a
//! text, window by window, the number the PyTorch check compares).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use optiscope_core::corpus::{self, Corpus, TINYSHAKESPEARE};
use optiscope_core::device::{Cpu, Device};
use optiscope_core::metrics::{LmEvalLine, LmSpectraLine, LmStepLine};
use optiscope_core::models::{Gpt, Loss, Model, SoftmaxCrossEntropy};
use optiscope_core::train::gpt_file::{self, GptWeights};
use optiscope_core::train::lm::{
    divergence, generate, LmConfig, LmPreset, LmTrainer, SampleOptions, ScheduleKind,
};
use optiscope_core::train::lora::LoraConfig;
use optiscope_core::train::Checkpoint;

use crate::backend::{Backend, Executor};
use crate::input::{bad, choices, parse_json, read_json, read_text};

const CHECKPOINT: &str = "checkpoint.safetensors";
const MODEL: &str = "model.safetensors";
const METRICS: &str = "metrics.jsonl";
const CONFIG: &str = "config.json";

/// The flags of `optiscope train` that only `--model gpt` reads.
#[derive(Args, Debug, Default)]
pub struct GptArgs {
    /// --model gpt: a named configuration (flags override it) [default: baby's sizes with a
    /// constant learning rate].
    #[arg(long, value_parser = choices(LmPreset::INFO))]
    pub preset: Option<String>,
    /// --model gpt: the held-out last part of the text (0 turns validation off) [default: 0.1].
    #[arg(long, value_name = "F")]
    pub val_fraction: Option<f64>,
    /// --model gpt: context length [default: 64].
    #[arg(long, value_name = "T")]
    pub block_size: Option<usize>,
    /// --model gpt: transformer blocks [default: 4].
    #[arg(long, value_name = "L")]
    pub n_layer: Option<usize>,
    /// --model gpt: attention heads (must divide --n-embd) [default: 4].
    #[arg(long, value_name = "H")]
    pub n_head: Option<usize>,
    /// --model gpt: the width C [default: 128].
    #[arg(long, value_name = "C")]
    pub n_embd: Option<usize>,
    /// --model gpt: optimizer steps [default: 2000]. With --resume, a larger number continues
    /// the run (the schedule stretches to the new length).
    #[arg(long)]
    pub steps: Option<u64>,
    /// --model gpt: steps between evaluations (also at step 0 and at the end) [default: 250].
    #[arg(long, value_name = "N")]
    pub eval_interval: Option<u64>,
    /// --model gpt: batches of the fixed validation set [default: 20].
    #[arg(long, value_name = "N")]
    pub eval_iters: Option<u64>,
    /// --model gpt: the largest global gradient norm; 0 turns clipping off [default: 1.0].
    #[arg(long, value_name = "NORM")]
    pub grad_clip: Option<f64>,
    /// --model gpt: learning-rate schedule [default: constant].
    #[arg(long, value_parser = choices(ScheduleKind::INFO))]
    pub schedule: Option<String>,
    /// --model gpt: linear warm-up steps [default: 0].
    #[arg(long, value_name = "N")]
    pub warmup_steps: Option<u64>,
    /// --model gpt: steps between recordings of the hidden matrices' singular values (0: never)
    /// [default: 250].
    #[arg(long, value_name = "N")]
    pub spectra_every: Option<u64>,
    /// --model gpt: steps between read-backs of the training loss, the only host synchronisation
    /// of a step [default: 10].
    #[arg(long, value_name = "N")]
    pub log_interval: Option<u64>,
    /// --model gpt: start from these weights (a model.safetensors, or a run folder holding one):
    /// n_layer, n_head, n_embd, block_size and the vocabulary come from its metadata.
    #[arg(long, value_name = "MODEL")]
    pub init: Option<PathBuf>,
    /// --model gpt with --init: LoRA fine-tuning — the weights stay frozen and rank-r adapters
    /// B·A on every block's attention and MLP matrices train; the singular values of each
    /// product s·B·A are recorded (`spectra`, keys `….lora_BA`); model.safetensors holds the
    /// merged weights.
    #[arg(long, value_name = "R")]
    pub lora_rank: Option<usize>,
    /// --model gpt --lora-rank: the adapters' scale is alpha / r [default: r, a scale of 1].
    #[arg(long, value_name = "ALPHA")]
    pub lora_alpha: Option<f64>,
}

impl GptArgs {
    /// The flags given, by name (for refusing them with the MLP).
    pub fn given(&self) -> Vec<&'static str> {
        let mut out = vec![];
        let mut note = |set: bool, name: &'static str| {
            if set {
                out.push(name);
            }
        };
        note(self.preset.is_some(), "--preset");
        note(self.val_fraction.is_some(), "--val-fraction");
        note(self.block_size.is_some(), "--block-size");
        note(self.n_layer.is_some(), "--n-layer");
        note(self.n_head.is_some(), "--n-head");
        note(self.n_embd.is_some(), "--n-embd");
        note(self.steps.is_some(), "--steps");
        note(self.eval_interval.is_some(), "--eval-interval");
        note(self.eval_iters.is_some(), "--eval-iters");
        note(self.grad_clip.is_some(), "--grad-clip");
        note(self.schedule.is_some(), "--schedule");
        note(self.warmup_steps.is_some(), "--warmup-steps");
        note(self.spectra_every.is_some(), "--spectra-every");
        note(self.log_interval.is_some(), "--log-interval");
        note(self.init.is_some(), "--init");
        note(self.lora_rank.is_some(), "--lora-rank");
        note(self.lora_alpha.is_some(), "--lora-alpha");
        out
    }
}

/// What `optiscope train --model gpt` reads from the shared train flags.
pub struct Shared<'a> {
    pub data: Option<&'a str>,
    pub optimizer: Option<&'a str>,
    pub lr: Option<f64>,
    pub batch_size: Option<usize>,
    pub seed: Option<u64>,
    pub config: Option<&'a Path>,
    pub out: Option<&'a Path>,
    pub resume: Option<&'a Path>,
    pub quiet: bool,
    pub backend: Backend,
    /// MLP-only flags that were given (refused).
    pub mlp_only: Vec<&'static str>,
}

/// Applies the flags to `cfg`; returns the names of the flags that changed it.
fn apply(g: &GptArgs, s: &Shared<'_>, cfg: &mut LmConfig) -> anyhow::Result<Vec<&'static str>> {
    let mut changed = vec![];
    macro_rules! set {
        ($field:ident, $value:expr, $flag:literal) => {
            if let Some(v) = $value {
                cfg.$field = v;
                changed.push($flag);
            }
        };
    }
    set!(data, s.data.map(String::from), "--data");
    set!(val_fraction, g.val_fraction, "--val-fraction");
    set!(block_size, g.block_size, "--block-size");
    set!(n_layer, g.n_layer, "--n-layer");
    set!(n_head, g.n_head, "--n-head");
    set!(n_embd, g.n_embd, "--n-embd");
    set!(batch_size, s.batch_size, "--batch-size");
    set!(eval_interval, g.eval_interval, "--eval-interval");
    set!(eval_iters, g.eval_iters, "--eval-iters");
    set!(grad_clip, g.grad_clip, "--grad-clip");
    set!(seed, s.seed, "--seed");
    set!(spectra_every, g.spectra_every, "--spectra-every");
    set!(log_interval, g.log_interval, "--log-interval");
    if let Some(name) = s.optimizer {
        let note = crate::train::switch_optimizer(&mut cfg.optimizer, name)?;
        if let Some(note) = note.filter(|_| s.lr.is_none() && !s.quiet) {
            eprintln!("note: {note}");
        }
        changed.push("--optimizer");
    }
    if let Some(lr) = s.lr {
        crate::train::set_lr(&mut cfg.optimizer, lr)?;
        changed.push("--lr");
    }
    if let Some(k) = &g.schedule {
        cfg.schedule.kind =
            ScheduleKind::from_name(k).ok_or_else(|| bad(format!("--schedule {k:?}: unknown")))?;
        changed.push("--schedule");
    }
    if let Some(w) = g.warmup_steps {
        cfg.schedule.warmup_steps = w;
        changed.push("--warmup-steps");
    }
    match (g.lora_rank, g.lora_alpha) {
        (Some(rank), alpha) => {
            cfg.lora = Some(LoraConfig { rank, alpha });
            changed.push("--lora-rank");
        }
        (None, Some(_)) => {
            return Err(bad(
                "--lora-alpha scales LoRA adapters: give --lora-rank too",
            ))
        }
        (None, None) => {}
    }
    // --steps may extend a resumed run; it is not a change of its config.
    if let Some(n) = g.steps {
        cfg.steps = n;
    }
    Ok(changed)
}

/// The text of `data`: the shipped corpus or a UTF-8 file.
fn load_text(data: &str) -> anyhow::Result<String> {
    if data == TINYSHAKESPEARE {
        Ok(corpus::tinyshakespeare())
    } else {
        let text = read_text(Path::new(data)).map_err(|e| {
            bad(format!(
                "--data {data}: {e:#} (--model gpt reads `{TINYSHAKESPEARE}` or a UTF-8 text file)"
            ))
        })?;
        if text.is_empty() {
            return Err(bad(format!("--data {data}: the file is empty")));
        }
        Ok(text)
    }
}

/// A weights file: `path` itself, or `path/model.safetensors` for a run folder.
fn read_weights(path: &Path, what: &str) -> anyhow::Result<GptWeights> {
    let file = if path.is_dir() {
        path.join(MODEL)
    } else {
        path.to_path_buf()
    };
    let bytes = fs::read(&file)
        .map_err(|e| bad(format!("{what} {}: cannot read it ({e})", file.display())))?;
    gpt_file::from_bytes(&bytes).map_err(|e| bad(format!("{what} {}: {e}", file.display())))
}

/// `optiscope train --model gpt`.
pub fn train(g: &GptArgs, s: &Shared<'_>) -> anyhow::Result<ExitCode> {
    if let Some(flag) = s.mlp_only.first() {
        return Err(bad(format!(
            "{flag} applies to --model mlp; --model gpt is configured by --preset, --n-layer, --n-head, --n-embd, --block-size, --steps, … (see `optiscope train --help`)"
        )));
    }
    let (dir, cfg, checkpoint, init) = match s.resume {
        Some(dir) => {
            let path = dir.join(CHECKPOINT);
            let bytes = fs::read(&path).map_err(|e| {
                bad(format!(
                    "--resume {}: cannot read {CHECKPOINT} ({e})",
                    dir.display()
                ))
            })?;
            let ck = Checkpoint::from_bytes(&bytes).map_err(|e| {
                bad(format!(
                    "{} is not a usable checkpoint: {e}",
                    path.display()
                ))
            })?;
            if ck.meta.get("kind").map(String::as_str) != Some("gpt") {
                return Err(bad(format!(
                    "{} is not a GPT run's checkpoint (resume it without --model gpt)",
                    path.display()
                )));
            }
            let stored: LmConfig = parse_json(ck.meta.get("config").map_or("", String::as_str))
                .map_err(|e| {
                    bad(format!(
                        "{}: its config does not parse ({e})",
                        path.display()
                    ))
                })?;
            let mut cfg = stored.clone();
            let changed = apply(g, s, &mut cfg)?;
            if !changed.is_empty() || g.preset.is_some() || g.init.is_some() {
                let mut all = changed;
                all.extend(g.preset.as_ref().map(|_| "--preset"));
                all.extend(g.init.as_ref().map(|_| "--init"));
                return Err(bad(format!(
                    "{} would change the config of the run in {} (a resumed run keeps its config; --steps may extend it)",
                    all.join(", "),
                    dir.display()
                )));
            }
            (dir.to_path_buf(), cfg, Some(ck), None)
        }
        None => {
            let dir = s
                .out
                .map_or_else(|| PathBuf::from("runs/gpt"), Path::to_path_buf);
            for f in [CHECKPOINT, METRICS] {
                if dir.join(f).exists() {
                    return Err(bad(format!(
                        "{} already holds a training run ({f}); continue it with --resume {0}, or choose another --out",
                        dir.display()
                    )));
                }
            }
            let mut cfg = match (s.config, &g.preset) {
                (Some(_), Some(_)) => {
                    return Err(bad(
                        "--config and --preset both give a whole config; pass one",
                    ))
                }
                (Some(path), None) => read_json::<LmConfig>(path)?,
                (None, Some(p)) => LmPreset::from_name(p)
                    .ok_or_else(|| bad(format!("--preset {p:?}: unknown")))?
                    .config(),
                (None, None) => LmConfig::default(),
            };
            apply(g, s, &mut cfg)?;
            let init = match &g.init {
                Some(path) => {
                    let w = read_weights(path, "--init")?;
                    let from_file = [
                        ("--n-layer", g.n_layer, w.cfg.n_layer),
                        ("--n-head", g.n_head, w.cfg.n_head),
                        ("--n-embd", g.n_embd, w.cfg.n_embd),
                        ("--block-size", g.block_size, w.cfg.block_size),
                    ];
                    if let Some((flag, Some(v), file)) = from_file
                        .iter()
                        .find(|(_, v, f)| v.is_some_and(|v| v != *f))
                    {
                        return Err(bad(format!(
                            "{flag} {v}: --init {} has {file} (the sizes come from its metadata)",
                            path.display()
                        )));
                    }
                    cfg.n_layer = w.cfg.n_layer;
                    cfg.n_head = w.cfg.n_head;
                    cfg.n_embd = w.cfg.n_embd;
                    cfg.block_size = w.cfg.block_size;
                    cfg.init = Some(path.display().to_string());
                    Some(w)
                }
                None => None,
            };
            if cfg.lora.is_some() && init.is_none() {
                return Err(bad(
                    "--lora-rank fine-tunes given weights: pass them with --init MODEL (a model.safetensors or a run folder)",
                ));
            }
            (dir, cfg, None, init)
        }
    };
    cfg.validate().map_err(|e| bad(e.to_string()))?;
    let text = load_text(&cfg.data)?;
    let vocab = init.as_ref().map(|w| w.vocab.clone());
    let corpus = Corpus::new(&text, cfg.val_fraction, vocab).map_err(|e| {
        bad(match &init {
            Some(_) => format!("--data {}: {e} (the vocabulary of --init)", cfg.data),
            None => format!("--data {}: {e}", cfg.data),
        })
    })?;
    let init = init.map(|w| w.values);
    match Executor::select(s.backend)? {
        Executor::Cpu => run_on(Cpu, "cpu", s.quiet, &dir, cfg, corpus, init, checkpoint),
        Executor::Gpu(ctx) => run_on(
            optiscope_gpu::GpuDevice::new(ctx),
            "gpu",
            s.quiet,
            &dir,
            cfg,
            corpus,
            init,
            checkpoint,
        ),
    }
}

/// A run's output files as it goes.
struct Outputs<'a> {
    dir: &'a Path,
    metrics: fs::File,
    backend: &'static str,
}

impl Outputs<'_> {
    fn line(&mut self, v: &impl serde::Serialize) -> anyhow::Result<()> {
        use std::io::Write;
        serde_json::to_writer(&mut self.metrics, v)?;
        self.metrics.write_all(b"\n")?;
        Ok(())
    }

    /// `checkpoint.safetensors` and `model.safetensors`, each written atomically.
    fn save<D: Device + 'static>(&mut self, t: &mut LmTrainer<D>) -> anyhow::Result<()> {
        use std::io::Write;
        self.metrics.flush()?;
        let mut ck = t
            .save()
            .map_err(|e| anyhow::anyhow!("saving the checkpoint: {e}"))?;
        ck.meta.insert("backend".into(), self.backend.into());
        let bytes = ck
            .to_bytes()
            .map_err(|e| anyhow::anyhow!("saving the checkpoint: {e}"))?;
        crate::train::write_atomic(&self.dir.join(CHECKPOINT), &bytes)?;
        let weights = t
            .weights()
            .map_err(|e| anyhow::anyhow!("saving the model: {e}"))?;
        let bytes = gpt_file::to_bytes(&t.gpt(), t.vocab(), &weights)
            .map_err(|e| anyhow::anyhow!("saving the model: {e}"))?;
        crate::train::write_atomic(&self.dir.join(MODEL), &bytes)
    }
}

/// Keeps the metric lines of steps up to `step` (those before the checkpoint a run resumes from).
fn truncate_metrics(path: &Path, step: u64) -> anyhow::Result<()> {
    let Ok(text) = fs::read_to_string(path) else {
        return Ok(());
    };
    let keep: String = text
        .lines()
        .filter(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .ok()
                .and_then(|v| v.get("step").and_then(serde_json::Value::as_u64))
                .is_some_and(|s| s <= step)
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let tmp = path.with_extension("jsonl.tmp");
    fs::write(&tmp, keep).with_context(|| format!("rewriting {}", path.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("rewriting {}", path.display()))
}

#[allow(clippy::too_many_arguments)]
fn run_on<D: Device + 'static>(
    dev: D,
    backend: &'static str,
    quiet: bool,
    dir: &Path,
    cfg: LmConfig,
    corpus: Corpus,
    init: Option<Vec<Vec<f32>>>,
    checkpoint: Option<Checkpoint>,
) -> anyhow::Result<ExitCode> {
    let steps = cfg.steps;
    let mut t = LmTrainer::new(cfg, corpus, dev, init).map_err(|e| bad(e.to_string()))?;
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let resumed = checkpoint.is_some();
    if let Some(ck) = checkpoint {
        if let Some(was) = ck.meta.get("backend").filter(|b| b.as_str() != backend) {
            eprintln!(
                "warning: this run was trained on the {was} backend and continues on the {backend} one; \
                 it will not end bit for bit where an uninterrupted run would (pass --backend {was} for that)"
            );
        }
        t.restore(ck).map_err(|e| {
            bad(format!(
                "{}: {e}; it was left as it is",
                dir.join(CHECKPOINT).display()
            ))
        })?;
        t.set_steps(steps);
        truncate_metrics(&dir.join(METRICS), t.steps())?;
    }
    let mut resolved = serde_json::to_string_pretty(t.config())?;
    resolved.push('\n');
    fs::write(dir.join(CONFIG), resolved).context("writing config.json")?;
    let metrics = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(METRICS))
        .with_context(|| format!("opening {}", dir.join(METRICS).display()))?;
    let mut out = Outputs {
        dir,
        metrics,
        backend,
    };

    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        ctrlc::set_handler(move || {
            if stop.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
        })
        .context("installing the Ctrl-C handler")?;
    }
    let g = t.gpt();
    eprintln!(
        "{} a GPT ({} layers, {} heads, C = {}, context {}, {:.2}M parameters, vocabulary {}) on {} with {}, {} steps of {} sequences{}",
        if resumed { "resuming" } else { "training" },
        g.n_layer,
        g.n_head,
        g.n_embd,
        g.block_size,
        g.num_params() as f64 / 1e6,
        g.vocab_size,
        t.config().data,
        t.config().optimizer.name(),
        t.config().steps,
        t.config().batch_size,
        if resumed { format!(" from step {}", t.steps()) } else { String::new() }
    );
    let bar = if quiet {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(t.config().steps)
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] step {pos}/{len} {msg} (eta {eta})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_position(t.steps());
    let (eval_every, spectra_every) = (t.config().eval_interval, t.config().spectra_every);
    let mut last_val: Option<f64> = None;
    let mut last_train = f64::NAN;
    let evaluate = |t: &mut LmTrainer<D>, out: &mut Outputs<'_>| -> anyhow::Result<Option<f64>> {
        let v = t
            .evaluate()
            .map_err(|e| anyhow::anyhow!("evaluation failed: {e}"))?;
        if let Some(val_loss) = v {
            out.line(&LmEvalLine {
                step: t.steps(),
                val_loss,
            })?;
        }
        Ok(v)
    };
    if !resumed || t.steps() == 0 {
        last_val = evaluate(&mut t, &mut out)?;
        if spectra_every > 0 {
            let sv = t.spectra().map_err(|e| anyhow::anyhow!("{e}"))?;
            out.line(&LmSpectraLine {
                step: 0,
                singular_values: sv,
            })?;
        }
    }
    let mut interval_start = Instant::now();
    let started = Instant::now();
    // Seconds of training steps (evaluations, spectra and saving excluded).
    let mut train_secs = 0.0f64;
    let steps_at_start = t.steps();
    while !t.finished() {
        if stop.load(Ordering::SeqCst) {
            for l in t.take_losses().map_err(|e| anyhow::anyhow!("{e}"))? {
                out.line(&LmStepLine {
                    step: l.step,
                    train_loss: l.train_loss,
                    lr: l.lr,
                    tokens_per_s: f64::NAN,
                })?;
            }
            out.save(&mut t)?;
            bar.abandon();
            eprintln!(
                "interrupted: checkpoint written to {} at step {}; continue with `optiscope train --model gpt --resume {}`",
                dir.join(CHECKPOINT).display(),
                t.steps(),
                dir.display()
            );
            return Ok(ExitCode::from(130));
        }
        t.step()
            .map_err(|e| anyhow::anyhow!("training failed: {e}"))?;
        bar.inc(1);
        let step = t.steps();
        let eval_now = step % eval_every == 0 || t.finished();
        let spectra_now = spectra_every > 0 && (step % spectra_every == 0 || t.finished());
        if t.losses_due() || eval_now || spectra_now {
            let losses = t
                .take_losses()
                .map_err(|e| anyhow::anyhow!("training failed: {e}"))?;
            if let Some(e) = divergence(&losses) {
                // The finite losses before it are kept; nothing is saved over the last checkpoint.
                for l in losses.iter().take_while(|l| l.train_loss.is_finite()) {
                    out.line(&LmStepLine {
                        step: l.step,
                        train_loss: l.train_loss,
                        lr: l.lr,
                        tokens_per_s: f64::NAN,
                    })?;
                }
                out.metrics.sync_all().ok();
                bar.abandon();
                return Err(anyhow::anyhow!(
                    "training failed: {e}; metrics.jsonl keeps the steps before it and {} the last evaluation's state",
                    dir.join(CHECKPOINT).display()
                ));
            }
            let secs = interval_start.elapsed().as_secs_f64();
            train_secs += secs;
            let tps = (losses.len() * t.tokens_per_step()) as f64 / secs.max(1e-9);
            for l in &losses {
                out.line(&LmStepLine {
                    step: l.step,
                    train_loss: l.train_loss,
                    lr: l.lr,
                    tokens_per_s: tps,
                })?;
            }
            if let Some(l) = losses.last() {
                last_train = l.train_loss;
            }
            if eval_now {
                last_val = evaluate(&mut t, &mut out)?;
            }
            if spectra_now {
                let sv = t.spectra().map_err(|e| anyhow::anyhow!("{e}"))?;
                out.line(&LmSpectraLine {
                    step,
                    singular_values: sv,
                })?;
            }
            if eval_now {
                out.save(&mut t)?;
            }
            bar.set_message(match last_val {
                Some(v) => format!("loss {last_train:.4}  val {v:.4}  {tps:.0} tok/s"),
                None => format!("loss {last_train:.4}  {tps:.0} tok/s"),
            });
            interval_start = Instant::now();
        }
    }
    bar.finish();
    let trained = t.steps() - steps_at_start;
    if trained == 0 {
        eprintln!(
            "nothing to do: the run in {} has finished its {} steps (pass a larger --steps to continue)",
            dir.display(),
            t.config().steps
        );
    } else {
        let tps = (trained as usize * t.tokens_per_step()) as f64 / train_secs.max(1e-9);
        eprintln!(
            "done: step {}  train loss {last_train:.4}{}  {:.0} tokens/s (training steps only)  {:.1} s in all",
            t.steps(),
            last_val.map_or(String::new(), |v| format!("  val loss {v:.4}")),
            tps,
            started.elapsed().as_secs_f64()
        );
    }
    eprintln!("wrote {}", dir.display());
    Ok(ExitCode::SUCCESS)
}

/// Arguments of `optiscope sample`.
#[derive(Args, Debug)]
pub struct SampleArgs {
    /// A GPT run's folder (its model.safetensors) or a model.safetensors file.
    #[arg(long, value_name = "DIR")]
    checkpoint: PathBuf,
    /// The text to continue (every character must be in the model's vocabulary).
    #[arg(long, default_value = "\n")]
    prompt: String,
    /// New characters.
    #[arg(long, default_value_t = 500, value_name = "N")]
    tokens: usize,
    /// Logits are divided by it: below 1 is more conservative, above 1 more random.
    #[arg(long, default_value_t = 0.8, value_name = "T")]
    temperature: f64,
    /// Draw only from the K most likely characters (0: from all).
    #[arg(long, default_value_t = 200, value_name = "K")]
    top_k: usize,
    /// Seed of the draws.
    #[arg(long, default_value_t = 1337)]
    seed: u64,
    /// Where the model runs.
    #[arg(long, value_enum, default_value = "cpu", env = "OPTISCOPE_BACKEND")]
    backend: Backend,
}

/// `optiscope sample`.
pub fn sample(args: SampleArgs) -> anyhow::Result<ExitCode> {
    if !(args.temperature > 0.0 && args.temperature.is_finite()) {
        return Err(bad(format!(
            "--temperature {}: must be a positive number",
            args.temperature
        )));
    }
    if args.prompt.is_empty() {
        return Err(bad("--prompt: give at least one character"));
    }
    let w = read_weights(&args.checkpoint, "--checkpoint")?;
    let prompt = w
        .vocab
        .encode(&args.prompt)
        .map_err(|e| bad(format!("--prompt: {e}")))?;
    let opts = SampleOptions {
        tokens: args.tokens,
        temperature: args.temperature,
        top_k: (args.top_k > 0).then_some(args.top_k),
        seed: args.seed,
    };
    let new = match Executor::select(args.backend)? {
        Executor::Cpu => sample_on(Cpu, &w, &prompt, opts)?,
        Executor::Gpu(ctx) => sample_on(optiscope_gpu::GpuDevice::new(ctx), &w, &prompt, opts)?,
    };
    println!("{}{}", args.prompt, w.vocab.decode(&new));
    Ok(ExitCode::SUCCESS)
}

fn sample_on<D: Device>(
    mut dev: D,
    w: &GptWeights,
    prompt: &[u32],
    opts: SampleOptions,
) -> anyhow::Result<Vec<u32>> {
    let params: Vec<D::Buf> = w.values.iter().map(|v| dev.upload(v)).collect();
    generate(&mut dev, w.cfg, &params, prompt, opts)
        .map_err(|e| anyhow::anyhow!("sampling failed: {e}"))
}

/// The loss of `text` under a GPT: the mean next-character cross-entropy over its consecutive
/// windows of `block_size + 1` characters (window i covers characters `i·T .. i·T + T`; a last
/// part shorter than a window is left out), on the CPU.
pub fn text_loss(w: &GptWeights, text: &str) -> anyhow::Result<(f64, usize)> {
    let tokens = w
        .vocab
        .encode(text)
        .map_err(|e| bad(format!("--text: {e}")))?;
    let t = w.cfg.block_size;
    let windows = tokens.len().saturating_sub(1) / t;
    if windows == 0 {
        return Err(bad(format!(
            "--text: {} characters; a window needs block_size + 1 = {}",
            tokens.len(),
            t + 1
        )));
    }
    let gpt = Gpt::new(w.cfg);
    let params: Vec<&Vec<f32>> = w.values.iter().collect();
    let mut loss = SoftmaxCrossEntropy {
        classes: w.cfg.vocab_size,
    };
    let (mut sum, mut n) = (0.0f64, 0usize);
    // A few windows per forward pass.
    for chunk in (0..windows).collect::<Vec<_>>().chunks(16) {
        let mut x = Vec::with_capacity(chunk.len() * t);
        let mut y = Vec::with_capacity(chunk.len() * t);
        for &i in chunk {
            x.extend(tokens[i * t..i * t + t].iter().map(|&v| v as f32));
            y.extend(tokens[i * t + 1..i * t + t + 1].iter().map(|&v| v as f32));
        }
        let rows = x.len();
        let acts = Model::<Cpu>::forward(&gpt, &mut Cpu, &params, x, rows);
        let logits = acts.last().unwrap_or_else(|| unreachable!("logits"));
        let out = Loss::<Cpu>::loss(&mut loss, &mut Cpu, logits, &y, rows);
        sum += f64::from(out.stats[0]);
        n += rows;
    }
    Ok((sum / n as f64, windows))
}

/// `optiscope eval DIR` on a GPT run: the loss of `--text FILE` (default: the validation part of
/// the run's text) as one JSON line `{"loss", "windows", "tokens"}`.
pub fn eval(dir: &Path, text: Option<&Path>) -> anyhow::Result<ExitCode> {
    let w = read_weights(dir, "eval")?;
    let text = match text {
        Some(p) => read_text(p)?,
        None => {
            let cfg: LmConfig = read_json(&dir.join(CONFIG))?;
            let all = load_text(&cfg.data)?;
            let c = Corpus::new(&all, cfg.val_fraction, Some(w.vocab.clone())).map_err(bad)?;
            if c.val.is_empty() {
                return Err(bad(
                    "the run has no validation text (val_fraction 0); pass --text FILE",
                ));
            }
            w.vocab.decode(&c.val)
        }
    };
    let (loss, windows) = text_loss(&w, &text)?;
    println!(
        "{}",
        serde_json::json!({"loss": loss, "windows": windows, "tokens": windows * w.cfg.block_size})
    );
    Ok(ExitCode::SUCCESS)
}
