//! Built-in synthetic datasets, generated from their own seeded stream (`Stream::Data` under the
//! data seed, independent of the run seed, so sweeping the run seed keeps the data fixed).
//!
//! Each set draws `n + test` points in one sequence: the first `n` are the training split, the
//! rest the held-out test split. Options use the spec grammar, e.g. `moons:n=512,noise=0.2`.
//!
//! | name | task | points |
//! |---|---|---|
//! | `xor` | 2 classes | the four corners of {0,1}², cycled, plus N(0, noise²); label x1 xor x2 |
//! | `moons` | 2 classes | scikit-learn's two interleaving half circles, plus noise |
//! | `circles` | 2 classes | two concentric circles, radii 1 and `factor`, plus noise |
//! | `spirals` | `arms` classes | arm c: r ~ U(0,1), θ = 4c + 4r + N(0, noise²), x = r(sin θ, cos θ) (CS231n) |
//! | `blobs` | `classes` | Gaussian blobs of std `std` around centres drawn U(-10, 10)^dim |
//! | `teacher` | regression | x ~ N(0, I_dim); y = teacher(x) + N(0, noise²), teacher a random dim-hidden-outputs tanh MLP with N(0, 1/fan_in) weights and zero biases |

use crate::data::{Dataset, Features, Labels, Split, Task};
use crate::error::Result;
use crate::matrix::Matrix;
use crate::rng::{self, Rng, Stream};
use crate::spec::{fmt_f64, Spec};

/// A synthetic dataset and its options.
#[derive(Clone, Debug, PartialEq)]
pub struct Synthetic {
    pub kind: Kind,
    /// Training points.
    pub n: usize,
    /// Held-out test points.
    pub test: usize,
    /// Noise standard deviation.
    pub noise: f64,
    /// Data seed (not the run seed).
    pub seed: u64,
}

/// Which generator, with its shape options.
#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    Xor,
    Moons,
    Circles {
        factor: f64,
    },
    Spirals {
        arms: usize,
    },
    Blobs {
        classes: usize,
        dim: usize,
        std: f64,
    },
    Teacher {
        dim: usize,
        hidden: usize,
        outputs: usize,
    },
}

/// Built-in synthetic names.
pub const SYNTHETIC_NAMES: &[&str] = &["xor", "moons", "circles", "spirals", "blobs", "teacher"];

impl Synthetic {
    pub fn from_spec(spec: &Spec) -> Result<Synthetic> {
        let name = spec.name.as_str();
        let (default_n, default_noise) = match name {
            "xor" => (4, 0.0),
            "moons" => (256, 0.1),
            "circles" => (256, 0.05),
            "spirals" => (300, 0.2),
            "blobs" => (300, 0.0),
            "teacher" => (512, 0.0),
            other => {
                return Err(spec.error(format!(
                    "unknown dataset '{other}' (built-in: {})",
                    SYNTHETIC_NAMES.join(", ")
                )))
            }
        };
        let extra: &[&str] = match name {
            "circles" => &["factor"],
            "spirals" => &["arms"],
            "blobs" => &["classes", "dim", "std"],
            "teacher" => &["dim", "hidden", "outputs"],
            _ => &[],
        };
        let mut keys = vec!["n", "noise", "seed", "test"];
        keys.extend_from_slice(extra);
        let v = spec.bind(&keys)?;
        let n = spec.usize_or("n", &v[0], default_n)?;
        let noise = spec.f64_or("noise", &v[1], default_noise)?;
        let seed = spec.u64_or("seed", &v[2], 0)?;
        let test = spec.usize_or("test", &v[3], n)?;
        if n == 0 {
            return Err(spec.error("n must be at least 1"));
        }
        if noise < 0.0 {
            return Err(spec.error(format!("noise must be >= 0, got {noise}")));
        }
        let positive = |key: &str, i: usize, default: usize| -> Result<usize> {
            let x = spec.usize_or(key, &v[i], default)?;
            if x == 0 {
                Err(spec.error(format!("{key} must be at least 1")))
            } else {
                Ok(x)
            }
        };
        let kind = match name {
            "xor" => Kind::Xor,
            "moons" => Kind::Moons,
            "circles" => {
                let factor = spec.f64_or("factor", &v[4], 0.5)?;
                if !(0.0..1.0).contains(&factor) {
                    return Err(spec.error(format!("factor must be in [0, 1), got {factor}")));
                }
                Kind::Circles { factor }
            }
            "spirals" => {
                let arms = positive("arms", 4, 3)?;
                if arms < 2 {
                    return Err(spec.error("spirals needs at least 2 arms"));
                }
                Kind::Spirals { arms }
            }
            "blobs" => {
                let classes = positive("classes", 4, 3)?;
                if classes > super::MAX_CLASSES {
                    return Err(spec.error(format!(
                        "classes must be at most {} (got {classes})",
                        super::MAX_CLASSES
                    )));
                }
                let dim = positive("dim", 5, 2)?;
                let std = spec.f64_or("std", &v[6], 1.0)?;
                if std < 0.0 {
                    return Err(spec.error(format!("std must be >= 0, got {std}")));
                }
                Kind::Blobs { classes, dim, std }
            }
            _ => Kind::Teacher {
                dim: positive("dim", 4, 10)?,
                hidden: positive("hidden", 5, 32)?,
                outputs: positive("outputs", 6, 1)?,
            },
        };
        Ok(Synthetic {
            kind,
            n,
            test,
            noise,
            seed,
        })
    }

