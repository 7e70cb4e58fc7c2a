"""initscope against real PyTorch: `from_torch`, and `train`/`explain` of an nn.Module.

Needs torch. Without it these tests are skipped with a message, unless INITSCOPE_REQUIRE_TORCH=1
(CI sets it, and scripts/python-tests.sh then installs torch), which makes a missing torch a
failure. The tolerances are those of the engine's PyTorch fixtures
(crates/initscope/tests/engine/torch_parity.rs): f64 rtol 1e-10, atol 1e-13; f32 rtol 1e-4,
atol 1e-6, relative to the largest entry of PyTorch's tensor.
"""

import os

import numpy as np
import pytest

import initscope

try:
    import torch
    from torch import nn
except ImportError:  # pragma: no cover - depends on the machine
    if os.environ.get("INITSCOPE_REQUIRE_TORCH") == "1":
        raise
    pytest.skip(
        "torch is not installed: the PyTorch tests are skipped (pip install torch, or "
        "INITSCOPE_REQUIRE_TORCH=1 to make this a failure)",
        allow_module_level=True,
    )

from initscope.torch import Gate, Residual, Shift, TorchModel

TOL = {torch.float64: (1e-10, 1e-13), torch.float32: (1e-4, 1e-6)}


def close(ours, theirs, dtype, what):
    rtol, atol = TOL[dtype]
    ours = np.asarray(ours, dtype=np.float64)
    theirs = np.asarray(theirs, dtype=np.float64)
    assert ours.shape == theirs.shape, f"{what}: shape {ours.shape} vs {theirs.shape}"
    scale = np.abs(theirs).max() if theirs.size else 0.0
    worst = np.abs(ours - theirs).max() if theirs.size else 0.0
    assert worst <= atol + rtol * scale, f"{what}: |ours - torch| = {worst:.3e}, scale {scale:.3e}"


def data_file(tmp_path, rows=48, features=4, classes=3, seed=0):
    """An .npz with an explicit test split, so the training rows are every row of x (no
    hold-out): the same rows PyTorch trains on."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, features))
    y = rng.integers(0, classes, rows)
    path = tmp_path / "data.npz"
    np.savez(path, x=x, y=y, x_test=x[:8], y_test=y[:8])
    return path, x, y


def torch_steps(model, x, y, make_opt, steps):
    """PyTorch's own training: full batch, cross-entropy, `steps` optimizer steps. Returns the
    loss before each step and after the last (initscope's `batch_loss` at steps 0..steps), and
    the model's state_dict after the last step."""
    dtype = next(model.parameters()).dtype
    xt = torch.tensor(x, dtype=dtype)
    yt = torch.tensor(y, dtype=torch.long)
    opt = make_opt(model.parameters())
    model.train()
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(xt), yt)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    # The state after the last step: the final loss's forward pass (train mode, as initscope's
    # last batch loss) would move batchnorm's running statistics once more.
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        losses.append(nn.functional.cross_entropy(model(xt), yt).item())
    return losses, state


def batch_losses(run):
    h = run.history
    steps = np.asarray(h["step"])
    values = np.asarray(h["value"])
    picked = [(s, v) for s, m, v in zip(steps, h["metric"], values) if m == "batch_loss"]
    return [v for _, v in sorted(picked)]


def mlp(dtype):
    torch.manual_seed(1)
    return nn.Sequential(
        nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 3)
    ).to(dtype)


def resnet(dtype):
    torch.manual_seed(2)
    return nn.Sequential(
        # No bias before a batchnorm: its gradient would be zero up to rounding, and Adam
        # turns rounding noise into full steps.
        nn.Linear(4, 16, bias=False),
        nn.BatchNorm1d(16),
        nn.SiLU(),
        Residual(nn.LayerNorm(16), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 16), Gate(0.5)),
        Residual(nn.Sequential(nn.RMSNorm(16), nn.Linear(16, 16)), nn.GELU(), Shift(0.1)),
        nn.Linear(16, 3),
    ).to(dtype)


CASES = [
    ("mlp-sgd-f64", mlp, torch.float64, dict(optim="sgd", lr=0.1),
     lambda p: torch.optim.SGD(p, lr=0.1)),
    ("mlp-momentum-f32", mlp, torch.float32, dict(optim="momentum", lr=0.05, momentum=0.9),
     lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9)),
    ("resnet-adam-f64", resnet, torch.float64, dict(optim="adam", lr=0.01),
     lambda p: torch.optim.Adam(p, lr=0.01)),
    ("resnet-adamw-f32", resnet, torch.float32,
     dict(optim="adamw", lr=0.01, weight_decay=0.1),
     lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1)),
]


