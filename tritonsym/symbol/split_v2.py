"""MXNet's ``split_v2``: a Python function (not an operator) that reads ``indices_or_sections``
and calls ``_split_v2``, as ``mx.sym.split_v2`` does, so the node is named ``_split_v2<n>``
and its JSON is MXNet's."""

from __future__ import annotations

import numbers

from .symbol import Symbol, create_called


def split_v2(ary: Symbol, indices_or_sections, axis: int = 0, squeeze_axis: bool = False, name=None,
             attr=None) -> Symbol:
    """``ary`` cut along ``axis`` into ``indices_or_sections`` equal parts (a number), or at
    the given indices (a tuple: ``(2, 3)`` gives ``ary[:2]``, ``ary[2:3]``, ``ary[3:]``)."""
    if isinstance(indices_or_sections, numbers.Integral) and not isinstance(indices_or_sections, bool):
        indices, sections = (), int(indices_or_sections)
    elif isinstance(indices_or_sections, (tuple, list)):
        indices, sections = (0, *indices_or_sections), 0
    else:
        raise TypeError(f"split_v2: indices_or_sections must be an int or a tuple of ints, got "
                        f"{indices_or_sections!r}")
    return create_called("_split_v2", "_split_v2", ary, indices=indices, axis=axis, squeeze_axis=squeeze_axis,
                         sections=sections, name=name, attr=attr)
