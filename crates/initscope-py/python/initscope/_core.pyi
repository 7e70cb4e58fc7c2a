"""Type stubs of initscope's compiled core (the public API is in ``initscope``)."""

from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

__version__: str
FLAGS: List[str]

class RunCore:
    @property
    def run_id(self) -> str: ...
    def summary_json(self) -> str: ...
    def config_json(self) -> str: ...
    def headline(self) -> str: ...
    def history(self) -> Dict[str, Any]: ...
    def weights(self) -> Dict[str, np.ndarray]: ...
    def save(self, dir: str, force: bool = False) -> List[str]: ...

class ExplanationCore:
    def json(self) -> str: ...
    def text(self) -> str: ...
    def markdown(self) -> str: ...
    def run(self) -> RunCore: ...

def train(
    flags: str,
    x: Optional[np.ndarray] = None,
    y: Optional[np.ndarray] = None,
    start: Optional[Tuple[str, Dict[str, np.ndarray]]] = None,
) -> Tuple[RunCore, List[str]]: ...
def explain(
    flags: str,
    x: Optional[np.ndarray] = None,
    y: Optional[np.ndarray] = None,
    start: Optional[Tuple[str, Dict[str, np.ndarray]]] = None,
) -> Tuple[ExplanationCore, List[str]]: ...
def init_tensor(
    spec: str,
    shape: Sequence[int],
    act: str = "tanh",
    seed: int = 0,
    layer: int = 1,
    fan_in: Optional[int] = None,
) -> np.ndarray: ...
def reproduce(name: str) -> str: ...
def reproductions() -> List[Tuple[str, str]]: ...
def meanfield(
    act: str = "tanh",
    sigma_w2: Optional[float] = None,
    sigma_b2: float = 0.0,
    critical: bool = False,
    nodes: Optional[int] = None,
    residual: bool = False,
    branch_depth: Optional[int] = None,
    gate: Optional[float] = None,
    depth: Optional[int] = None,
    q0: Optional[float] = None,
    c0: Optional[float] = None,
) -> str: ...
def history_wide(run: RunCore) -> Tuple[np.ndarray, Dict[str, np.ndarray]]: ...