@pytest.mark.parametrize("name,build,dtype,flags,make_opt", CASES, ids=[c[0] for c in CASES])
def test_three_steps_equal_pytorch(tmp_path, name, build, dtype, flags, make_opt):
    path, x, y = data_file(tmp_path)
    model = build(dtype)
    tm = initscope.from_torch(model)
    run = initscope.train(model, data=path, steps=3, batch="full", **flags)
    # The run starts from the model's weights: initscope read them without changing the model.
    losses, theirs = torch_steps(model, x, y, make_opt, steps=3)
    assert run.summary["precision"] == ("f64" if dtype == torch.float64 else "f32")
    close(batch_losses(run), losses, dtype, f"{name}: losses")
    trained = tm.state_dict(run.weights)
    assert set(trained) == set(theirs), (sorted(trained), sorted(theirs))
    for key, value in theirs.items():
        close(trained[key].numpy(), value.numpy(), dtype, f"{name}: {key}")
    # The trained weights load back into the model.
    model.load_state_dict(trained)


def test_flat_mlp_reads_as_arch_and_act():
    tm = initscope.from_torch(mlp(torch.float32))
    assert tm.flags == {"arch": "4-16-16-3", "act": "tanh"}
    assert tm.precision == "f32" and tm.label == "torch:Sequential"
    assert list(tm.tensors) == ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"]
    no_bias = nn.Sequential(nn.Linear(3, 5, bias=False), nn.ReLU(), nn.Linear(5, 2, bias=False))
    assert initscope.from_torch(no_bias).flags == {"arch": "3-5-2", "act": "relu", "no_bias": True}


def test_nested_and_named_modules_map_to_their_state_dict_keys():
    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.Sequential(
                nn.Flatten(),
                nn.Sequential(nn.Linear(6, 8), nn.LeakyReLU(0.2)),
                Residual(nn.Linear(8, 8), nn.ELU(0.5)),
                nn.Dropout(0.25),
                nn.Linear(8, 2),
            )

        def forward(self, x):
            return self.layers(x)

    with pytest.raises(ValueError, match=r"^from_torch: the model \(Model\(\): not a module initscope knows"):
        initscope.from_torch(Model())
    tm = initscope.from_torch(Model().layers)
    assert tm.flags == {
        "net": "linear(8) leaky_relu(0.2) res(linear(8) elu(0.5)) dropout(0.25) linear(2)"
    }
    assert tm.names == {
        "0.weight": "1.0.weight",
        "0.bias": "1.0.bias",
        "2.body.0.weight": "2.body.0.weight",
        "2.body.0.bias": "2.body.0.bias",
        "4.weight": "4.weight",
        "4.bias": "4.bias",
    }


def test_unknown_modules_are_refused_by_name():
    class Mine(nn.Module):
        def forward(self, x):
            return 2 * x

    model = nn.Sequential(nn.Linear(2, 4), Mine(), nn.Linear(4, 2))
    with pytest.raises(ValueError, match=r"^from_torch: 1 \(Mine\(\)\): not a module initscope knows"):
        initscope.from_torch(model)
    for bad, why in [
        (nn.GELU(approximate="tanh"), "exact"),
        (nn.Softplus(beta=2), "beta=1"),
        (nn.BatchNorm1d(4, affine=False), "affine"),
        (nn.BatchNorm1d(4, momentum=None), "momentum"),
        (nn.LayerNorm(4, bias=False), "bias"),
        (nn.LayerNorm((2, 2)), "last axis"),
        (nn.RMSNorm(4, elementwise_affine=False), "learnable scale"),
        (nn.Conv1d(1, 1, 3), "not a module initscope knows"),
    ]:
        with pytest.raises(ValueError, match=why):
            initscope.from_torch(nn.Sequential(nn.Linear(2, 4), bad, nn.Linear(4, 2)))
    with pytest.raises(TypeError, match="nn.Module"):
        initscope.from_torch("linear(4)")