    pub fn name(&self) -> &'static str {
        match self.kind {
            Kind::Xor => "xor",
            Kind::Moons => "moons",
            Kind::Circles { .. } => "circles",
            Kind::Spirals { .. } => "spirals",
            Kind::Blobs { .. } => "blobs",
            Kind::Teacher { .. } => "teacher",
        }
    }

    /// The canonical spec with every option spelled out.
    pub fn spec(&self) -> String {
        let mut s = format!(
            "{}:n={},noise={},seed={},test={}",
            self.name(),
            self.n,
            fmt_f64(self.noise),
            self.seed,
            self.test
        );
        match &self.kind {
            Kind::Xor | Kind::Moons => {}
            Kind::Circles { factor } => s += &format!(",factor={}", fmt_f64(*factor)),
            Kind::Spirals { arms } => s += &format!(",arms={arms}"),
            Kind::Blobs { classes, dim, std } => {
                s += &format!(",classes={classes},dim={dim},std={}", fmt_f64(*std))
            }
            Kind::Teacher {
                dim,
                hidden,
                outputs,
            } => s += &format!(",dim={dim},hidden={hidden},outputs={outputs}"),
        }
        s
    }

    /// Generates the dataset (deterministic in the options).
    pub fn generate(&self) -> Dataset<'static> {
        let total = self.n + self.test;
        let mut rng = rng::stream(self.seed, Stream::Data);
        let (x, y, task) = match &self.kind {
            Kind::Xor => {
                let (x, y) = classes_2d(total, &mut rng, self.noise, |i, _| {
                    let (a, b) = ((i & 1) as f64, ((i >> 1) & 1) as f64);
                    ([a, b], (i & 1) as u32 ^ ((i >> 1) & 1) as u32)
                });
                (x, Labels::Classes(y), Task::Classification { classes: 2 })
            }
            Kind::Moons => {
                let (x, y) = classes_2d(total, &mut rng, self.noise, |i, rng| {
                    let t = std::f64::consts::PI * rng::uniform01(rng);
                    if i % 2 == 0 {
                        ([t.cos(), t.sin()], 0)
                    } else {
                        ([1.0 - t.cos(), 0.5 - t.sin()], 1)
                    }
                });
                (x, Labels::Classes(y), Task::Classification { classes: 2 })
            }
            Kind::Circles { factor } => {
                let factor = *factor;
                let (x, y) = classes_2d(total, &mut rng, self.noise, |i, rng| {
                    let t = 2.0 * std::f64::consts::PI * rng::uniform01(rng);
                    let r = if i % 2 == 0 { 1.0 } else { factor };
                    ([r * t.cos(), r * t.sin()], (i % 2) as u32)
                });
                (x, Labels::Classes(y), Task::Classification { classes: 2 })
            }
            Kind::Spirals { arms } => {
                let (arms, noise) = (*arms, self.noise);
                // The angular noise is part of the recipe; no extra additive noise.
                let (x, y) = classes_2d(total, &mut rng, 0.0, |i, rng| {
                    let c = i % arms;
                    let r = rng::uniform01(rng);
                    let t = 4.0 * c as f64 + 4.0 * r + noise * rng::normal(rng);
                    ([r * t.sin(), r * t.cos()], c as u32)
                });
                (
                    x,
                    Labels::Classes(y),
                    Task::Classification { classes: arms },
                )
            }
            Kind::Blobs { classes, dim, std } => {
                let (classes, dim) = (*classes, *dim);
                let centres: Vec<f64> = (0..classes * dim)
                    .map(|_| rng::uniform(&mut rng, -10.0, 10.0))
                    .collect();
                let mut x = Matrix::zeros(total, dim);
                let mut y = Vec::with_capacity(total);
                for i in 0..total {
                    let c = i % classes;
                    for (j, v) in x.row_mut(i).iter_mut().enumerate() {
                        *v = centres[c * dim + j] + (std + self.noise) * rng::normal(&mut rng);
                    }
                    y.push(c as u32);
                }
                (x, Labels::Classes(y), Task::Classification { classes })
            }
            Kind::Teacher {
                dim,
                hidden,
                outputs,
            } => {
                let (dim, hidden, outputs) = (*dim, *hidden, *outputs);
                let w1: Vec<f64> = (0..hidden * dim)
                    .map(|_| rng::normal(&mut rng) / (dim as f64).sqrt())
                    .collect();
                let w2: Vec<f64> = (0..outputs * hidden)
                    .map(|_| rng::normal(&mut rng) / (hidden as f64).sqrt())
                    .collect();
                let mut x = Matrix::zeros(total, dim);
                let mut y = Matrix::zeros(total, outputs);
                let mut h = vec![0.0; hidden];
                for i in 0..total {
                    x.row_mut(i)
                        .iter_mut()
                        .for_each(|v| *v = rng::normal(&mut rng));
                    for (k, hk) in h.iter_mut().enumerate() {
                        let z: f64 = (0..dim).map(|j| w1[k * dim + j] * x.get(i, j)).sum();
                        *hk = z.tanh();
                    }
                    for o in 0..outputs {
                        let z: f64 = (0..hidden).map(|k| w2[o * hidden + k] * h[k]).sum();
                        y.set(i, o, z + self.noise * rng::normal(&mut rng));
                    }
                }
                (x, Labels::Values(y), Task::Regression { outputs })
            }
        };
        let (train, test) = split(x, y, self.n);
        Dataset {
            name: self.spec(),
            task,
            train,
            val: None,
            test,
        }
    }
}

