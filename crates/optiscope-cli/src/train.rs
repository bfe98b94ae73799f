//! `optiscope train`: a model trained to the end on real data, with a progress bar, per-epoch
//! metrics, safetensors checkpoints, `--resume` and a checkpoint on Ctrl-C.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use optiscope_core::config::ConfigError;
use optiscope_core::device::{Cpu, Device};
use optiscope_core::metrics::{epoch_of_line, EpochLine};
use optiscope_core::optim::{who_has_it, FieldError, OptimizerConfig, METHODS};
use optiscope_core::quant::dropbits::DropBitsConfig;
use optiscope_core::quant::{LearnBitsConfig, QuantMethod};
use optiscope_core::train::{Checkpoint, DataChoice, EpochMetrics, TrainConfig, Trainer};

use crate::backend::{Backend, Executor};
use crate::input::{bad, choices, parse_json, read_json};

/// File names inside the output folder.
const CHECKPOINT: &str = "checkpoint.safetensors";
const METRICS: &str = "metrics.jsonl";
const CONFIG: &str = "config.json";

/// The model family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Model {
    /// A multilayer perceptron: ReLU hidden layers, softmax cross-entropy.
    Mlp,
    /// nanoGPT's character-level GPT (pre-LayerNorm blocks, causal attention, GELU MLP, head
    /// tied to the token embedding) on a text.
    Gpt,
}

/// Arguments of `optiscope train` (the help text is on `Command::Train`).
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Model.
    #[arg(long, value_enum, default_value = "mlp")]
    model: Model,
    /// Data: digits, spirals or moons for the MLP [default: digits]; tinyshakespeare (shipped)
    /// or a UTF-8 text FILE for --model gpt [default: tinyshakespeare].
    #[arg(long, value_name = "DATA")]
    data: Option<String>,
    /// Hidden layer widths, comma-separated [default: 128].
    #[arg(long, value_delimiter = ',', value_name = "W[,W...]")]
    hidden: Option<Vec<usize>>,
    /// Optimizer (`optiscope list` shows their fields) [default: adamw with lr 0.01].
    #[arg(long, value_parser = choices(METHODS))]
    optimizer: Option<String>,
    /// Learning rate of the optimizer.
    #[arg(long)]
    lr: Option<f64>,
    /// The penalty R of a proximal optimizer (proxgen, prox_sgd): l1, l0, l1/2 or l2/3
    /// [default: l1].
    #[arg(long, value_parser = ["l1", "l0", "l1/2", "l2/3"])]
    regularizer: Option<String>,
    /// The strength λ of that penalty (proxgen, prox_sgd) [default: 0].
    #[arg(long, value_name = "LAMBDA")]
    penalty: Option<f64>,
    /// AdaBlock's block size: this many consecutive output units share one second-moment matrix
    /// (1..=32). It must divide every layer's width, or exceed it (then the block is the whole
    /// width): with --hidden 128 and 10 classes, 2, 16 or 32 [default: 10].
    #[arg(long, value_name = "G")]
    groups: Option<usize>,
    /// Weight quantizer [default: none].
    #[arg(long, value_parser = choices(QuantMethod::INFO))]
    quant: Option<String>,
    /// Bit-width of the quantizer (2..=4 for rq/srq/cpq, 2..=8 otherwise) [default: 4].
    #[arg(long)]
    bits: Option<u32>,
    /// DropBits' p (finest bit dropped with probability p, level j with p^(b-j+1)); srq/cpq.
    /// 0 never drops [default: cpq 0.3, srq off].
    #[arg(long, value_name = "P")]
    dropbits: Option<f64>,
    /// Learn each layer's bit-width with hard-concrete gates on the bit levels (cpq), with this
    /// penalty λ per open level.
    #[arg(long, value_name = "LAMBDA")]
    learn_bits: Option<f64>,
    /// ProxQuant: λ grows by this much per epoch (λ_t = R·epoch) [default: 1e-4].
    #[arg(long, value_name = "R")]
    reg_rate: Option<f64>,
    /// ProxQuant: the original Euclidean prox (threshold η·λ) instead of the revised one in
    /// Adam's metric (threshold η·λ/(√v̂ + ε), ProxGen).
    #[arg(long)]
    prox_original: bool,
    /// Passes over the training set [default: 30]. With --resume, a larger number continues the
    /// run further.
    #[arg(long)]
    epochs: Option<u64>,
    /// Minibatch size [default: 64].
    #[arg(long)]
    batch_size: Option<usize>,
    /// Seed of initialization, shuffles and quantizer noise [default: 0].
    #[arg(long)]
    seed: Option<u64>,
    /// A full training config (JSON, e.g. the config.json of an earlier run); flags override it.
    #[arg(long, value_name = "CONFIG.json")]
    config: Option<PathBuf>,
    /// Output folder (refused if it already holds a run: use --resume to continue one)
    /// [default: runs/train, runs/gpt for --model gpt].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Continue the run in DIR from its checkpoint, bit for bit, with its own config (flags that
    /// would change the config are refused; --epochs may extend it).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["out", "config"])]
    resume: Option<PathBuf>,
    /// Write a checkpoint every N epochs (and always at the end and on Ctrl-C).
    #[arg(long, default_value_t = 1, value_name = "N")]
    checkpoint_every: u64,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
    /// Where the model trains: auto (a real GPU if present, else the CPU), cpu, or gpu (any
    /// adapter, software ones included; fails without one).
    #[arg(long, value_enum, default_value = "auto", env = "OPTISCOPE_BACKEND")]
    backend: Backend,
    #[command(flatten)]
    gpt: crate::gpt::GptArgs,
}

