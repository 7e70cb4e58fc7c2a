"""PyTorch models in initscope: :func:`from_torch` reads an ``nn.Module`` as a network initscope
trains, and :class:`Residual`, :class:`Gate` and :class:`Shift` are the building blocks it
recognises beyond ``torch.nn``'s own modules.

A model is read as ``nn.Sequential`` runs it: its modules in order, nested ``nn.Sequential``\\ s
flattened. The modules initscope knows:

=============================  ======================================================
``nn.Linear``                  ``linear(out)`` (``bias=none`` without a bias)
activations                    ``nn.Identity``, ``Tanh``, ``Sigmoid``, ``ReLU``, ``LeakyReLU``,
                               ``ELU``, ``SELU``, ``GELU`` (exact), ``Softplus`` (beta 1,
                               threshold 20), ``SiLU``, ``Softsign``
``nn.Dropout``                 ``dropout(p)``
``nn.LayerNorm``               ``layernorm`` over the last axis (with a bias when affine)
``nn.RMSNorm``                 ``rmsnorm`` (affine)
``nn.BatchNorm1d``             ``batchnorm`` (affine, running statistics, a momentum)
``nn.Flatten``                 first module only: initscope flattens every row already
:class:`Residual`              ``res(...)``: ``y = x + body(x)``
:class:`Gate`, :class:`Shift`  ``gate(v)``, ``shift(v)``: a learnable scalar times or plus x
=============================  ======================================================

Anything else is refused, naming the module: a custom module's ``forward`` may do anything, so
initscope does not guess. Write residual blocks with :class:`Residual` (or subclass it, keeping
its ``forward``). Also refused: a module used twice or a tensor tied between two modules
(initscope's layers hold their own weights) and modules with forward hooks.

``torch`` is imported by this module only; ``import initscope`` does not need it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch
from torch import nn

__all__ = ["from_torch", "TorchModel", "Residual", "Gate", "Shift"]


class Residual(nn.Module):
    """A residual block ``y = x + body(x)``, ``body`` an ``nn.Sequential`` of the modules given
    (initscope's ``res(...)``). Subclass it to give a block its own name; keep ``body`` and
    ``forward``."""

    def __init__(self, *body: nn.Module) -> None:
        super().__init__()
        self.body = nn.Sequential(*body)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Gate(nn.Module):
    """A learnable scalar multiplier ``y = alpha * x`` (initscope's ``gate(v)``; ReZero's and
    SkipInit's gate when it ends a residual branch)."""

    def __init__(self, value: float = 0.0) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.tensor([float(value)]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.alpha * x


class Shift(nn.Module):
    """A learnable scalar added to every unit, ``y = x + bias`` (initscope's ``shift(v)``;
    Fixup's scalar biases)."""

    def __init__(self, value: float = 0.0) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.tensor([float(value)]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.bias


@dataclass(frozen=True)
class TorchModel:
    """A PyTorch model as initscope reads it (:func:`from_torch`).

    ``flags`` are the ``train`` flags that describe its architecture: ``arch`` and ``act`` (and
    ``no_bias``) for a plain MLP, ``nn.Sequential(Linear, act, ..., Linear)`` with one
    activation, so that ``explain`` gives its layer-by-layer derivation; ``net`` (a ``--net``
    spec) for anything else. ``tensors`` are its parameters and buffers under initscope's names
    (float64), ``names`` maps each initscope name to the model's ``state_dict`` key, ``label``
    names the model in messages and in ``config.json`` (``torch:Sequential``), and
    ``precision`` is its parameters' (``f64`` for float64, else ``f32``).
    """

    flags: Dict[str, Any]
    tensors: Dict[str, np.ndarray] = field(repr=False)
    names: Dict[str, str] = field(repr=False)
    label: str
    precision: str

    @property
    def spec(self) -> str:
        """The network in initscope's words: the ``--net`` spec, or ``--arch A --act F``."""
        if "net" in self.flags:
            return self.flags["net"]
        text = f"--arch {self.flags['arch']} --act {self.flags['act']}"
        return text + (" --no-bias" if self.flags.get("no_bias") else "")

    def state_dict(self, weights: Dict[str, np.ndarray]) -> Dict[str, torch.Tensor]:
        """``weights`` (a :class:`initscope.Run`'s, initscope's names) under the model's own
        ``state_dict`` keys, as tensors: ``model.load_state_dict(tm.state_dict(run.weights))``
        puts a trained run back into the model."""
        out = {}
        for name, key in self.names.items():
            if name not in weights:
                raise KeyError(f"weights have no tensor {name!r} (the model's {key!r})")
            out[key] = torch.from_numpy(np.array(weights[name]))
        return out


#: torch.nn.RMSNorm (PyTorch 2.4 and later).
_RMSNORM = getattr(nn, "RMSNorm", None)


def _num(x: float) -> str:
    """A number as initscope's specs read it back to the same float64."""
    return repr(float(x))


def _activation(m: nn.Module) -> Optional[str]:
    """The initscope spec of an activation module, None when ``m`` is not one; raises for an
    activation initscope computes differently."""
    simple = {
        nn.Identity: "identity",
        nn.Tanh: "tanh",
        nn.Sigmoid: "sigmoid",
        nn.ReLU: "relu",
        nn.SELU: "selu",
        nn.SiLU: "silu",
        nn.Softsign: "softsign",
    }
    for cls, spec in simple.items():
        if type(m) is cls:
            return spec
    if type(m) is nn.LeakyReLU:
        return f"leaky_relu({_num(m.negative_slope)})"
    if type(m) is nn.ELU:
        return f"elu({_num(m.alpha)})"
    if type(m) is nn.GELU:
        if m.approximate != "none":
            raise _Refused("GELU(approximate='tanh') is not initscope's gelu, which is exact (erf)")
        return "gelu"
    if type(m) is nn.Softplus:
        if m.beta != 1 or m.threshold != 20:
            raise _Refused("initscope's softplus has beta=1 and threshold=20")
        return "softplus"
    return None


class _Refused(ValueError):
    """A module initscope cannot read; `from_torch` adds which one."""


def _is(m: nn.Module, cls: type) -> bool:
    """``m`` is ``cls`` or a subclass that keeps its ``forward``."""
    if not isinstance(m, cls):
        return False
    if type(m).forward is not cls.forward:
        raise _Refused(f"a {cls.__name__} subclass that overrides forward may compute anything")
    return True


def _leaves(m: nn.Module, path: str) -> List[Tuple[str, nn.Module]]:
    """The modules of ``m`` in the order ``nn.Sequential`` runs them (nested ones flattened,
    every use of a module kept, as ``Sequential.forward`` runs ``_modules``), each with its
    ``state_dict`` path."""
    if isinstance(m, nn.Sequential) and type(m).forward is nn.Sequential.forward and not _hooked(m):
        out: List[Tuple[str, nn.Module]] = []
        for name, child in m._modules.items():
            if child is not None:
                out.extend(_leaves(child, f"{path}.{name}" if path else name))
        return out
    return [(path, m)]


def _hooked(m: nn.Module) -> bool:
    """Whether forward hooks or pre-hooks may change what ``m`` computes."""
    return bool(m._forward_hooks or m._forward_pre_hooks)


def _last_axis(m: nn.Module) -> int:
    """The width a norm normalises over; refused unless it is the last axis alone."""
    if len(m.normalized_shape) != 1:
        raise _Refused("initscope normalises over the last axis only")
    return m.normalized_shape[0]


class _Reader:
    """Builds the spec and the tensors of a list of modules (one level of a network)."""

    def __init__(self) -> None:
        self.tensors: Dict[str, np.ndarray] = {}
        self.names: Dict[str, str] = {}
        self.float64 = False
        self.frozen: List[str] = []
        #: The width flowing between modules, once a module has fixed it.
        self.width: Optional[int] = None
        #: Modules and tensors read so far (by identity) with their paths: a module used twice,
        #: or a tensor tied between two, shares weights initscope would train apart.
        self.seen: Dict[int, str] = {}

    def once(self, obj: Any, path: str, what: str) -> None:
        """Refuses ``obj`` when it was read before, under another path."""
        first = self.seen.setdefault(id(obj), path)
        if first != path:
            raise _Refused(
                f"{what} is also {first or 'the model'}; initscope's layers hold their own "
                "weights, so shared ones would be trained apart"
            )

    def fits(self, width: int, what: str) -> None:
        """Checks that a module taking ``width`` units fits the width before it."""
        if self.width is not None and width != self.width:
            raise _Refused(f"{what} {width} units, but the module before gives {self.width}")
        self.width = width

    def take(self, m: nn.Module, path: str, name: str) -> None:
        """Records ``m``'s own parameters and buffers, torch path ``path``, initscope ``name``."""
        for key, t in m.state_dict(keep_vars=True).items():
            if "." in key:
                continue  # a child's; read where the child is
            here = f"{path}.{key}" if path else key
            self.once(t, here, f"its tensor {key}")
            if isinstance(t, nn.Parameter) and not t.requires_grad:
                self.frozen.append(here)
            if t.is_floating_point():
                self.float64 |= t.dtype == torch.float64
                a = t.detach().cpu().to(torch.float64).numpy().copy()
            else:
                a = t.detach().cpu().numpy().astype(np.float64)
            own = f"{name}.{key}"
            self.tensors[own] = a
            self.names[own] = here

    def modules(self, leaves: List[Tuple[str, nn.Module]], prefix: str, top: bool) -> List[str]:
        specs: List[str] = []
        for path, m in leaves:
            at = path or "the model"
            if top and not specs and type(m) is nn.Flatten and m.start_dim == 1:
                continue
            name = f"{prefix}{len(specs)}"
            try:
                self.once(m, path, "this module")
                if _hooked(m):
                    raise _Refused("it has forward hooks, which may change what it computes")
                spec = self.module(m, path, name)
            except _Refused as e:
                raise ValueError(f"from_torch: {at} ({_short(m)}): {e}") from None
            specs.append(spec)
        return specs

    def module(self, m: nn.Module, path: str, name: str) -> str:
        act = _activation(m)
        if act is not None:
            return act
        if type(m) is nn.Linear:
            self.fits(m.in_features, "takes")
            self.width = m.out_features
            self.take(m, path, name)
            return f"linear({m.out_features})" if m.bias is not None else (
                f"linear({m.out_features}, bias=none)"
            )
        if type(m) is nn.Dropout:
            return f"dropout({_num(m.p)})"
        if type(m) is nn.LayerNorm:
            self.fits(_last_axis(m), "normalises")
            if m.elementwise_affine and getattr(m, "bias", True) is None:
                raise _Refused("initscope's affine layernorm has a bias (beta); this one has none")
            self.take(m, path, name)
            affine = "" if m.elementwise_affine else ", affine=false"
            return f"layernorm(eps={_num(m.eps)}{affine})"
        if _RMSNORM is not None and type(m) is _RMSNORM:
            self.fits(_last_axis(m), "normalises")
            if not m.elementwise_affine:
                raise _Refused("initscope's rmsnorm has a learnable scale (elementwise_affine=True)")
            self.take(m, path, name)
            # eps=None is the machine epsilon of the model's dtype in PyTorch, written out so
            # that training in another precision keeps it.
            eps = m.eps if m.eps is not None else torch.finfo(m.weight.dtype).eps
            return f"rmsnorm(eps={_num(eps)})"
        if type(m) is nn.BatchNorm1d:
            self.fits(m.num_features, "normalises")
            if not m.affine or not m.track_running_stats:
                raise _Refused(
                    "initscope's batchnorm is affine and tracks running statistics "
                    "(affine=True, track_running_stats=True)"
                )
            if m.momentum is None:
                raise _Refused("initscope's batchnorm needs a momentum (momentum=None is a cumulative average)")
            self.take(m, path, name)
            return f"batchnorm(eps={_num(m.eps)}, momentum={_num(m.momentum)})"
        if _is(m, Gate):
            self.take(m, path, name)
            return f"gate({_num(m.alpha.detach().reshape(-1)[0])})"
        if _is(m, Shift):
            self.take(m, path, name)
            return f"shift({_num(m.bias.detach().reshape(-1)[0])})"
        if _is(m, Residual):
            if any(p for p, _ in m.named_parameters(recurse=False)) or any(
                b for b, _ in m.named_buffers(recurse=False)
            ):
                raise _Refused("a residual block holds parameters only in its body")
            body_path = f"{path}.body" if path else "body"
            before = self.width
            body = self.modules(_leaves(m.body, body_path), f"{name}.body.", top=False)
            if not body:
                raise _Refused("a residual block needs a body")
            if before is not None and self.width != before:
                raise _Refused(f"its body maps {before} units to {self.width}; x + body(x) needs the same width")
            return f"res({' '.join(body)})"
        raise _Refused(
            "not a module initscope knows (Linear, the activations, Dropout, LayerNorm, RMSNorm, "
            "BatchNorm1d, nn.Sequential, and initscope.torch.Residual/Gate/Shift); its forward "
            "could do anything, so initscope does not guess"
        )


def _caller_level() -> int:
    """The ``stacklevel`` of the first frame outside the initscope package (a warning points
    at the user's line, whether they called ``from_torch`` or ``train``)."""
    import os
    import sys

    package = os.path.dirname(os.path.abspath(__file__))
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.dirname(os.path.abspath(frame.f_code.co_filename)) == package:
        frame, level = frame.f_back, level + 1
    return level


def _short(m: nn.Module) -> str:
    text = repr(m).splitlines()[0]
    return text if len(text) <= 60 else text[:57] + "..."


def from_torch(model: nn.Module) -> TorchModel:
    """Reads a PyTorch model as a network initscope trains: its architecture (``flags``) and
    its current parameters and buffers (``tensors``), see :class:`TorchModel` and the module
    table above. A module initscope does not know raises ``ValueError`` naming it by its
    ``state_dict`` path."""
    if isinstance(model, TorchModel):
        return model
    if not isinstance(model, nn.Module):
        raise TypeError(f"from_torch() takes an nn.Module, not {type(model).__name__}")
    reader = _Reader()
    leaves = _leaves(model, "")
    specs = reader.modules(leaves, "", top=True)
    if not specs:
        raise ValueError("from_torch: the model has no modules")
    if not any(s.startswith("linear") for s in specs) and not any(
        s.startswith("res(") for s in specs
    ):
        raise ValueError("from_torch: the model has no Linear layer")
    if reader.frozen:
        warnings.warn(
            f"from_torch: {', '.join(reader.frozen)} do not require grad in the model, but "
            "initscope trains every parameter",
            UserWarning,
            stacklevel=_caller_level(),
        )
    label = f"torch:{type(model).__name__}"
    precision = "f64" if reader.float64 else "f32"
    # A plain MLP's tensors are named `{2(l-1)}.weight` (layer l), as in nn.Sequential(Linear,
    # act, ..., Linear): the positions the reader named them by already.
    kept = [m for i, (_, m) in enumerate(leaves) if not (i == 0 and type(m) is nn.Flatten)]
    flags = _plain_mlp(kept) or {"net": " ".join(specs)}
    return TorchModel(
        flags=flags, tensors=reader.tensors, names=reader.names, label=label, precision=precision
    )


def _plain_mlp(modules: List[nn.Module]) -> Optional[Dict[str, Any]]:
    """``arch``/``act``/``no_bias`` flags when the modules are Linear, act, Linear, ..., Linear
    with one activation and biases on all layers or none; None otherwise."""
    if len(modules) % 2 == 0:
        return None
    linears = modules[0::2]
    acts = [_activation(m) for m in modules[1::2]]
    if not all(type(m) is nn.Linear for m in linears) or None in acts or len(set(acts)) > 1:
        return None
    biased = {m.bias is not None for m in linears}
    if len(biased) != 1:
        return None
    widths = [linears[0].in_features] + [m.out_features for m in linears]
    flags: Dict[str, Any] = {"arch": "-".join(str(w) for w in widths), "act": acts[0] if acts else "tanh"}
    if not biased.pop():
        flags["no_bias"] = True
    return flags
