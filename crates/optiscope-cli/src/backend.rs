//! `--backend auto|cpu|gpu`: which executor runs the optimizers.

use std::sync::Arc;

use clap::ValueEnum;
use optiscope_core::optim::{ConfigError, Optimizer, OptimizerConfig, Param};
use optiscope_gpu::{AdapterPolicy, GpuContext, GpuOptimizer};

/// Where the optimizers run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// A real GPU if there is one, else the CPU (software adapters are not used).
    Auto,
    /// The CPU executor.
    Cpu,
    /// The GPU executor on any adapter, software ones (lavapipe) included; fails if there is none.
    Gpu,
}

/// The chosen executor.
pub enum Executor {
    /// The CPU.
    Cpu,
    /// A GPU.
    Gpu(Arc<GpuContext>),
}

/// Opens a GPU under `policy`. The CPU backend never gets here, so it probes no adapter.
///
/// Where `XDG_RUNTIME_DIR` is unset or not a directory (headless machines, containers, CI),
/// Mesa's Vulkan drivers print `error: XDG_RUNTIME_DIR is invalid or not set in the environment.`
/// while the adapters are enumerated — harmless, but a newcomer reads `error:` as a failure. For
/// the probe the variable then points at a private directory of this user (nothing is written
/// into it). This runs before the CLI starts any thread, so changing the environment is safe.
pub fn request_gpu(policy: AdapterPolicy) -> Result<Arc<GpuContext>, optiscope_gpu::GpuError> {
    #[cfg(unix)]
    {
        let valid =
            std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|d| std::path::Path::new(&d).is_dir());
        if !valid {
            use std::os::unix::fs::DirBuilderExt;
            let user = std::env::var("USER").unwrap_or_else(|_| "user".into());
            let dir = std::env::temp_dir().join(format!("optiscope-runtime-{user}"));
            let made = std::fs::DirBuilder::new().mode(0o700).create(&dir);
            if made.is_ok() || dir.is_dir() {
                std::env::set_var("XDG_RUNTIME_DIR", &dir);
            }
        }
    }
    GpuContext::request_blocking(policy)
}

impl Executor {
    /// Picks the executor for `backend` and says which on stderr.
    pub fn select(backend: Backend) -> anyhow::Result<Self> {
        let exec = match backend {
            Backend::Cpu => Self::Cpu,
            Backend::Auto => match request_gpu(AdapterPolicy::HardwareOnly) {
                Ok(ctx) => Self::Gpu(ctx),
                Err(why) => {
                    eprintln!("backend: CPU ({why})");
                    return Ok(Self::Cpu);
                }
            },
            Backend::Gpu => Self::Gpu(request_gpu(AdapterPolicy::AllowSoftware).map_err(|e| {
                anyhow::anyhow!("--backend gpu: {e}; use --backend cpu or auto to run on the CPU")
            })?),
        };
        match &exec {
            Self::Cpu => eprintln!("backend: CPU"),
            Self::Gpu(ctx) => eprintln!("backend: GPU, {}", ctx.describe()),
        }
        Ok(exec)
    }

    /// Builds `cfg`'s optimizer on this executor.
    pub fn build(
        &self,
        cfg: &OptimizerConfig,
        params: &[Param],
    ) -> Result<Box<dyn Optimizer>, ConfigError> {
        match self {
            Self::Cpu => cfg.build(params),
            Self::Gpu(ctx) => Ok(Box::new(GpuOptimizer::new(ctx.clone(), cfg, params)?)),
        }
    }
}
