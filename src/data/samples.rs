//! One column of samples held at the width it was stored in: an f32 column (a `.npy` of f4,
//! a Parquet FLOAT column, small integers and booleans) stays 4 bytes a sample; the engines
//! form every term in f64 from it, which is exact.

use crate::family::{SampleMap, Summary};
use rayon::prelude::*;
use std::sync::Arc;

/// Samples in memory, shared (clones are references, never copies of the data).
#[derive(Clone, Debug)]
pub enum Samples {
    F32(Arc<[f32]>),
    F64(Arc<[f64]>),
}

impl Samples {
    pub fn len(&self) -> usize {
        match self {
            Samples::F32(v) => v.len(),
            Samples::F64(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// No samples (a dataset whose values are not held in memory).
    pub fn empty() -> Samples {
        Samples::F64(Arc::from(Vec::new()))
    }

    /// Bytes a sample takes in memory.
    pub fn width(&self) -> usize {
        match self {
            Samples::F32(_) => 4,
            Samples::F64(_) => 8,
        }
    }

    /// Sample `i`, in f64.
    pub fn get(&self, i: usize) -> f64 {
        match self {
            Samples::F32(v) => v[i] as f64,
            Samples::F64(v) => v[i],
        }
    }

    /// Every sample in order, in f64.
    pub fn iter(&self) -> Box<dyn Iterator<Item = f64> + '_> {
        match self {
            Samples::F32(v) => Box::new(v.iter().map(|&x| x as f64)),
            Samples::F64(v) => Box::new(v.iter().copied()),
        }
    }

    /// The samples as f64s where they are held as f64.
    pub fn as_f64(&self) -> Option<&[f64]> {
        match self {
            Samples::F64(v) => Some(v),
            Samples::F32(_) => None,
        }
    }

    /// The samples as f64s: shared where they are held so, widened into a new copy otherwise.
    pub fn to_f64(&self) -> Arc<[f64]> {
        match self {
            Samples::F64(v) => v.clone(),
            Samples::F32(v) => v.iter().map(|&x| x as f64).collect(),
        }
    }

    /// `f` of each block of `size` samples, re-expressed by `map` (in f64), on all cores; the
    /// results in block order. An f64 block the map leaves alone is passed as it is held; any
    /// other is converted into a buffer of the block's size.
    pub fn par_blocks<R: Send>(
        &self,
        size: usize,
        map: &SampleMap,
        f: impl Fn(&[f64]) -> R + Sync + Send,
    ) -> Vec<R> {
        match self {
            Samples::F64(v) if map.is_identity() => v.par_chunks(size).map(&f).collect(),
            Samples::F64(v) => v
                .par_chunks(size)
                .map(|block| {
                    let mapped: Vec<f64> = block.iter().map(|&x| map.apply(x)).collect();
                    f(&mapped)
                })
                .collect(),
            Samples::F32(v) => v
                .par_chunks(size)
                .map(|block| {
                    let mapped: Vec<f64> = block.iter().map(|&x| map.apply(x as f64)).collect();
                    f(&mapped)
                })
                .collect(),
        }
    }

    /// The first sample for which `bad` holds, searched on all cores.
    pub fn position(&self, bad: impl Fn(f64) -> bool + Sync + Send) -> Option<usize> {
        const BLOCK: usize = 1 << 16;
        self.par_blocks(BLOCK, &SampleMap::identity(), |block| {
            block.iter().position(|&x| bad(x))
        })
        .into_iter()
        .enumerate()
        .find_map(|(b, at)| at.map(|i| b * BLOCK + i))
    }

    /// n, min and max.
    pub fn summary(&self) -> Summary {
        match self {
            Samples::F64(v) => Summary::of(v),
            Samples::F32(v) => {
                let (min, max) = v
                    .par_chunks(1 << 16)
                    .map(|c| {
                        c.iter()
                            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
                                (lo.min(x as f64), hi.max(x as f64))
                            })
                    })
                    .reduce(
                        || (f64::INFINITY, f64::NEG_INFINITY),
                        |a, b| (a.0.min(b.0), a.1.max(b.1)),
                    );
                Summary {
                    n: v.len(),
                    min,
                    max,
                }
            }
        }
    }

    /// Held as f32 where every value is exactly an f32 (the f64s are dropped), else as f64.
    pub fn narrowest(values: Vec<f64>) -> Samples {
        let exact = values
            .par_chunks(1 << 16)
            .all(|c| c.iter().all(|&x| (x as f32) as f64 == x || x.is_nan()));
        if exact && !values.is_empty() {
            Samples::F32(into_shared(values, |x| x as f32))
        } else {
            Samples::F64(into_shared(values, |x| x))
        }
    }
}

