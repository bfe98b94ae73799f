//! An executor's state into and out of a checkpoint: every buffer under `PREFIX` + its stable name
//! (`optim.0.exp_avg`, …), counters, flags and scalars in a map stored as JSON metadata. The
//! executors show their state through [`StateVisitor`]; these visitors copy it.

use std::collections::BTreeMap;

use super::Checkpoint;
use crate::device::OptimOps;
use crate::optim::{Executor, OptimError, StateVisitor};

/// Copies `exec`'s buffers into `out` (under `prefix`) and returns its scalars.
pub(super) fn save_executor<D: OptimOps>(
    dev: &mut D,
    exec: &mut dyn Executor<D>,
    prefix: &'static str,
    out: &mut Checkpoint,
) -> Result<BTreeMap<String, f64>, OptimError> {
    let mut saver = Saver {
        dev,
        prefix,
        out,
        scalars: BTreeMap::new(),
        error: None,
    };
    exec.visit_state(&mut saver);
    match saver.error {
        Some(e) => Err(e),
        None => Ok(saver.scalars),
    }
}

/// Overwrites `exec`'s state from `from` (its buffers under `prefix`, taken out) and `scalars`.
pub(super) fn load_executor<D: OptimOps>(
    dev: &mut D,
    exec: &mut dyn Executor<D>,
    prefix: &'static str,
    from: &mut Checkpoint,
    scalars: &BTreeMap<String, f64>,
) -> Result<(), String> {
    let mut loader = Loader {
        dev,
        prefix,
        from,
        scalars,
        error: None,
    };
    exec.visit_state(&mut loader);
    match loader.error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Copies executor state into a checkpoint.
struct Saver<'a, D: OptimOps> {
    dev: &'a mut D,
    prefix: &'static str,
    out: &'a mut Checkpoint,
    scalars: BTreeMap<String, f64>,
    error: Option<OptimError>,
}

impl<D: OptimOps> StateVisitor<D> for Saver<'_, D> {
    fn buf(&mut self, name: &str, buf: &mut D::Buf) {
        match self.dev.download(buf) {
            Ok(data) => self
                .out
                .put(format!("{}{name}", self.prefix), vec![data.len()], data),
            Err(e) => self.error = Some(e.into()),
        }
    }
    fn opt_buf(&mut self, name: &str, buf: &mut Option<D::Buf>) {
        if let Some(b) = buf {
            self.buf(name, b);
        }
    }
    fn scalar(&mut self, name: &str, value: &mut f64) {
        self.scalars.insert(name.into(), *value);
    }
    fn count(&mut self, name: &str, value: &mut u64) {
        self.scalars.insert(name.into(), *value as f64);
    }
    fn flag(&mut self, name: &str, value: &mut bool) {
        self.scalars
            .insert(name.into(), f64::from(u8::from(*value)));
    }
}

/// Overwrites executor state from a checkpoint.
struct Loader<'a, D: OptimOps> {
    dev: &'a mut D,
    prefix: &'static str,
    from: &'a mut Checkpoint,
    scalars: &'a BTreeMap<String, f64>,
    error: Option<String>,
}

impl<D: OptimOps> Loader<'_, D> {
    fn value(&mut self, name: &str) -> Option<f64> {
        let v = self.scalars.get(name).copied();
        if v.is_none() && self.error.is_none() {
            self.error = Some(format!("no optimizer value `{}{name}`", self.prefix));
        }
        v
    }
}

impl<D: OptimOps> StateVisitor<D> for Loader<'_, D> {
    fn buf(&mut self, name: &str, buf: &mut D::Buf) {
        let key = format!("{}{name}", self.prefix);
        let len = match self.dev.download(buf) {
            Ok(d) => d.len(),
            Err(e) => {
                self.error = Some(e.to_string());
                return;
            }
        };
        match self.from.take(&key, len) {
            Ok(data) => *buf = self.dev.upload(&data),
            Err(e) => {
                self.error.get_or_insert(e);
            }
        }
    }
    fn opt_buf(&mut self, name: &str, buf: &mut Option<D::Buf>) {
        let key = format!("{}{name}", self.prefix);
        match self.from.tensors.remove(&key) {
            Some((_, data)) => *buf = Some(self.dev.upload(&data)),
            None => *buf = None,
        }
    }
    fn scalar(&mut self, name: &str, value: &mut f64) {
        if let Some(v) = self.value(name) {
            *value = v;
        }
    }
    fn count(&mut self, name: &str, value: &mut u64) {
        if let Some(v) = self.value(name) {
            *value = v as u64;
        }
    }
    fn flag(&mut self, name: &str, value: &mut bool) {
        if let Some(v) = self.value(name) {
            *value = v != 0.0;
        }
    }
}