impl TrainArgs {
    /// The shared flags as `--model gpt` reads them, with the MLP-only flags that were given.
    fn gpt_shared(&self) -> crate::gpt::Shared<'_> {
        let mlp_only = [
            ("--hidden", self.hidden.is_some()),
            ("--quant", self.quant.is_some()),
            ("--bits", self.bits.is_some()),
            ("--dropbits", self.dropbits.is_some()),
            ("--learn-bits", self.learn_bits.is_some()),
            ("--reg-rate", self.reg_rate.is_some()),
            ("--prox-original", self.prox_original),
            ("--epochs", self.epochs.is_some()),
            ("--regularizer", self.regularizer.is_some()),
            ("--penalty", self.penalty.is_some()),
            ("--groups", self.groups.is_some()),
            ("--checkpoint-every", self.checkpoint_every != 1),
        ]
        .into_iter()
        .filter_map(|(f, set)| set.then_some(f))
        .collect();
        crate::gpt::Shared {
            data: self.data.as_deref(),
            optimizer: self.optimizer.as_deref(),
            lr: self.lr,
            batch_size: self.batch_size,
            seed: self.seed,
            config: self.config.as_deref(),
            out: self.out.as_deref(),
            resume: self.resume.as_deref(),
            quiet: self.quiet,
            backend: self.backend,
            mlp_only,
        }
    }

    /// Applies the flags to `cfg`; returns the names of the flags that changed it.
    fn apply(&self, cfg: &mut TrainConfig) -> anyhow::Result<Vec<&'static str>> {
        let mut changed = vec![];
        if let Some(d) = &self.data {
            cfg.data = DataChoice::from_name(d).ok_or_else(|| {
                let names: Vec<&str> = DataChoice::INFO.iter().map(|m| m.name).collect();
                bad(format!(
                    "--data {d:?}: unknown for the MLP (one of {}; text files are for --model gpt)",
                    names.join(", ")
                ))
            })?;
            changed.push("--data");
        }
        if let Some(h) = &self.hidden {
            cfg.hidden = h.clone();
            changed.push("--hidden");
        }
        if let Some(name) = &self.optimizer {
            let note = switch_optimizer(&mut cfg.optimizer, name)?;
            if let Some(note) = note.filter(|_| self.lr.is_none() && !self.quiet) {
                eprintln!("note: {note}");
            }
            changed.push("--optimizer");
        }
        if let Some(lr) = self.lr {
            set_lr(&mut cfg.optimizer, lr)?;
            changed.push("--lr");
        }
        if let Some(r) = &self.regularizer {
            set_field(
                &mut cfg.optimizer,
                "--regularizer",
                "regularizer",
                serde_json::json!(r),
            )?;
            changed.push("--regularizer");
        }
        if let Some(p) = self.penalty {
            set_field(
                &mut cfg.optimizer,
                "--penalty",
                "penalty",
                serde_json::json!(p),
            )?;
            changed.push("--penalty");
        }
        if let Some(g) = self.groups {
            set_field(
                &mut cfg.optimizer,
                "--groups",
                "groups",
                serde_json::json!(g),
            )?;
            changed.push("--groups");
        }
        if let Some(q) = &self.quant {
            cfg.quant.method =
                QuantMethod::from_name(q).ok_or_else(|| bad(format!("--quant {q:?}: unknown")))?;
            changed.push("--quant");
        }
        if let Some(b) = self.bits {
            cfg.quant.bits = b;
            changed.push("--bits");
        }
        if let Some(p) = self.dropbits {
            // p = 0 keeps DropBits configured but never drops (so CPQ's default does not
            // switch it back on).
            cfg.quant.dropbits = Some(DropBitsConfig {
                p,
                drop_prob: vec![],
            });
            changed.push("--dropbits");
        }
        if let Some(lambda) = self.learn_bits {
            cfg.quant.learn_bits = Some(LearnBitsConfig {
                lambda,
                ..LearnBitsConfig::default()
            });
            changed.push("--learn-bits");
        }
        if let Some(r) = self.reg_rate {
            cfg.quant.reg_rate = r;
            changed.push("--reg-rate");
        }
        if self.prox_original {
            cfg.quant.revised = false;
            changed.push("--prox-original");
        }
        if let Some(b) = self.batch_size {
            cfg.batch_size = b;
            changed.push("--batch-size");
        }
        if let Some(s) = self.seed {
            cfg.seed = s;
            changed.push("--seed");
        }
        cfg.quant = cfg.quant.clone().resolved();
        if let Some(e) = self.epochs {
            cfg.epochs = e;
        }
        Ok(changed)
    }
}

