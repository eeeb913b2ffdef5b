"""Your own operator in a symbol: declare it once with ``OpDef`` and ``register`` it.

An operator is one ``OpDef``: its name, parameters (``Param``), inputs (a missing one
becomes a Variable ``<node>_<input>``, as ``fc1_weight`` does), a shape rule, forward and
backward as lists of pre-built kernel launches (your Triton kernels or tritonsym's), which
forward values backward reads, and optional in-place pairs. ``register(OpDef(...))`` adds
it to the same registry the built-in operators are in, so it then works everywhere they
do: ``tritonsym.sym.<Name>(...)``, automatic names, ``infer_shape``, JSON, the memory
planner, bind and ``Module.fit``. ``tritonsym.test_utils.check_numeric_gradient`` then
proves its backward right, and ``tritonsym.test_utils.memcheck()`` that its kernels stay
inside their tensors. ``examples/custom_swish.py`` goes from nothing to training.

What the rules receive:

- ``infer_shape(params, in_shapes, out_shapes) -> (in_shapes, out_shapes)``: lists with
  ``None`` for unknown shapes; fill in what follows, raise ``ShapeMismatch`` when they
  disagree (``same_shape_everywhere([...])`` is the elementwise rule). Optional
  ``infer_type`` likewise (default: one dtype everywhere).
- ``forward(ForwardArgs) -> [launch, ...]``: ``a.params``, ``a.inputs``, ``a.outputs``
  (contiguous tensors in the workspace). Called once at bind; each launch is a
  ``Launch(kernel, grid, args, kwargs)`` of a ``@triton.jit`` kernel, which the executor
  calls with no arguments (a plain function is refused at bind: the executor reads a
  launch's tensors to plan, check and replay it).
- ``backward(BackwardArgs) -> [launch, ...]``: ``a.out_grads``, ``a.in_grads`` (None where
  no gradient is wanted), ``a.accumulate[i]`` (add into ``in_grads[i]`` instead of
  writing it), and the ``inputs`` / ``outputs`` that ``backward_needs(params, epilogue) ->
  (input indices, output indices)`` declared; the others are None and may already hold
  other data.
- ``inplace(params) -> [(input, output)]`` and ``backward_inplace``: pairs the planner
  may give one buffer; declare one only if the kernel reads each element before writing
  it (see the registry's docstring).
- ``forward_temps(params, in_shapes, in_dtypes)`` / ``backward_temps(...)`` ->
  ``{name: (shape, dtype)}``: scratch buffers, planned like every other value and live
  only during the step; the rule finds them in ``a.temps[name]``.
- ``forward_in_training(params) -> bool``: the forward rule is asked twice, with
  ``a.is_train`` False and True, and ``forward(is_train=...)`` runs the matching launches.
- ``saved_for_backward(params, in_shapes, in_dtypes) -> {name: (shape, dtype)}``: values
  a training forward keeps for its backward, in ``a.saved[name]`` of both rules; the
  forward's ``a.saved`` is empty when nothing will read them (then it must not write them).
- An output that nothing reads gets a zero gradient in ``a.out_grads``.
- One array given at several inputs (``op(x, x)``) has one gradient array: without
  ``repeated_input_grads=True`` (or where it comes as two different views, one permuted)
  the later inputs' gradients reach the rule as scratch of the step (written,
  ``a.accumulate`` False) and are added in after its launches.
- ``strided_inputs(params)`` / ``strided_outputs(params)`` -> indices: inputs and outputs
  (and their gradients) the kernels read and write through any strides; a ``transpose``
  next to them is then a permuted view, and the rule may receive non-contiguous tensors
  there (everywhere else they are contiguous).
"""

from .operators.registry import (
    REGISTRY,
    BackwardArgs,
    ForwardArgs,
    OpDef,
    Param,
    ShapeMismatch,
    elementwise_inplace,
    get_op,
    grad_over_out_grad,
    positive,
    register,
    same_dtype_everywhere,
    same_shape_everywhere,
    unify,
    unregister,
)
from .ops._common import Launch

__all__ = ["REGISTRY", "BackwardArgs", "ForwardArgs", "Launch", "OpDef", "Param", "ShapeMismatch",
           "elementwise_inplace", "get_op", "grad_over_out_grad", "positive", "register", "same_dtype_everywhere",
           "same_shape_everywhere", "unify", "unregister"]
