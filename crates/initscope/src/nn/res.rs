//! A residual block as a module of a network spec: `res(MODULES)` is y = x + body(x), the body a
//! sequence of modules that keeps the width; `res(MODULES)*K` is K blocks with independent
//! parameters ([`super::spec::ModuleSpec::expand`]).
//!
//! ```text
//! forward:   h_0 = x;  h_j = F_j(h_{j-1})  (j = 1..m);  y = x + h_m
//! backward:  dh_m = dy;  dh_{j-1} = (∂F_j/∂h_{j-1})^T dh_j;  dx = dy + dh_0
//! ```
//! Tensors: the body's, keyed `body.{j}.{key}` with j the body module's index (activations
//! and dropout counted), like a PyTorch block holding an `nn.Sequential` named `body`.

use super::build::Builder;
use super::dense::Dense;
use super::module::{Anatomy, Body, Buffer, Cache, Module, Pass, TensorDecl};
use super::spec::{write_seq, Form, KindSpec, ModuleSpec, Parts, Syntax};
use super::torch::Torch;
use crate::matrix::Matrix;
use crate::scalar::Float;

/// `res(MODULES)*K`: `repeat` residual blocks, each with its own parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct ResSpec {
    pub body: Vec<ModuleSpec>,
    pub repeat: usize,
}

impl KindSpec for ResSpec {
    const SYNTAX: Syntax = Syntax {
        names: &["res"],
        keys: &[],
        positional: 0,
        form: Form::Body,
    };

    fn parse(p: &Parts<'_>) -> Result<Self, String> {
        let (body, repeat) = p.body()?;
        Ok(ResSpec { body, repeat })
    }

    fn args(&self) -> Vec<String> {
        Vec::new()
    }

    /// `res(BODY)`, then `*K` when K is not 1.
    fn write(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("res(")?;
        write_seq(f, &self.body)?;
        f.write_str(")")?;
        if self.repeat != 1 {
            write!(f, "*{}", self.repeat)?;
        }
        Ok(())
    }

    /// One block; `*K` is K calls, made by the builder.
    fn build<T: Float>(
        &self,
        width: usize,
        b: &mut Builder<'_>,
    ) -> Result<Box<dyn Module<T>>, String> {
        Ok(Box::new(b.block::<T>(&self.body, width)?))
    }

    /// One block (`*K` is K entries, written by the caller).
    fn torch(&self, width: usize, t: &Torch) -> String {
        format!("Res({})", t.seq(&self.body, width).join(", "))
    }
}

/// A residual block `y = x + body(x)`.
#[derive(Debug)]
pub struct Res<T> {
    pub width: usize,
    body: Vec<Box<dyn Module<T>>>,
    /// Each body module's index in the body Sequential (its key prefix).
    prefixes: Vec<String>,
    /// Body module j's tensors are this block's `starts[j]..starts[j + 1]`.
    starts: Vec<usize>,
}

impl<T: Float> Clone for Res<T> {
    fn clone(&self) -> Self {
        Res {
            width: self.width,
            body: self.body.clone(),
            prefixes: self.prefixes.clone(),
            starts: self.starts.clone(),
        }
    }
}

impl<T: Float> Res<T> {
    /// A block of `body` modules (each with its index in the body Sequential), which must keep
    /// the width (checked by the builder; a mismatch panics here).
    pub fn new(width: usize, body: Vec<(String, Box<dyn Module<T>>)>) -> Self {
        assert!(!body.is_empty(), "a block has a body");
        let mut w = width;
        let mut starts = vec![0];
        for (prefix, m) in &body {
            assert_eq!(m.in_width(), w, "body module {prefix} reads width {w}");
            w = m.out_width();
            starts.push(starts.last().copied().unwrap_or(0) + m.tensors().len());
        }
        assert_eq!(w, width, "the body keeps the width");
        let (prefixes, body) = body.into_iter().unzip();
        Res {
            width,
            body,
            prefixes,
            starts,
        }
    }

    pub fn body(&self) -> &[Box<dyn Module<T>>] {
        &self.body
    }