impl Samples {
    /// [`Samples::narrowest`] of values that come in pieces (in order), joined straight into
    /// their final place: each piece is dropped once copied.
    pub fn narrowest_pieces(pieces: Vec<Vec<f64>>) -> Samples {
        if pieces.len() == 1 {
            return Samples::narrowest(pieces.into_iter().next().unwrap_or_default());
        }
        let n: usize = pieces.iter().map(Vec::len).sum();
        let exact = pieces
            .par_iter()
            .all(|p| p.iter().all(|&x| (x as f32) as f64 == x || x.is_nan()));
        if exact && n > 0 {
            Samples::F32(joined(pieces, n, |x| x as f32))
        } else {
            Samples::F64(joined(pieces, n, |x| x))
        }
    }
}

/// The pieces' values, converted, in one allocation of `n`, each piece freed once copied.
/// The allocation is not zero-filled first: its pages become resident only as they are
/// written, while the pieces before are let go.
fn joined<T: Copy>(pieces: Vec<Vec<f64>>, n: usize, convert: fn(f64) -> T) -> Arc<[T]> {
    assert_eq!(
        pieces.iter().map(Vec::len).sum::<usize>(),
        n,
        "n is the pieces' total"
    );
    let mut out = Arc::<[T]>::new_uninit_slice(n);
    let slots = Arc::get_mut(&mut out).expect("a new Arc is not shared");
    let mut at = 0;
    for piece in pieces {
        for (slot, &x) in slots[at..at + piece.len()].iter_mut().zip(&piece) {
            slot.write(convert(x));
        }
        at += piece.len();
    }
    // SAFETY: the pieces' lengths sum to n (asserted above), and every slot of 0..n was
    // written in the loop.
    unsafe { out.assume_init() }
}

/// `values`, converted, moved into a shared allocation without a second full-size copy:
/// written from the end a piece at a time, each piece of `values` released (the vector
/// shrunk) once copied, so that resident memory stays about one copy of the data
/// (`Arc::from(Vec)` copies the whole, 16 bytes a sample for a moment). The new allocation is
/// not zero-filled: its pages become resident only as they are written.
fn into_shared<T: Copy>(mut values: Vec<f64>, convert: impl Fn(f64) -> T) -> Arc<[T]> {
    const PIECE: usize = 1 << 20;
    let n = values.len();
    let mut out = Arc::<[T]>::new_uninit_slice(n);
    let slots = Arc::get_mut(&mut out).expect("a new Arc is not shared");
    let mut end = n;
    while end > 0 {
        let start = end.saturating_sub(PIECE);
        for (slot, &x) in slots[start..end].iter_mut().zip(&values[start..end]) {
            slot.write(convert(x));
        }
        values.truncate(start);
        values.shrink_to_fit();
        end = start;
    }
    // SAFETY: the loop wrote every slot of 0..n, from the end down to 0.
    unsafe { out.assume_init() }
}

impl From<Vec<f64>> for Samples {
    fn from(v: Vec<f64>) -> Self {
        Samples::F64(into_shared(v, |x| x))
    }
}

impl From<Arc<[f64]>> for Samples {
    fn from(v: Arc<[f64]>) -> Self {
        Samples::F64(v)
    }
}

impl From<Vec<f32>> for Samples {
    fn from(v: Vec<f32>) -> Self {
        Samples::F32(v.into())
    }
}

/// Values the inference code iterates over: a column of samples, or a slice of f64s.
pub trait SampleValues {
    fn sample_values(&self) -> Box<dyn Iterator<Item = f64> + '_>;
    /// The samples' frequency weights, one per sample, where they carry them.
    fn sample_weights(&self) -> Option<&[f64]> {
        None
    }
    /// Which samples are right-censored, where some may be.
    fn sample_censored(&self) -> Option<&[bool]> {
        None
    }
}

/// Samples with one frequency weight each (`--weights`), and which of them are
/// right-censored (`--censored`).
pub struct Weighted<'a> {
    pub values: &'a Samples,
    pub weights: &'a [f64],
    pub censored: Option<&'a [bool]>,
}

impl SampleValues for Weighted<'_> {
    fn sample_values(&self) -> Box<dyn Iterator<Item = f64> + '_> {
        self.values.iter()
    }
    fn sample_weights(&self) -> Option<&[f64]> {
        Some(self.weights)
    }
    fn sample_censored(&self) -> Option<&[bool]> {
        self.censored
    }
}

impl SampleValues for Samples {
    fn sample_values(&self) -> Box<dyn Iterator<Item = f64> + '_> {
        self.iter()
    }
}

impl SampleValues for [f64] {
    fn sample_values(&self) -> Box<dyn Iterator<Item = f64> + '_> {
        Box::new(self.iter().copied())
    }
}

impl SampleValues for Vec<f64> {
    fn sample_values(&self) -> Box<dyn Iterator<Item = f64> + '_> {
        Box::new(self.iter().copied())
    }
}

impl SampleValues for Arc<[f64]> {
    fn sample_values(&self) -> Box<dyn Iterator<Item = f64> + '_> {
        Box::new(self.iter().copied())
    }
}