/// `--optimizer NAME`: the method's defaults, keeping the run's learning rate (`--lr` may change
/// it after).
///
/// Returns a note for the user when the method's own default rate differs from the one kept
/// (`--optimizer muon` alone keeps AdamW's 1e-3, not Muon's 0.02). A method whose defaults are
/// not a valid config (AMUSE: `warmup_steps` has no default) is refused with the way to set it.
pub(crate) fn switch_optimizer(
    cfg: &mut OptimizerConfig,
    name: &str,
) -> anyhow::Result<Option<String>> {
    let lr = cfg.lr();
    let default = OptimizerConfig::default_for(name).ok_or_else(|| {
        bad(format!(
            "--optimizer {name:?}: unknown (`optiscope list` shows the optimizers)"
        ))
    })?;
    if let Err(e) = default.validate() {
        let field = match &e {
            ConfigError::Invalid { field, .. } => field.clone(),
            ConfigError::UnknownParam { .. } => "the field".into(),
        };
        return Err(bad(format!(
            "--optimizer {name}: {e}. Set it in a config file: --config run.json with \
             {{\"optimizer\": {{\"name\": \"{name}\", \"{field}\": N}}}} (the fields not \
             named keep their defaults; `optiscope list` shows them)"
        )));
    }
    let own = default.lr();
    *cfg = default;
    set_lr(cfg, lr)?;
    Ok((own != lr).then(|| {
        format!("--optimizer {name} keeps the run's learning rate {lr} ({name}'s default is {own}); --lr sets it")
    }))
}

