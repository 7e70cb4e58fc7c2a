//! mnist1d (Greydanus 2020, "Scaling down deep learning"; the PyPI package `mnist1d` 0.0.2),
//! generated here from its published recipe with initscope's own seeded generator.
//!
//! Each example takes the 12-point template of its digit and
//! 1. pads it with p zeros, p ~ U{36..60} (after adding 1e-8 so the signal is never exactly 0),
//! 2. linearly resamples it to 12 + 60 = 72 points,
//! 3. scales it by 1 + 0.4 (u - 1/2),
//! 4. rolls it right by k ~ U{0..47},
//! 5. replaces the exact zeros (padding) by correlated noise: 0.25 N(0, 1) smoothed by a Gaussian
//!    filter with sigma 2 (scipy's `gaussian_filter`: truncate 4, mode "reflect"),
//! 6. adds iid noise 0.02 N(0, 1),
//! 7. shears: subtracts 0.75 (u - 1/2) · linspace(-1/2, 1/2, 72),
//! 8. linearly resamples to 40 points.
//!
//! 500 examples per class in class order, shuffled, standardized with the global mean and std of
//! all values, split 4000 / 1000. Bit equality with the Python package is neither possible (a
//! different generator) nor needed; its statistics and difficulty are (see the README for the
//! comparison).

use crate::data::{Features, Labels, Split};
use crate::error::Result;
use crate::matrix::Matrix;
use crate::rng::{self, Rng, Stream};
use crate::spec::Spec;

/// The ten digit templates, verbatim from `mnist1d/data.py` (`get_templates`, package version
/// 0.0.2.post1), before its whitening.
pub const TEMPLATES: [[f64; 12]; 10] = [
    [5.0, 6.0, 6.5, 6.75, 7.0, 7.0, 7.0, 7.0, 6.75, 6.5, 6.0, 5.0],
    [5.0, 3.0, 3.0, 3.4, 3.8, 4.2, 4.6, 5.0, 5.4, 5.8, 5.0, 5.0],
    [5.0, 6.0, 6.5, 6.5, 6.0, 5.25, 4.75, 4.0, 3.5, 3.5, 4.0, 5.0],
    [5.0, 6.0, 6.5, 6.5, 6.0, 5.0, 5.0, 6.0, 6.5, 6.5, 6.0, 5.0],
    [5.0, 4.4, 3.8, 3.2, 2.6, 2.6, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0],
    [5.0, 3.0, 3.0, 3.0, 3.0, 5.0, 6.0, 6.5, 6.5, 6.0, 4.5, 5.0],
    [5.0, 4.0, 3.5, 3.25, 3.0, 3.0, 3.0, 3.0, 3.25, 3.5, 4.0, 5.0],
    [5.0, 7.0, 7.0, 6.6, 6.2, 5.8, 5.4, 5.0, 4.6, 4.2, 5.0, 5.0],
    [5.0, 4.0, 3.5, 3.5, 4.0, 5.0, 5.0, 4.0, 3.5, 3.5, 4.0, 5.0],
    [5.0, 4.0, 3.5, 3.5, 4.0, 5.0, 5.0, 5.0, 5.0, 4.7, 4.3, 5.0],
];

const PADDING: (usize, usize) = (36, 60);
const SCALE_COEFF: f64 = 0.4;
const MAX_TRANSLATION: usize = 48;
const CORR_NOISE_SCALE: f64 = 0.25;
const IID_NOISE_SCALE: f64 = 2e-2;
const SHEAR_SCALE: f64 = 0.75;
const FINAL_LENGTH: usize = 40;
const TRAIN_SPLIT: f64 = 0.8;

/// mnist1d's options: the number of examples (a multiple of 10) and the data seed.
#[derive(Clone, Debug, PartialEq)]
pub struct Mnist1d {
    pub n: usize,
    pub seed: u64,
}

/// The templates whitened as the package does: zero mean, unit (population) std, shifted so the
/// signal starts at 0, divided by 6.
pub fn whitened_templates() -> [[f64; 12]; 10] {
    let mut out = TEMPLATES;
    for t in out.iter_mut() {
        let mean = t.iter().sum::<f64>() / 12.0;
        let std = (t.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 12.0).sqrt();
        t.iter_mut().for_each(|v| *v = (*v - mean) / std);
        let first = t[0];
        t.iter_mut().for_each(|v| *v = (*v - first) / 6.0);
    }
    out
}

/// Linear resampling of `x` (on linspace(0, 1, len)) at `n` evenly spaced points.
fn interpolate(x: &[f64], n: usize) -> Vec<f64> {
    let m = x.len();
    (0..n)
        .map(|i| {
            let t = if n == 1 {
                0.0
            } else {
                i as f64 / (n - 1) as f64 * (m - 1) as f64
            };
            let k = (t.floor() as usize).min(m - 2);
            let f = t - k as f64;
            x[k] * (1.0 - f) + x[k + 1] * f
        })
        .collect()
}

/// scipy.ndimage.gaussian_filter1d(x, sigma) with truncate 4 and mode "reflect"
/// (d c b a | a b c d | d c b a).
fn gaussian_filter(x: &[f64], sigma: f64) -> Vec<f64> {
    let radius = (4.0 * sigma + 0.5) as isize;
    let weights: Vec<f64> = (-radius..=radius)
        .map(|k| (-(k * k) as f64 / (2.0 * sigma * sigma)).exp())
        .collect();
    let total: f64 = weights.iter().sum();
    let n = x.len() as isize;
    let reflect = |mut j: isize| loop {
        if j < 0 {
            j = -j - 1;
        } else if j >= n {
            j = 2 * n - j - 1;
        } else {
            return j as usize;
        }
    };
    (0..n)
        .map(|i| {
            weights
                .iter()
                .enumerate()
                .map(|(w, &wt)| wt * x[reflect(i + w as isize - radius)])
                .sum::<f64>()
                / total
        })
        .collect()
}

