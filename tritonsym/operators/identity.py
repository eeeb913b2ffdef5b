"""identity (MXNet's ``_copy``, which its scripts call ``identity``): the data unchanged,
its gradient passed back unchanged. A view of the input: no kernel, no memory."""

from __future__ import annotations

from .registry import register, same_shape_everywhere
from .view import view_op

register(view_op(
    name="_copy",
    hint="identity",
    doc="The data unchanged (a view); the gradient passes back unchanged.",
    params=[],
    infer_shape=same_shape_everywhere(["data"]),
    aliases=("identity",),
))
