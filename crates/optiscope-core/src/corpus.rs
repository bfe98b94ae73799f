//! Character-level text for the language model: the vocabulary (the sorted distinct characters
//! of the training text, as nanoGPT's `shakespeare_char/prepare.py`), the train/validation split
//! (the last `val_fraction` of the characters held out), and the random windows of `block + 1`
//! characters a training step reads, drawn by the counter-based generator. The tiny-Shakespeare
//! corpus ships in `data/` and is embedded here.

use serde::{Deserialize, Serialize};

use crate::rng::{stream, Philox, StreamKind};

/// The name of the shipped corpus in configs and on the command line.
pub const TINYSHAKESPEARE: &str = "tinyshakespeare";

/// The shipped tiny-Shakespeare text (1 115 394 characters, 65 distinct).
pub fn tinyshakespeare() -> String {
    use std::io::Read;
    let gz: &[u8] = include_bytes!("../../../data/tinyshakespeare.txt.gz");
    let mut text = String::new();
    match flate2::read::GzDecoder::new(gz).read_to_string(&mut text) {
        Ok(_) => text,
        Err(e) => unreachable!("the shipped corpus is valid UTF-8 gzip (tested): {e}"),
    }
}

/// A character vocabulary: token `i` is the `i`-th character in sorted order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Vocab {
    chars: Vec<char>,
}

/// The most distinct characters a vocabulary may have.
pub const MAX_VOCAB: usize = 1 << 16;

impl Vocab {
    /// The sorted distinct characters of `text`.
    pub fn of_text(text: &str) -> Self {
        let mut chars: Vec<char> = text.chars().collect();
        chars.sort_unstable();
        chars.dedup();
        Self { chars }
    }

    /// A vocabulary from its characters (a checkpoint's list): sorted, distinct, non-empty.
    pub fn from_chars(chars: Vec<char>) -> Result<Self, String> {
        if chars.is_empty() || chars.len() > MAX_VOCAB {
            return Err(format!(
                "a vocabulary must have 1..={MAX_VOCAB} characters, this one has {}",
                chars.len()
            ));
        }
        if let Some(w) = chars.windows(2).find(|w| w[0] >= w[1]) {
            return Err(format!(
                "the vocabulary is not sorted and distinct ({:?} before {:?})",
                w[0], w[1]
            ));
        }
        Ok(Self { chars })
    }

    /// Tokens in the vocabulary.
    pub fn len(&self) -> usize {
        self.chars.len()
    }

    /// Whether it is empty (never, for a vocabulary built from a non-empty text).
    pub fn is_empty(&self) -> bool {
        self.chars.is_empty()
    }

    /// The characters, by token.
    pub fn chars(&self) -> &[char] {
        &self.chars
    }

    /// `text` as tokens; a character outside the vocabulary is an error naming it and where it
    /// first occurs.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, String> {
        text.chars()
            .enumerate()
            .map(|(i, ch)| {
                self.chars
                    .binary_search(&ch)
                    .map(|t| t as u32)
                    .map_err(|_| {
                        format!(
                            "character {ch:?} (at offset {i} of the text) is not in the model's vocabulary of {} characters",
                            self.chars.len()
                        )
                    })
            })
            .collect()
    }

    /// Tokens as text (a token past the vocabulary becomes U+FFFD).
    pub fn decode(&self, tokens: &[u32]) -> String {
        tokens
            .iter()
            .map(|&t| self.chars.get(t as usize).copied().unwrap_or('\u{fffd}'))
            .collect()
    }
}

/// A text split for training: tokens of the first part and of the held-out last part.
#[derive(Debug, Clone, PartialEq)]
pub struct Corpus {
    /// The vocabulary.
    pub vocab: Vocab,
    /// The training tokens (the first `⌊n·(1 − val_fraction)⌋` characters).
    pub train: Vec<u32>,
    /// The validation tokens (the rest; empty when `val_fraction` is 0).
    pub val: Vec<u32>,
}

impl Corpus {
    /// `text` split with the last `val_fraction` of its characters held out (nanoGPT's
    /// `data[:int(n*0.9)]`, `data[int(n*0.9):]`), tokenized by `vocab` (or by the text's own
    /// characters when None).
    pub fn new(text: &str, val_fraction: f64, vocab: Option<Vocab>) -> Result<Self, String> {
        if !(0.0..1.0).contains(&val_fraction) {
            return Err(format!("val_fraction {val_fraction} must be in [0, 1)"));
        }
        if text.is_empty() {
            return Err("the text is empty".into());
        }
        let vocab = vocab.unwrap_or_else(|| Vocab::of_text(text));
        if vocab.len() > MAX_VOCAB {
            return Err(format!(
                "the text has {} distinct characters; at most {MAX_VOCAB} are allowed",
                vocab.len()
            ));
        }
        let tokens = vocab.encode(text)?;
        let n_train = (tokens.len() as f64 * (1.0 - val_fraction)) as usize;
        let (train, val) = tokens.split_at(n_train);
        Ok(Self {
            vocab,
            train: train.to_vec(),
            val: val.to_vec(),
        })
    }
}

