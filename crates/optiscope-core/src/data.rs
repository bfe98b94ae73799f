//! Data sets: the digits shipped in the repository (parsed and validated from bytes, so the web
//! build can embed them), a fixed seeded train/test split, and synthetic 2-D sets for the explorer.

use std::io::Read;

use thiserror::Error;

use crate::rng::{stream, Philox, StreamKind};

/// A classification data set: `features` row-major `n × dim`, labels in `0..classes`.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// Features, row-major.
    pub features: Vec<f32>,
    /// One label per row.
    pub labels: Vec<u32>,
    /// Features per row.
    pub dim: usize,
    /// Number of classes.
    pub classes: u32,
}

/// A data file is not what it should be; the message names the line.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DataError {
    /// The file could not be decompressed or is not UTF-8.
    #[error("{0}")]
    Encoding(String),
    /// A line is malformed.
    #[error("line {line}: {reason}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// There are no rows.
    #[error("the file has no data rows")]
    Empty,
}

impl Dataset {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Row `i`'s features.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.features[i * self.dim..(i + 1) * self.dim]
    }

    /// The rows at `indices`, in that order.
    pub fn subset(&self, indices: &[usize]) -> Self {
        Self {
            features: indices
                .iter()
                .flat_map(|&i| self.row(i).iter().copied())
                .collect(),
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            dim: self.dim,
            classes: self.classes,
        }
    }

    /// A fixed, seeded split: a Fisher–Yates shuffle driven by Philox(`seed`), the first
    /// `round(test_fraction · n)` rows to test, the rest to train. Returns `(train, test)`.
    pub fn split(&self, test_fraction: f64, seed: u64) -> (Self, Self) {
        let n = self.len();
        let mut order: Vec<usize> = (0..n).collect();
        let rng = Philox::new(seed);
        let s = stream(StreamKind::Data, 0x5b17);
        for i in (1..n).rev() {
            let j = (u64::from(rng.u32_at(s, i as u64)) % (i as u64 + 1)) as usize;
            order.swap(i, j);
        }
        let n_test = ((test_fraction.clamp(0.0, 1.0) * n as f64).round() as usize).min(n);
        (self.subset(&order[n_test..]), self.subset(&order[..n_test]))
    }
}

/// The digits shipped in the repository (`data/digits.csv.gz`, 1797 images of 8×8 pixels; see
/// `data/README.md` for source and licence), embedded in the binary.
pub fn builtin_digits() -> Dataset {
    match digits(include_bytes!("../../../data/digits.csv.gz")) {
        Ok(d) => d,
        Err(e) => unreachable!("the shipped digits are valid (tested): {e}"),
    }
}

/// Parses the digits CSV (64 integer pixels 0..=16, then a label 0..=9, per line), gzip-compressed
/// or plain; pixels are scaled to [0, 1].
pub fn digits(bytes: &[u8]) -> Result<Dataset, DataError> {
    let text = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut s = String::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_string(&mut s)
            .map_err(|e| {
                DataError::Encoding(format!("not a valid gzip file of UTF-8 text: {e}"))
            })?;
        s
    } else {
        String::from_utf8(bytes.to_vec())
            .map_err(|e| DataError::Encoding(format!("not UTF-8 text: {e}")))?
    };
    let mut features = Vec::new();
    let mut labels = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let err = |reason: String| DataError::Line {
            line: line_no,
            reason,
        };
        let cells: Vec<&str> = line.split(',').collect();
        if cells.len() != 65 {
            return Err(err(format!(
                "{} columns, expected 65 (64 pixels and a label)",
                cells.len()
            )));
        }
        for (c, cell) in cells[..64].iter().enumerate() {
            let v: u32 = cell
                .trim()
                .parse()
                .map_err(|_| err(format!("column {}: {cell:?} is not an integer", c + 1)))?;
            if v > 16 {
                return Err(err(format!(
                    "column {}: pixel {v} is outside 0..=16",
                    c + 1
                )));
            }
            features.push(v as f32 / 16.0);
        }
        let label: u32 = cells[64].trim().parse().map_err(|_| {
            err(format!(
                "column 65: label {:?} is not an integer",
                cells[64]
            ))
        })?;
        if label > 9 {
            return Err(err(format!("column 65: label {label} is outside 0..=9")));
        }
        labels.push(label);
    }
    if labels.is_empty() {
        return Err(DataError::Empty);
    }
    Ok(Dataset {
        features,
        labels,
        dim: 64,
        classes: 10,
    })
}

