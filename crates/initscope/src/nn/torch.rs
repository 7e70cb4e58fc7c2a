//! The PyTorch model a network spec describes: a few lines that rebuild it, so that
//! `model.load_state_dict(load_file("weights.safetensors"))` works on the weights initscope
//! writes (the names match, [`super::build`]). Blocks, gates and shifts are small classes whose
//! definitions come with the model ([`CLASSES`]).

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
    let needs = ["Res(", "Gate(", "Shift("]
        .iter()
        .any(|c| model.contains(c));
    (
        if needs {
            CLASSES.to_string()
        } else {
            String::new()
        },
        model,
    )
}