/// One example of digit `template` (steps 1-8 of the module docs).
fn transform(template: &[f64; 12], rng: &mut Rng) -> Vec<f64> {
    let (lo, hi) = PADDING;
    let p = lo + (rng::uniform01(rng) * (hi - lo + 1) as f64) as usize;
    let mut x: Vec<f64> = template.iter().map(|v| v + 1e-8).collect();
    x.extend(std::iter::repeat_n(0.0, p));
    let len = 12 + hi;
    let mut x = interpolate(&x, len);
    let scale = 1.0 + SCALE_COEFF * (rng::uniform01(rng) - 0.5);
    x.iter_mut().for_each(|v| *v *= scale);
    let k = rng::index(rng, MAX_TRANSLATION);
    x.rotate_right(k);
    let noise: Vec<f64> = (0..len)
        .map(|_| CORR_NOISE_SCALE * rng::normal(rng))
        .collect();
    let corr = gaussian_filter(&noise, 2.0);
    for (v, c) in x.iter_mut().zip(&corr) {
        if *v == 0.0 {
            *v = *c;
        }
    }
    x.iter_mut()
        .for_each(|v| *v += IID_NOISE_SCALE * rng::normal(rng));
    let coeff = SHEAR_SCALE * (rng::uniform01(rng) - 0.5);
    for (i, v) in x.iter_mut().enumerate() {
        *v -= coeff * (-0.5 + i as f64 / (len - 1) as f64);
    }
    interpolate(&x, FINAL_LENGTH)
}

impl Mnist1d {
    pub fn from_spec(spec: &Spec) -> Result<Mnist1d> {
        let v = spec.bind(&["n", "seed"])?;
        let n = spec.usize_or("n", &v[0], 5000)?;
        if n < 20 || n % 10 != 0 {
            return Err(spec.error(format!(
                "n must be a multiple of 10 and at least 20, got {n}"
            )));
        }
        Ok(Mnist1d {
            n,
            seed: spec.u64_or("seed", &v[1], 42)?,
        })
    }

    pub fn spec(&self) -> String {
        format!("mnist1d:n={},seed={}", self.n, self.seed)
    }

    /// The (train, test) splits.
    pub fn generate(&self) -> (Split<'static>, Split<'static>) {
        let templates = whitened_templates();
        let mut rng = rng::stream(self.seed, Stream::Data);
        let per_class = self.n / 10;
        let mut xs = Vec::with_capacity(self.n * FINAL_LENGTH);
        let mut ys = Vec::with_capacity(self.n);
        for (label, t) in templates.iter().enumerate() {
            for _ in 0..per_class {
                xs.extend(transform(t, &mut rng));
                ys.push(label as u32);
            }
        }
        let mut order: Vec<usize> = (0..self.n).collect();
        rng::shuffle(&mut rng, &mut order);
        let count = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / count;
        let std = (xs.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / count).sqrt();
        let all = Matrix::from_vec(
            self.n,
            FINAL_LENGTH,
            xs.iter().map(|v| (v - mean) / std).collect(),
        );
        let x = all.select_rows(&order);
        let y: Vec<u32> = order.iter().map(|&i| ys[i]).collect();
        let split = (self.n as f64 * TRAIN_SPLIT) as usize;
        let (train_idx, test_idx): (Vec<usize>, Vec<usize>) =
            ((0..split).collect(), (split..self.n).collect());
        let part = |idx: &[usize]| Split {
            x: Features::from(x.select_rows(idx)),
            y: Labels::Classes(idx.iter().map(|&i| y[i]).collect()),
        };
        (part(&train_idx), part(&test_idx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_whitened_like_the_package() {
        for t in whitened_templates() {
            assert_eq!(t[0], 0.0);
            let mean = t.iter().sum::<f64>() / 12.0;
            let var = t.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 12.0;
            assert!((var.sqrt() - 1.0 / 6.0).abs() < 1e-12);
        }
    }

    #[test]
    fn resampling_and_filtering_match_their_definitions() {
        assert_eq!(interpolate(&[0.0, 1.0], 5), vec![0.0, 0.25, 0.5, 0.75, 1.0]);
        // A constant is unchanged by a normalised filter; an impulse spreads symmetrically.
        assert!(gaussian_filter(&[2.0; 20], 2.0)
            .iter()
            .all(|v| (v - 2.0).abs() < 1e-12));
        let mut impulse = vec![0.0; 41];
        impulse[20] = 1.0;
        let f = gaussian_filter(&impulse, 2.0);
        assert!((f.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!((f[18] - f[22]).abs() < 1e-15 && f[20] > f[19]);
    }

    #[test]
    fn dataset_is_balanced_standardized_and_split() {
        let (train, test) = Mnist1d { n: 5000, seed: 42 }.generate();
        assert_eq!((train.len(), test.len()), (4000, 1000));
        assert_eq!(train.x.cols(), 40);
        let mut counts = [0; 10];
        for s in [&train, &test] {
            if let Labels::Classes(c) = &s.y {
                c.iter().for_each(|&l| counts[l as usize] += 1);
            }
        }
        assert_eq!(counts, [500; 10]);
        let (n, d) = (5000.0 * 40.0, 40);
        let mut sum = 0.0;
        let mut sq = 0.0;
        for s in [&train, &test] {
            for i in 0..s.len() {
                for j in 0..d {
                    let v = s.x.get(i, j);
                    sum += v;
                    sq += v * v;
                }
            }
        }
        assert!((sum / n).abs() < 1e-9 && ((sq / n) - 1.0).abs() < 1e-9);
    }
}