/// A two-class 2-D set: `point(class, i)` for `n` points per class, plus Gaussian noise `noise`
/// from Philox(`seed`) stream `(Data, stream_id)` (normals `2j`, `2j + 1` for point `j`).
fn two_class(
    n: usize,
    noise: f32,
    seed: u64,
    stream_id: u32,
    point: impl Fn(u32, usize) -> (f32, f32),
) -> Dataset {
    let rng = Philox::new(seed);
    let s = stream(StreamKind::Data, stream_id);
    let mut features = Vec::with_capacity(4 * n);
    let mut labels = Vec::with_capacity(2 * n);
    for class in 0..2u32 {
        for i in 0..n {
            let (x, y) = point(class, i);
            let k = (2 * (class as usize * n + i)) as u64;
            features.push(x + noise * rng.normal_at(s, k));
            features.push(y + noise * rng.normal_at(s, k + 1));
            labels.push(class);
        }
    }
    Dataset {
        features,
        labels,
        dim: 2,
        classes: 2,
    }
}

/// Two interleaved spirals (`n` points per class, Gaussian noise `noise`), seeded.
pub fn spirals(n: usize, noise: f32, seed: u64) -> Dataset {
    two_class(n, noise, seed, 0x5a1, |class, i| {
        let t = i as f32 / n as f32 * 3.0 * core::f32::consts::PI + 0.5;
        let r = t / (3.5 * core::f32::consts::PI);
        let phase = class as f32 * core::f32::consts::PI;
        (r * (t + phase).cos(), r * (t + phase).sin())
    })
}

/// Two interleaving half circles (`n` points per class, Gaussian noise `noise`), seeded.
pub fn moons(n: usize, noise: f32, seed: u64) -> Dataset {
    two_class(n, noise, seed, 0x300, |class, i| {
        let t = i as f32 / (n.max(2) - 1) as f32 * core::f32::consts::PI;
        if class == 0 {
            (t.cos(), t.sin())
        } else {
            (1.0 - t.cos(), 0.5 - t.sin())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGITS: &[u8] = include_bytes!("../../../data/digits.csv.gz");

    #[test]
    fn shipped_digits_parse() {
        let d = digits(DIGITS).unwrap();
        assert_eq!((d.len(), d.dim, d.classes), (1797, 64, 10));
        assert!(d.features.iter().all(|&v| (0.0..=1.0).contains(&v)));
        // every class is present, roughly balanced (~180 each)
        for c in 0..10 {
            let count = d.labels.iter().filter(|&&l| l == c).count();
            assert!((170..=190).contains(&count), "class {c}: {count}");
        }
    }

    #[test]
    fn bad_lines_are_named() {
        let row = |label: &str| format!("{}{label}\n", "0,".repeat(64));
        assert_eq!(digits(row("3").as_bytes()).map(|d| d.len()), Ok(1));
        let short = "1,2,3\n";
        assert_eq!(
            digits(short.as_bytes()).unwrap_err().to_string(),
            "line 1: 3 columns, expected 65 (64 pixels and a label)"
        );
        let text = row("3") + &row("12");
        assert_eq!(
            digits(text.as_bytes()).unwrap_err().to_string(),
            "line 2: column 65: label 12 is outside 0..=9"
        );
        let text = row("3").replacen("0,", "x,", 1);
        assert_eq!(
            digits(text.as_bytes()).unwrap_err().to_string(),
            "line 1: column 1: \"x\" is not an integer"
        );
        assert_eq!(digits(b"").unwrap_err(), DataError::Empty);
    }

    #[test]
    fn split_is_fixed_disjoint_and_complete() {
        let d = digits(DIGITS).unwrap();
        let (train, test) = d.split(0.2, 0);
        assert_eq!((train.len(), test.len()), (1438, 359));
        assert_eq!(
            d.split(0.2, 0),
            (train.clone(), test.clone()),
            "same seed, same split"
        );
        assert_ne!(d.split(0.2, 1).1, test, "another seed, another split");
        let mut all: Vec<u32> = train.labels.iter().chain(&test.labels).copied().collect();
        let mut orig = d.labels.clone();
        all.sort_unstable();
        orig.sort_unstable();
        assert_eq!(all, orig);
    }

    #[test]
    fn synthetic_sets_have_two_balanced_classes() {
        for d in [spirals(100, 0.02, 0), moons(100, 0.05, 0)] {
            assert_eq!((d.len(), d.dim), (200, 2));
            assert_eq!(d.labels.iter().filter(|&&l| l == 1).count(), 100);
            assert!(d.features.iter().all(|v| v.is_finite() && v.abs() < 3.0));
        }
        assert_eq!(moons(10, 0.1, 3), moons(10, 0.1, 3));
    }
}