    /// Tensor `k` of the block: its body module and its index there.
    fn locate(&self, k: usize) -> (usize, usize) {
        let j = self.starts.partition_point(|&s| s <= k) - 1;
        (j, k - self.starts[j])
    }

    /// Runs `f(j, h_{j-1}, cache_j, dh_j, grads_j, dh_{j-1})` from the last body module down;
    /// `dh_m` must already hold dy. The first module's dh_0 goes to `dx` when given.
    fn backward_body(
        cache: &mut Cache<T>,
        x: &Matrix<T>,
        starts: &[usize],
        grads: &mut [Matrix<T>],
        mut dx: Option<&mut Matrix<T>>,
        mut f: impl FnMut(
            usize,
            &Matrix<T>,
            &mut Cache<T>,
            &mut Matrix<T>,
            &mut [Matrix<T>],
            Option<&mut Matrix<T>>,
        ),
    ) {
        let Cache {
            body, body_deltas, ..
        } = cache;
        for j in (0..body.len()).rev() {
            let (before, rest) = body.split_at_mut(j);
            let h = if j == 0 { x } else { before[j - 1].output() };
            let (lower, upper) = body_deltas.split_at_mut(j);
            let d_input = if j == 0 {
                dx.as_deref_mut()
            } else {
                lower.last_mut()
            };
            f(
                j,
                h,
                &mut rest[0],
                &mut upper[0],
                &mut grads[starts[j]..starts[j + 1]],
                d_input,
            );
        }
    }
}

