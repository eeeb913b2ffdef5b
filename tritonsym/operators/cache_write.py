"""CacheWrite: write entries into a cache kept between forwards, at run-time positions, and
read the whole cache back: the key and value cache of decoding a transformer one token at
a time (MXNet 1.x has none).

``data`` (batch, ..., steps, ...) goes into the auxiliary state ``cache`` (batch, ...,
cache_len, ...), entry ``t`` of batch row ``b`` along ``axis`` into slot ``(position[b] + t)
% cache_len``, and the output is the cache itself (a view: no copy, no memory), so
attention reads every key written so far. ``cache_len`` shorter than the text makes a ring
that keeps the last ``cache_len`` entries: a sliding window's keys, Mistral's rolling
cache. ``position`` (batch,) is an input read when the kernel runs, so one bound decoding
step serves every place in the text and can be replayed as one CUDA graph. A position that
is not a whole number >= 0 fills its row's cache with NaN.

Writing the same entries at the same positions again leaves the cache as it was, so a
forward may be repeated. The gradient reaching the output flows back to ``data`` from the
slots it was written to; the cache, state kept between steps, takes none.
"""

from __future__ import annotations

from ..ops import cache_write as kernels
from .registry import (
    BackwardArgs,
    ForwardArgs,
    OpDef,
    Param,
    ShapeMismatch,
    index_dtype,
    merge_shapes,
    register,
    unify,
)


def _infer_shape(p, in_shapes, out_shapes):
    data, cache, position = in_shapes
    cache = unify("output", out_shapes[0], cache) if out_shapes[0] is not None else cache
    known = data if data is not None else cache
    if known is None:
        return [data, cache, position], [cache]
    axis = p["axis"]
    if len(known) < 2 or not -len(known) <= axis < len(known) or axis % len(known) == 0:
        raise ShapeMismatch(f"axis={axis} is not a cache axis of shape {tuple(known)} (any axis but the first, the "
                            "batch's)")
    axis %= len(known)
    if data is not None and cache is not None:
        if len(data) != len(cache):
            raise ShapeMismatch(f"data {tuple(data)} and cache {tuple(cache)} must have one number of dimensions")
        # Every dimension but the axis is one; the cache's length along it is its own.
        merged = merge_shapes(*([d for k, d in enumerate(shape) if k != axis] for shape in (data, cache)))
        if merged is None:
            raise ShapeMismatch(f"cache {tuple(cache)} must equal data {tuple(data)} but along axis {axis}")
        data = tuple(merged[:axis]) + (data[axis],) + tuple(merged[axis:])
        cache = tuple(merged[:axis]) + (cache[axis],) + tuple(merged[axis:])
        if data[axis] and cache[axis] and data[axis] > cache[axis]:
            raise ShapeMismatch(f"data holds {data[axis]} entries along axis {axis}, more than the cache's "
                                f"{cache[axis]} slots")
    batch = known[0]
    position = unify("position", position, (batch,) if batch else None)
    return [data, cache, position], [cache]


def _infer_type(p, in_types, out_types):
    known = next((t for t in [in_types[0], in_types[1], out_types[0]] if t is not None), None)
    data, cache = (unify(f"{name} dtype", t, known) for name, t in (("data", in_types[0]), ("cache", in_types[1])))
    return [data, cache, index_dtype(in_types[2], known)], [unify("output dtype", out_types[0], known)]


def _forward(a: ForwardArgs):
    data, cache, position = a.inputs
    return kernels.plan_cache_write(data, cache, position, axis=a.params["axis"])


def _backward(a: BackwardArgs):
    if a.in_grads[0] is None:
        return []
    return kernels.plan_cache_write(a.in_grads[0], a.out_grads[0], a.inputs[2], axis=a.params["axis"], gather=True,
                                    accumulate=a.accumulate[0])


register(OpDef(
    name="CacheWrite",
    doc="Writes data's entries along `axis` into the auxiliary `cache` from slot position[b] on (a ring of the "
        "cache's length) and outputs the cache: the key/value cache of decoding.",
    params=[Param("axis", int, -2, doc="the axis entries are written along (any but the first, the batch's)")],
    input_names=("data", "cache", "position"),
    infer_shape=_infer_shape,
    infer_type=_infer_type,
    forward=_forward,
    backward=_backward,
    backward_needs=lambda p, epilogue: ((2,), ()),
    no_grad_inputs=lambda p: {"cache", "position"},
    aux_inputs=lambda p: {"cache"},
    output_aliases=lambda p: {0: 1},
    # Data arrives as split heads, a transposed view: the kernel reads any strides.
    strided_inputs=lambda p: (0,),
    # Whole numbers: float16 holds them exactly only up to 2048, integer dtypes are welcome.
    class_inputs=lambda p, shapes: {2: shapes[1][p["axis"]]} if shapes[1] else {},
))
