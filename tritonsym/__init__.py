"""tritonsym: MXNet's Symbol API on Triton kernels.

Compose a network symbolically, bind it once into a static workspace, and run forward
and backward as pre-built Triton launches with a handwritten backward for every operator::

    import tritonsym as ts
    net = ts.sym.Variable("data")
    net = ts.sym.FullyConnected(data=net, name="fc1", num_hidden=128)
    net = ts.sym.Activation(data=net, name="relu1", act_type="relu")
    net = ts.sym.FullyConnected(data=net, name="fc2", num_hidden=10)
    net = ts.sym.SoftmaxOutput(data=net, name="out")
    exe = net.simple_bind(ts.cpu(), data=(64, 784))
"""

# ruff: noqa: E402  (the checkout path must be set up before the imports below)
import os as _os

# In a source checkout, ops/ sits beside this package and becomes tritonsym.ops only when
# installed (package-dir mapping); let an uninstalled checkout import it too.
_checkout = _os.path.dirname(__path__[0])
if not _os.path.isdir(_os.path.join(__path__[0], "ops")) and _os.path.isfile(
        _os.path.join(_checkout, "ops", "__init__.py")):
    __path__.append(_checkout)

from . import ops  # noqa: I001  (first: it decides whether kernels are compiled or interpreted)
from . import symbol
from . import callback, initializer, io, kvstore, metric, model, module, nd, operator, optimizer, random, rnn, test_utils, viz  # noqa: E501
from .base import BindError, DTypeError, ExecutionError, FormatError, ParamError, ShapeError, TritonSymError
from .context import Context, cpu, gpu
from .executor import Executor
from .optimizer import lr_scheduler
from .symbol import AttrScope

sym = symbol
mod = module
init = initializer
gradcheck = test_utils  # a short name for the public gradient checks (docs/testing.md)
kv = kvstore

__version__ = "0.1.0"
__all__ = ["AttrScope", "BindError", "Context", "DTypeError", "ExecutionError", "Executor", "FormatError", "ParamError",
           "ShapeError", "TritonSymError", "callback", "cpu", "gpu", "gradcheck", "init", "initializer", "io",
           "kv", "kvstore", "lr_scheduler", "metric", "mod", "model", "module", "nd", "operator", "ops", "optimizer",
           "random", "rnn", "sym", "symbol", "test_utils", "viz"]
