"""contrib.box_encode beyond its generic operator cases: against the same encoding written
with torch's own operators, in every dtype, on many anchors matched with many boxes and with
float and integer matches; what MXNet's rules give the anchors that are not positives
(nothing of theirs read); NaN where a positive's match has no box or a sample is NaN; no
input takes a gradient; refusals that name the operator and the values."""

from __future__ import annotations

import numpy as np
import oracles as o
import pytest
import torch
from tolerances import DTYPES_QUICK_FIRST, assert_close, to_numpy

import tritonsym as ts
from tritonsym.base import BindError, ShapeError

S = ts.sym
INPUTS = ("samples", "matches", "anchors", "refs", "means", "stds")


def _encode():
    return S.contrib.box_encode(*map(S.Variable, INPUTS))


def _bind(images, anchors, refs, dtype, matches_dtype=None, grad_req="null"):
    types = {n: dtype for n in INPUTS}
    if matches_dtype is not None:
        types["matches"] = matches_dtype
    return _encode().simple_bind(ts.cpu(), samples=(images, anchors), matches=(images, anchors),
                                 anchors=(images, anchors, 4), refs=(images, refs, 4), type_dict=types,
                                 grad_req=grad_req)


def _corner_boxes(rng, shape):
    corner = rng.uniform(0, 10, (*shape, 2))
    return np.concatenate([corner, corner + rng.uniform(0.5, 4, (*shape, 2))], axis=-1)


def _inputs(rng, images, anchors, refs):
    samples = rng.choice([-1.0, 0.0, 1.0], (images, anchors))
    matches = np.where(samples > 0.5, rng.integers(0, refs, (images, anchors)), -1)
    return dict(samples=samples, matches=matches.astype(np.float64), anchors=_corner_boxes(rng, (images, anchors)),
                refs=_corner_boxes(rng, (images, refs)), means=np.array([0.0, 0.1, -0.2, 0.05]),
                stds=np.array([0.1, 0.1, 0.2, 0.2]))


def _torch_encode(v):
    """The encoding with torch's gather, log and where, in float64."""
    t = {k: torch.as_tensor(x, dtype=torch.float64) for k, x in v.items()}

    def center(box):
        w, h = box[..., 2] - box[..., 0], box[..., 3] - box[..., 1]
        return box[..., 0] + w * 0.5, box[..., 1] + h * 0.5, w, h

    positive = t["samples"] > 0.5
    index = torch.where(positive, t["matches"], 0).long()
    matched = torch.gather(t["refs"], 1, index[..., None].expand(-1, -1, 4))
    (rx, ry, rw, rh), (x, y, w, h) = center(matched), center(t["anchors"])
    m, s = t["means"], t["stds"]
    targets = torch.stack([((rx - x) / w - m[0]) / s[0], ((ry - y) / h - m[1]) / s[1],
                           (torch.log(rw / w) - m[2]) / s[2], (torch.log(rh / h) - m[3]) / s[3]], -1)
    keep = positive[..., None]
    return torch.where(keep, targets, 0.0).numpy(), keep.double().expand(-1, -1, 4).numpy()


@pytest.mark.parametrize("matches_dtype", [None, torch.int32, torch.int64], ids=["float", "int32", "int64"])
@pytest.mark.parametrize("dtype", DTYPES_QUICK_FIRST)  # float64 and float16 under -m slow
def test_equals_torch(dtype, matches_dtype, rng):
    v = _inputs(rng, 3, 300, 20)
    exe = _bind(3, 300, 20, dtype, matches_dtype)
    given = {k: torch.from_numpy(x).to(matches_dtype if k == "matches" and matches_dtype else dtype)
             for k, x in v.items()}
    exe.forward(**given)
    used = {k: to_numpy(x) for k, x in given.items()}  # what the kernel read, rounded to the dtype
    targets, masks = _torch_encode(used)
    assert_close(exe.outputs[0], targets, dtype, "box_encode's targets")
    assert_close(exe.outputs[1], masks, dtype, "box_encode's masks")
    assert not np.isnan(to_numpy(exe.outputs[0])).any()  # every positive found its box


