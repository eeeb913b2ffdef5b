"""Reshape (MXNet's): the same elements in another shape, a view of the input (no kernel, no
memory). ``shape`` may hold MXNet's special codes, read left to right (right to left with
``reverse=True``):

- ``0`` copies the input's dimension at this position;
- ``-1`` is inferred from the size (at most one);
- ``-2`` copies all the input's remaining dimensions;
- ``-3`` merges the next two input dimensions into one;
- ``-4`` splits the next input dimension into the two values after it (one may be -1).

``Reshape(x, shape=(0, -4, 4, -1, -2))`` turns (2, 8, 3) into (2, 4, 2, 3).
"""

from __future__ import annotations

from .registry import Param, ShapeMismatch, register, size, unify
from .view import check_same_size, fill_one_unknown, view_op


def target_shape(codes, data, reverse: bool = False) -> tuple[int, ...]:
    """The output shape of ``Reshape(shape=codes, reverse=reverse)`` on data of shape ``data``,
    or ShapeMismatch naming what does not fit. Where ``data`` has unknown (0) dimensions the
    result has them too, as MXNet's partial inference: a copied unknown stays unknown, and
    so does a merge of it, a split of it, and the -1."""
    partial = 0 in data
    codes, source = list(codes), list(data)
    if reverse:
        codes.reverse()
        source.reverse()
    out: list[int] = []
    inferred = None
    src = 0
    i = 0

    def take(what: str) -> int:
        nonlocal src
        if src >= len(source):
            raise ShapeMismatch(f"shape={tuple(codes)}: {what} at position {i} has no input dimension left "
                                f"(data has shape {tuple(data)})")
        src += 1
        return source[src - 1]

    while i < len(codes):
        code = codes[i]
        if code == 0:
            out.append(take("0 (copy a dimension)"))
        elif code == -1:
            if inferred is not None:
                raise ShapeMismatch(f"shape={tuple(codes)} has more than one -1; only one dimension can be inferred")
            inferred = len(out)
            out.append(1)
            src += 1
        elif code == -2:
            out.extend(source[src:])
            src = len(source)
        elif code == -3:
            first = take("-3 (merge two dimensions)")
            out.append(first * take("-3 (merge two dimensions)"))
        elif code == -4:
            if i + 2 >= len(codes):
                raise ShapeMismatch(f"shape={tuple(codes)}: -4 at position {i} must be followed by two dimensions")
            whole, d1, d2 = take("-4 (split a dimension)"), codes[i + 1], codes[i + 2]
            if d1 == -1 and d2 == -1 or d1 < -1 or d2 < -1 or 0 in (d1, d2):
                raise ShapeMismatch(f"shape={tuple(codes)}: -4 splits into ({d1}, {d2}); give two positive "
                                    "dimensions, or one and -1")
            if whole == 0:  # unknown: so is the part given as -1
                out += [max(d1, 0), max(d2, 0)]
                i += 3
                continue
            d1 = whole // d2 if d1 == -1 else d1
            d2 = whole // d1 if d2 == -1 else d2
            if d1 * d2 != whole:
                raise ShapeMismatch(f"shape={tuple(codes)}: -4 cannot split dimension {whole} into ({codes[i + 1]}, "
                                    f"{codes[i + 2]})")
            out += [d1, d2]
            i += 2
        elif code > 0:
            out.append(code)
            src += 1
        else:
            raise ShapeMismatch(f"shape={tuple(codes)} holds {code}; the codes are positive sizes, 0, -1, -2, -3, -4")
        i += 1
    if partial:
        if inferred is not None:
            out[inferred] = 0
        return tuple(out[::-1] if reverse else out)
    if inferred is not None:
        rest = size(out)
        if rest == 0 or size(data) % rest:
            raise ShapeMismatch(f"shape={tuple(codes)}: cannot infer the -1 for data of shape {tuple(data)} "
                                f"({size(data)} elements) with the other dimensions {tuple(out)}")
        out[inferred] = size(data) // rest
    if reverse:
        out.reverse()
    check_same_size(f"Reshape(shape={tuple(codes if not reverse else codes[::-1])})", data, out)
    return tuple(out)


def _infer_shape(p, in_shapes, out_shapes):
    data, out = in_shapes[0], out_shapes[0]
    if data is not None:
        out = unify("output", out, target_shape(p["shape"], data, p["reverse"]))
    elif p["shape"] and all(code > 0 for code in p["shape"]):  # no code reads the data's shape
        out = unify("output", out, tuple(p["shape"]))
    if data is not None and 0 in data and out is not None:
        data = fill_one_unknown(data, out)
    return [data], [out]


register(view_op(
    name="Reshape",
    doc="The same elements in another shape (MXNet's codes 0, -1, -2, -3, -4 in shape); a view.",
    params=[
        Param("shape", "ints", (), doc="the new shape, with MXNet's special codes"),
        Param("reverse", bool, False, doc="read the special codes from right to left"),
    ],
    infer_shape=_infer_shape,
    aliases=("reshape",),
))
