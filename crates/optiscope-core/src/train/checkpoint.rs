//! Checkpoints as safetensors: every tensor is little-endian f32 under a dotted name, and the
//! header's string metadata carries the resolved config and the scalar state as JSON, so
//! `safetensors.torch.load_file` (or `safetensors.numpy`) reads the tensors and
//! `safe_open(...).metadata()` the rest.

use std::collections::{BTreeMap, HashMap};

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

/// Value of the `format` metadata key.
pub const FORMAT: &str = "optiscope-checkpoint-v1";

/// Tensors and string metadata.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Checkpoint {
    /// Name → (shape, data).
    pub tensors: BTreeMap<String, (Vec<usize>, Vec<f32>)>,
    /// String metadata (besides `format`).
    pub meta: BTreeMap<String, String>,
}

impl Checkpoint {
    /// Adds a tensor.
    pub fn put(&mut self, name: impl Into<String>, shape: Vec<usize>, data: Vec<f32>) {
        self.tensors.insert(name.into(), (shape, data));
    }

    /// The tensor `name`, checked to hold `len` values.
    pub fn take(&mut self, name: &str, len: usize) -> Result<Vec<f32>, String> {
        let (_, data) = self
            .tensors
            .remove(name)
            .ok_or_else(|| format!("the checkpoint has no tensor `{name}`"))?;
        if data.len() != len {
            return Err(format!(
                "tensor `{name}` has {} values, the run needs {len}",
                data.len()
            ));
        }
        Ok(data)
    }

    /// The safetensors bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, String> {
        let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = self
            .tensors
            .iter()
            .map(|(k, (shape, data))| {
                let raw: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
                (k.clone(), shape.clone(), raw)
            })
            .collect();
        let views = bytes
            .iter()
            .map(|(k, shape, raw)| {
                TensorView::new(Dtype::F32, shape.clone(), raw).map(|v| (k.clone(), v))
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        let mut meta: HashMap<String, String> = self.meta.clone().into_iter().collect();
        meta.insert("format".into(), FORMAT.into());
        safetensors::serialize(views, Some(meta)).map_err(|e| e.to_string())
    }

    /// Parses safetensors bytes written by [`Self::to_bytes`]; anything else is refused.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        let (_, header) = SafeTensors::read_metadata(bytes)
            .map_err(|e| format!("not a safetensors file ({e})"))?;
        let mut meta: BTreeMap<String, String> = header
            .metadata()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        match meta.remove("format").as_deref() {
            Some(FORMAT) => {}
            Some(other) => return Err(format!("unknown checkpoint format `{other}`")),
            None => return Err("not an optiscope checkpoint (no `format` metadata)".into()),
        }
        let st = SafeTensors::deserialize(bytes).map_err(|e| format!("corrupt tensors: {e}"))?;
        let mut tensors = BTreeMap::new();
        for (name, view) in st.tensors() {
            if view.dtype() != Dtype::F32 {
                return Err(format!(
                    "tensor `{name}` is {:?}, expected F32",
                    view.dtype()
                ));
            }
            let data = view
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            tensors.insert(name, (view.shape().to_vec(), data));
        }
        Ok(Self { tensors, meta })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let mut c = Checkpoint::default();
        c.put(
            "a.b",
            vec![2, 2],
            vec![1.0, -2.5, f32::MIN_POSITIVE, 3.0e-39],
        );
        c.put("empty", vec![0], vec![]);
        c.meta.insert("config".into(), "{\"x\":1}".into());
        let bytes = c.to_bytes().unwrap();
        assert_eq!(Checkpoint::from_bytes(&bytes).unwrap(), c);
        assert!(Checkpoint::from_bytes(&bytes[..bytes.len() - 3]).is_err());
        assert!(Checkpoint::from_bytes(b"garbage")
            .unwrap_err()
            .contains("not a safetensors"));
        let mut got = Checkpoint::from_bytes(&bytes).unwrap();
        assert!(got.take("a.b", 3).unwrap_err().contains("needs 3"));
        assert!(got
            .take("nope", 1)
            .unwrap_err()
            .contains("no tensor `nope`"));
    }
}