/// Which windows: the training batches (indexed by step) or the fixed evaluation batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Windows {
    /// The batch of training step `step` (0-based).
    Train,
    /// The evaluation set: batch `i` of the `eval_iters` drawn once for the run.
    Eval,
}

/// `batch` windows of `block + 1` tokens from `tokens` for batch `index` of `which`: the inputs
/// `x` (`batch × block`) and the next tokens `y`, as f32 for the device. Window `b` starts at
/// `u32(seed; Text stream, batch·index + b) mod (len − block)` (nanoGPT's
/// `torch.randint(len(data) − block_size, …)`; the modulo's bias is below `span / 2³²`, 3·10⁻⁴
/// for tiny Shakespeare). `tokens` must hold more than `block` tokens.
pub fn windows(
    tokens: &[u32],
    block: usize,
    batch: usize,
    seed: u64,
    which: Windows,
    index: u64,
) -> (Vec<f32>, Vec<f32>) {
    assert!(
        tokens.len() > block,
        "{} tokens for windows of {} + 1",
        tokens.len(),
        block
    );
    let rng = Philox::new(seed);
    let id = match which {
        Windows::Train => 0,
        Windows::Eval => 1,
    };
    let s = stream(StreamKind::Text, id);
    let span = (tokens.len() - block) as u64;
    let (mut x, mut y) = (
        Vec::with_capacity(batch * block),
        Vec::with_capacity(batch * block),
    );
    for b in 0..batch as u64 {
        let start = (u64::from(rng.u32_at(s, index * batch as u64 + b)) % span) as usize;
        x.extend(tokens[start..start + block].iter().map(|&t| t as f32));
        y.extend(
            tokens[start + 1..start + block + 1]
                .iter()
                .map(|&t| t as f32),
        );
    }
    (x, y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_corpus_is_nanogpts_shakespeare_char() {
        let text = tinyshakespeare();
        assert_eq!(text.chars().count(), 1_115_394);
        let c = Corpus::new(&text, 0.1, None).unwrap();
        // nanoGPT's prepare.py: vocab size 65, train 1 003 854 tokens, val 111 540 tokens.
        assert_eq!(c.vocab.len(), 65);
        assert_eq!((c.train.len(), c.val.len()), (1_003_854, 111_540));
        assert_eq!(c.vocab.chars()[0], '\n');
        assert_eq!(c.vocab.decode(&c.train[..14]), "First Citizen:");
    }

    #[test]
    fn encoding_round_trips_and_refuses_unknown_characters() {
        let v = Vocab::of_text("hello world");
        assert_eq!(v.chars(), &[' ', 'd', 'e', 'h', 'l', 'o', 'r', 'w']);
        let t = v.encode("hold").unwrap();
        assert_eq!(v.decode(&t), "hold");
        let e = v.encode("help!").unwrap_err();
        assert!(
            e.contains("'p'") && e.contains("at offset 3 of the text"),
            "{e}"
        );
        assert!(Vocab::from_chars(vec!['b', 'a'])
            .unwrap_err()
            .contains("not sorted"));
        assert!(Corpus::new("abc", 1.0, None)
            .unwrap_err()
            .contains("[0, 1)"));
    }

    #[test]
    fn windows_are_shifted_by_one_and_depend_on_seed_and_step() {
        let tokens: Vec<u32> = (0..1000).collect();
        let (x, y) = windows(&tokens, 8, 4, 1, Windows::Train, 0);
        assert_eq!(x.len(), 32);
        for b in 0..4 {
            let start = x[b * 8] as u32;
            for t in 0..8 {
                assert_eq!(x[b * 8 + t] as u32, start + t as u32);
                assert_eq!(y[b * 8 + t] as u32, start + t as u32 + 1);
            }
            assert!(start as usize + 8 < 1000);
        }
        assert_eq!(windows(&tokens, 8, 4, 1, Windows::Train, 0), (x.clone(), y));
        assert_ne!(windows(&tokens, 8, 4, 1, Windows::Train, 1).0, x);
        assert_ne!(windows(&tokens, 8, 4, 2, Windows::Train, 0).0, x);
        assert_ne!(windows(&tokens, 8, 4, 1, Windows::Eval, 0).0, x);
        // Every start is reachable: over many draws, the smallest and largest starts are near
        // the ends of the range (0 and 991).
        let starts: Vec<u32> = (0..200)
            .map(|i| windows(&tokens, 8, 1, 3, Windows::Train, i).0[0] as u32)
            .collect();
        assert!(*starts.iter().min().unwrap() < 30 && *starts.iter().max().unwrap() > 960);
    }
}
