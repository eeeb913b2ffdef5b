"""FullyConnected's persistent TMA forward (ops/fully_connected.py, ``_fc_forward_tma``) and
the TMA paths of its two backward products against the float64 oracle, and when the
planner chooses them.

The path is planned on GPUs of compute capability 9+; here it is forced (``TMA_MODE = "1"``,
what ``TRITONSYM_TMA=1`` sets) so that the interpreter runs it: descriptor loads with
zeros past the edges, clipped descriptor stores, and a persistent loop where each of three
programs takes several tiles (the interpreter's tile is 32x64x32). On a GPU the autotuner
would race it against the pointer kernel; these tests turn autotuning off, which plans the
TMA config alone.
"""


import numpy as np
import pytest
import torch
from oracles import fully_connected
from test_kernels_fully_connected import _operands
from tolerances import assert_close, poisoned, rounded, to_numpy
from tritonsym.ops import fully_connected as fc
from tritonsym.ops.prebind import autotuned_constants

TMA_DTYPES = [(torch.float16, "ieee"), (torch.bfloat16, "ieee"), (torch.float32, "tf32")]
TMA_IDS = ["float16", "bfloat16", "tf32"]
# (M, K, N): rows 16-byte aligned in every dtype (K and N multiples of 8), nothing else a
# tile multiple; the last has 7 x 4 = 28 output tiles over 3 programs and a partial K step.
SHAPES = [(1, 8, 8), (33, 24, 64), (70, 40, 136), (130, 72, 200)]
TF32_TOLERANCE = (2e-3, 2e-3)  # 10-bit mantissa products (on a GPU; exact in the interpreter)


@pytest.fixture
def tma(monkeypatch):
    """The TMA path planned here, autotuning off (so that the TMA config is the one run),
    and no tuned config remembered from another test of the same shape."""
    monkeypatch.setattr(fc, "TMA_MODE", "1")
    monkeypatch.setattr(fc, "AUTOTUNE", False)
    kernels = (fc._fc_forward_kernel, fc._fc_backward_input_kernel, fc._fc_backward_weight_kernel)
    saved = [dict(k.cache) for k in kernels]
    for k in kernels:
        k.cache.clear()
    yield
    for k, cache in zip(kernels, saved):
        k.cache.clear()
        k.cache.update(cache)


def _check(y, expected, dtype, precision, what, terms=1):
    """``terms``: how many TF32 products' errors a value sums (a column sum over rows): they
    add like a random walk, so TF32's absolute tolerance grows with its square root. The
    H200 run put a 70-row sum of the layer before's bias gradient 0.006 off (2e-3 failed)."""
    if precision == "tf32":
        atol, rtol = TF32_TOLERANCE
        np.testing.assert_allclose(to_numpy(y), expected, atol=atol * np.sqrt(terms), rtol=rtol, err_msg=what)
    else:
        assert_close(y, expected, dtype, what)


def _run_forward(x, w, b, out, act="none", slope=0.0, precision="ieee"):
    (launch,) = fc.plan_fully_connected_forward(x, w, b, out, act=act, slope=slope, precision=precision)
    launch()
    return launch


@pytest.mark.parametrize("dtype,precision", TMA_DTYPES, ids=TMA_IDS)
@pytest.mark.parametrize("m,k,n", SHAPES)
def test_tma_forward_matches_the_oracle(rng, tma, m, k, n, dtype, precision):
    x, w, b = _operands(rng, m, k, n, dtype)
    out = poisoned((m, n), dtype)
    launch = _run_forward(x, w, b, out, act="relu", precision=precision)
    assert launch.kwargs["TMA_READY"] and autotuned_constants(launch.kernel)["TMA"], "the TMA path did not run"
    _check(out, fully_connected(to_numpy(x), to_numpy(w), to_numpy(b), "relu"), dtype, precision, "forward")


@pytest.mark.parametrize("act,slope", [("none", 0.0), ("sigmoid", 0.0), ("tanh", 0.0), ("leaky", 0.1),
                                       ("elu", 0.7), ("selu", 0.0), ("softrelu", 0.0)])
def test_tma_epilogue_activations_without_bias(rng, tma, act, slope):
    dtype = torch.float16
    x, w, _ = _operands(rng, 45, 16, 72, dtype)
    out = poisoned((45, 72), dtype)
    launch = _run_forward(x, w, None, out, act=act, slope=slope)
    assert launch.kwargs["TMA_READY"]
    expected = fully_connected(to_numpy(x), to_numpy(w), None, act, slope)
    assert_close(out, expected, dtype, f"forward {act}")


