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

impl Executor {
    /// Picks the executor for `backend` and says which on stderr.
    pub fn select(backend: Backend) -> anyhow::Result<Self> {
        let exec = match backend {
            Backend::Cpu => Self::Cpu,
            Backend::Auto => match GpuContext::request_blocking(AdapterPolicy::HardwareOnly) {
                Ok(ctx) => Self::Gpu(ctx),
                Err(why) => {
                    eprintln!("backend: CPU ({why})");
                    return Ok(Self::Cpu);
                }
            },
            Backend::Gpu => Self::Gpu(
                GpuContext::request_blocking(AdapterPolicy::AllowSoftware).map_err(|e| {
                    anyhow::anyhow!(
                        "--backend gpu: {e}; use --backend cpu or auto to run on the CPU"
                    )
                })?,
            ),
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
