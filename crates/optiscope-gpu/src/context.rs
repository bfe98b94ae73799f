//! Device acquisition, pipelines, buffers, dispatch and asynchronous read-back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use thiserror::Error;
use wgpu::util::DeviceExt;

use crate::shaders::Shader;

/// Why no GPU executor is available, or a GPU operation failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GpuError {
    /// No adapter at all.
    #[error("no GPU adapter found (backends tried: {backends})")]
    NoAdapter {
        /// The backends that were searched.
        backends: String,
    },
    /// Only software rasterizers (lavapipe, llvmpipe, SwiftShader), which are used only on request.
    #[error("only a software adapter is available ({name}); it is used only when asked for (--backend gpu)")]
    SoftwareOnly {
        /// The software adapter's name.
        name: String,
    },
    /// The adapter refused to give a device.
    #[error("requesting a device from {adapter} failed: {reason}")]
    RequestDevice {
        /// The adapter.
        adapter: String,
        /// What wgpu said.
        reason: String,
    },
    /// A buffer could not be read back (device lost, out of memory, ...).
    #[error("reading results back from the GPU failed: {0}")]
    ReadBack(String),
    /// The work is larger than one dispatch supports.
    #[error("{what} needs {needed} workgroups in one dimension, the device allows {allowed}")]
    TooLarge {
        /// What was dispatched.
        what: &'static str,
        /// Workgroups needed.
        needed: u64,
        /// The device's limit.
        allowed: u32,
    },
    /// Something this executor cannot do on this platform.
    #[error("{0}")]
    Unsupported(String),
}

/// Which adapters [`GpuContext::request`] accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdapterPolicy {
    /// Discrete, integrated or virtual GPUs only (the `auto` backend).
    HardwareOnly,
    /// Also software adapters such as lavapipe (`--backend gpu`, the conformance tests).
    AllowSoftware,
}

/// A wgpu device and queue with a pipeline cache: everything the kernels need.
pub struct GpuContext {
    /// The device.
    pub device: wgpu::Device,
    /// Its queue.
    pub queue: wgpu::Queue,
    /// What the adapter says about itself.
    pub info: wgpu::AdapterInfo,
    modules: Mutex<HashMap<&'static str, wgpu::ShaderModule>>,
    pipelines: Mutex<HashMap<(&'static str, &'static str), wgpu::ComputePipeline>>,
}

impl std::fmt::Debug for GpuContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuContext")
            .field("adapter", &self.describe())
            .finish()
    }
}

fn rank(t: wgpu::DeviceType) -> u8 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    }
}

