"""The project's gradient checks go through the public ``tritonsym.test_utils``.

``check_gradients`` keeps the tests' short form: ``losses[i]`` is output i's loss (or None
for an ordinary output) and ``no_grad`` the arguments not to check.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

import tritonsym as ts


def check_gradients(symbol, values: dict[str, np.ndarray], losses: Sequence[Callable | None], rng,
                    no_grad: Sequence[str] = (), directions: int = 2) -> None:
    grad_nodes = [n for n in symbol.list_arguments() if n not in no_grad]
    aux = {n: values[n] for n in symbol.list_auxiliary_states() if n in values}  # a cache's contents
    args = {n: v for n, v in values.items() if n not in aux}
    ts.test_utils.check_numeric_gradient(symbol, args, aux_states=aux or None, grad_nodes=grad_nodes, losses=losses,
                                         rng=rng, directions=directions, full_jacobian=False)
