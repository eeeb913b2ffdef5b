"""Property tests (hypothesis): random symbol graphs and random tensor layouts."""

import numpy as np
import oracles
import torch
from property_settings import given, property_settings, settings, st

import tritonsym as ts
from tritonsym import ops

S = ts.sym
SETTINGS = property_settings(25)

# (build a symbol, evaluate the same thing in numpy)
BINARY = [(lambda a, b: a + b, np.add), (lambda a, b: a - b, np.subtract), (lambda a, b: a * b, np.multiply)]
UNARY = [(lambda a: a * 0.5, lambda a: a * 0.5), (lambda a: 1.0 - a, lambda a: 1.0 - a),
         (lambda a: S.Activation(a, act_type="tanh"), np.tanh), (lambda a: -a, np.negative),
         (lambda a: S.square(a), np.square)]


@st.composite
def expressions(draw):
    """A random expression over 1-3 variables, with shared uses, as (symbol, numpy function)."""
    names = [f"v{i}" for i in range(draw(st.integers(1, 3)))]
    pool = [(S.Variable(n), (lambda n: lambda env: env[n])(n)) for n in names]
    for _ in range(draw(st.integers(1, 6))):
        if draw(st.booleans()) and len(pool) > 0:
            (s1, f1), (s2, f2) = draw(st.sampled_from(pool)), draw(st.sampled_from(pool))
            make, ref = draw(st.sampled_from(BINARY))
            pool.append((make(s1, s2), (lambda f1, f2, ref: lambda env: ref(f1(env), f2(env)))(f1, f2, ref)))
        else:
            s1, f1 = draw(st.sampled_from(pool))
            make, ref = draw(st.sampled_from(UNARY))
            pool.append((make(s1), (lambda f1, ref: lambda env: ref(f1(env)))(f1, ref)))
    return pool[-1]


@settings(**SETTINGS)
@given(expressions(), st.integers(1, 9), st.integers(1, 9), st.integers(0, 2**31 - 1))
def test_random_graphs_survive_json_and_compute_their_expression(expression, rows, cols, seed):
    symbol, reference = expression
    again = S.load_json(symbol.tojson())
    assert again.list_arguments() == symbol.list_arguments()
    assert again.debug_str() == symbol.debug_str()
    rng = np.random.default_rng(seed)
    env = {n: rng.uniform(-1, 1, (rows, cols)) for n in symbol.list_arguments()}
    shapes = {n: (rows, cols) for n in env}
    assert symbol.infer_shape(**shapes)[1] == [(rows, cols)]
    exe = again.simple_bind(ts.cpu(), grad_req="null", type_dict={n: "float64" for n in env}, **shapes)
    out = exe.forward(**env)[0].cpu().numpy()
    np.testing.assert_allclose(out, reference(env), rtol=1e-12, atol=1e-12)


@st.composite
def layouts(draw):
    """A tensor shape and a strided view of a bigger buffer with that shape. Up to 6 axes:
    past 4 that cannot merge, the elementwise plans split into launches
    (``elementwise_launches``); shorter axes there keep the cases small."""
    ndim = draw(st.integers(1, 6))
    shape = tuple(draw(st.lists(st.integers(1, 6 if ndim <= 4 else 3), min_size=ndim, max_size=ndim)))
    steps = [draw(st.integers(1, 2)) for _ in shape]
    permutation = draw(st.permutations(range(len(shape))))
    expand = draw(st.sampled_from([None, *range(len(shape))]))
    return shape, steps, permutation, expand


def strided(values: np.ndarray, steps, permutation, expand, dtype=torch.float64) -> torch.Tensor:
    """values (rounded to ``dtype``) as a non-contiguous tensor: slices of a bigger buffer,
    permuted, maybe expanded."""
    shape = values.shape
    inverse = np.argsort(permutation)
    big_shape = [shape[p] * steps[p] for p in permutation]
    big = torch.full(big_shape, float("nan"), dtype=dtype)
    view = big[tuple(slice(None, None, steps[p]) for p in permutation)].permute(*inverse)
    view.copy_(torch.from_numpy(values))
    if expand is not None and shape[expand] > 1:
        view = view.narrow(expand, 0, 1).expand(*shape)
    return view


@settings(**SETTINGS)
@given(layouts(), layouts(), st.sampled_from(ops.BINARY_OPS), st.integers(0, 2**31 - 1))
def test_binary_kernels_on_random_layouts(layout_a, layout_b, kind, seed):
    shape = layout_a[0]
    rng = np.random.default_rng(seed)
    a = strided(rng.uniform(0.5, 2, shape), *layout_a[1:])
    b_layout = layout_b[1:] if len(layout_b[0]) == len(shape) else ([1] * len(shape), list(range(len(shape))), None)
    b = strided(rng.uniform(0.5, 2, shape), *b_layout)
    out = ops.binary_forward(kind, a, b)
    expected = oracles.BINARY[kind](a.cpu().numpy(), b.cpu().numpy())
    np.testing.assert_allclose(out.cpu().numpy(), expected, rtol=1e-15)