def test_tma_store_stays_inside_an_output_view(rng, tma):
    """y a column slice of a wider buffer (rows still 16-byte aligned): the descriptor's
    shape clips the last tile's store at the view's edge."""
    dtype = torch.bfloat16
    m, k, n = 37, 32, 40
    x, w, b = _operands(rng, m, k, n, dtype)
    wide = poisoned((m, 2 * n + 8), dtype)
    out = wide[:, :n]
    launch = _run_forward(x, w, b, out)
    assert launch.kwargs["TMA_READY"]
    assert_close(out, fully_connected(to_numpy(x), to_numpy(w), to_numpy(b), "none"), dtype, "forward")
    assert torch.isnan(wide[:, n:]).all(), "wrote outside the output view"


def _view_at_odd_address(shape, dtype):
    """A tensor one element into its buffer: rows aligned by stride, the start not."""
    return poisoned((shape[0] * shape[1] + 1,), dtype)[1:].view(shape)


@pytest.mark.parametrize("dtype,precision", TMA_DTYPES, ids=TMA_IDS)
@pytest.mark.parametrize("m,k,n", SHAPES)
def test_tma_backward_matches_the_oracle(rng, tma, m, k, n, dtype, precision):
    """dx = dy @ w finished for a relu before it (times relu'(x), its bias partial sums and
    their column sum) and dw = dy.T @ x, both persistent over TMA copies: rows past M and
    columns past N and K read as zeros, tiles of several programs."""
    x, w, _ = _operands(rng, m, k, n, dtype)
    x = x.relu()  # the output of a relu layer before this one
    dy = rounded(rng.normal(size=(m, n)), dtype)
    shape, acc = fc.bias_partials(m, k, dtype)
    dx, dw, db, db_before = (poisoned(s, dtype) for s in ((m, k), (n, k), (n,), (k,)))
    launches = fc.plan_fully_connected_backward(dy, x, w, grad_x=dx, grad_weight=dw, grad_bias=db, input_act="relu",
                                                input_grad_bias=db_before, input_partials=poisoned(shape, acc),
                                                precision=precision)
    for launch in launches:
        launch()
    products = [la for la in launches if la.kernel in (fc._fc_backward_input_kernel, fc._fc_backward_weight_kernel)]
    assert len(products) == 2 and all(la.kwargs["TMA_READY"] and autotuned_constants(la.kernel)["TMA"]
                                      for la in products), "the TMA paths did not run"
    gx = (to_numpy(dy) @ to_numpy(w)) * (to_numpy(x) > 0)
    _check(dx, gx, dtype, precision, "grad_x")
    _check(db_before, gx.sum(0), dtype, precision, "grad_bias of the layer before", terms=m)
    _check(dw, to_numpy(dy).T @ to_numpy(x), dtype, precision, "grad_weight")
    _check(db, to_numpy(dy).sum(0), dtype, precision, "grad_bias")


@pytest.mark.parametrize("k,align_k", [(40, 8), (36, 4)])
@pytest.mark.parametrize("lie", [False, True], ids=["told", "told 16"])
def test_tma_input_gradient_epilogue_is_told_the_alignment_of_its_rows(rng, tma, monkeypatch, k, align_k, lie):
    """The TMA input gradient's epilogue reads x and writes dx and the bias partials through
    pointers, told the alignment of their rows (ALIGN_K; w's rows padded to 16 bytes where
    K is not a multiple of 8, so that TMA can copy w): the oracle's numbers, and wrong ones
    when told 16 (the value is computed with, not assumed)."""
    dtype, m, n = torch.float16, 70, 24
    x, w, _ = _operands(rng, m, k, n, dtype)
    x = x.relu()
    w = poisoned((n, k + (-k) % 8), dtype)[:, :k].copy_(w)
    dy = rounded(rng.normal(size=(m, n)), dtype)
    shape, acc = fc.bias_partials(m, k, dtype)
    dx, db_before = poisoned((m, k), dtype), poisoned((k,), dtype)
    if lie:
        monkeypatch.setattr(fc, "_alignment", lambda *args: 16)
    (product, column_sum) = fc.plan_fully_connected_backward(dy, x, w, grad_x=dx, input_act="relu",
                                                            input_grad_bias=db_before,
                                                            input_partials=poisoned(shape, acc))
    assert product.kwargs["TMA_READY"] and product.kwargs["ALIGN_K"] == (16 if lie else align_k)
    product()
    column_sum()
    assert autotuned_constants(product.kernel)["TMA"], "the TMA path did not run"
    gx = (to_numpy(dy) @ to_numpy(w)) * (to_numpy(x) > 0)
    if lie:
        assert not np.allclose(to_numpy(dx), gx, equal_nan=False)
        return
    _check(dx, gx, dtype, "ieee", "grad_x")
    _check(db_before, gx.sum(0), dtype, "ieee", "grad_bias of the layer before", terms=m)


