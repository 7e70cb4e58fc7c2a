//! The PyTorch model a network spec describes: a few lines that rebuild it, so that
//! `model.load_state_dict(load_file("weights.safetensors"))` works on the weights initscope
//! writes (the names match, [`super::build`]). Blocks, gates and shifts are small classes whose
//! definitions come with the model ([`CLASSES`]), as does `relu:grad0=1`'s
//! ([`RELU_GRAD1_CLASS`]).

use super::spec::{ModuleSpec, NetSpec};

/// The classes a model of blocks, gates and shifts needs, defined as initscope's modules are.
pub const CLASSES: &str = "class Res(nn.Module):
    def __init__(self, *body):
        super().__init__()
        self.body = nn.Sequential(*body)
    def forward(self, x):
        return x + self.body(x)
class Gate(nn.Module):
    def __init__(self, v):
        super().__init__()
        self.alpha = nn.Parameter(torch.tensor([float(v)]))
    def forward(self, x):
        return self.alpha * x
class Shift(nn.Module):
    def __init__(self, v):
        super().__init__()
        self.bias = nn.Parameter(torch.tensor([float(v)]))
    def forward(self, x):
        return x + self.bias
";

/// `relu:grad0=1` in PyTorch: ReLU whose backward passes the gradient where x >= 0, so
/// relu'(0) = 1 (`nn.ReLU` has relu'(0) = 0). Checked against initscope's gradients by
/// running the snippet (see the `relu_grad0` tests).
pub const RELU_GRAD1_CLASS: &str = "class _ReLUGrad1Fn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.relu(x)
    @staticmethod
    def backward(ctx, g):
        x, = ctx.saved_tensors
        return g * (x >= 0).to(g.dtype)
class ReLUGrad1(nn.Module):
    def forward(self, x):
        return _ReLUGrad1Fn.apply(x)
";

/// The class definitions a list of PyTorch module expressions needs: [`CLASSES`] for blocks,
/// gates and shifts, [`RELU_GRAD1_CLASS`] for `relu:grad0=1`; empty for a plain stack.
pub fn classes_for(model: &str) -> String {
    let mut out = String::new();
    if ["Res(", "Gate(", "Shift("]
        .iter()
        .any(|c| model.contains(c))
    {
        out.push_str(CLASSES);
    }
    if model.contains("ReLUGrad1(") {
        out.push_str(RELU_GRAD1_CLASS);
    }
    out
}

/// What a module's PyTorch expression depends on beyond its spec.
pub struct Torch {
    /// The data's output width (a final bare `linear`).
    pub outputs: usize,
    /// Whether linear layers without `bias=` have a bias (`--no-bias` says no).
    pub bias: bool,
}

impl Torch {
    /// The expressions of a sequence read at width `width`, `res(...)*K` as K entries.
    pub fn seq(&self, specs: &[ModuleSpec], mut width: usize) -> Vec<String> {
        let mut out = Vec::new();
        for m in specs {
            let repeat = match m {
                ModuleSpec::Res(r) => r.repeat,
                _ => 1,
            };
            for _ in 0..repeat {
                out.push(m.torch(width, self));
            }
            if let ModuleSpec::Linear(l) = m {
                width = l.width.unwrap_or(self.outputs);
            }
        }
        out
    }
}

/// The class definitions the model needs (none for a plain stack) and the
/// `nn.Sequential(...)` expression of `spec` on data with `inputs` and `outputs` columns.
pub fn torch_model(spec: &NetSpec, inputs: usize, outputs: usize, bias: bool) -> (String, String) {
    let t = Torch { outputs, bias };
    let model = format!("nn.Sequential({})", t.seq(&spec.modules, inputs).join(", "));
    (classes_for(&model), model)
}