def test_the_run_id_hashes_the_weights(tmp_path):
    path, _, _ = data_file(tmp_path)
    a = initscope.train(mlp(torch.float32), data=path, steps=1)
    assert initscope.train(mlp(torch.float32), path, steps=1).run_id == a.run_id
    b = initscope.train(mlp(torch.float32), data=path, steps=1)
    assert a.run_id == b.run_id
    changed = mlp(torch.float32)
    with torch.no_grad():
        changed[0].weight[0, 0] += 1e-3
    c = initscope.train(changed, data=path, steps=1)
    assert c.run_id != a.run_id
    assert a.config["init_from"] == "torch:Sequential"
    assert a.config["init"] == "from torch:Sequential"
    assert len(a.config["init_from_sha256"]) == 64
    # The weights' precision is part of them: a float64 copy is another starting point.
    assert initscope.train(mlp(torch.float64), data=path, steps=1).run_id != a.run_id
    # The run directory says where the weights came from.
    run_dir = tmp_path / "run"
    a.save(run_dir)
    assert '"init_from": "torch:Sequential"' in (run_dir / "config.json").read_text()


def test_flags_that_the_model_decides_are_refused(tmp_path):
    path, _, _ = data_file(tmp_path)
    model = mlp(torch.float32)
    with pytest.raises(ValueError, match=r"^--hidden: the architecture is the model's"):
        initscope.train(model, data=path, hidden="8")
    with pytest.raises(ValueError, match=r"^--init: the starting weights are torch:Sequential's"):
        initscope.train(model, data=path, init="zeros")
    with pytest.raises(ValueError, match="--preset"):
        initscope.explain(model, data=path, preset="fixup")
    # A model whose widths do not fit the data is refused by initscope's own checks.
    with pytest.raises(ValueError, match="arch"):
        initscope.train(nn.Sequential(nn.Linear(5, 3)), data=path)


def test_explain_of_a_zeroed_layer_matches_pytorchs_gradients(tmp_path):
    """The middle layer's weights are zero: at step 0 no gradient reaches layer 1 (it flows
    back through W_2 = 0), while layers 2 and 3 get theirs; after one step W_2 has moved and
    layer 1 wakes. initscope's explanation must say what PyTorch's own autograd shows."""
    path, x, y = data_file(tmp_path)
    model = mlp(torch.float64)
    with torch.no_grad():
        model[2].weight.zero_()
    ex = initscope.explain(model, data=path, steps=4, batch="full", optim="sgd", lr=0.1)

    xt = torch.tensor(x)
    yt = torch.tensor(y, dtype=torch.long)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    linears = [model[0], model[2], model[4]]
    norms = []  # per step: (||dW||, ||db||) of each Linear
    for _ in range(4):
        opt.zero_grad()
        nn.functional.cross_entropy(model(xt), yt).backward()
        norms.append([(m.weight.grad.norm().item(), m.bias.grad.norm().item()) for m in linears])
        opt.step()

    layers = ex.layers
    assert [l["layer"] for l in layers] == [1, 2, 3]
    for l, row in enumerate(layers):
        gw, gb = norms[0][l]
        close(row["grad_w_norm_step0"], gw, torch.float64, f"layer {l + 1} ||dW|| at step 0")
        close(row["grad_b_norm_step0"], gb, torch.float64, f"layer {l + 1} ||db|| at step 0")
        torch_wake = next(s for s, step in enumerate(norms) if step[l][0] > 0)
        assert row["wake_step"] == torch_wake, (l + 1, row["wake_step"], torch_wake)
    assert layers[0]["grad_w_norm_step0"] == 0.0 and layers[0]["wake_step"] == 1


def test_explain_of_a_residual_model_names_its_tensors(tmp_path):
    path, _, _ = data_file(tmp_path)
    model = resnet(torch.float32)
    ex = initscope.explain(model, data=path, steps=20)
    assert ex.verdict in ("full", "partial", "symmetric", "dead")
    assert "torch:Sequential" in ex.text
    run = ex.run
    assert run.config["init_from"] == "torch:Sequential"
    assert set(run.weights) == set(initscope.from_torch(model).tensors)


def test_torch_model_passes_through_and_blocks_are_importable():
    tm = initscope.from_torch(mlp(torch.float32))
    assert initscope.from_torch(tm) is tm
    assert isinstance(tm, TorchModel)
    assert initscope.Residual is Residual and initscope.Gate is Gate and initscope.Shift is Shift


def test_readme_torch_quick_start_runs(monkeypatch, tmp_path, capsys):
    from test_api import readme_python_blocks

    blocks = [b for b in readme_python_blocks() if "import torch" in b]
    assert blocks, "no PyTorch example in the README's Python section"
    monkeypatch.chdir(tmp_path)
    scope = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), scope)
    out = capsys.readouterr().out
    # What the README's comments say it prints.
    assert "full stalled" in out
    assert "[(1, 1), (2, 0), (3, 0)]" in out
    assert scope["run"].summary["test_acc"] == pytest.approx(0.975, abs=0.0051)
    assert scope["history"].metric.eq("test_acc").any()
    ex = scope["ex"]
    assert ex.layers[0]["grad_w_norm_step0"] == 0.0
    assert "torch:Sequential" in ex._repr_markdown_()