def test_tma_backward_accumulates(rng, tma):
    dtype, (m, k, n) = torch.bfloat16, (70, 40, 136)
    x, w, _ = _operands(rng, m, k, n, dtype)
    dy = rounded(rng.normal(size=(m, n)), dtype)
    start_x, start_w = rounded(rng.normal(size=(m, k)), dtype), rounded(rng.normal(size=(n, k)), dtype)
    dx, dw = start_x.clone(), start_w.clone()
    launches = fc.plan_fully_connected_backward(dy, x, w, grad_x=dx, grad_weight=dw, accumulate_x=True,
                                                accumulate_weight=True)
    assert all(la.kwargs["TMA_READY"] for la in launches)
    for launch in launches:
        launch()
    assert_close(dx, to_numpy(start_x) + to_numpy(dy) @ to_numpy(w), dtype, "grad_x")
    assert_close(dw, to_numpy(start_w) + to_numpy(dy).T @ to_numpy(x), dtype, "grad_weight")


@pytest.mark.parametrize("case", ["unaligned rows", "unaligned start", "exact float32", "float64",
                                  "transposed x", "turned off"])
def test_the_pointer_kernel_runs_where_tma_cannot(rng, tma, monkeypatch, case):
    dtype, precision, (m, k, n) = torch.float16, "ieee", (20, 24, 16)
    if case == "unaligned rows":
        k = 33
    if case in ("exact float32", "float64"):
        dtype = torch.float32 if case == "exact float32" else torch.float64
    x, w, b = _operands(rng, m, k, n, dtype)
    out = poisoned((m, n), dtype)
    if case == "unaligned start":
        x = _view_at_odd_address((m, k), dtype).copy_(x)
    if case == "transposed x":
        x = x.T.contiguous().T
    if case == "turned off":
        monkeypatch.setattr(fc, "TMA_MODE", "0")
    launch = _run_forward(x, w, b, out, precision=precision)
    assert not launch.kwargs["TMA_READY"] and not autotuned_constants(launch.kernel)["TMA"]
    assert_close(out, fully_connected(to_numpy(x), to_numpy(w), to_numpy(b), "none"), dtype, "forward")


@pytest.mark.cpu_only
def test_auto_plans_tma_only_on_a_hopper_gpu(monkeypatch):
    monkeypatch.setattr(fc, "TMA_MODE", "auto")
    assert not fc.tma_wanted(torch.device("cpu"))
    monkeypatch.setattr(fc, "TMA_MODE", "1")
    assert fc.tma_wanted(torch.device("cpu"))


def test_auto_plans_tma_only_for_a_gigaflop_or_more(monkeypatch):
    """Below 2^30 flops the descriptors' per-launch host cost would not hide behind the
    product (the tutorial MLP's layers are 25 MFLOP); forcing plans it at any size."""
    monkeypatch.setattr(fc, "TMA_MODE", "auto")
    monkeypatch.setattr(fc, "tma_wanted", lambda device: True)  # as on a Hopper GPU
    x, w = torch.empty(1024, 512, dtype=torch.float16), torch.empty(1024, 512, dtype=torch.float16)
    y = torch.empty(1024, 1024, dtype=torch.float16)
    assert fc._tma_descriptors(x, w, y, "ieee") is not None  # 2 * 1024 * 1024 * 512 = 2^30
    assert fc._tma_descriptors(x[:1023], w, y[:1023], "ieee") is None
    monkeypatch.setattr(fc, "TMA_MODE", "1")
    assert fc._tma_descriptors(x[:8], w[:8], y[:8, :8], "ieee") is not None


