"""initscope: why an initialization works or fails, from Python.

The compiled core (``initscope._core``) is the Rust library the ``initscope`` command line is
built on; this module is the thin layer people call::

    import initscope
    run = initscope.train(data="moons", optim="adam", lr=0.01, epochs=100)
    run.summary["test_acc"], run.history_frame(), run.weights["0.weight"]
    run.save("runs/moons")                      # the folder `initscope train --out` writes

    ex = initscope.explain(data="xor", hidden="3", init="zeros", batch="full")
    ex.verdict                                  # 'dead'
    print(ex.text)                              # the step-0 derivation and the verdict

Every keyword argument of :func:`train` and :func:`explain` is a flag of ``initscope train``
with underscores (``bias_init``, ``layer_init``, ``grad_noise``, ...), given as it would be on
the command line (``hidden="16,16"``, ``init="normal:std=0.5"``); lists and dicts are accepted
where they read naturally (``hidden=[16, 16]``, ``layer_init={2: "zeros"}``). ``None`` means
the default. Bad input raises ``ValueError`` with the command line's one-line message (without
its ``initscope: error:`` prefix); an unknown keyword raises ``TypeError``. Training releases
the GIL, and Ctrl-C stops it with ``KeyboardInterrupt``.
"""

from __future__ import annotations

import functools
import json
import operator
import os
import sys
import warnings
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from . import _core

__version__: str = _core.__version__

#: The flags ``train`` and ``explain`` take: ``initscope train``'s long flags with underscores.
FLAGS: Tuple[str, ...] = tuple(_core.FLAGS)

__all__ = [
    "train",
    "explain",
    "from_torch",
    "init_tensor",
    "reproduce",
    "reproductions",
    "meanfield",
    "Run",
    "Explanation",
    "FLAGS",
    "__version__",
]

Data = Union[str, Tuple[Any, Any], None]


