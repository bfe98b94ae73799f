//! `model.safetensors`: a GPT's weights under nanoGPT's `state_dict` names, f32, `[out, in]`,
//! with `lm_head.weight` written as a copy of the tied `transformer.wte.weight`, and the string
//! metadata `vocab` (a JSON list of characters), `n_layer`, `n_head`, `n_embd`, `block_size` — so
//! that `GPT(config).load_state_dict(safetensors.torch.load_file(path))` works, and
//! `optiscope train --init` and `optiscope sample` read it back. Reading accepts the file without
//! `lm_head.weight` (or with it equal to `wte`) and ignores nanoGPT's causal-mask buffers
//! (`transformer.h.{i}.attn.bias`, present in checkpoints of its non-flash attention).

use std::collections::HashMap;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::corpus::Vocab;
use crate::models::GptConfig;

/// The tied head's name in nanoGPT's `state_dict`.
pub const LM_HEAD: &str = "lm_head.weight";
/// The token embedding's name.
pub const WTE: &str = "transformer.wte.weight";

/// A tensor by name, shape and row-major values.
pub type NamedTensor = (String, Vec<usize>, Vec<f32>);

/// A GPT read from a weights file.
#[derive(Debug, Clone, PartialEq)]
pub struct GptWeights {
    /// The sizes (the vocabulary's size from `vocab`).
    pub cfg: GptConfig,
    /// The characters of the tokens.
    pub vocab: Vocab,
    /// One value vector per parameter, in [`GptConfig::param_specs`] order.
    pub values: Vec<Vec<f32>>,
}