def test_tma_and_pointer_launches_of_one_shape_keep_their_own_configs(rng, tma):
    """The autotuner remembers one config per key; TMA_READY is in the key, so a launch
    without descriptors never reuses the TMA config of an aligned launch of the same
    shape (it would read descriptors that are not there)."""
    dtype, (m, k, n) = torch.float16, (24, 16, 32)
    x, w, b = _operands(rng, m, k, n, dtype)
    aligned, odd = poisoned((m, n), dtype), _view_at_odd_address((m, n), dtype)
    first = _run_forward(x, w, b, aligned)
    second = _run_forward(x, w, b, odd)
    assert first.kwargs["TMA_READY"] and not second.kwargs["TMA_READY"]
    expected = fully_connected(to_numpy(x), to_numpy(w), to_numpy(b), "none")
    assert_close(aligned, expected, dtype, "TMA launch")
    assert_close(odd, expected, dtype, "pointer launch")


def test_a_network_trains_the_same_through_the_tma_forward(rng, tma, monkeypatch):
    """An MLP bound with the TMA paths computes the outputs and gradients of one bound
    without them."""
    import tritonsym as ts

    data = ts.sym.Variable("data")
    net = ts.sym.FullyConnected(data, num_hidden=40, name="fc1")
    net = ts.sym.Activation(net, act_type="relu")
    net = ts.sym.FullyConnected(net, num_hidden=16, name="fc2")
    net = ts.sym.SoftmaxOutput(net, name="softmax")
    shapes = {"data": (50, 24), "softmax_label": (50,)}
    values = {"data": rng.normal(size=(50, 24)), "softmax_label": rng.integers(0, 16, 50).astype(np.float64),
              "fc1_weight": rng.normal(size=(40, 24)) * 0.2, "fc1_bias": rng.normal(size=40) * 0.1,
              "fc2_weight": rng.normal(size=(16, 40)) * 0.2, "fc2_bias": rng.normal(size=16) * 0.1}
    results = []
    for mode in ("1", "0"):
        monkeypatch.setattr(fc, "TMA_MODE", mode)
        exe = net.simple_bind(ts.cpu(), type_dict={"data": torch.float16}, **shapes)
        planned = [launch.kwargs["TMA_READY"] for step in exe._program.forward_steps for launch in step.launches
                   if launch.kernel is fc._fc_forward_kernel]
        assert planned == [mode == "1"] * 2, planned
        products = [launch.kwargs["TMA_READY"] for step in exe._program.backward_steps for launch in step.launches
                    if launch.kernel in (fc._fc_backward_input_kernel, fc._fc_backward_weight_kernel)]
        assert products == [mode == "1"] * 4, products  # dx (fc2's finishing relu's) and dw of each
        for name, value in values.items():
            exe.arg_dict[name].copy_(torch.as_tensor(value))
        exe.forward(is_train=True)
        exe.backward()
        results.append([exe.outputs[0].float().cpu().numpy()] +
                       [exe.grad_dict[n].float().cpu().numpy() for n in ("fc1_weight", "fc2_weight", "fc1_bias")])
    for with_tma, without in zip(*results):
        np.testing.assert_allclose(with_tma, without, atol=2e-3, rtol=2e-3)


def test_a_repeated_tma_launch_gives_the_same_bits(rng, tma):
    """From its second call a launch is pre-bound on a GPU (descriptors bound once, encoded
    by the launcher at each call); every call writes the same result."""
    from tritonsym.ops import prebind

    dtype = torch.bfloat16
    x, w, b = _operands(rng, 90, 48, 72, dtype)
    out = poisoned((90, 72), dtype)
    (launch,) = fc.plan_fully_connected_forward(x, w, b, out, act="tanh")
    launch()
    first = out.clone()
    for _ in range(2):
        out.fill_(float("nan"))
        launch()
        assert torch.equal(out, first)
    assert launch.prebound == prebind.ENABLED


@pytest.mark.gpu
def test_a_tma_launch_replays_in_a_cuda_graph(rng, tma):
    dtype = torch.float16
    x, w, b = (t.cuda() for t in _operands(rng, 300, 64, 520, dtype))
    out = torch.full((300, 520), float("nan"), dtype=dtype, device="cuda")
    (launch,) = fc.plan_fully_connected_forward(x, w, b, out, act="relu")
    launch()  # compile outside the capture
    launch()
    expected = out.clone()
    out.fill_(float("nan"))
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        launch()
    graph.replay()
    torch.cuda.synchronize()
    assert torch.equal(out, expected)