def _suggest(name: str) -> str:
    import difflib

    close = difflib.get_close_matches(name, FLAGS, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _plain(value: Any) -> Any:
    """A flag value as JSON: NumPy scalars become Python numbers, paths become strings."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _flags(caller: str, flags: Mapping[str, Any]) -> str:
    """The keyword arguments as the JSON object the core reads (flag name -> value)."""
    out: Dict[str, Any] = {}
    for key, value in flags.items():
        if key == "data":
            raise TypeError(f"{caller}() takes the data as its `data` argument")
        if key not in FLAGS:
            raise TypeError(f"{caller}() got an unexpected keyword argument {key!r}{_suggest(key)}")
        if value is None:
            continue
        value = _plain(value)
        if key == "hidden" and isinstance(value, (list, int)) and not isinstance(value, bool):
            widths = value if isinstance(value, list) else [value]
            value = ",".join(str(w) for w in widths) if widths else "none"
        elif key == "arch" and isinstance(value, list):
            value = "-".join(str(w) for w in value)
        elif key in ("layer_init", "layer_bias_init"):
            if isinstance(value, Mapping):
                value = [f"{layer}={spec}" for layer, spec in value.items()]
            elif isinstance(value, str):
                value = [value]
        out[key] = value
    return json.dumps(out)


def _array(obj: Any, name: str) -> np.ndarray:
    """``obj`` as an ndarray the core reads: a pandas object through ``to_numpy()``, anything
    else through ``np.asarray`` (no copy of an ndarray); float16 and non-native byte orders are
    widened or swapped here (one conversion), every other real dtype is read by the core."""
    if hasattr(obj, "to_numpy") and not isinstance(obj, np.ndarray):
        obj = obj.to_numpy()
    a = np.asarray(obj)
    if a.dtype == np.float16:
        a = a.astype(np.float32)
    elif a.dtype.kind in "fiub" and not a.dtype.isnative:
        a = a.astype(a.dtype.newbyteorder("="))
    elif a.dtype.kind not in "fiub":
        raise ValueError(
            f"{name}: dtype {a.dtype} is not supported (give real numbers: float, int, uint or bool)"
        )
    return a


def _is_model(obj: Any) -> bool:
    """Whether ``obj`` is a PyTorch module or a :class:`initscope.torch.TorchModel` (without
    importing torch)."""
    torch_layer = sys.modules.get(__name__ + ".torch")
    if torch_layer is not None and isinstance(obj, torch_layer.TorchModel):
        return True
    return any(
        c.__name__ == "Module" and c.__module__.startswith("torch.nn") for c in type(obj).__mro__
    )


#: The flags a model's architecture sets (``from_torch``), refused beside a model.
_ARCH_FLAGS = ("net", "arch", "hidden", "act", "dropout", "no_bias")


def _call(
    fn,
    caller: str,
    model: Any,
    X: Any,
    y: Any,
    data: Data,
    flags: Mapping[str, Any],
):
    if model is not None and not _is_model(model):
        if X is not None and y is None and data is None:
            model, X, y = None, model, X  # train(X, y)
        elif X is not None or y is not None or data is not None:
            raise TypeError(
                f"{caller}(): the first argument is a PyTorch model (nn.Module), not "
                f"{type(model).__name__}"
            )
        else:
            model, data = None, model  # train("moons"), train((X, y))
    elif isinstance(X, (str, os.PathLike)) and y is None and data is None:
        X, data = None, X  # train(model, "moons")
    if X is not None or y is not None:
        if data is not None:
            raise TypeError(f"{caller}(): give the data as X, y or as data=, not both")
        if X is None or y is None:
            raise TypeError(f"{caller}(): give both X and y")
        data = (X, y)
    start = None
    if model is not None:
        tm = from_torch(model)
        clash = [k for k in _ARCH_FLAGS if flags.get(k) is not None]
        if clash:
            raise ValueError(
                f"--{clash[0].replace('_', '-')}: the architecture is the model's "
                f"({tm.label}: {tm.spec}); drop {clash[0]}"
            )
        flags = {**flags, **tm.flags}
        if flags.get("precision") is None:
            flags["precision"] = tm.precision
        start = (tm.label, tm.tensors)
    text = _flags(caller, flags)
    if data is None:
        core, warned = fn(text, None, None, start)
    elif isinstance(data, (str, os.PathLike)):
        spec = os.fspath(data)
        core, warned = fn(json.dumps({**json.loads(text), "data": spec}), None, None, start)
    elif isinstance(data, (tuple, list)) and len(data) == 2:
        X, y = data
        core, warned = fn(text, _array(X, "X"), _array(y, "y"), start)
    else:
        raise TypeError(
            f"{caller}(): data must be a spec string such as 'moons' or a pair (X, y) of arrays, "
            f"not {type(data).__name__}"
        )
    for w in warned:
        warnings.warn(w, UserWarning, stacklevel=3)
    return core


class Run:
    """A finished training run: what ``initscope train`` computes, in memory.

    Attributes are computed on first access and kept.
    """

    def __init__(self, core: "_core.RunCore") -> None:
        self._core = core

    @property
    def run_id(self) -> str:
        """The run id: 16 hex digits of the hash of the validated config (the data spec, or
        for arrays a digest of their values, included)."""
        return self._core.run_id

    @functools.cached_property
    def summary(self) -> Dict[str, Any]:
        """``summary.json``: losses, accuracies, timing, the verdict and its per-layer table."""
        return json.loads(self._core.summary_json())

    @functools.cached_property
    def config(self) -> Dict[str, Any]:
        """``config.json``: the validated configuration the run id is the hash of."""
        return json.loads(self._core.config_json())

    @functools.cached_property
    def history(self) -> Dict[str, np.ndarray]:
        """``metrics.csv`` in long form, one array per column: ``run_id``, ``step`` (int64),
        ``metric`` (str), ``layer`` (float64, NaN for whole-network metrics), ``module`` (only
        for ``net`` networks with tensors outside the linear layers; None elsewhere) and
        ``value`` (float64)."""
        cols = self._core.history()
        n = len(cols["step"])
        out: Dict[str, np.ndarray] = {"run_id": np.full(n, self.run_id)}
        out["step"] = cols["step"]
        out["metric"] = np.array(cols["metric"], dtype=str)
        out["layer"] = cols["layer"]
        if "module" in cols:
            out["module"] = np.array(cols["module"], dtype=object)
        out["value"] = cols["value"]
        return out

    def history_frame(self, wide: bool = False):
        """:attr:`history` as a pandas DataFrame (long form, metrics.csv's columns); with
        ``wide=True`` :meth:`history_wide` instead: indexed by ``step``, one column per metric
        series (``train_loss``, ``layer1/grad_norm``, ...), NaN where a series was not recorded.

        Raises ImportError when pandas is not installed (it is optional)."""
        try:
            import pandas as pd
        except ImportError as e:
            raise ImportError(
                "Run.history_frame() needs pandas (pip install pandas); Run.history and "
                "Run.history_wide() have the same columns as NumPy arrays"
            ) from e
        if wide:
            cols = self.history_wide()
            index = pd.Index(cols["step"], name="step")
            return pd.DataFrame({k: v for k, v in cols.items() if k != "step"}, index=index)
        return pd.DataFrame(self.history)

    def history_wide(self) -> Dict[str, np.ndarray]:
        """``metrics.csv`` in wide form: ``step`` (int64, each recorded step once, ascending),
        then one float64 array per metric series, named as the TensorBoard event file names its
        scalars: ``train_loss`` for a whole-network metric, ``layer2/grad_norm`` for layer 2's,
        ``2.body.0.weight/tensor_norm`` for a tensor outside the linear layers; in the order the
        series first appear in metrics.csv. A series is NaN at the steps it was not recorded at
        (evaluations every ``eval_every`` steps, diagnostics every ``diag_every``). Each call
        returns fresh arrays."""
        steps, columns = _core.history_wide(self._core)
        out: Dict[str, np.ndarray] = {"step": steps}
        out.update(columns)
        return out

    @functools.cached_property
    def weights(self) -> Dict[str, np.ndarray]:
        """The final parameters as ``weights.safetensors`` holds them: ``state_dict`` names
        (``0.weight`` of shape (fan_out, fan_in), ``0.bias``, ...) to arrays in the run's
        precision."""
        return dict(self._core.weights())

    def save(self, dir: Union[str, "os.PathLike[str]"], force: bool = False) -> List[str]:
        """Writes the run directory ``initscope train --out DIR`` writes (config.json,
        metrics.csv, weights.safetensors, summary.json, histograms.json, a TensorBoard event
        file and the .initscope marker), atomically. ``dir`` must be missing, empty, or a run
        folder initscope wrote, which is replaced only with ``force=True``; anything else is
        refused with ValueError. Returns the names of the files written."""
        return self._core.save(os.fspath(dir), force)

    def __repr__(self) -> str:
        s = self.summary
        acc = s.get("test_acc")
        acc_text = f", test acc {acc:.4f}" if isinstance(acc, float) else ""
        return (
            f"<initscope.Run {self.run_id}: {self._core.headline()} | {s['steps']} steps, "
            f"{s['status']}, test loss {s['test_loss']}{acc_text}, verdict {s.get('verdict')}>"
        )


class Explanation:
    """What ``initscope explain`` shows: the step-0 derivation and the verdict after training.

    In a notebook it displays as Markdown with LaTeX formulas (``_repr_markdown_``)."""

    def __init__(self, core: "_core.ExplanationCore") -> None:
        self._core = core

    @functools.cached_property
    def json(self) -> Dict[str, Any]:
        """``initscope explain --json``: verdict, learning, layers, quotient widths,
        derivation."""
        return json.loads(self._core.json())

    @property
    def run_id(self) -> str:
        return self.json["run_id"]

    @property
    def verdict(self) -> str:
        """``dead``, ``deadlock``, ``symmetric``, ``partial`` or ``full``."""
        return self.json["verdict"]

    @property
    def learning(self) -> Optional[str]:
        """``learned``, ``stalled`` or ``diverged``."""
        return self.json.get("learning")

    @property
    def layers(self) -> List[Dict[str, Any]]:
        """Per linear layer: shape, activation, gradient norms, wake-up step, gradient state,
        effective widths at init and at the end."""
        return self.json["layers"]

    @property
    def tensors(self) -> List[Dict[str, Any]]:
        """Per tensor of a ``net`` network (norm gains, gates, ...): wake-up steps predicted and
        measured; empty for a plain MLP (see :attr:`layers`)."""
        return self.json.get("tensors", [])

    @property
    def widths(self) -> Dict[str, Optional[List[int]]]:
        """The quotient network's widths at init and at the end (input, symmetry classes per
        hidden layer, output)."""
        return {"init": self.json.get("quotient_init"), "end": self.json.get("quotient_end")}

    @functools.cached_property
    def text(self) -> str:
        """``initscope explain`` as text."""
        return self._core.text()

    @functools.cached_property
    def markdown(self) -> str:
        """``initscope explain --format markdown``: formulas in LaTeX."""
        return self._core.markdown()

    @functools.cached_property
    def run(self) -> Run:
        """The training run the verdict comes from."""
        return Run(self._core.run())

    def _repr_markdown_(self) -> str:
        return self.markdown

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"<initscope.Explanation {self.run_id}: {self.verdict} and {self.learning}>"


def train(
    model: Any = None, X: Any = None, y: Any = None, *, data: Data = None, **flags: Any
) -> Run:
    """Trains as ``initscope train`` does and returns the :class:`Run`.

    ``model`` is an optional PyTorch model (``nn.Module``, read by :func:`from_torch`): the run
    starts from its current weights, with its architecture and, unless ``precision`` is given,
    its precision (float64 parameters train in f64); the run id hashes those weights. Without a
    model the architecture and initializers come from the flags. The data are ``X`` and ``y``,
    or ``data=``; ``train(X, y)``, ``train("moons")`` and ``train((X, y))`` work too.

    ``data`` is a data spec as ``--data`` takes it (``"moons"``, ``"mnist1d"``,
    ``"moons:n=512,noise=0.2"``, ``"npy:X.npy,y.npy"``, a ``.csv``/``.npz`` path; default
    ``"moons"``) or a pair ``(X, y)`` of arrays (NumPy, or pandas when installed): ``X`` of
    shape (rows, features) (more axes are flattened, as for ``.npy`` files), ``y`` 1-D integer
    class labels or (rows, outputs) regression targets. Arrays follow the rules of ``.npy``
    files: ``test_fraction`` (default 0.2) of the rows are held out as the test split by a
    fixed shuffle, ``task``, ``val_fraction`` and ``standardize`` apply; empty arrays,
    mismatched lengths and NaN or infinite values are refused. A C-contiguous ``X`` in the
    training precision (``precision``: float32 by default, float64 for ``"f64"``) is used in
    place, not copied: the call holds a read-only borrow of it, so, as with
    ``torch.from_numpy``, it must not be changed (from another thread) until the call returns.
    Any other ``X`` (uint8 images, other dtypes, Fortran order, strided views) is converted once
    to the training precision.

    Every other keyword is a flag of ``initscope train`` (see :data:`FLAGS`), e.g. ``net``,
    ``hidden``, ``act``, ``init``, ``bias_init``, ``layer_init``, ``optim``, ``lr``,
    ``steps``, ``epochs``, ``batch``, ``seed``, ``precision``, ``dropout``, ``grad_noise``.
    Options that do nothing for this configuration give a ``UserWarning``, as the command line
    warns.
    """
    return Run(_call(_core.train, "train", model, X, y, data, flags))


def explain(
    model: Any = None, X: Any = None, y: Any = None, *, data: Data = None, **flags: Any
) -> Explanation:
    """Explains as ``initscope explain`` does: the backward pass at step 0 with the actual
    numbers, then ``steps`` (default 200) training steps and the verdict. Arguments as for
    :func:`train` (diagnostics default to off, as in the command line); ``explain(model, X,
    y)`` explains a PyTorch model from its current weights."""
    return Explanation(_call(_core.explain, "explain", model, X, y, data, flags))


def from_torch(model: Any) -> Any:
    """Reads a PyTorch model (``nn.Module``) as a network initscope trains: an
    :class:`initscope.torch.TorchModel` with its architecture as ``train`` flags, its
    parameters and buffers, and how their names map to the model's ``state_dict``. The modules
    it reads and the residual convention are in :mod:`initscope.torch`; anything else raises
    ``ValueError`` naming the module. Needs torch."""
    from .torch import from_torch as read_model

    return read_model(model)


def __getattr__(name: str) -> Any:
    # The PyTorch building blocks, imported (with torch) on first use.
    if name in ("Residual", "Gate", "Shift", "TorchModel"):
        from . import torch as torch_layer

        return getattr(torch_layer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def init_tensor(
    spec: str,
    shape: Sequence[int],
    act: str = "tanh",
    seed: int = 0,
    layer: int = 1,
    fan_in: Optional[int] = None,
) -> np.ndarray:
    """Draws one tensor with an initializer, exactly as ``initscope train`` draws layer
    ``layer`` of a network with that shape, activation and seed (values in float64; the run
    rounds them to its precision).

    ``shape`` is a weight's ``(fan_out, fan_in)`` (like ``nn.Linear.weight``) or a bias's
    ``(fan_out,)``, which also needs ``fan_in`` (its layer's inputs). ``spec`` is any
    initializer ``initscope init list`` knows (``kaiming_normal``, ``orthogonal:gain=auto``,
    ``normal:std=0.02``, ``pytorch``, ...); ``act`` is the activation after the layer (for
    ``gain=auto``). LSUV draws its orthogonal start (its rescaling needs a network and data).
    """
    index = operator.index
    return _core.init_tensor(
        spec,
        [index(d) for d in shape],
        act,
        index(seed),
        index(layer),
        None if fan_in is None else index(fan_in),
    )


def reproductions() -> List[Tuple[str, str]]:
    """The published results :func:`reproduce` knows, as ``(name, what it reproduces)`` pairs,
    in the order ``initscope reproduce all`` runs them."""
    return [tuple(r) for r in _core.reproductions()]


def reproduce(name: str) -> Dict[str, Any]:
    """Runs one reproduction (``initscope reproduce NAME --json``) and returns its record:
    ``name``, ``source``, ``rows`` (quantity, measured, reference, ok), ``criterion``, ``pass``,
    ``deviations``, ``measured`` and ``seconds``. It runs to its end (seconds to a minute; the
    GIL is released meanwhile, and Ctrl-C is seen when it returns). An unknown name raises
    ``ValueError`` listing the known ones.
    """
    return json.loads(_core.reproduce(name))


def meanfield(
    act: str = "tanh",
    sigma_w2: Optional[float] = None,
    sigma_b2: float = 0.0,
    critical: bool = False,
    nodes: int = 100,
    residual: bool = False,
    branch_depth: Optional[int] = None,
    gate: Optional[float] = None,
    depth: Optional[int] = None,
    q0: Optional[float] = None,
    c0: Optional[float] = None,
) -> Dict[str, Any]:
    """Mean-field signal propagation, as ``initscope meanfield --json`` computes it (the same
    library call, so the same numbers), returned as that record (a dict).

    A plain network with weights N(0, σ_w²/fan_in) and biases N(0, σ_b²) (Poole et al. 2016,
    Schoenholz et al. 2017), expectations by ``nodes`` Gauss–Hermite nodes per dimension::

        length map   Q(q) = σ_w² E_z[φ(√q z)²] + σ_b²,   q* = Q(q*)
        χ_1          σ_w² E_z[φ'(√q* z)²]                 (< 1 ordered, > 1 chaotic)
        c*, χ_c      fixed point and slope of the correlation map
        ξ_q, ξ_c     depth scales -1/ln Q'(q*), -1/ln χ_c

    The record's keys: ``activation``, ``sigma_w2``, ``sigma_b2``, ``q_star``, ``chi_1``,
    ``c_star``, ``chi_c``, ``xi_q``, ``xi_c``, ``sigma_w2_critical``, ``notes``. None (JSON
    null) where a quantity does not exist (no fixed point: the length map diverges) and for the
    depth scales where they are infinite (at criticality).

    ``critical=True`` also finds the critical σ_w² (χ_1 = 1) for ``sigma_b2``; without
    ``sigma_w2`` the record is the quantities at that critical point (or, when χ_1 never crosses
    1 in [0.01, 1000], only ``activation``, ``sigma_b2``, ``sigma_w2_critical`` = None and a
    note).

    ``residual=True`` follows a residual network instead (Yang & Schoenholz 2017),
    x_{l+1} = x_l + g F(x_l) with F = ``branch_depth`` (default 2) linear layers and ``act``
    between them, gate g = ``gate`` (default 1), over ``depth`` (default 50) blocks from inputs
    with second moment ``q0`` (default 1) and correlation ``c0`` (default 0.5). Its record:
    ``activation``, ``sigma_w2``, ``sigma_b2``, ``branch_depth``, ``gate``, ``depth``, ``q`` and
    ``c`` (q_l and c_l for l = 0..depth), ``growth`` (``class``: constant, polynomial or
    exponential; the fitted rates) and ``notes``. Those five options need ``residual=True``.

    Keywords are ``initscope meanfield``'s flags with underscores; bad input raises ValueError
    with the command line's message (without ``initscope: error:``), e.g.
    ``--sigma-w2: must be > 0, got -1``. The computation releases the GIL.
    """
    return json.loads(
        _core.meanfield(
            act,
            None if sigma_w2 is None else float(sigma_w2),
            float(sigma_b2),
            bool(critical),
            operator.index(nodes),
            bool(residual),
            None if branch_depth is None else operator.index(branch_depth),
            None if gate is None else float(gate),
            None if depth is None else operator.index(depth),
            None if q0 is None else float(q0),
            None if c0 is None else float(c0),
        )
    )