impl<T: Float> Module<T> for Res<T> {
    fn kind(&self) -> &'static str {
        "res"
    }

    fn anatomy(&self) -> Anatomy<'_, T> {
        Anatomy::Residual(&self.body)
    }

    fn in_width(&self) -> usize {
        self.width
    }

    fn out_width(&self) -> usize {
        self.width
    }

    fn tensors(&self) -> Vec<TensorDecl> {
        self.body
            .iter()
            .zip(&self.prefixes)
            .flat_map(|(m, p)| {
                m.tensors().into_iter().map(move |t| TensorDecl {
                    key: format!("body.{p}.{}", t.key),
                    ..t
                })
            })
            .collect()
    }

    fn value(&self, k: usize) -> &[T] {
        let (j, i) = self.locate(k);
        self.body[j].value(i)
    }

    fn value_mut(&mut self, k: usize) -> &mut [T] {
        let (j, i) = self.locate(k);
        self.body[j].value_mut(i)
    }

    /// `act` holds y; `body` the body's caches; `body_deltas` dLoss/dh_j, one per body module.
    fn cache(&self, capacity: usize) -> Cache<T> {
        let mut c = Cache::new(capacity, self.width, false);
        c.pre = Matrix::zeros(0, self.width);
        c.body = self.body.iter().map(|m| m.cache(capacity)).collect();
        c.body_deltas = self
            .body
            .iter()
            .map(|m| Matrix::zeros(capacity, m.out_width()))
            .collect();
        c
    }

    fn forward(&self, x: &Matrix<T>, cache: &mut Cache<T>, pass: &mut Pass<'_>) {
        for (j, m) in self.body.iter().enumerate() {
            let (before, rest) = cache.body.split_at_mut(j);
            let h = if j == 0 { x } else { before[j - 1].output() };
            m.forward(h, &mut rest[0], pass);
        }
        let last = cache.body.last().expect("a block has a body").output();
        cache.act.set_rows(x.rows());
        pulp::Arch::new().dispatch(Add {
            out: cache.act.as_mut_slice(),
            a: Some(x.as_slice()),
            b: last.as_slice(),
        });
    }

    fn backward(
        &self,
        x: &Matrix<T>,
        cache: &mut Cache<T>,
        dy: &mut Matrix<T>,
        grads: &mut [Matrix<T>],
        mut dx: Option<&mut Matrix<T>>,
    ) {
        seed_body_delta(cache, dy);
        let body = &self.body;
        Res::backward_body(
            cache,
            x,
            &self.starts,
            grads,
            dx.as_deref_mut(),
            |j, h, c, d, g, di| body[j].backward(h, c, d, g, di),
        );
        add_skip(dx, dy);
    }

    /// The body's fused steps ([`Module::backward_sgd`] of each body module), then the skip.
    fn backward_sgd(
        &mut self,
        x: &Matrix<T>,
        cache: &mut Cache<T>,
        dy: &mut Matrix<T>,
        lr: f64,
        grads: &mut [Matrix<T>],
        mut dx: Option<&mut Matrix<T>>,
    ) {
        seed_body_delta(cache, dy);
        let body = &mut self.body;
        Res::backward_body(
            cache,
            x,
            &self.starts,
            grads,
            dx.as_deref_mut(),
            |j, h, c, d, g, di| body[j].backward_sgd(h, c, d, lr, g, di),
        );
        add_skip(dx, dy);
    }

    fn update_buffers(&mut self, cache: &Cache<T>) {
        for (m, c) in self.body.iter_mut().zip(&cache.body) {
            m.update_buffers(c);
        }
    }

    fn buffers(&self) -> Vec<Buffer> {
        self.body
            .iter()
            .zip(&self.prefixes)
            .flat_map(|(m, p)| {
                m.buffers().into_iter().map(move |b| Buffer {
                    key: format!("body.{p}.{}", b.key),
                    ..b
                })
            })
            .collect()
    }

    /// `body.{j}.{key}` goes to body module j's buffer `key`.
    fn set_buffer(&mut self, key: &str, values: &[f64]) -> bool {
        let Some(rest) = key.strip_prefix("body.") else {
            return false;
        };
        self.body
            .iter_mut()
            .zip(&self.prefixes)
            .find_map(|(m, p)| {
                let key = rest.strip_prefix(p.as_str())?.strip_prefix('.')?;
                Some(m.set_buffer(key, values))
            })
            .unwrap_or(false)
    }

    fn linear_at(&self, k: usize) -> Option<&Dense<T>> {
        let (j, i) = self.locate(k);
        self.body[j].linear_at(i)
    }

    fn linear_at_mut(&mut self, k: usize) -> Option<&mut Dense<T>> {
        let (j, i) = self.locate(k);
        self.body[j].linear_at_mut(i)
    }

    fn linear_cache<'c>(&self, cache: &'c Cache<T>, k: usize) -> Option<&'c Cache<T>> {
        let (j, i) = self.locate(k);
        self.body[j].linear_cache(&cache.body[j], i)
    }

    fn body(&self) -> Option<Body<'_, T>> {
        Some((&self.body, &self.prefixes))
    }

    fn clone_box(&self) -> Box<dyn Module<T>> {
        Box::new(self.clone())
    }
}

/// dLoss/dh_m = dy: the body's last delta starts as the block's output gradient.
fn seed_body_delta<T: Float>(cache: &mut Cache<T>, dy: &Matrix<T>) {
    let dh = cache.body_deltas.last_mut().expect("a block has a body");
    dh.set_rows(dy.rows());
    dh.as_mut_slice().copy_from_slice(dy.as_slice());
}

/// The skip connection's share: dx = dh_0 + dy (dh_0 already in `dx`).
fn add_skip<T: Float>(dx: Option<&mut Matrix<T>>, dy: &Matrix<T>) {
    if let Some(dx) = dx {
        pulp::Arch::new().dispatch(Add {
            out: dx.as_mut_slice(),
            a: None,
            b: dy.as_slice(),
        });
    }
}

/// `out = a + b` (`out += b` without `a`) elementwise inside a SIMD dispatch, so the skip's
/// additions run at the CPU's full vector width.
struct Add<'a, T> {
    out: &'a mut [T],
    a: Option<&'a [T]>,
    b: &'a [T],
}

impl<T: Float> pulp::WithSimd for Add<'_, T> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        let Add { out, a, b } = self;
        match a {
            Some(a) => {
                for ((o, &a), &b) in out.iter_mut().zip(a).zip(b) {
                    *o = a + b;
                }
            }
            None => {
                for (o, &b) in out.iter_mut().zip(b) {
                    *o += b;
                }
            }
        }
    }
}