impl GpuContext {
    /// Finds an adapter under `policy` (a real GPU first; the `WGPU_BACKEND` environment variable
    /// restricts the backends) and opens a device with the adapter's own limits.
    pub async fn request(policy: AdapterPolicy) -> Result<Arc<Self>, GpuError> {
        // Vulkan, Metal, DX12 and the browser's WebGPU: the backends with compute shaders. (GL has
        // none worth using here, and probing it on headless Linux only prints warnings.) The
        // WGPU_BACKEND environment variable still overrides this.
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
        desc.backends = wgpu::Backends::PRIMARY;
        let desc = desc.with_env();
        let backends = format!("{:?}", desc.backends);
        let instance = wgpu::Instance::new(desc);
        #[cfg(not(target_arch = "wasm32"))]
        let mut adapters = instance.enumerate_adapters(wgpu::Backends::all()).await;
        #[cfg(target_arch = "wasm32")]
        let mut adapters: Vec<wgpu::Adapter> = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                ..Default::default()
            })
            .await
            .into_iter()
            .collect();
        adapters.sort_by_key(|a| rank(a.get_info().device_type));
        let Some(best) = adapters.first() else {
            return Err(GpuError::NoAdapter { backends });
        };
        let info = best.get_info();
        if info.device_type == wgpu::DeviceType::Cpu && policy == AdapterPolicy::HardwareOnly {
            return Err(GpuError::SoftwareOnly { name: info.name });
        }
        let adapter = adapters.swap_remove(0);
        let desc = wgpu::DeviceDescriptor {
            label: Some("optiscope"),
            required_limits: adapter.limits(),
            ..Default::default()
        };
        let (device, queue) =
            adapter
                .request_device(&desc)
                .await
                .map_err(|e| GpuError::RequestDevice {
                    adapter: info.name.clone(),
                    reason: e.to_string(),
                })?;
        Ok(Arc::new(Self::from_device(device, queue, info)))
    }

    /// [`Self::request`], blocking (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn request_blocking(policy: AdapterPolicy) -> Result<Arc<Self>, GpuError> {
        pollster::block_on(Self::request(policy))
    }

    /// Wraps a device someone else opened (eframe's, in the explorer).
    pub fn from_device(device: wgpu::Device, queue: wgpu::Queue, info: wgpu::AdapterInfo) -> Self {
        Self {
            device,
            queue,
            info,
            modules: Mutex::default(),
            pipelines: Mutex::default(),
        }
    }

    /// "NAME (BACKEND, DRIVER DRIVER_INFO)", for logs and benchmark tables.
    pub fn describe(&self) -> String {
        let i = &self.info;
        let driver = [i.driver.as_str(), i.driver_info.as_str()]
            .iter()
            .filter(|s| !s.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(" ");
        format!(
            "{} ({:?}{}{})",
            i.name,
            i.backend,
            if driver.is_empty() { "" } else { ", " },
            driver
        )
    }

    /// Whether this is a software rasterizer.
    pub fn is_software(&self) -> bool {
        self.info.device_type == wgpu::DeviceType::Cpu
    }

    /// The compute pipeline of `entry` in `shader` (created once, then cached).
    pub fn pipeline(&self, shader: Shader, entry: &'static str) -> wgpu::ComputePipeline {
        let key = (shader.name, entry);
        let mut pipelines = self.pipelines.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = pipelines.get(&key) {
            return p.clone();
        }
        let mut modules = self.modules.lock().unwrap_or_else(|e| e.into_inner());
        let module = modules
            .entry(shader.name)
            .or_insert_with(|| {
                self.device
                    .create_shader_module(wgpu::ShaderModuleDescriptor {
                        label: Some(shader.name),
                        source: wgpu::ShaderSource::Wgsl(shader.source.into()),
                    })
            })
            .clone();
        let p = self
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(entry),
                layout: None,
                module: &module,
                entry_point: Some(entry),
                compilation_options: Default::default(),
                cache: None,
            });
        pipelines.insert(key, p.clone());
        p
    }

    /// A storage buffer holding `data` (at least 4 bytes: empty tensors get one unused element).
    pub fn buffer_from(&self, data: &[f32]) -> GpuBuffer {
        let contents: &[f32] = if data.is_empty() { &[0.0] } else { data };
        let buffer = self
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: None,
                contents: bytemuck::cast_slice(contents),
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_SRC
                    | wgpu::BufferUsages::COPY_DST,
            });
        GpuBuffer {
            buffer,
            len: data.len(),
        }
    }

    /// A storage buffer of `len` zeros.
    pub fn zeros(&self, len: usize) -> GpuBuffer {
        let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size: (len.max(1) * 4) as u64,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        GpuBuffer { buffer, len }
    }

    /// Overwrites `buf` with `data` (same length) at the next submission.
    pub fn write(&self, buf: &GpuBuffer, data: &[f32]) {
        assert_eq!(
            buf.len,
            data.len(),
            "write: length mismatch (a caller's invariant)"
        );
        if !data.is_empty() {
            self.queue
                .write_buffer(&buf.buffer, 0, bytemuck::cast_slice(data));
        }
    }

    /// Records one dispatch of `entry` into `encoder`, with `uniform` at binding 0 and `buffers` at
    /// the given bindings.
    pub fn dispatch(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        shader: Shader,
        entry: &'static str,
        uniform: &[u8],
        buffers: &[(u32, &wgpu::Buffer)],
        workgroups: [u32; 3],
    ) {
        let pipeline = self.pipeline(shader, entry);
        let uniform = self
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("uniform"),
                contents: uniform,
                usage: wgpu::BufferUsages::UNIFORM,
            });
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
            resource: uniform.as_entire_binding(),
        }];
        entries.extend(buffers.iter().map(|(binding, b)| wgpu::BindGroupEntry {
            binding: *binding,
            resource: b.as_entire_binding(),
        }));
        let bind_group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(entry),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        });
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some(entry),
            timestamp_writes: None,
        });
        pass.set_pipeline(&pipeline);
        pass.set_bind_group(0, &bind_group, &[]);
        pass.dispatch_workgroups(workgroups[0], workgroups[1], workgroups[2]);
    }

    /// Workgroups for `n` threads in groups of `size` along x, checked against the device limit.
    pub fn groups_1d(&self, what: &'static str, n: usize, size: u32) -> Result<[u32; 3], GpuError> {
        let needed = (n as u64).div_ceil(u64::from(size)).max(1);
        let allowed = self.device.limits().max_compute_workgroups_per_dimension;
        if needed > u64::from(allowed) {
            return Err(GpuError::TooLarge {
                what,
                needed,
                allowed,
            });
        }
        Ok([needed as u32, 1, 1])
    }

    /// Workgroups for `n` threads in groups of `size`, flat: along x up to the device limit, then
    /// rows of such along y (a shader reads its index as `gid.x + gid.y · groups.x · size`).
    pub fn groups_flat(
        &self,
        what: &'static str,
        n: usize,
        size: u32,
    ) -> Result<[u32; 3], GpuError> {
        let needed = (n as u64).div_ceil(u64::from(size)).max(1);
        let allowed = u64::from(self.device.limits().max_compute_workgroups_per_dimension);
        if needed <= allowed {
            return Ok([needed as u32, 1, 1]);
        }
        let y = needed.div_ceil(allowed);
        if y > allowed {
            return Err(GpuError::TooLarge {
                what,
                needed,
                allowed: allowed as u32,
            });
        }
        Ok([allowed as u32, y as u32, 1])
    }

    /// A new command encoder.
    pub fn encoder(&self) -> wgpu::CommandEncoder {
        self.device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("optiscope"),
            })
    }

    /// Submits `encoder`.
    pub fn submit(&self, encoder: wgpu::CommandEncoder) {
        self.queue.submit(Some(encoder.finish()));
    }

    /// Copies `buf` to the host. Asynchronous: on the web the callback fires from the browser's
    /// event loop, so this must be awaited, never blocked on.
    pub async fn read(&self, buf: &GpuBuffer) -> Result<Vec<f32>, GpuError> {
        if buf.len == 0 {
            return Ok(vec![]); // an empty Vec<u8> need not be aligned for f32
        }
        let bytes = self.read_bytes(&buf.buffer, (buf.len * 4) as u64).await?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }

    /// Copies the first `size` bytes of `buffer` to the host (see [`Self::read`]).
    pub async fn read_bytes(&self, buffer: &wgpu::Buffer, size: u64) -> Result<Vec<u8>, GpuError> {
        self.read_regions(&[(buffer, size)]).await
    }

    /// Copies every buffer of `bufs` to the host in one submission and one mapping (reading them
    /// one by one would wait for the queue once per buffer — behind whatever was submitted
    /// meanwhile). Asynchronous, as [`Self::read`].
    pub async fn read_all(&self, bufs: &[GpuBuffer]) -> Result<Vec<Vec<f32>>, GpuError> {
        let regions: Vec<(&wgpu::Buffer, u64)> = bufs
            .iter()
            .map(|b| (&b.buffer, (b.len * 4) as u64))
            .collect();
        let bytes = self.read_regions(&regions).await?;
        let mut out = Vec::with_capacity(bufs.len());
        let mut at = 0;
        for b in bufs {
            // Copied out per buffer: a Vec<u8> slice need not be aligned for f32.
            out.push(bytemuck::pod_collect_to_vec(&bytes[at..at + b.len * 4]));
            at += b.len * 4;
        }
        Ok(out)
    }

    /// The first `size` bytes of each `(buffer, size)`, concatenated: one staging buffer, one
    /// submission of the copies, one mapping.
    async fn read_regions(&self, regions: &[(&wgpu::Buffer, u64)]) -> Result<Vec<u8>, GpuError> {
        let total: u64 = regions.iter().map(|(_, size)| size).sum();
        if total == 0 {
            return Ok(vec![]);
        }
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("read-back"),
            size: total,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder = self.encoder();
        let mut offset = 0;
        for &(buffer, size) in regions.iter().filter(|(_, size)| *size > 0) {
            encoder.copy_buffer_to_buffer(buffer, 0, &staging, offset, size);
            offset += size;
        }
        self.submit(encoder);
        let (tx, rx) = flume::bounded(1);
        staging.slice(..).map_async(wgpu::MapMode::Read, move |r| {
            // The receiver lives until the message arrives; a send error only means it was dropped.
            let _ = tx.send(r);
        });
        #[cfg(not(target_arch = "wasm32"))]
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| GpuError::ReadBack(e.to_string()))?;
        rx.recv_async()
            .await
            .map_err(|e| GpuError::ReadBack(e.to_string()))?
            .map_err(|e| GpuError::ReadBack(e.to_string()))?;
        let data = staging
            .slice(..)
            .get_mapped_range()
            .map_err(|e| GpuError::ReadBack(e.to_string()))?
            .to_vec();
        staging.unmap();
        Ok(data)
    }

    /// [`Self::read`], blocking (native only: a blocking read deadlocks in the browser).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn read_blocking(&self, buf: &GpuBuffer) -> Result<Vec<f32>, GpuError> {
        pollster::block_on(self.read(buf))
    }

    /// Waits until the queue is idle (native; benchmarks time whole submissions with it).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn wait_idle(&self) -> Result<(), GpuError> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map(|_| ())
            .map_err(|e| GpuError::ReadBack(e.to_string()))
    }
}

/// A storage buffer of `len` f32 values.
#[derive(Debug, Clone)]
pub struct GpuBuffer {
    /// The wgpu buffer (at least 4 bytes).
    pub buffer: wgpu::Buffer,
    /// Number of f32 values.
    pub len: usize,
}