pub(crate) fn set_lr(cfg: &mut OptimizerConfig, lr: f64) -> anyhow::Result<()> {
    // Every optimizer config has a top-level "lr": set it through JSON to stay generic.
    let mut v = serde_json::to_value(&*cfg)?;
    v["lr"] = serde_json::json!(lr);
    *cfg = parse_json(&v.to_string()).map_err(|e| bad(format!("--lr {lr}: {e}")))?;
    Ok(())
}

/// Sets the optimizer's field `field` (one only some optimizers have) from the flag `flag`.
fn set_field(
    cfg: &mut OptimizerConfig,
    flag: &str,
    field: &str,
    value: serde_json::Value,
) -> anyhow::Result<()> {
    cfg.set_field(field, value.clone()).map_err(|e| match e {
        FieldError::Missing {
            optimizer, have, ..
        } => bad(format!(
            "{flag}: the optimizer {optimizer} has no `{field}` ({}: --optimizer {})",
            who_has_it(&have),
            have.first().copied().unwrap_or("?"),
        )),
        FieldError::Invalid(e) => bad(format!("{flag} {value}: {e}")),
    })
}

/// Writes `bytes` to `path` through a temporary file and a rename, so a crash never leaves a
/// half-written checkpoint in place of a good one.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("safetensors.tmp");
    fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Reads and checks `dir`'s checkpoint (refusing, never touching, anything unusable); `what`
/// names the argument in errors (`--resume`, `eval`).
pub(crate) fn read_checkpoint(dir: &Path, what: &str) -> anyhow::Result<(TrainConfig, Checkpoint)> {
    let path = dir.join(CHECKPOINT);
    let bytes = fs::read(&path).map_err(|e| {
        bad(format!(
            "{what} {}: cannot read {CHECKPOINT} ({e})",
            dir.display()
        ))
    })?;
    let ck = Checkpoint::from_bytes(&bytes).map_err(|e| {
        bad(format!(
            "{} is not a usable checkpoint: {e}; it was left as it is",
            path.display()
        ))
    })?;
    let cfg_text = ck.meta.get("config").ok_or_else(|| {
        bad(format!(
            "{} has no config; it was left as it is",
            path.display()
        ))
    })?;
    let cfg: TrainConfig = parse_json(cfg_text).map_err(|e| {
        bad(format!(
            "{}: its config does not parse ({e}); it was left as it is",
            path.display()
        ))
    })?;
    Ok((cfg, ck))
}

/// `optiscope train`.
pub fn train(args: TrainArgs) -> anyhow::Result<ExitCode> {
    if args.model == Model::Gpt {
        return crate::gpt::train(&args.gpt, &args.gpt_shared());
    }
    if let Some(flag) = args.gpt.given().first() {
        return Err(bad(format!("{flag} applies to --model gpt")));
    }
    if args.checkpoint_every == 0 {
        return Err(bad("--checkpoint-every must be at least 1"));
    }
    let (dir, cfg, checkpoint) = match &args.resume {
        Some(dir) => {
            let (mut cfg, ck) = read_checkpoint(dir, "--resume")?;
            let stored = cfg.clone();
            let changed = args.apply(&mut cfg)?;
            if cfg
                != (TrainConfig {
                    epochs: cfg.epochs,
                    ..stored.clone()
                })
            {
                return Err(bad(format!(
                    "{} would change the config of the run in {} (a resumed run keeps its \
                     config; start a new run with --out instead)",
                    changed.join(", "),
                    dir.display()
                )));
            }
            (dir.clone(), cfg, Some(ck))
        }
        None => {
            let dir = args
                .out
                .clone()
                .unwrap_or_else(|| PathBuf::from("runs/train"));
            for f in [CHECKPOINT, METRICS] {
                if dir.join(f).exists() {
                    return Err(bad(format!(
                        "{} already holds a training run ({f}); continue it with --resume {0}, \
                         or choose another --out",
                        dir.display()
                    )));
                }
            }
            let mut cfg = match &args.config {
                Some(path) => read_json::<TrainConfig>(path)?,
                None => TrainConfig::default(),
            };
            args.apply(&mut cfg)?;
            (dir, cfg, None)
        }
    };
    cfg.quant
        .validate()
        .map_err(|e| bad(format!("quantizer: {e}")))?;
    cfg.optimizer
        .validate()
        .map_err(|e| bad(format!("optimizer: {e}")))?;
    let exec = Executor::select(args.backend)?;
    match exec {
        Executor::Cpu => run_on(Cpu, "cpu", &args, &dir, cfg, checkpoint),
        Executor::Gpu(ctx) => run_on(
            optiscope_gpu::GpuDevice::new(ctx),
            "gpu",
            &args,
            &dir,
            cfg,
            checkpoint,
        ),
    }
}

