"""Triton kernels of tritonsym and their launchers (installed as ``tritonsym.ops``).

Each module holds one operator family: private ``@triton.jit`` kernels, then plain
launchers that check their arguments, receive ``out=`` buffers and launch. A launcher
allocates only when called standalone without ``out=``. ``plan_*`` variants return a
:class:`Launch` with every argument resolved, which the executor builds once at bind and
replays without further Python work.

Importing this package decides how kernels run, once, before any kernel is decorated:
compiled for CUDA when a CUDA device is present, otherwise in Triton's interpreter on the
CPU (``TRITON_INTERPRET=1`` is set here so that a user never has to).
``TRITONSYM_INTERPRET=1`` forces the interpreter on a CUDA machine, for debugging.

This package imports torch and triton only, never ``tritonsym``.
"""

from ._mode import INTERPRET  # noqa: I001  (must come first: it picks compiled or interpreted kernels)
from ._common import FLOAT_DTYPES, KernelArgumentError, Launch  # noqa: E402
from .activation import ACTIVATIONS, activation_backward, activation_forward  # noqa: E402
from .elementwise import (  # noqa: E402
    BINARY_OPS,
    SCALAR_OPS,
    UNARY_OPS,
    binary_backward,
    binary_forward,
    scalar_backward,
    scalar_forward,
    unary_backward,
    unary_forward,
)
from .fully_connected import fully_connected_backward, fully_connected_forward  # noqa: E402
from .memory import accumulate, copy, fill  # noqa: E402
from .optimizer import adam_update, sgd_update  # noqa: E402
from .regression_output import regression_output_backward  # noqa: E402
from .softmax import softmax_backward, softmax_forward  # noqa: E402
from .softmax_output import count_valid_labels, softmax_output_backward, softmax_output_train  # noqa: E402

__all__ = [
    "ACTIVATIONS",
    "BINARY_OPS",
    "FLOAT_DTYPES",
    "INTERPRET",
    "SCALAR_OPS",
    "UNARY_OPS",
    "KernelArgumentError",
    "Launch",
    "accumulate",
    "activation_backward",
    "activation_forward",
    "adam_update",
    "binary_backward",
    "binary_forward",
    "copy",
    "count_valid_labels",
    "fill",
    "fully_connected_backward",
    "fully_connected_forward",
    "regression_output_backward",
    "scalar_backward",
    "scalar_forward",
    "sgd_update",
    "softmax_backward",
    "softmax_forward",
    "softmax_output_backward",
    "softmax_output_train",
    "unary_backward",
    "unary_forward",
]