def test_widths_that_do_not_chain_are_refused_by_module():
    cases = [
        (nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(5, 2)),
         r"^from_torch: 2 \(Linear.*\): takes 5 units, but the module before gives 4"),
        (nn.Sequential(nn.Linear(2, 4), nn.LayerNorm(3), nn.Linear(4, 2)),
         r"^from_torch: 1 \(LayerNorm.*\): normalises 3 units"),
        (nn.Sequential(nn.Linear(2, 4), nn.BatchNorm1d(6), nn.Linear(4, 2)),
         r"^from_torch: 1 \(BatchNorm1d.*\): normalises 6 units"),
        (nn.Sequential(nn.Linear(2, 4), Residual(nn.Linear(4, 3)), nn.Linear(3, 2)),
         r"^from_torch: 1 \(Residual.*\): its body maps 4 units to 3"),
    ]
    for model, message in cases:
        with pytest.raises(ValueError, match=message):
            initscope.from_torch(model)


def test_subclasses_that_change_forward_are_refused_and_frozen_parameters_warn():
    class Scaled(nn.Sequential):
        def forward(self, x):
            return 2 * super().forward(x)

    class Plain(nn.Sequential):
        pass

    class Odd(Residual):
        def forward(self, x):
            return x - self.body(x)

    with pytest.raises(ValueError, match=r"the model \(Scaled\("):
        initscope.from_torch(Scaled(nn.Linear(2, 2)))
    assert initscope.from_torch(Plain(nn.Linear(2, 3))).flags == {"arch": "2-3", "act": "tanh"}
    with pytest.raises(ValueError, match="overrides forward"):
        initscope.from_torch(nn.Sequential(nn.Linear(2, 2), Odd(nn.Linear(2, 2))))
    model = mlp(torch.float32)
    model[0].weight.requires_grad_(False)
    with pytest.warns(UserWarning, match=r"0\.weight do not require grad"):
        initscope.from_torch(model)


def test_shared_modules_tied_tensors_and_hooks_are_refused():
    lin = nn.Linear(4, 4)
    with pytest.raises(ValueError, match=r"^from_torch: 2 \(Linear.*\): this module is also 0"):
        initscope.from_torch(nn.Sequential(lin, nn.Tanh(), lin, nn.Linear(4, 2)))
    block = Residual(nn.Linear(4, 4))
    with pytest.raises(ValueError, match="this module is also 1"):
        initscope.from_torch(nn.Sequential(nn.Linear(4, 4), block, block, nn.Linear(4, 2)))
    tied = nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 2))
    tied[2].weight = tied[0].weight
    with pytest.raises(ValueError, match=r"^from_torch: 2 .*its tensor weight is also 0\.weight"):
        initscope.from_torch(tied)
    hooked = mlp(torch.float32)
    hooked[2].register_forward_hook(lambda m, i, o: 2 * o)
    with pytest.raises(ValueError, match="forward hooks"):
        initscope.from_torch(hooked)

    class Res(nn.Module):  # named like initscope's snippet, but its own class: refused
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Linear(4, 4))

        def forward(self, x):
            return x - self.body(x)

    with pytest.raises(ValueError, match="not a module initscope knows"):
        initscope.from_torch(nn.Sequential(nn.Linear(4, 4), Res(), nn.Linear(4, 2)))

    class Doubled(Gate):
        def forward(self, x):
            return 2 * super().forward(x)

    with pytest.raises(ValueError, match="overrides forward"):
        initscope.from_torch(nn.Sequential(nn.Linear(4, 4), Doubled(0.5), nn.Linear(4, 2)))


def test_rmsnorm_without_eps_keeps_its_dtype_epsilon():
    tm = initscope.from_torch(nn.Sequential(nn.Linear(4, 4), nn.RMSNorm(4), nn.Linear(4, 2)))
    eps = torch.finfo(torch.float32).eps
    assert f"rmsnorm(eps={float(eps)!r})" in tm.flags["net"]


def test_the_frozen_parameter_warning_points_at_the_callers_line(tmp_path):
    path, _, _ = data_file(tmp_path)
    model = mlp(torch.float32)
    model[0].weight.requires_grad_(False)
    with pytest.warns(UserWarning) as caught:
        initscope.train(model, data=path, steps=1)
    assert caught[0].filename == __file__
