"""MXNet's per-parameter optimizer API on a bound executor: ``update(index, weight, grad, state)``.

An optimizer written the MXNet way (a Python subclass of ``Optimizer`` with
``create_state`` and ``update``, no ``plan``) cannot join the flat one-launch update, so
``ParameterUpdater`` calls its ``update_multi_precision`` once per trained parameter per
step, on the parameter's and gradient's views into the workspace (updated in place), as
MXNet's ``Updater`` does. It has ``FlatUpdater``'s surface for ``Module``; its steps run in
Python, outside any CUDA graph (``graphable`` is False), and it takes no loss scale (a
user's ``update`` would not unscale).

Indices are positions in the module's parameter list, as MXNet numbers them, and
``idx2name`` maps them back (set on the optimizer when it has none), so ``_get_lr(index)``
and ``_get_wd(index)`` see each parameter's ``lr_mult`` / ``wd_mult``.
"""

from __future__ import annotations

import torch

from ..base import ParamError
from .optimizer import Optimizer


class ParameterUpdater:
    """Applies ``optimizer.update`` to each parameter in ``names`` that takes a gradient."""

    graphable = False  # Python code per step: replaying a captured graph would skip its host side
    scaler = None

    def __init__(self, optimizer: Optimizer, executor, names):
        owner = type(optimizer).__name__
        if optimizer.loss_scaler is not None:
            raise ParamError(f"{owner}: loss_scale needs the flat update (an optimizer with plan()); {owner} updates "
                             "parameter by parameter through update(index, weight, grad, state), which would not "
                             "unscale the gradients")
        if optimizer.clip_global_norm is not None:
            raise ParamError(f"{owner}: clip_global_norm needs the flat update (an optimizer with plan() taking "
                             f"clip_state=); {owner} updates parameter by parameter through update(index, weight, "
                             "grad, state), which sees one gradient at a time and would not clip")
        self.optimizer = optimizer
        names = list(names)
        if not optimizer.idx2name:
            optimizer.idx2name = dict(enumerate(names))
            optimizer.set_wd_mult({})
        self.indexed = [(index, name) for index, name in enumerate(names) if executor.grad_dict.get(name) is not None]
        self.param_names = [name for _, name in self.indexed]
        self.weights = {name: executor.arg_dict[name] for name in self.param_names}
        self.grads = {name: executor.grad_dict[name] for name in self.param_names}
        self.states = {name: optimizer.create_state_multi_precision(index, self.weights[name])
                       for index, name in self.indexed}
        for state in self.states.values():
            list(_leaves(state))  # a state of another kind is an error now, not at the first checkpoint

    def prepare(self) -> None:
        """Nothing to write before the step: each ``update`` reads its own scalars."""

    def launch_all(self) -> None:
        for index, name in self.indexed:
            self.optimizer.update_multi_precision(index, self.weights[name], self.grads[name], self.states[name])

    def step(self) -> None:
        self.launch_all()

    def loss_scale_status(self) -> None:
        return None

    # -------------------------------------------------------------- checkpointing

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Each parameter's state tensors as ``"state<path>:<param>"`` (``path``: the position in
        nested tuples, ``.0.1``), its update count as ``"count:<param>"``, and ``num_update``."""
        counts = self.optimizer._index_update_count
        out = {"num_update": torch.tensor(self.optimizer.num_update, dtype=torch.int64)}
        for index, name in self.indexed:
            for path, tensor in _leaves(self.states[name]):
                out[f"state{path}:{name}"] = tensor.to("cpu", copy=True)
            if index in counts:
                out[f"count:{name}"] = torch.tensor(counts[index], dtype=torch.int64)
        return out

    def load_state_dict(self, states: dict[str, torch.Tensor]) -> None:
        """Restore what ``state_dict`` returned into the states ``create_state`` made; names,
        shapes and dtypes must match."""
        expected = {f"state{path}:{name}": tensor for _, name in self.indexed
                    for path, tensor in _leaves(self.states[name])}
        counts = {f"count:{name}": index for index, name in self.indexed}
        missing = sorted(set(expected) - set(states))
        extra = sorted(set(states) - set(expected) - set(counts) - {"num_update"})
        if missing or extra:
            raise ParamError(f"optimizer states: missing {missing or 'none'}, unexpected {extra or 'none'} (for "
                             f"{type(self.optimizer).__name__} over {', '.join(self.param_names)})")
        for key, target in expected.items():
            value = states[key]
            if tuple(value.shape) != tuple(target.shape) or value.dtype != target.dtype:
                raise ParamError(f"optimizer state {key!r}: {tuple(value.shape)} {value.dtype}, expected "
                                 f"{tuple(target.shape)} {target.dtype}")
        for key, target in expected.items():
            target.copy_(states[key])
        for key, index in counts.items():
            if key in states:
                self.optimizer._index_update_count[index] = int(states[key])
        if "num_update" in states:
            self.optimizer.num_update = int(states["num_update"])


def _leaves(state, path: str = ""):
    """``(path, tensor)`` for every tensor in a state (a tensor, None, or nested tuples/lists)."""
    if isinstance(state, torch.Tensor):
        yield path, state
    elif isinstance(state, (tuple, list)):
        for k, part in enumerate(state):
            yield from _leaves(part, f"{path}.{k}")
    elif state is not None:
        raise ParamError(f"optimizer state: create_state returned a {type(state).__name__}; a state must be None, a "
                         "torch tensor, or a tuple or list of them")