fn run_on<D: Device + 'static>(
    dev: D,
    backend: &'static str,
    args: &TrainArgs,
    dir: &Path,
    cfg: TrainConfig,
    checkpoint: Option<Checkpoint>,
) -> anyhow::Result<ExitCode> {
    let (train, test) = cfg.data.load(cfg.test_fraction, cfg.split_seed);
    let mut t = Trainer::new(cfg.clone(), &train, &test, dev).map_err(|e| bad(e.to_string()))?;
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let resumed = checkpoint.is_some();
    if let Some(ck) = checkpoint {
        if let Some(was) = ck.meta.get("backend").filter(|b| b.as_str() != backend) {
            eprintln!(
                "warning: this run was trained on the {was} backend and continues on the {backend} \
                 one; the arithmetic differs, so it will not end bit for bit where an \
                 uninterrupted run would (pass --backend {was} for that)"
            );
        }
        t.restore(ck).map_err(|e| {
            bad(format!(
                "{}: {e}; it was left as it is",
                dir.join(CHECKPOINT).display()
            ))
        })?;
        t.set_epochs(cfg.epochs);
        truncate_metrics(&dir.join(METRICS), t.epoch())?;
    }
    let mut resolved = serde_json::to_string_pretty(t.config())?;
    resolved.push('\n');
    fs::write(dir.join(CONFIG), resolved).context("writing config.json")?;
    let mut metrics = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(METRICS))
        .with_context(|| format!("opening {}", dir.join(METRICS).display()))?;

    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        // A second Ctrl-C while the checkpoint is written falls through to the default handler.
        ctrlc::set_handler(move || {
            if stop.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
        })
        .context("installing the Ctrl-C handler")?;
    }

    let per_epoch = t.batches_per_epoch();
    let total = per_epoch * t.config().epochs;
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(total)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] epoch {msg} ({per_sec}, eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_position(t.epoch() * per_epoch + t.steps() % per_epoch.max(1));
    eprintln!(
        "{} {} on {} ({}), {} epochs of {} batches{}",
        if resumed { "resuming" } else { "training" },
        t.config().quant.label(),
        format!("{:?}", t.config().data).to_lowercase(),
        t.widths()
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join("-"),
        t.config().epochs,
        per_epoch,
        if resumed {
            format!(" from epoch {}", t.epoch())
        } else {
            String::new()
        }
    );
    let mut last: Option<EpochMetrics> = None;
    let mut epoch_start = Instant::now();
    let mut train_secs = 0.0;
    let mut samples = 0usize;
    while !t.finished() {
        if stop.load(Ordering::SeqCst) {
            save(&mut t, backend, dir)?;
            bar.abandon();
            eprintln!(
                "interrupted: checkpoint written to {} at epoch {} (batch {}); continue with \
                 `optiscope train --resume {}`",
                dir.join(CHECKPOINT).display(),
                t.epoch(),
                t.steps() - t.epoch() * per_epoch,
                dir.display()
            );
            return Ok(ExitCode::from(130));
        }
        let s0 = Instant::now();
        let done = t
            .step()
            .map_err(|e| anyhow::anyhow!("training failed: {e}"))?;
        let dt = s0.elapsed().as_secs_f64();
        bar.inc(1);
        match done {
            None => {
                train_secs += dt;
                samples += t.config().batch_size.min(train.len());
                let (loss, acc) = t.running();
                bar.set_message(format!(
                    "{}/{}  loss {loss:.4}  acc {:.1}%",
                    t.epoch() + 1,
                    t.config().epochs,
                    100.0 * acc
                ));
            }
            Some(m) => {
                // The last batch's time includes the evaluation; count a typical batch instead.
                let avg = if samples > 0 {
                    train_secs / samples as f64
                } else {
                    dt
                };
                let last_rows = train.len() - (per_epoch as usize - 1) * t.config().batch_size;
                train_secs += avg * last_rows as f64;
                samples += last_rows;
                let line = EpochLine {
                    metrics: &m,
                    samples_per_s: samples as f64 / train_secs,
                    seconds: epoch_start.elapsed().as_secs_f64(),
                };
                serde_json::to_writer(&mut metrics, &line)?;
                metrics.write_all(b"\n")?;
                metrics.flush()?;
                bar.set_message(format!(
                    "{}/{}  loss {:.4}  acc {:.1}%  test {:.1}%",
                    m.epoch,
                    t.config().epochs,
                    m.train_loss,
                    100.0 * m.train_accuracy,
                    100.0 * m.test_accuracy
                ));
                if m.epoch % args.checkpoint_every == 0 || t.finished() {
                    save(&mut t, backend, dir)?;
                }
                last = Some(m);
                epoch_start = Instant::now();
                train_secs = 0.0;
                samples = 0;
            }
        }
    }
    bar.finish();
    match last {
        Some(m) => {
            let bits: Vec<String> = m.layers.iter().map(|l| l.bits.to_string()).collect();
            let zeros: Vec<String> = m
                .layers
                .iter()
                .map(|l| format!("{:.1}%", 100.0 * l.sparsity))
                .collect();
            let zeros = if m.layers.iter().any(|l| l.sparsity > 0.0) {
                format!("  zeros per layer [{}]", zeros.join(", "))
            } else {
                String::new()
            };
            eprintln!(
                "done: epoch {}  train loss {:.4}  train acc {:.2}%  test acc {:.2}%  bits per layer [{}]{}",
                m.epoch,
                m.train_loss,
                100.0 * m.train_accuracy,
                100.0 * m.test_accuracy,
                bits.join(", "),
                zeros
            );
        }
        None => eprintln!("nothing to do: the run in {} has finished its {} epochs (pass a larger --epochs to continue)", dir.display(), t.config().epochs),
    }
    eprintln!("wrote {}", dir.display());
    Ok(ExitCode::SUCCESS)
}

