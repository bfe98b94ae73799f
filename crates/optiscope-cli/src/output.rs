//! What every experiment command (`run`, `align`, `prune`, `moe`) shares about its output: the
//! `--out`, `--force` and `--quiet` flags, the output folder (never overwriting an earlier run's
//! results by accident) and the progress bar.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use crate::input::bad;

/// The files whose presence marks a folder as holding a run's results.
const RESULT_FILES: [&str; 3] = ["config.json", "metrics.jsonl", "summary.json"];

/// `--out`, `--force`, `--quiet`.
#[derive(Args, Debug, Clone, Default)]
pub struct OutputArgs {
    /// Output folder [default: runs/NAME after the preset or config, or NAME-2, -3, ... if that
    /// exists].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Replace the results of an earlier run in --out instead of refusing.
    #[arg(long)]
    pub force: bool,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

impl OutputArgs {
    /// The output folder, created: `--out` (refused if it holds results, unless `--force`),
    /// else the first free `runs/NAME[-k]`.
    pub fn dir(&self, name: &str) -> anyhow::Result<PathBuf> {
        output_dir(self.out.as_deref(), self.force, name)
    }

    /// A progress bar over `len` `unit`s labelled `label` (hidden with `--quiet`).
    pub fn progress(&self, len: u64, unit: &str, label: &str) -> ProgressBar {
        let bar = if self.quiet {
            ProgressBar::hidden()
        } else {
            ProgressBar::new(len)
        };
        let template = format!(
            "{{spinner}} {{msg}} [{{bar:30}}] {{pos}}/{{len}} {unit}  {{per_sec}}  eta {{eta}}"
        );
        bar.set_style(
            ProgressStyle::with_template(&template)
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_message(label.to_string());
        bar
    }
}

/// `out` (refused if it holds results, unless `force`), else the first free `runs/NAME[-k]`;
/// created.
pub fn output_dir(out: Option<&Path>, force: bool, name: &str) -> anyhow::Result<PathBuf> {
    let dir = match out {
        Some(d) => {
            if !force {
                if let Some(f) = RESULT_FILES.iter().find(|f| d.join(f).exists()) {
                    return Err(bad(format!(
                        "{} already holds the results of a run ({f}); choose another --out, or pass --force to replace them",
                        d.display()
                    )));
                }
            }
            d.to_path_buf()
        }
        None => {
            let base = Path::new("runs").join(name);
            (1..)
                .map(|k| {
                    if k == 1 {
                        base.clone()
                    } else {
                        PathBuf::from(format!("{}-{k}", base.display()))
                    }
                })
                .find(|d| !d.exists())
                .unwrap_or(base)
        }
    };
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

/// A run's `metrics.jsonl`, one JSON object per line. A failed write does not stop the run: the
/// first error is kept and returned by [`MetricsFile::finish`], naming the file.
pub struct MetricsFile {
    path: PathBuf,
    out: std::io::BufWriter<fs::File>,
    /// Flush after every line (a run cut short keeps what it recorded).
    flush_each: bool,
    error: Option<anyhow::Error>,
}

impl MetricsFile {
    /// `dir/metrics.jsonl`, created; `flush_each` flushes after every line.
    pub fn create(dir: &Path, flush_each: bool) -> anyhow::Result<Self> {
        let path = dir.join("metrics.jsonl");
        let file =
            fs::File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
        Ok(Self {
            path,
            out: std::io::BufWriter::new(file),
            flush_each,
            error: None,
        })
    }

    /// One line.
    pub fn write(&mut self, line: &impl serde::Serialize) {
        use std::io::Write;
        let written = serde_json::to_writer(&mut self.out, line)
            .map_err(anyhow::Error::from)
            .and_then(|()| self.out.write_all(b"\n").map_err(anyhow::Error::from))
            .and_then(|()| {
                if self.flush_each {
                    self.out.flush().map_err(anyhow::Error::from)
                } else {
                    Ok(())
                }
            });
        if let Err(e) = written {
            self.error.get_or_insert(e);
        }
    }

    /// Flushes; the first error of any write, naming the file.
    pub fn finish(mut self) -> anyhow::Result<PathBuf> {
        use std::io::Write;
        if let Some(e) = self.error.take() {
            return Err(e.context(format!("cannot write {}", self.path.display())));
        }
        self.out
            .flush()
            .with_context(|| format!("cannot write {}", self.path.display()))?;
        Ok(self.path)
    }
}