def test_what_is_not_a_positive_reads_nothing():
    # a negative (-1) and an ignored anchor (0, 0.5 exactly) with matches no box has, a NaN
    # box and NaN means: 0 targets and masks, as MXNet's (which reads the match only for a positive)
    v = dict(samples=[[-1.0, 0.0, 0.5, 1.0]], matches=[[-1.0, 7.0, float("nan"), 0.0]],
             anchors=[[[0.0, 0.0, 1.0, 1.0], [float("nan")] * 4, [0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 2.0, 4.0]]],
             refs=[[[1.0, 1.0, 3.0, 5.0]]], means=[0.0, 0.0, 0.0, 0.0], stds=[1.0, 1.0, 1.0, 1.0])
    exe = _bind(1, 4, 1, torch.float64)
    exe.forward(**{k: torch.tensor(x, dtype=torch.float64) for k, x in v.items()})
    targets, masks = exe.outputs[0].numpy(), exe.outputs[1].numpy()
    assert (targets[0, :3] == 0).all() and (masks[0, :3] == 0).all()
    # the positive: ref center (2, 3) of sides (2, 4) against the anchor's (1, 2) of sides (2, 4)
    np.testing.assert_allclose(targets[0, 3], [0.5, 0.25, 0.0, 0.0], rtol=1e-15)
    assert (masks[0, 3] == 1).all()
    np.testing.assert_allclose(targets, o.box_encode(*(v[n] for n in INPUTS))[0], rtol=1e-15)


def test_nan_where_a_positive_has_no_box_or_a_sample_is_nan():
    # positives matched with -1, 3 (past the 3 refs), 1.5 and NaN (MXNet reads past refs or
    # truncates 1.5 to 1): NaN targets, mask 1; a NaN sample: NaN targets and masks; the
    # others untouched
    samples = [[1.0, 1.0, 1.0, 1.0, float("nan"), 1.0]]
    matches = [[-1.0, 3.0, 1.5, float("nan"), 0.0, 2.0]]
    rng = np.random.default_rng(5)
    exe = _bind(1, 6, 3, torch.float32)
    v = dict(samples=samples, matches=matches, anchors=_corner_boxes(rng, (1, 6)), refs=_corner_boxes(rng, (1, 3)),
             means=[0.0] * 4, stds=[0.1, 0.1, 0.2, 0.2])
    exe.forward(**{k: torch.tensor(np.asarray(x), dtype=torch.float32) for k, x in v.items()})
    targets, masks = exe.outputs[0].numpy(), exe.outputs[1].numpy()
    assert np.isnan(targets[0, :5]).all() and (masks[0, :4] == 1).all() and np.isnan(masks[0, 4]).all()
    assert np.isfinite(targets[0, 5]).all() and (masks[0, 5] == 1).all()
    expected = o.box_encode(*(np.asarray(v[n], np.float32) for n in INPUTS))
    assert_close(targets, expected[0], torch.float32, "targets")
    assert_close(masks, expected[1], torch.float32, "masks")


def test_no_input_takes_a_gradient(rng):
    v = _inputs(rng, 2, 9, 4)
    exe = _bind(2, 9, 4, torch.float32, grad_req="write")
    exe.forward(is_train=True, **{k: torch.from_numpy(x).float() for k, x in v.items()})
    exe.backward(out_grads=[torch.ones(2, 9, 4), torch.ones(2, 9, 4)])
    for name in INPUTS:
        grad = exe.grad_dict.get(name)
        assert grad is None or not torch.any(grad != 0), name


def test_shapes_inferred_and_refusals_name_the_operator_and_the_values():
    arg_shapes, out_shapes, _ = _encode().infer_shape(anchors=(2, 5, 4), refs=(2, 3, 4))
    assert arg_shapes == [(2, 5), (2, 5), (2, 5, 4), (2, 3, 4), (4,), (4,)] and out_shapes == [(2, 5, 4)] * 2
    assert _encode().infer_shape(samples=(2, 5), refs=(2, 3, 4))[0][2] == (2, 5, 4)
    with pytest.raises(ShapeError, match=r"_contrib_box_encode.*samples of shape \(2, 6\) must hold one value for "
                                         r"each of the anchors \(2, 5, 4\): \(2, 5\)"):
        _encode().infer_shape(samples=(2, 6), anchors=(2, 5, 4), refs=(2, 3, 4))
    with pytest.raises(ShapeError, match=r"_contrib_box_encode.*refs of shape \(3, 3, 4\) must be of anchors' batch "
                                         r"of 2 images"):
        _encode().infer_shape(anchors=(2, 5, 4), refs=(3, 3, 4))
    with pytest.raises(ShapeError, match=r"_contrib_box_encode.*anchors of shape \(2, 5, 3\) must be \(batch, "
                                         r"anchors, 4\)"):
        _encode().infer_shape(anchors=(2, 5, 3), refs=(2, 3, 4))
    with pytest.raises(ShapeError, match=r"_contrib_box_encode.*means"):
        _encode().infer_shape(anchors=(2, 5, 4), refs=(2, 3, 4), means=(3,))
    with pytest.raises(BindError, match=r"matches"):  # float16 holds whole numbers exactly only to 2048
        _bind(1, 4, 3000, torch.float16, torch.float16)