fn save<D: Device + 'static>(t: &mut Trainer<D>, backend: &str, dir: &Path) -> anyhow::Result<()> {
    let mut ck = t
        .save()
        .map_err(|e| anyhow::anyhow!("saving the checkpoint: {e}"))?;
    ck.meta.insert("backend".into(), backend.into());
    let bytes = ck
        .to_bytes()
        .map_err(|e| anyhow::anyhow!("saving the checkpoint: {e}"))?;
    write_atomic(&dir.join(CHECKPOINT), &bytes)
}

/// Drops metric lines of epochs after `epoch` (written after the checkpoint a run resumes from).
/// Lines that are not a metrics record (no integer `epoch`) are dropped too, and reported.
fn truncate_metrics(path: &Path, epoch: u64) -> anyhow::Result<()> {
    let Ok(file) = File::open(path) else {
        return Ok(());
    };
    let mut keep = String::new();
    let mut unreadable = vec![];
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line?;
        match epoch_of_line(&line) {
            Some(e) if e <= epoch => {
                keep.push_str(&line);
                keep.push('\n');
            }
            Some(_) => {}
            None if line.trim().is_empty() => {}
            None => unreadable.push(i + 1),
        }
    }
    if !unreadable.is_empty() {
        eprintln!(
            "warning: {} skipped {} line(s) that are not metrics records (line {}); they are not kept",
            path.display(),
            unreadable.len(),
            unreadable
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let tmp = path.with_extension("jsonl.tmp");
    fs::write(&tmp, keep).with_context(|| format!("rewriting {}", path.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("rewriting {}", path.display()))
}
