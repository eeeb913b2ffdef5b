"""What the recorder (real MXNet) and the replay test (tritonsym) share: the fixture files,
the inputs a case draws, and an adapter with one method per framework call a case makes.

Imports neither framework: ``scripts/record_mxnet_fixtures.py`` subclasses ``Adapter`` for
MXNet, ``tests/test_mxnet_differential.py`` for tritonsym.
"""

from __future__ import annotations

import json
import pathlib
import zlib

import numpy as np

FIXTURES = pathlib.Path(__file__).resolve().parent / "data" / "mxnet"
RESULTS_JSON = FIXTURES / "cases.json"
ARRAYS_NPZ = FIXTURES / "arrays.npz"


class Recording:
    """A case's inputs, drawn and kept (``recording=True``) or read back from the fixture."""

    def __init__(self, case_id: str, arrays: dict, texts: dict, recording: bool):
        self.case_id = case_id
        self.arrays = arrays  # "case/in/name" -> array (shared by every case of a run)
        self.texts = texts  # name -> text, this case's
        self.recording = recording
        self.rng = np.random.default_rng(zlib.crc32(case_id.encode()))
        self.names: list[str] = []

    def _key(self, name: str) -> str:
        return f"{self.case_id}/in/{name}"

    def given(self, name: str, value) -> np.ndarray:
        """An input the case computed from others: kept as recorded, so both sides agree
        to the last bit even where numpy versions round differently."""
        key = self._key(name)
        if self.recording:
            self.arrays[key] = np.asarray(value)
        self.names.append(name)
        return self.arrays[key]

    def normal(self, name: str, shape, dtype=np.float32) -> np.ndarray:
        return self.given(name, self.rng.normal(size=shape).astype(dtype) if self.recording else None)

    def classes(self, name: str, shape, bounds) -> np.ndarray:
        low, high = bounds
        drawn = self.rng.integers(low, high, size=shape).astype(np.float32) if self.recording else None
        return self.given(name, drawn)

    def text(self, name: str, produce) -> str:
        """A text only the recording side can make (MXNet's own JSON)."""
        if self.recording:
            self.texts[name] = produce()
        return self.texts[name]


class Adapter:
    """One framework's calls, as the cases use them. Subclasses set ``sym`` and implement
    the primitives; ``run`` is built on them."""

    sym = None

    def fresh_names(self):
        """A context in which automatic names count from 0 (MXNet's NameManager)."""
        raise NotImplementedError

    def dtype_name(self, dtype) -> str:
        """A dtype's name ("float64"): MXNet gives numpy dtypes, tritonsym torch ones."""
        raise NotImplementedError

    def bind(self, sym, shapes: dict, grad_req="write", dtypes: dict | None = None):
        raise NotImplementedError

    def set(self, exe, name: str, value: np.ndarray) -> None:
        raise NotImplementedError

    def set_aux(self, exe, name: str, value: np.ndarray) -> None:
        """Write an auxiliary state (BatchNorm's moving statistics)."""
        raise NotImplementedError

    def aux(self, exe) -> dict[str, np.ndarray]:
        """Every auxiliary state, as numpy copies."""
        raise NotImplementedError

    def forward(self, exe, is_train: bool = False) -> list[np.ndarray]:
        raise NotImplementedError

    def backward(self, exe, head_grads) -> None:
        raise NotImplementedError

    def grads(self, exe) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def array(self, value: np.ndarray):
        """The framework's array of a numpy array (what metrics take)."""
        raise NotImplementedError

    def numpy(self, value) -> np.ndarray:
        raise NotImplementedError

    def zeros_like(self, value):
        """A zero array like ``value`` (what a user's ``create_state`` returns)."""
        raise NotImplementedError

    def optimizer_steps(self, kind: str, params: dict, weight: np.ndarray, grads: list) -> np.ndarray:
        """The weight after one update per gradient, from a fresh optimizer state, through
        MXNet's per-parameter API (``create_state``, ``update``)."""
        optimizer = self.optimizer.create(kind, **params)
        w = self.array(np.array(weight))  # updated in place: not the recorded array itself
        state = optimizer.create_state(0, w)
        for g in grads:
            optimizer.update(0, w, self.array(g), state)
        return self.numpy(w)

    def run(self, sym, arrays: dict, head_grads=None, grad_req="write", repeat: int = 1):
        """Bind at the arrays' shapes and dtypes, set them, then ``repeat`` times forward
        (training) and backward; the outputs and every gradient there is."""
        exe = self.bind(sym, {k: v.shape for k, v in arrays.items()}, grad_req,
                        {k: v.dtype for k, v in arrays.items() if v.dtype != np.float32})
        for name, value in arrays.items():
            self.set(exe, name, value)
        for _ in range(repeat):
            outs = self.forward(exe, is_train=True)
            self.backward(exe, head_grads)
        return outs, self.grads(exe)


def encode(case_id: str, result: dict, arrays: dict) -> dict:
    """A case's result as JSON, its arrays moved into ``arrays`` under ``case/out/name``."""
    encoded = {}
    for name, value in result.items():
        if isinstance(value, np.ndarray):
            key = f"{case_id}/out/{name}"
            arrays[key] = value
            encoded[name] = {"array": key}
        else:
            encoded[name] = {"value": value}
    return encoded


def load() -> tuple[dict, dict]:
    """(the recorded cases, every recorded array)."""
    cases = json.loads(RESULTS_JSON.read_text())
    with np.load(ARRAYS_NPZ) as npz:
        arrays = {k: npz[k] for k in npz.files}
    return cases, arrays