/// Draws `total` 2-D labelled points: `point(i, rng)` gives the clean point and label of index i,
/// then N(0, noise²) is added to each coordinate.
fn classes_2d(
    total: usize,
    rng: &mut Rng,
    noise: f64,
    mut point: impl FnMut(usize, &mut Rng) -> ([f64; 2], u32),
) -> (Matrix<f64>, Vec<u32>) {
    let mut x = Matrix::zeros(total, 2);
    let mut y = Vec::with_capacity(total);
    for i in 0..total {
        let (p, label) = point(i, rng);
        for (j, v) in p.iter().enumerate() {
            let e = if noise > 0.0 {
                noise * rng::normal(rng)
            } else {
                0.0
            };
            x.set(i, j, v + e);
        }
        y.push(label);
    }
    (x, y)
}

/// The first `n` rows are the training split, the rest the test split.
fn split(x: Matrix<f64>, y: Labels, n: usize) -> (Split<'static>, Split<'static>) {
    let cols = x.cols();
    let total = x.rows();
    let data = x.into_vec();
    let (a, b) = data.split_at(n * cols);
    let xs = (
        Matrix::from_vec(n, cols, a.to_vec()),
        Matrix::from_vec(total - n, cols, b.to_vec()),
    );
    let ys = match y {
        Labels::Classes(c) => (
            Labels::Classes(c[..n].to_vec()),
            Labels::Classes(c[n..].to_vec()),
        ),
        Labels::Values(v) => {
            let k = v.cols();
            let (a, b) = v.as_slice().split_at(n * k);
            (
                Labels::Values(Matrix::from_vec(n, k, a.to_vec())),
                Labels::Values(Matrix::from_vec(total - n, k, b.to_vec())),
            )
        }
    };
    (
        Split {
            x: Features::from(xs.0),
            y: ys.0,
        },
        Split {
            x: Features::from(xs.1),
            y: ys.1,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::DataSpec;

    #[test]
    fn xor_default_is_the_four_corners() {
        let d = DataSpec::parse("--data", "xor")
            .unwrap()
            .load(&Default::default(), None)
            .unwrap();
        assert_eq!(
            d.train.x,
            Features::from(Matrix::<f64>::from_vec(
                4,
                2,
                vec![0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0]
            ))
        );
        assert_eq!(d.train.y, Labels::Classes(vec![0, 1, 1, 0]));
        assert_eq!(d.test.len(), 4);
    }

    #[test]
    fn every_set_generates_its_shapes_and_is_deterministic() {
        for name in SYNTHETIC_NAMES {
            let spec = DataSpec::parse("--data", &format!("{name}:n=40,test=10")).unwrap();
            let load = || spec.load(&Default::default(), None).unwrap();
            let a = load();
            assert_eq!(a, load());
            assert_eq!((a.train.len(), a.test.len()), (40, 10), "{name}");
            assert!(a
                .train
                .x
                .column_stats()
                .iter()
                .all(|c| c.0.is_finite() && c.1.is_finite()));
            assert_eq!(DataSpec::parse("--data", &a.name).unwrap(), spec);
            let other = DataSpec::parse("--data", &format!("{name}:n=40,test=10,seed=1")).unwrap();
            if *name != "xor" {
                assert_ne!(
                    a.train.x,
                    other.load(&Default::default(), None).unwrap().train.x,
                    "{name}"
                );
            }
        }
    }

    #[test]
    fn bad_options_are_refused() {
        for bad in [
            "moons:n=0",
            "moons:noise=-1",
            "spirals:arms=1",
            "circles:factor=2",
            "moons:k=3",
            "mnist2",
        ] {
            assert!(DataSpec::parse("--data", bad).is_err(), "{bad}");
        }
    }
}
