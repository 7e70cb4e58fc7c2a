//! The one source of randomness: a portable, seeded PCG-64 generator per purpose.
//!
//! Every random stream is derived from the run seed and a [`Stream`] label by [`stream`], so
//! the initial weights of layer 3 depend only on `(seed, 3, weight)`: changing the learning rate,
//! the optimizer, the precision or another layer's initializer never moves them. Dropout masks,
//! data shuffling and gradient noise each have their own stream.

use rand::RngExt;
use rand_distr::{Distribution, StandardNormal};

/// The generator used everywhere: PCG XSL RR 128/64 (O'Neill 2014), portable across platforms.
pub type Rng = rand_pcg::Pcg64;

/// What a random stream is for. Layers are numbered from 1 (first hidden) to L (output).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// The initial weight matrix of a layer.
    Weight(usize),
    /// The initial bias vector of a layer.
    Bias(usize),
    /// Minibatch shuffling.
    Shuffle,
    /// Dropout masks.
    Dropout,
    /// Per-parameter gradient noise.
    GradNoise,
    /// Synthetic data generation (keyed by the data seed, not the run seed).
    Data,
    /// The data batch LSUV calibrates on.
    Lsuv,
    /// The initial values of a tensor outside the linear layers (a norm's gain, ...), keyed by
    /// a hash of its `state_dict` name ([`Stream::tensor`]).
    Tensor(u64),
}

impl Stream {
    /// The stream of the tensor named `name` (`2.body.0.weight`): FNV-1a of its bytes, so the
    /// key is the same on every machine and Rust version.
    pub fn tensor(name: &str) -> Stream {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in name.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        Stream::Tensor(h)
    }

    fn tag(self) -> u64 {
        match self {
            // The top bit set: never one of the small tags below or a layer's.
            Stream::Tensor(h) => h | 1 << 63,
            Stream::Weight(l) => 0x1000_0000 + 2 * l as u64,
            Stream::Bias(l) => 0x1000_0000 + 2 * l as u64 + 1,
            Stream::Shuffle => 1,
            Stream::Dropout => 2,
            Stream::GradNoise => 3,
            Stream::Data => 4,
            Stream::Lsuv => 5,
        }
    }
}

/// SplitMix64 finaliser (Steele, Lea & Flood 2014): a bijective 64-bit mixer.
fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The generator for `purpose` under `seed`. The 128-bit state mixes the seed and the purpose; the
/// PCG stream (increment) is the purpose, so distinct purposes never share a sequence.
pub fn stream(seed: u64, purpose: Stream) -> Rng {
    let tag = purpose.tag();
    let hi = splitmix64(seed ^ splitmix64(tag));
    let lo = splitmix64(hi ^ tag.rotate_left(32));
    Rng::new(((hi as u128) << 64) | lo as u128, tag as u128)
}

/// Uniform on [0, 1) with 53 random bits.
#[inline]
pub fn uniform01(rng: &mut Rng) -> f64 {
    rng.random::<f64>()
}

/// Uniform on [a, b).
#[inline]
pub fn uniform(rng: &mut Rng, a: f64, b: f64) -> f64 {
    a + (b - a) * uniform01(rng)
}

/// A standard normal draw (rand_distr's ziggurat sampler).
#[inline]
pub fn normal(rng: &mut Rng) -> f64 {
    StandardNormal.sample(rng)
}

/// A uniform index in 0..n.
#[inline]
pub fn index(rng: &mut Rng, n: usize) -> usize {
    rng.random_range(0..n)
}

/// Fisher–Yates shuffle in place.
pub fn shuffle<T>(rng: &mut Rng, xs: &mut [T]) {
    for i in (1..xs.len()).rev() {
        let j = index(rng, i + 1);
        xs.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a: Vec<f64> = (0..4)
            .map(|_| uniform01(&mut stream(7, Stream::Weight(1))))
            .collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        let mut w1 = stream(7, Stream::Weight(1));
        let mut w2 = stream(7, Stream::Weight(2));
        let mut b1 = stream(7, Stream::Bias(1));
        let x = uniform01(&mut w1);
        assert_ne!(x, uniform01(&mut w2));
        assert_ne!(x, uniform01(&mut b1));
        assert_ne!(x, uniform01(&mut stream(8, Stream::Weight(1))));
    }
}
