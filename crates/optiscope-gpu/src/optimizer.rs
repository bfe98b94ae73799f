//! [`GpuOptimizer`]: an optimizer whose state lives on the GPU, behind core's host-side
//! `Optimizer` interface (native only: it reads parameters back after every step).

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use optiscope_core::optim::{
    check_grads, ConfigError, Executor, OptimError, Optimizer, OptimizerConfig, Param, ZoPlan,
    ZoStep,
};
use optiscope_core::Tensor;

use crate::context::{GpuBuffer, GpuContext};
use crate::device::GpuDevice;

/// An optimizer executed by the GPU kernels. Parameters are uploaded before and read back after
/// every step, so the host `Param`s stay the truth that problems and metrics see; the optimizer's
/// state (moments, momentum, Schedule-Free's z) never leaves the GPU.
pub struct GpuOptimizer {
    /// Behind a mutex because `eval_params` (which takes `&self`) records work too.
    dev: Mutex<GpuDevice>,
    exec: Box<dyn Executor<GpuDevice>>,
    params: Vec<GpuBuffer>,
}

impl GpuOptimizer {
    /// Builds `config`'s executor on `ctx` for `params`.
    pub fn new(
        ctx: Arc<GpuContext>,
        config: &OptimizerConfig,
        params: &[Param],
    ) -> Result<Self, ConfigError> {
        let mut dev = GpuDevice::new(ctx);
        let exec = config.build_on(&mut dev, params)?;
        let params = params.iter().map(|p| dev.upload(p.value.data())).collect();
        Ok(Self {
            dev: Mutex::new(dev),
            exec,
            params,
        })
    }

    fn device(&self) -> MutexGuard<'_, GpuDevice> {
        self.dev.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn upload(&self, params: &[Param]) {
        let mut dev = self.device();
        for (buf, p) in self.params.iter().zip(params) {
            dev.write(buf, p.value.data());
        }
    }

    fn download(&self, params: &mut [Param]) -> Result<(), OptimError> {
        let mut dev = self.device();
        for (buf, p) in self.params.iter().zip(params.iter_mut()) {
            let data = dev
                .read_blocking(buf)
                .map_err(|e| OptimError::Device(e.to_string()))?;
            p.value.data_mut().copy_from_slice(&data);
        }
        Ok(())
    }

    fn check(&self) -> Result<(), OptimError> {
        self.device()
            .take_error()
            .map_or(Ok(()), |e| Err(OptimError::Device(e.to_string())))
    }
}

impl Optimizer for GpuOptimizer {
    fn step(&mut self, params: &mut [Param], grads: &[Tensor]) -> Result<(), OptimError> {
        check_grads(params, grads)?;
        self.upload(params);
        let grads: Vec<GpuBuffer> = grads
            .iter()
            .map(|g| self.device().upload(g.data()))
            .collect();
        let grad_refs: Vec<&GpuBuffer> = grads.iter().collect();
        let dev = self.dev.get_mut().unwrap_or_else(PoisonError::into_inner);
        self.exec.step(dev, &mut self.params, &grad_refs)?;
        self.check()?;
        self.download(params)
    }

    fn eval_params(&self, params: &[Param]) -> Vec<Tensor> {
        let mut dev = self.device();
        let eval = self.exec.eval_params(&mut dev, &self.params);
        params
            .iter()
            .zip(eval)
            .map(|(p, buf)| {
                // A failed read-back leaves NaN, which experiments report as a divergence.
                let data = dev
                    .read_blocking(&buf)
                    .unwrap_or_else(|_| vec![f32::NAN; p.value.len()]);
                Tensor::new(p.value.shape().to_vec(), data).unwrap_or_else(|_| p.value.clone())
            })
            .collect()
    }

    fn set_train_mode(&mut self, params: &mut [Param], train: bool) {
        self.upload(params);
        let dev = self.dev.get_mut().unwrap_or_else(PoisonError::into_inner);
        self.exec.set_train_mode(dev, &mut self.params, train);
        if self.download(params).is_err() {
            // Nothing to return through this interface; NaN makes the failure visible downstream.
            params
                .iter_mut()
                .for_each(|p| p.value.data_mut().fill(f32::NAN));
        }
    }

    fn is_train_mode(&self) -> bool {
        self.exec.is_train_mode()
    }

    fn set_lr_scale(&mut self, scale: f64) {
        self.exec.set_lr_scale(scale);
    }

    fn steps_taken(&self) -> u64 {
        self.exec.steps_taken()
    }

    fn zeroth_order(&self) -> Option<ZoPlan> {
        self.exec.zeroth_order()
    }

    /// The update on the GPU (z regenerated there; the estimate's z came from the host, equal
    /// within the normals' conformance tolerance).
    fn step_projected(&mut self, params: &mut [Param], zo: &ZoStep) -> Result<(), OptimError> {
        self.upload(params);
        let dev = self.dev.get_mut().unwrap_or_else(PoisonError::into_inner);
        self.exec.step_projected(dev, &mut self.params, zo)?;
        self.check()?;
        self.download(params)
    }
}