/// The bytes of `model.safetensors` for `weights` (by name, shape and value, in
/// [`GptConfig::param_specs`] order).
pub fn to_bytes(
    cfg: &GptConfig,
    vocab: &Vocab,
    weights: &[NamedTensor],
) -> Result<Vec<u8>, String> {
    let raw: Vec<(String, Vec<usize>, Vec<u8>)> = weights
        .iter()
        .map(|(n, s, d)| {
            (
                n.clone(),
                s.clone(),
                d.iter().flat_map(|v| v.to_le_bytes()).collect(),
            )
        })
        .collect();
    let head = raw
        .iter()
        .find(|(n, _, _)| n == WTE)
        .map(|(_, s, d)| (LM_HEAD.to_string(), s.clone(), d.clone()))
        .ok_or_else(|| format!("no `{WTE}` among the weights"))?;
    let views = raw
        .iter()
        .chain(std::iter::once(&head))
        .map(|(n, s, d)| TensorView::new(Dtype::F32, s.clone(), d).map(|v| (n.clone(), v)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let vocab_json = serde_json::to_string(vocab).map_err(|e| e.to_string())?;
    let meta: HashMap<String, String> = [
        ("vocab".to_string(), vocab_json),
        ("n_layer".into(), cfg.n_layer.to_string()),
        ("n_head".into(), cfg.n_head.to_string()),
        ("n_embd".into(), cfg.n_embd.to_string()),
        ("block_size".into(), cfg.block_size.to_string()),
    ]
    .into_iter()
    .collect();
    safetensors::serialize(views, Some(meta)).map_err(|e| e.to_string())
}

/// A weights file read back and checked: the metadata, every parameter present with its shape,
/// nothing else (but the tied head and nanoGPT's mask buffers).
pub fn from_bytes(bytes: &[u8]) -> Result<GptWeights, String> {
    let (_, header) =
        SafeTensors::read_metadata(bytes).map_err(|e| format!("not a safetensors file ({e})"))?;
    let meta = header.metadata().clone().unwrap_or_default();
    let get = |k: &str| {
        meta.get(k).ok_or_else(|| {
            format!("no `{k}` metadata (a GPT weights file has vocab, n_layer, n_head, n_embd, block_size)")
        })
    };
    let size = |k: &str| -> Result<usize, String> {
        get(k)?.parse::<usize>().map_err(|e| {
            format!(
                "metadata `{k}` = {:?}: {e}",
                get(k).map(String::as_str).unwrap_or("")
            )
        })
    };
    let chars: Vec<char> = serde_json::from_str(get("vocab")?)
        .map_err(|e| format!("metadata `vocab` is not a JSON list of characters: {e}"))?;
    let vocab = Vocab::from_chars(chars).map_err(|e| format!("metadata `vocab`: {e}"))?;
    let cfg = GptConfig {
        vocab_size: vocab.len(),
        block_size: size("block_size")?,
        n_layer: size("n_layer")?,
        n_head: size("n_head")?,
        n_embd: size("n_embd")?,
    };
    cfg.validate().map_err(|e| format!("metadata: {e}"))?;
    let st = SafeTensors::deserialize(bytes).map_err(|e| format!("corrupt tensors: {e}"))?;
    let read = |name: &str, shape: &[usize]| -> Result<Vec<f32>, String> {
        let view = st
            .tensor(name)
            .map_err(|_| format!("no tensor `{name}` (a GPT with n_layer = {})", cfg.n_layer))?;
        if view.dtype() != Dtype::F32 {
            return Err(format!(
                "tensor `{name}` is {:?}, expected F32",
                view.dtype()
            ));
        }
        if view.shape() != shape {
            return Err(format!(
                "tensor `{name}` has shape {:?}, the metadata's sizes give {shape:?}",
                view.shape()
            ));
        }
        Ok(view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    };
    let specs = cfg.param_specs();
    let values = specs
        .iter()
        .map(|(name, shape, _)| read(name, shape))
        .collect::<Result<Vec<_>, _>>()?;
    if st.names().contains(&LM_HEAD) {
        let head = read(LM_HEAD, &specs[0].1)?;
        if head != values[0] {
            return Err(format!(
                "`{LM_HEAD}` differs from `{WTE}`: optiscope's GPT ties the head to the embedding"
            ));
        }
    }
    let known: std::collections::HashSet<&str> = specs.iter().map(|s| s.0.as_str()).collect();
    let is_mask = |n: &str| {
        n.strip_prefix("transformer.h.")
            .and_then(|r| r.split_once('.'))
            .is_some_and(|(i, rest)| i.parse::<usize>().is_ok() && rest == "attn.bias")
    };
    if let Some(extra) = st
        .names()
        .into_iter()
        .find(|&n| !known.contains(n) && n != LM_HEAD && !is_mask(n))
    {
        return Err(format!(
            "unexpected tensor `{extra}` (not a parameter of nanoGPT's GPT with bias=True)"
        ));
    }
    Ok(GptWeights { cfg, vocab, values })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::Gpt;

    fn sample() -> (GptConfig, Vocab, Vec<NamedTensor>) {
        let vocab = Vocab::of_text("hello, world\n");
        let cfg = GptConfig {
            vocab_size: vocab.len(),
            block_size: 8,
            n_layer: 2,
            n_head: 2,
            n_embd: 8,
        };
        let w = Gpt::new(cfg)
            .init(4)
            .into_iter()
            .map(|p| (p.name, p.value.shape().to_vec(), p.value.into_data()))
            .collect();
        (cfg, vocab, w)
    }

    #[test]
    fn round_trip_with_the_tied_head_and_metadata() {
        let (cfg, vocab, w) = sample();
        let bytes = to_bytes(&cfg, &vocab, &w).unwrap();
        let back = from_bytes(&bytes).unwrap();
        assert_eq!(back.cfg, cfg);
        assert_eq!(back.vocab, vocab);
        assert_eq!(
            back.values,
            w.iter().map(|t| t.2.clone()).collect::<Vec<_>>()
        );
        let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
        let meta = header.metadata().clone().unwrap();
        assert_eq!(
            meta["vocab"],
            "[\"\\n\",\" \",\",\",\"d\",\"e\",\"h\",\"l\",\"o\",\"r\",\"w\"]"
        );
        assert_eq!(meta["n_layer"], "2");
        assert_eq!(meta.len(), 5);
        let st = SafeTensors::deserialize(&bytes).unwrap();
        assert_eq!(
            st.tensor(LM_HEAD).unwrap().data(),
            st.tensor(WTE).unwrap().data()
        );
        assert_eq!(st.names().len(), w.len() + 1);
    }

    #[test]
    fn refusals_name_what_is_wrong() {
        let (cfg, vocab, mut w) = sample();
        let ok = to_bytes(&cfg, &vocab, &w).unwrap();
        assert!(from_bytes(&ok[..ok.len() - 1]).is_err());
        assert!(from_bytes(b"nonsense")
            .unwrap_err()
            .contains("not a safetensors"));
        w.push((
            "transformer.h.0.attn.bias".into(),
            vec![1, 1, 8, 8],
            vec![1.0; 64],
        ));
        from_bytes(&to_bytes(&cfg, &vocab, &w).unwrap()).unwrap();
        w.push(("extra.weight".into(), vec![1], vec![0.0]));
        let e = from_bytes(&to_bytes(&cfg, &vocab, &w).unwrap()).unwrap_err();
        assert!(e.contains("unexpected tensor `extra.weight`"), "{e}");
        w.pop();
        w[4].1 = vec![8, 24];
        let e = from_bytes(&to_bytes(&cfg, &vocab, &w).unwrap()).unwrap_err();
        assert!(e.contains("has shape"), "{e}");
        let bad = GptConfig { n_layer: 3, ..cfg };
        let (_, _, w) = sample();
        let e = from_bytes(&to_bytes(&bad, &vocab, &w).unwrap()).unwrap_err();
        assert!(e.contains("no tensor `transformer.h.2.ln_1.weight`"), "{e}");
    }
}
