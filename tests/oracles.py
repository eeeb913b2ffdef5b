"""numpy float64 oracles, written from the math (never from the kernels)."""

from __future__ import annotations

import math

import numpy as np

erf = np.vectorize(math.erf, otypes=[np.float64])  # numpy has no erf; math.erf is exact enough

SELU_LAMBDA = 1.0507009873554804934193349852946
SELU_ALPHA = 1.6732632423543772848170429916717


# ------------------------------------------------------------------- activations

def act(x: np.ndarray, kind: str, slope: float = 0.0) -> np.ndarray:
    with np.errstate(over="ignore"):  # np.where evaluates both branches; the unused one may overflow
        return _act(x, kind, slope)


def _act(x: np.ndarray, kind: str, slope: float) -> np.ndarray:
    if kind == "none":
        return x.copy()
    if kind == "relu":
        return np.maximum(x, 0.0)
    if kind == "sigmoid":
        return 1.0 / (1.0 + np.exp(-x))
    if kind == "tanh":
        return np.tanh(x)
    if kind == "softrelu":
        return np.logaddexp(0.0, x)
    if kind == "softsign":
        return x / (1.0 + np.abs(x))
    if kind == "leaky":
        return np.where(x > 0, x, slope * x)
    if kind == "elu":
        return np.where(x > 0, x, slope * np.expm1(x))
    if kind == "selu":
        return SELU_LAMBDA * np.where(x > 0, x, SELU_ALPHA * np.expm1(x))
    if kind == "gelu":
        return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))
    if kind == "gelu_tanh":
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))
    if kind == "silu":
        return x * act(x, "sigmoid")
    raise ValueError(kind)


def act_grad(x: np.ndarray, kind: str, slope: float = 0.0) -> np.ndarray:
    """d act / dx at the input x."""
    with np.errstate(over="ignore"):
        return _act_grad(x, kind, slope)


def _act_grad(x: np.ndarray, kind: str, slope: float) -> np.ndarray:
    if kind == "none":
        return np.ones_like(x)
    if kind == "relu":
        return (x > 0).astype(np.float64)
    if kind == "sigmoid":
        s = act(x, "sigmoid")
        return s * (1.0 - s)
    if kind == "tanh":
        return 1.0 - np.tanh(x) ** 2
    if kind == "softrelu":
        return act(x, "sigmoid")
    if kind == "softsign":
        return 1.0 / (1.0 + np.abs(x)) ** 2
    if kind == "leaky":
        return np.where(x > 0, 1.0, slope)
    if kind == "elu":
        return np.where(x > 0, 1.0, slope * np.exp(x))
    if kind == "selu":
        return SELU_LAMBDA * np.where(x > 0, 1.0, SELU_ALPHA * np.exp(x))
    if kind == "gelu":
        return 0.5 * (1.0 + erf(x / math.sqrt(2.0))) + x * np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
    if kind == "gelu_tanh":  # with u = c (x + a x^3): 0.5 (1 + tanh u) + 0.5 x sech^2(u) c (1 + 3 a x^2)
        c, a = math.sqrt(2.0 / math.pi), 0.044715
        t = np.tanh(c * (x + a * x ** 3))
        return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * c * (1.0 + 3.0 * a * x * x)
    if kind == "silu":  # sigmoid(x) + x sigmoid'(x)
        s = act(x, "sigmoid")
        return s + x * s * (1.0 - s)
    raise ValueError(kind)


# ---------------------------------------------------------------- fully connected

def fully_connected(x, w, b=None, kind="none", slope=0.0):
    z = x @ w.T + (0.0 if b is None else b)
    return act(z, kind, slope)


def fully_connected_grads(dy, x, w, b=None, kind="none", slope=0.0):
    """(dx, dw, db) of act(x @ w.T + b)."""
    z = x @ w.T + (0.0 if b is None else b)
    dz = dy * act_grad(z, kind, slope)
    return dz @ w, dz.T @ x, dz.sum(axis=0)


# ----------------------------------------------------------------------- softmax

def softmax(x, axis=-1):
    m = np.max(x, axis=axis, keepdims=True)
    e = np.exp(x - m)
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax(x, axis=-1):
    m = np.max(x, axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def softmax_grad(dy, x, axis=-1):
    """d/dx of sum(dy * softmax(x)) — from the Jacobian diag(p) - p p^T."""
    p = softmax(x, axis)
    return p * (dy - (dy * p).sum(axis=axis, keepdims=True))


def log_softmax_grad(dy, x, axis=-1):
    """d/dx of sum(dy * log_softmax(x)) — from the Jacobian I - 1 p^T."""
    return dy - softmax(x, axis) * dy.sum(axis=axis, keepdims=True)


def softmax_output_target(label, classes, smooth_alpha=0.0):
    """One-hot (smoothed) targets for class labels of any shape: (..., classes)."""
    onehot = np.eye(classes)[label.astype(np.int64)]
    return onehot * (1.0 - smooth_alpha) + (1.0 - onehot) * (smooth_alpha / max(classes - 1, 1))


def softmax_output_grad(x, label, grad_scale=1.0, ignore_label=-1.0, use_ignore=False, normalization="null",
                        smooth_alpha=0.0):
    """Gradient of the cross-entropy of softmax(x) (x as (rows, classes)) against class labels (rows,)."""
    p = softmax(x, -1)
    target = softmax_output_target(np.where(label == ignore_label, 0, label) if use_ignore else label,
                                   x.shape[-1], smooth_alpha)
    keep = (label != ignore_label) if use_ignore else np.ones(label.shape, bool)
    grad = (p - target) * keep[..., None] * grad_scale
    if normalization == "batch":
        grad = grad / x.shape[0]
    elif normalization == "valid":
        grad = grad / max(keep.sum(), 1)
    return grad


def cross_entropy(p, label, grad_scale=1.0, ignore_label=-1.0, use_ignore=False, normalization="null",
                  smooth_alpha=0.0):
    """The loss whose gradient SoftmaxOutput writes (probabilities p as (rows, classes))."""
    keep = (label != ignore_label) if use_ignore else np.ones(label.shape, bool)
    target = softmax_output_target(np.where(keep, label, 0), p.shape[-1], smooth_alpha)
    loss = -(target * np.log(p)).sum(axis=-1)[keep].sum() * grad_scale
    if normalization == "batch":
        loss /= p.shape[0]
    elif normalization == "valid":
        loss /= max(keep.sum(), 1)
    return loss


# -------------------------------------------------------------------- elementwise

# Comparisons: 1.0 where they hold (IEEE: NaN compares unequal), gradient 0 times the
# output gradient (so a NaN there stays NaN).
COMPARE = {"equal": np.equal, "not_equal": np.not_equal, "greater": np.greater, "greater_equal": np.greater_equal,
           "lesser": np.less, "lesser_equal": np.less_equal}
# numpy's truth: nonzero, NaN included
LOGICAL = {"logical_and": np.logical_and, "logical_or": np.logical_or, "logical_xor": np.logical_xor}
BINARY = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide, "maximum": np.maximum,
          "minimum": np.minimum, "power": lambda a, b: _quiet(np.power, a, b), "hypot": np.hypot,
          "mod": lambda a, b: _floor_mod(a, b)[0],
          **{k: (lambda a, b, f=f: f(a, b).astype(np.float64)) for k, f in {**COMPARE, **LOGICAL}.items()}}


def _quiet(f, *args):
    """numpy's value, NaN for a negative base's fractional power included, without its warning."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return f(*args)


def _floor_mod(a, b):
    """(a mod b with b's sign, floor(a / b)) as Python's % and numpy's mod (exact: fmod, then b
    added where the signs differ), NaN where b is 0 (MXNet gives 0)."""
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        r = np.fmod(a, b)
        wrap = (r != 0) & ((r < 0) != (b < 0))
        r = np.where(wrap, r + b, r)
        q = np.where(np.abs(a / b) >= 2.0 ** 52, np.floor(a / b), np.round((a - r) / b))
        return np.where(b == 0, np.nan, r), np.where(b == 0, np.nan, q)


def binary_grads(kind, dy, a, b):
    if kind in COMPARE or kind in LOGICAL:
        return dy * 0.0, dy * 0.0
    if kind == "hypot":  # a / h, b / h (NaN at 0)
        return _quiet(lambda: (dy * a / np.hypot(a, b), dy * b / np.hypot(a, b)))
    if kind == "mod":  # 1 and -floor(a / b) (MXNet's), NaN where b is 0
        return np.where(b == 0, np.nan, dy), -dy * _floor_mod(a, b)[1]
    return {
        "add": lambda: (dy, dy),
        "sub": lambda: (dy, -dy),
        "mul": lambda: (dy * b, dy * a),
        "div": lambda: (dy / b, -dy * a / b ** 2),
        # MXNet's choice: lhs takes a tie; a NaN on either side sends the gradient nowhere
        "maximum": lambda: (np.where(a >= b, dy, 0.0), np.where(a < b, dy, 0.0)),
        "minimum": lambda: (np.where(a <= b, dy, 0.0), np.where(a > b, dy, 0.0)),
        "power": lambda: (_quiet(lambda: dy * b * np.power(a, b - 1.0)),
                          _quiet(lambda: dy * np.power(a, b) * np.log(a))),
    }[kind]()


def _smooth_l1_reach(sigma):
    """Where smooth L1's quadratic part ends: 1 / sigma**2 (everywhere for sigma 0)."""
    return np.inf if sigma == 0 else 1.0 / sigma ** 2


def scalar(kind, x, s, second=0.0):
    """x OP s (hard_sigmoid: clip(s x + second, 0, 1), NaN kept)."""
    if kind in COMPARE or kind in LOGICAL:
        return {**COMPARE, **LOGICAL}[kind](x, s).astype(np.float64)
    if kind == "hypot":
        return np.hypot(x, s)
    if kind in ("mod", "rmod"):
        return _floor_mod(x, s)[0] if kind == "mod" else _floor_mod(s, x)[0]
    return {
        "plus": lambda: x + s, "minus": lambda: x - s, "rminus": lambda: s - x, "mul": lambda: x * s,
        "div": lambda: x / s, "rdiv": lambda: s / x, "power": lambda: np.power(x, s),
        "rpower": lambda: np.power(s, x), "maximum": lambda: np.maximum(x, s), "minimum": lambda: np.minimum(x, s),
        "smooth_l1": lambda: np.where(np.abs(x) > _smooth_l1_reach(s), np.abs(x) - 0.5 * _smooth_l1_reach(s),
                                      0.5 * (s * x) ** 2),
        "hard_sigmoid": lambda: np.clip(s * x + second, 0.0, 1.0),
    }[kind]()


def scalar_grad(kind, dy, x, s, second=0.0):
    if kind in COMPARE or kind in LOGICAL:
        return dy * 0.0
    if kind == "hypot":
        return dy * x / np.hypot(x, s)
    if kind in ("mod", "rmod"):  # 1, or -floor(s / x) for s mod x
        return dy * 1.0 if kind == "mod" else -dy * _floor_mod(s, x)[1]
    if kind == "hard_sigmoid":  # s strictly inside (0, 1), else 0
        v = s * x + second
        return np.where(np.isnan(v), np.nan, dy * s * ((v > 0.0) & (v < 1.0)))
    if kind in ("maximum", "minimum"):  # x's gradient where it is the result (x >= s, x <= s)
        return np.where(x >= s if kind == "maximum" else x <= s, dy, 0.0)
    if kind == "smooth_l1":  # the sign of x on the linear parts, s**2 x on the quadratic one
        return dy * np.where(np.abs(x) > _smooth_l1_reach(s), np.sign(x), s ** 2 * x)
    return dy * {
        "plus": lambda: 1.0, "minus": lambda: 1.0, "rminus": lambda: -1.0, "mul": lambda: s,
        "div": lambda: 1.0 / s, "rdiv": lambda: -s / x ** 2, "power": lambda: s * np.power(x, s - 1.0),
        "rpower": lambda: np.power(s, x) * math.log(s),
    }[kind]()


def _round_half_away(x):
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def _mxnet_rint(x):
    """MXNet's rint (mshadow_op.h): floor(x) unless ceil(x) is strictly nearer; ties go down."""
    floor, ceil = np.floor(x), np.ceil(x)
    return np.where(x - floor <= ceil - x, floor, ceil)


def _gamma(x):
    """C's tgamma: +-inf at +-0, NaN at the negative whole numbers and -inf, inf past 171.6."""
    def one(v):
        if v == 0:
            return math.copysign(math.inf, v)
        if (v < 0 and v == math.floor(v)) or math.isnan(v) or v == -math.inf:
            return math.nan
        try:
            return math.gamma(v)
        except OverflowError:
            return math.inf
    return np.vectorize(one, otypes=[np.float64])(x)


def _lgamma(x):
    """C's lgamma (log |Gamma|): inf at the poles and both infinities."""
    return np.vectorize(lambda v: math.inf if v <= 0 and v == math.floor(v) else math.lgamma(v),
                        otypes=[np.float64])(x)


def _mpmath(f, x):
    """f at each element, to 30 digits (mpmath ships with torch, through sympy)."""
    import mpmath
    with mpmath.workdps(30):
        return np.vectorize(lambda v: float(f(mpmath.mpf(v))), otypes=[np.float64])(x)


def erfinv(y):
    """The x with erf(x) = y; +-inf at +-1, NaN past them."""
    inside = np.abs(y) < 1
    import mpmath
    x = _mpmath(mpmath.erfinv, np.where(inside, y, 0.0))
    return np.where(inside, x, np.where(np.abs(y) == 1, y * np.inf, np.nan))


def digamma(x):
    """psi(x) = Gamma'(x) / Gamma(x); NaN at its poles (0 and the negative whole numbers)."""
    import mpmath
    pole = (x <= 0) & (x == np.floor(x))
    return np.where(pole, np.nan, _mpmath(mpmath.digamma, np.where(pole, 0.5, x)))


UNARY = {"negative": np.negative, "exp": np.exp, "log": np.log, "sqrt": np.sqrt, "square": np.square,
         "abs": np.abs, "reciprocal": np.reciprocal, "sin": np.sin, "cos": np.cos, "tan": np.tan, "sinh": np.sinh,
         "cosh": np.cosh, "erf": np.vectorize(math.erf, otypes=[np.float64]), "log1p": np.log1p,
         "expm1": np.expm1, "log2": np.log2, "log10": np.log10, "rsqrt": lambda x: 1.0 / np.sqrt(x),
         "degrees": np.degrees, "radians": np.radians, "sign": np.sign, "floor": np.floor, "ceil": np.ceil,
         "round": _round_half_away, "rint": _mxnet_rint, "trunc": np.trunc, "fix": np.fix,
         "logical_not": lambda x: (x == 0).astype(np.float64), "arcsin": np.arcsin, "arccos": np.arccos,
         "arctan": np.arctan, "arcsinh": np.arcsinh, "arccosh": np.arccosh, "arctanh": np.arctanh, "cbrt": np.cbrt,
         "rcbrt": lambda x: 1.0 / np.cbrt(x), "gamma": _gamma, "gammaln": _lgamma, "erfinv": erfinv}
UNARY_STEPS = ("sign", "floor", "ceil", "round", "rint", "trunc", "fix", "logical_not")  # gradient 0


def unary_grad(kind, dy, x):
    if kind in UNARY_STEPS:
        return dy * 0.0
    return dy * {
        "negative": lambda: -1.0, "exp": lambda: np.exp(x), "log": lambda: 1.0 / x,
        "sqrt": lambda: 0.5 / np.sqrt(x), "square": lambda: 2.0 * x, "abs": lambda: np.sign(x),
        "reciprocal": lambda: -1.0 / x ** 2, "sin": lambda: np.cos(x), "cos": lambda: -np.sin(x),
        "tan": lambda: 1.0 / np.cos(x) ** 2, "sinh": lambda: np.cosh(x), "cosh": lambda: np.sinh(x),
        "erf": lambda: 2.0 / math.sqrt(math.pi) * np.exp(-x * x), "log1p": lambda: 1.0 / (1.0 + x),
        "expm1": lambda: np.exp(x), "log2": lambda: 1.0 / (x * math.log(2.0)),
        "log10": lambda: 1.0 / (x * math.log(10.0)), "rsqrt": lambda: -0.5 * x ** -1.5,
        "degrees": lambda: 180.0 / math.pi, "radians": lambda: math.pi / 180.0,
        "arcsin": lambda: 1.0 / np.sqrt(1.0 - x * x), "arccos": lambda: -1.0 / np.sqrt(1.0 - x * x),
        "arctan": lambda: 1.0 / (1.0 + x * x), "arcsinh": lambda: 1.0 / np.sqrt(1.0 + x * x),
        "arccosh": lambda: 1.0 / np.sqrt(x * x - 1.0), "arctanh": lambda: 1.0 / (1.0 - x * x),
        "cbrt": lambda: 1.0 / (3.0 * np.cbrt(x) ** 2), "rcbrt": lambda: -1.0 / (3.0 * np.cbrt(x) ** 4),
        "gamma": lambda: np.where(x == 0, -np.inf, _gamma(x) * digamma(x)), "gammaln": lambda: digamma(x),
        "erfinv": lambda: math.sqrt(math.pi) / 2.0 * np.exp(erfinv(x) ** 2),
    }[kind]()


def unary_domain(kind, rng, shape):
    """Inputs inside ``kind``'s domain and away from its kinks, poles and steps (so that a
    finite difference sees the derivative): positive for the logarithms and roots, inside
    (-1.2, 1.2) for tan, (-0.9, 0.9) for arcsin, arccos, arctanh and erfinv, (1.1, 3) for
    arccosh, fractional parts in [0.1, 0.4] or [0.6, 0.9] for the steps, and for gamma and
    gammaln (0.3, 5) or negative values at least 0.1 from a whole number (their poles)."""
    if kind in ("log", "sqrt", "log1p", "log2", "log10", "rsqrt"):
        return rng.uniform(0.5, 2.0, shape)
    if kind == "tan":
        return rng.uniform(-1.2, 1.2, shape)
    if kind in ("arcsin", "arccos", "arctanh", "erfinv"):
        return rng.uniform(-0.9, 0.9, shape)
    if kind in ("gamma", "gammaln"):
        negative = -rng.integers(0, 4, shape) - rng.uniform(0.1, 0.9, shape)
        return np.where(rng.random(shape) < 0.5, negative, rng.uniform(0.3, 5.0, shape))
    if kind == "arccosh":
        return rng.uniform(1.1, 3.0, shape)
    if kind == "logical_not":  # zeros among the others
        return rng.integers(-1, 2, shape) * rng.uniform(0.5, 2.0, shape)
    if kind in UNARY_STEPS:
        return rng.integers(-4, 4, shape) + rng.uniform(0.1, 0.4, shape) + 0.5 * rng.integers(0, 2, shape)
    return rng.uniform(0.5, 2.0, shape) * rng.choice([-1.0, 1.0], shape)


# --------------------------------------------------------------------- optimizer updates


def _scaled_grad(w, g, wd, rescale, clip):
    g = g * rescale
    if clip is not None:
        g = np.clip(g, -clip, clip)
    return g + wd * w


def sgd_update(w, g, mom, lr, wd=0.0, rescale=1.0, clip=None, momentum=0.0):
    """MXNet's SGD: ``mom = momentum*mom - lr*(clip(rescale*g) + wd*w); w += mom``. Returns (w, mom)."""
    g = _scaled_grad(w, g, wd, rescale, clip)
    if mom is None:
        return w - lr * g, None
    mom = momentum * mom - lr * g
    return w + mom, mom


def adam_update(w, g, m, v, step, lr, beta1=0.9, beta2=0.999, eps=1e-8, wd=0.0, rescale=1.0, clip=None):
    """Kingma & Ba with bias correction, eps added to sqrt(v_hat). Returns (w, m, v)."""
    g = _scaled_grad(w, g, wd, rescale, clip)
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g * g
    m_hat, v_hat = m / (1 - beta1 ** step), v / (1 - beta2 ** step)
    return w - lr * m_hat / (np.sqrt(v_hat) + eps), m, v


def adamw_update(w, g, m, v, step, lr, beta1=0.9, beta2=0.999, eps=1e-8, wd=0.01, rescale=1.0, clip=None):
    """AdamW (Loshchilov & Hutter): the weight shrinks by lr * wd, then Adam's step on the
    (rescaled, clipped) gradient alone. Returns (w, m, v)."""
    return adam_update(w * (1 - lr * wd), g, m, v, step, lr, beta1, beta2, eps, 0.0, rescale, clip)


def _channel_view(x, axis):
    """The axes BatchNorm reduces over, and the shape that broadcasts a channel vector."""
    axis = axis % x.ndim
    shape = [1] * x.ndim
    shape[axis] = -1
    return tuple(i for i in range(x.ndim) if i != axis), shape


def batch_norm(x, gamma, beta, axis=1, eps=1e-3, fix_gamma=True, mean=None, var=None):
    """(x - mean) / sqrt(var + eps) * gamma + beta per channel of ``axis``: the batch's
    (biased) statistics unless ``mean`` and ``var`` (the moving ones) are given."""
    axes, shape = _channel_view(x, axis)
    mean = x.mean(axes) if mean is None else mean
    var = x.var(axes) if var is None else var
    g = np.ones_like(gamma) if fix_gamma else gamma
    return (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps) * g.reshape(shape) + beta.reshape(shape)


def batch_norm_grads(dy, x, gamma, axis=1, eps=1e-3, fix_gamma=True, mean=None, var=None):
    """d(sum(dy * out)) by data, gamma and beta. With the batch's statistics the mean and
    variance depend on x: dx = g / sigma * (dy - mean(dy) - xhat * mean(dy * xhat)); with
    given (moving) ones they are constants: dx = g / sigma * dy. A fixed gamma gets 0."""
    axes, shape = _channel_view(x, axis)
    batch = mean is None
    mean = x.mean(axes) if mean is None else mean
    var = x.var(axes) if var is None else var
    sigma = np.sqrt(var + eps).reshape(shape)
    xhat = (x - mean.reshape(shape)) / sigma
    g = (np.ones_like(gamma) if fix_gamma else gamma).reshape(shape)
    if batch:
        dx = g / sigma * (dy - dy.mean(axes, keepdims=True) - xhat * (dy * xhat).mean(axes, keepdims=True))
    else:
        dx = g / sigma * dy
    dgamma = np.zeros_like(gamma) if fix_gamma else (dy * xhat).sum(axes)
    return dx, dgamma, dy.sum(axes)


def layer_norm(x, gamma, beta, axis=-1, eps=1e-5):
    """(x - mean) / sqrt(var + eps) * gamma + beta, each row along ``axis`` by its own statistics."""
    shape = [1] * x.ndim
    shape[axis] = -1
    mean, var = x.mean(axis, keepdims=True), x.var(axis, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma.reshape(shape) + beta.reshape(shape)


def layer_norm_grads(dy, x, gamma, axis=-1, eps=1e-5):
    """d(sum(dy * out)) by data, gamma and beta: with g = gamma * dy and xhat the normalised
    row, dx = (g - mean(g) - xhat * mean(g * xhat)) / sigma; gamma's and beta's are column sums."""
    shape = [1] * x.ndim
    shape[axis] = -1
    others = tuple(i for i in range(x.ndim) if i != axis % x.ndim)
    sigma = np.sqrt(x.var(axis, keepdims=True) + eps)
    xhat = (x - x.mean(axis, keepdims=True)) / sigma
    g = dy * gamma.reshape(shape)
    dx = (g - g.mean(axis, keepdims=True) - xhat * (g * xhat).mean(axis, keepdims=True)) / sigma
    return dx, (dy * xhat).sum(others), dy.sum(others)


def group_norm(x, gamma, beta, groups, eps=1e-5):
    """Each sample's channels in ``groups`` groups, each normalised over its channels and
    positions: (x - mean) / sqrt(var + eps) * gamma + beta, gamma and beta one per group."""
    rows = x.reshape(x.shape[0], groups, -1)
    mean, var = rows.mean(-1, keepdims=True), rows.var(-1, keepdims=True)
    out = (rows - mean) / np.sqrt(var + eps) * gamma[None, :, None] + beta[None, :, None]
    return out.reshape(x.shape)


def group_norm_grads(dy, x, gamma, groups, eps=1e-5):
    """LayerNorm's gradients on the (sample, group) rows, with g = gamma[group] * dy; gamma's and
    beta's summed over the samples and each row."""
    rows, d = x.reshape(x.shape[0], groups, -1), dy.reshape(x.shape[0], groups, -1)
    sigma = np.sqrt(rows.var(-1, keepdims=True) + eps)
    xhat = (rows - rows.mean(-1, keepdims=True)) / sigma
    g = d * gamma[None, :, None]
    dx = (g - g.mean(-1, keepdims=True) - xhat * (g * xhat).mean(-1, keepdims=True)) / sigma
    return dx.reshape(x.shape), (d * xhat).sum((0, 2)), d.sum((0, 2))


def l2_normalization(x, axes, eps=1e-10):
    """x / sqrt(sum(x**2) + eps), the sum over ``axes``."""
    return x / np.sqrt((x * x).sum(axes, keepdims=True) + eps)


def l2_normalization_grad(dy, x, axes, eps=1e-10):
    """(dy - y * sum(dy * y)) / norm with y the output and norm = sqrt(sum(x**2) + eps): the
    Jacobian of x / norm applied to dy."""
    norm = np.sqrt((x * x).sum(axes, keepdims=True) + eps)
    y = x / norm
    return (dy - y * (dy * y).sum(axes, keepdims=True)) / norm


def rms_norm(x, gamma, axis=-1, eps=1e-5):
    """x / sqrt(mean(x**2) + eps) * gamma, each row along ``axis`` by its own root mean square."""
    shape = [1] * x.ndim
    shape[axis] = -1
    return x / np.sqrt((x * x).mean(axis, keepdims=True) + eps) * gamma.reshape(shape)


def rms_norm_grads(dy, x, gamma, axis=-1, eps=1e-5):
    """d(sum(dy * out)) by data and gamma: with g = gamma * dy, r = sqrt(mean(x**2) + eps) and
    xhat = x / r, dx = (g - xhat * mean(g * xhat)) / r; gamma's is a column sum."""
    shape = [1] * x.ndim
    shape[axis] = -1
    others = tuple(i for i in range(x.ndim) if i != axis % x.ndim)
    r = np.sqrt((x * x).mean(axis, keepdims=True) + eps)
    xhat, g = x / r, dy * gamma.reshape(shape)
    return (g - xhat * (g * xhat).mean(axis, keepdims=True)) / r, (dy * xhat).sum(others)



def rotary(x, axis=-2, base=10000.0, interleaved=False, rotary_dim=None, offset=0, transpose=False):
    """RoPE: in each position along ``axis``, pair i of the features (last axis; features i and
    i + rotary_dim/2, or 2i and 2i+1 interleaved) rotated in its plane by ``(offset + position)
    * base ** (-2 i / rotary_dim)``, the features past rotary_dim kept; ``transpose``: rotated
    back (the gradient, d(sum(dy * out)) by data)."""
    moved = np.moveaxis(np.asarray(x, dtype=np.float64), axis, -2)  # (..., positions, features)
    positions, features = moved.shape[-2:]
    rotary_dim = features if rotary_dim is None else rotary_dim
    out = moved.copy()
    for i in range(rotary_dim // 2):
        a, b = (2 * i, 2 * i + 1) if interleaved else (i, i + rotary_dim // 2)
        angle = (offset + np.arange(positions)) * float(base) ** (-2.0 * i / rotary_dim)
        cos, sin = np.cos(angle), np.sin(angle) * (-1.0 if transpose else 1.0)
        out[..., a] = moved[..., a] * cos - moved[..., b] * sin
        out[..., b] = moved[..., a] * sin + moved[..., b] * cos
    return np.moveaxis(out, -2, axis)


def rotary_at(x, position, axis, transpose=False):
    """RoPE with batch row b's positions starting at ``position[b]`` (``use_position``)."""
    return np.stack([rotary(x[b], axis - 1 if axis > 0 else axis, offset=int(p), transpose=transpose)
                     for b, p in enumerate(position)])


def cache_slots(position, steps, cache_len):
    """(batch, steps): the cache slot of each entry ``t`` of batch row ``b``."""
    return (np.asarray(position, dtype=np.int64)[:, None] + np.arange(steps)) % cache_len


def cache_write(data, cache, position, axis):
    """The cache after data's entries along ``axis`` went into their slots (a ring)."""
    data, out = np.moveaxis(data, axis, 1), np.moveaxis(np.array(cache, dtype=np.float64), axis, 1)
    for b, slots in enumerate(cache_slots(position, data.shape[1], out.shape[1])):
        out[b, slots] = data[b]
    return np.moveaxis(out, 1, axis)


def cache_write_grad(head, position, steps, axis):
    """d(sum(head * out)) by data: the head at the slots data went to."""
    head = np.moveaxis(head, axis, 1)
    grad = np.stack([head[b, slots] for b, slots in enumerate(cache_slots(position, steps, head.shape[1]))])
    return np.moveaxis(grad, 1, axis)


def _attention_pairs(q, k, causal, scale, lengths, window=None):
    """Scores q k^T * scale (batch, heads, seq_q, seq_k) and which (query, key) pairs the mask
    keeps (with ``window``, causal: key j for query i when i - window < j <= i)."""
    scale = 1.0 / np.sqrt(q.shape[-1]) if scale is None else scale
    s = q @ np.swapaxes(k, -1, -2) * scale
    keep = np.ones(s.shape[-2:], dtype=bool)
    if causal:
        keep = np.tril(keep)
    if window is not None:
        keep = keep & np.triu(np.ones_like(keep), 1 - window)
    keep = np.broadcast_to(keep, s.shape)
    if lengths is not None:
        keep = keep & (np.arange(s.shape[-1]) < np.asarray(lengths)[:, None, None, None])
    return s, keep, scale


def _kept_sum(c, x, keep, over):
    """sum over the kept pairs of c * x, where a masked pair is absent from the sum (not a
    0 that a NaN in x would turn into NaN): ``over="keys"`` gives per query sum_j c_ij x_j,
    ``"queries"`` per key sum_i c_ij x_i."""
    if over == "keys":
        terms = c[..., :, :, None] * x[..., None, :, :]
        return np.where(keep[..., None], terms, 0.0).sum(-2)
    terms = c[..., :, :, None] * x[..., :, None, :]
    return np.where(keep[..., None], terms, 0.0).sum(-3)


def attention_probabilities(q, k, causal=False, scale=None, lengths=None, window=None):
    """softmax(q k^T * scale) over the keys each query sees, 0 at the others (all 0 for a
    query that sees no key through a window)."""
    s, keep, _ = _attention_pairs(q, k, causal, scale, lengths, window)
    s = np.where(keep, s, -np.inf)
    sees = keep.any(-1, keepdims=True)
    p = np.where(keep, np.exp(s - np.where(sees, s.max(-1, keepdims=True), 0.0)), 0.0)
    return p / np.where(sees, p.sum(-1, keepdims=True), 1.0), keep


def attention(q, k, v, causal=False, scale=None, lengths=None, window=None):
    p, keep = attention_probabilities(q, k, causal, scale, lengths, window)
    return _kept_sum(p, v, keep, "keys")


def attention_grads(h, q, k, v, causal=False, scale=None, lengths=None, window=None):
    """d(sum(h * attention(q, k, v)))/d(q, k, v), from the chain rule through the softmax."""
    _, _, scale = _attention_pairs(q, k, causal, scale, lengths, window)
    p, keep = attention_probabilities(q, k, causal, scale, lengths, window)
    dp = h @ np.swapaxes(v, -1, -2)
    ds = np.where(keep, p * (dp - np.where(keep, dp * p, 0.0).sum(-1, keepdims=True)), 0.0)
    return (_kept_sum(ds, k, keep, "keys") * scale, _kept_sum(ds, q, keep, "queries") * scale,
            _kept_sum(p, h, keep, "queries"))


def _svm_slack(x, label, margin):
    """margin - x at each row's label class, margin + x at the others; and which is which."""
    at_label = np.arange(x.shape[-1]) == np.asarray(label)[..., None]
    return np.where(at_label, margin - x, margin + x), at_label


def svm_loss(x, label, margin=1.0, coefficient=1.0, linear=False):
    """The SVM loss whose gradient SVMOutput writes: the positive slacks (squared: L2-SVM)."""
    slack = np.maximum(_svm_slack(x, label, margin)[0], 0.0)
    return coefficient * (slack if linear else slack ** 2).sum()


def svm_output_grad(x, label, margin=1.0, coefficient=1.0, linear=False):
    """d(svm_loss)/dx; NaN at a NaN score and on the row of a label that is not a class."""
    slack, at_label = _svm_slack(x, label, margin)
    grad = np.where(slack > 0, np.where(at_label, -1.0, 1.0) * (1.0 if linear else 2.0 * slack), 0.0)
    label = np.asarray(label, dtype=np.float64)
    is_class = (label >= 0) & (label < x.shape[-1]) & (label == np.floor(label))
    return np.where(np.isnan(x) | ~is_class[..., None], np.nan, coefficient * grad)


def adaptive_windows(length, cells):
    """Cell i's rows [floor(i L / cells), ceil((i + 1) L / cells)) of ``length`` rows."""
    return [(i * length // cells, -(-(i + 1) * length // cells)) for i in range(cells)]


def adaptive_avg_pool(x, size):
    out = np.empty(x.shape[:2] + tuple(size))
    for i, (top, bottom) in enumerate(adaptive_windows(x.shape[2], size[0])):
        for j, (left, right) in enumerate(adaptive_windows(x.shape[3], size[1])):
            out[:, :, i, j] = x[:, :, top:bottom, left:right].mean((2, 3))
    return out


def adaptive_avg_pool_grad(dy, shape):
    dx = np.zeros(shape)
    for i, (top, bottom) in enumerate(adaptive_windows(shape[2], dy.shape[2])):
        for j, (left, right) in enumerate(adaptive_windows(shape[3], dy.shape[3])):
            dx[:, :, top:bottom, left:right] += dy[:, :, i, j, None, None] / ((bottom - top) * (right - left))
    return dx


def bilinear_taps(length, out_length, align_corners):
    """Each output index's (first row, next row, next row's weight): the source position is
    o (L - 1) / (OL - 1) with align_corners, else max((o + 0.5) L / OL - 0.5, 0); 0 for a
    single output (MXNet's)."""
    o = np.arange(out_length)
    if out_length == 1:
        position = np.zeros(1)
    elif align_corners:
        position = o * (length - 1) / (out_length - 1)
    else:
        position = np.maximum((o + 0.5) * length / out_length - 0.5, 0.0)
    first = np.floor(position).astype(np.int64)
    return first, np.minimum(first + 1, length - 1), position - first


def _along(w, axis, ndim):
    shape = [1] * ndim
    shape[axis] = -1
    return w.reshape(shape)


def bilinear_resize(x, size, align_corners=True):
    """Rows blended, then columns; a neighbour of weight 0 is not read (a grid point is the
    grid value, even beside a NaN)."""
    for axis, out_length in ((2, size[0]), (3, size[1])):
        first, after, w = bilinear_taps(x.shape[axis], out_length, align_corners)
        w = _along(w, axis, x.ndim)
        x = (1 - w) * np.take(x, first, axis) + np.where(w > 0, w * np.take(x, after, axis), 0.0)
    return x


def bilinear_resize_grad(dy, shape, align_corners=True):
    """The adjoint of ``bilinear_resize``: each output's head shared back to the rows it read."""
    for axis in (3, 2):
        first, after, w = bilinear_taps(shape[axis], dy.shape[axis], align_corners)
        moved = np.moveaxis(dy, axis, 0)
        grad = np.zeros((shape[axis],) + moved.shape[1:])
        np.add.at(grad, first, _along(1 - w, 0, moved.ndim) * moved)
        read = w > 0
        np.add.at(grad, after[read], _along(w[read], 0, moved.ndim) * moved[read])
        dy = np.moveaxis(grad, 0, axis)
    return dy


def interleaved_split(x, heads, parts):
    """MXNet's interleaved projection (seq, batch, heads * parts * width) as ``parts`` arrays
    (batch * heads, seq, width): each head's slices lie side by side on the last axis."""
    seq, batch, columns = x.shape
    t = x.reshape(seq, batch, heads, parts, columns // (heads * parts))
    return [t[:, :, :, p].transpose(1, 2, 0, 3).reshape(batch * heads, seq, -1) for p in range(parts)]


def interleaved_join(pieces, heads):
    """The inverse of ``interleaved_split``."""
    rows, seq, width = pieces[0].shape
    t = np.stack([p.reshape(rows // heads, heads, seq, width).transpose(2, 0, 1, 3) for p in pieces], axis=3)
    return t.reshape(seq, rows // heads, heads * len(pieces) * width)


def grouped_attention(q, k, v, causal=False, scale=None, lengths=None, window=None):
    """Grouped-query attention: key and value head g serves query heads g*group .. g*group +
    group - 1 (group = query heads / key heads), as if repeated to the query's heads."""
    group = q.shape[1] // k.shape[1]
    return attention(q, np.repeat(k, group, 1), np.repeat(v, group, 1), causal, scale, lengths, window)


def grouped_attention_grads(h, q, k, v, causal=False, scale=None, lengths=None, window=None):
    """The gradients of ``grouped_attention``: a shared head's gradient sums its query heads'."""
    group = q.shape[1] // k.shape[1]
    dq, dk, dv = attention_grads(h, q, np.repeat(k, group, 1), np.repeat(v, group, 1), causal, scale, lengths,
                                 window)

    def fold(g):
        return g.reshape(g.shape[0], k.shape[1], group, *g.shape[2:]).sum(2)
    return dq, fold(dk), fold(dv)


def _conv_windows(x_shape, w_shape, stride, dilate, pad):
    """For each kernel tap: the tap and the strided slices of the padded data its products read."""
    out = [(n + 2 * p - d * (k - 1) - 1) // s + 1
           for n, k, s, d, p in zip(x_shape[2:], w_shape[2:], stride, dilate, pad)]
    for tap in np.ndindex(*w_shape[2:]):
        yield tap, (slice(None), slice(None)) + tuple(
            slice(t * d, t * d + s * (o - 1) + 1, s) for t, d, s, o in zip(tap, dilate, stride, out))


def convolution(x, w, b=None, stride=None, dilate=None, pad=None, groups=1):
    """Cross-correlation of x (N, C, *spatial) with w (F, C / groups, *kernel), one tap at a time."""
    spatial = x.ndim - 2
    stride, dilate, pad = stride or (1,) * spatial, dilate or (1,) * spatial, pad or (0,) * spatial
    xp = np.pad(x, [(0, 0), (0, 0)] + [(p, p) for p in pad])
    per_group, filters = w.shape[1], w.shape[0] // groups
    y = None
    for tap, window in _conv_windows(x.shape, w.shape, stride, dilate, pad):
        patch = xp[window]
        parts = [np.einsum("nc...,fc->nf...", patch[:, g * per_group:(g + 1) * per_group],
                           w[(slice(g * filters, (g + 1) * filters), slice(None)) + tap]) for g in range(groups)]
        term = np.concatenate(parts, axis=1)
        y = term if y is None else y + term
    if b is not None:
        y = y + b.reshape((1, -1) + (1,) * spatial)
    return y


def convolution_grads(dy, x, w, stride=None, dilate=None, pad=None, groups=1):
    """(dx, dw, db) of ``convolution``: each tap's products differentiated."""
    spatial = x.ndim - 2
    stride, dilate, pad = stride or (1,) * spatial, dilate or (1,) * spatial, pad or (0,) * spatial
    xp = np.pad(x, [(0, 0), (0, 0)] + [(p, p) for p in pad])
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    per_group, filters = w.shape[1], w.shape[0] // groups
    for tap, window in _conv_windows(x.shape, w.shape, stride, dilate, pad):
        for g in range(groups):
            channels, rows = slice(g * per_group, (g + 1) * per_group), slice(g * filters, (g + 1) * filters)
            dy_g, w_tap = dy[:, rows], w[(rows, slice(None)) + tap]
            dxp[window][:, channels] += np.einsum("nf...,fc->nc...", dy_g, w_tap)
            patch = xp[window][:, channels]
            dw[(rows, slice(None)) + tap] += np.einsum("nfs,ncs->fc", dy_g.reshape(*dy_g.shape[:2], -1),
                                                       patch.reshape(*patch.shape[:2], -1))
    inner = tuple(slice(p, p + n) for p, n in zip(pad, x.shape[2:]))
    return dxp[(slice(None), slice(None)) + inner], dw, dy.sum(axis=(0, *range(2, dy.ndim)))


def _block_geometry(spatial, stride, dilate, pad):
    return stride or (1,) * spatial, dilate or (1,) * spatial, pad or (0,) * spatial


def im2col(x, kernel, stride=None, dilate=None, pad=None):
    """(N, C x prod(kernel), blocks): column (c, tap) holds, for every block, the padded
    data its tap reads (the convolution's windows, one tap at a time)."""
    stride, dilate, pad = _block_geometry(len(kernel), stride, dilate, pad)
    xp = np.pad(x, [(0, 0), (0, 0)] + [(p, p) for p in pad])
    taps = [xp[window] for _, window in _conv_windows(x.shape, (1, 1, *kernel), stride, dilate, pad)]
    cols = np.stack(taps, axis=2)  # (N, C, taps, *grid)
    return cols.reshape(x.shape[0], -1, int(np.prod(cols.shape[3:])))


def col2im(cols, size, kernel, stride=None, dilate=None, pad=None):
    """The adjoint of ``im2col``: every column added back where its tap read, the padding cut off."""
    stride, dilate, pad = _block_geometry(len(kernel), stride, dilate, pad)
    taps = int(np.prod(kernel))
    shape = (cols.shape[0], cols.shape[1] // taps, *size)
    xp = np.zeros(shape[:2] + tuple(n + 2 * p for n, p in zip(size, pad)))
    for t, (_, window) in enumerate(_conv_windows(shape, (1, 1, *kernel), stride, dilate, pad)):
        target = xp[window]
        target += cols.reshape(shape[0], shape[1], taps, *target.shape[2:])[:, :, t]
    return xp[(slice(None), slice(None)) + tuple(slice(p, p + n) for p, n in zip(pad, size))]


def _grid_base(size):
    """(3, H, W): the [-1, 1] coordinates (x, y, 1) of an H x W grid's pixels."""
    height, width = size
    ys, xs = np.meshgrid(-1 + 2 * np.arange(height) / (height - 1), -1 + 2 * np.arange(width) / (width - 1),
                         indexing="ij")
    return np.stack([xs, ys, np.ones_like(xs)])


def affine_grid(theta, size):
    """(N, 2, H, W): each image's 2 x 3 map ``theta`` (N, 6) applied to the grid's pixels."""
    return np.einsum("nrk,khw->nrhw", theta.reshape(-1, 2, 3), _grid_base(size))


def affine_grid_grad(h, size):
    """d(sum(h * affine_grid(theta)))/d(theta), (N, 6): the grid is linear in theta."""
    return np.einsum("nrhw,khw->nrk", h, _grid_base(size)).reshape(-1, 6)


def warp_grid(flow):
    """(N, 2, H, W): each pixel displaced by ``flow`` (x, then y, in pixels), in [-1, 1] coordinates."""
    height, width = flow.shape[2:]
    ys, xs = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    return np.stack([(flow[:, 0] + xs) / ((width - 1) / 2) - 1, (flow[:, 1] + ys) / ((height - 1) / 2) - 1], axis=1)


def warp_grid_grad(h):
    height, width = h.shape[2:]
    return np.stack([h[:, 0] / ((width - 1) / 2), h[:, 1] / ((height - 1) / 2)], axis=1)


def _bilinear_taps(grid, size):
    """The four pixels (rows, columns), their weights and whether each lies inside an
    image of ``size`` for every grid position (N, OH, OW), and d(weight)/d(y), d(x)."""
    height, width = size
    x = (grid[:, 0] + 1) * (width - 1) / 2
    y = (grid[:, 1] + 1) * (height - 1) / 2
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = x - x0, y - y0  # the weight of the right column and of the bottom row
    taps = []
    for dy, dx in ((0, 0), (0, 1), (1, 0), (1, 1)):
        wy, wx = (fy if dy else 1 - fy), (fx if dx else 1 - fx)
        sy, sx = (1.0 if dy else -1.0), (1.0 if dx else -1.0)  # the sign of d(w)/d(y), d(x)
        rows, cols = y0 + dy, x0 + dx
        inside = (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)
        taps.append((np.where(inside, rows, 0).astype(int), np.where(inside, cols, 0).astype(int), wy * wx,
                     sy * wx, sx * wy, inside))
    return taps


def bilinear_sample(data, grid):
    """(N, C, OH, OW): data interpolated at the grid's [-1, 1] positions, 0 outside the image."""
    out = np.zeros((*data.shape[:2], *grid.shape[2:]))
    images = np.arange(data.shape[0])[:, None, None]
    for rows, cols, weight, _, _, inside in _bilinear_taps(grid, data.shape[2:]):
        values = data[images, :, rows, cols]  # (N, OH, OW, C)
        out += np.moveaxis(np.where(inside[..., None], values, 0.0) * weight[..., None], -1, 1)
    return out


def bilinear_sample_grads(h, data, grid):
    """d(sum(h * bilinear_sample(data, grid)))/d(data), d(grid)."""
    height, width = data.shape[2:]
    ddata, dgrid = np.zeros_like(data), np.zeros_like(grid)
    images = np.arange(data.shape[0])[:, None, None]
    hn = np.moveaxis(h, 1, -1)  # (N, OH, OW, C)
    for rows, cols, weight, dweight_dy, dweight_dx, inside in _bilinear_taps(grid, data.shape[2:]):
        values = np.where(inside[..., None], data[images, :, rows, cols], 0.0)
        np.add.at(ddata.transpose(0, 2, 3, 1), (np.broadcast_to(images, rows.shape)[inside], rows[inside],
                                                cols[inside]), (hn * weight[..., None])[inside])
        along = (hn * values).sum(axis=-1)
        dgrid[:, 0] += along * dweight_dx * (width - 1) / 2
        dgrid[:, 1] += along * dweight_dy * (height - 1) / 2
    return ddata, dgrid


def index_copy(old, index, new):
    """old with rows index[i] replaced by new[i] in order (a later repeat overwrites); all
    NaN if an index is not a whole number in [0, rows)."""
    out = old.copy()
    for i, row in enumerate(index):
        if not (row == np.floor(row) and 0 <= row < old.shape[0]):
            return np.full_like(old, np.nan)
        out[int(row)] = new[i]
    return out


def index_copy_grads(h, index, rows):
    """d(sum(h * index_copy(old, index, new)))/d(old), d(new): each output row's gradient
    goes to where its value came from (the last repeat)."""
    winners = {}
    for i, row in enumerate(index):
        if not (row == np.floor(row) and 0 <= row < rows):
            return np.full(h.shape, np.nan), np.full((len(index), *h.shape[1:]), np.nan)
        winners[int(row)] = i
    dold, dnew = h.copy(), np.zeros((len(index), *h.shape[1:]))
    for row, i in winners.items():
        dold[row] = 0
        dnew[i] = h[row]
    return dold, dnew


def _roi_samples(roi, batches, size, pooled, spatial_scale, sample_ratio, aligned):
    """For one region: None (padding: a negative whole batch index), "nan" (invalid), or
    (batch, count, [(bin, [(row, column, weight)...])...]) with every sample point's four
    taps (clamped as MXNet clamps them) and their weights."""
    batch, coords = roi[0], roi[1:] * spatial_scale - (0.5 if aligned else 0.0)
    if batch == np.floor(batch) and batch < 0:
        return None
    height, width = size
    x1, y1, x2, y2 = coords
    roi_w, roi_h = x2 - x1, y2 - y1
    if not aligned:
        roi_w, roi_h = max(roi_w, 1.0), max(roi_h, 1.0)
    if (not (batch == np.floor(batch) and batch < batches) or not np.all(np.isfinite(coords))
            or (aligned and not (roi_w > 0 and roi_h > 0))):
        return "nan"
    bin_h, bin_w = roi_h / pooled[0], roi_w / pooled[1]
    grid_h = sample_ratio if sample_ratio > 0 else int(np.ceil(roi_h / pooled[0]))
    grid_w = sample_ratio if sample_ratio > 0 else int(np.ceil(roi_w / pooled[1]))
    bins = []
    for ph in range(pooled[0]):
        for pw in range(pooled[1]):
            taps = []
            for iy in range(grid_h):
                y = y1 + ph * bin_h + (iy + 0.5) * bin_h / grid_h
                for ix in range(grid_w):
                    x = x1 + pw * bin_w + (ix + 0.5) * bin_w / grid_w
                    if y < -1 or y > height or x < -1 or x > width:
                        continue
                    (ylo, yhi, ly), (xlo, xhi, lx) = _clamped(y, height), _clamped(x, width)
                    taps += [(ylo, xlo, (1 - ly) * (1 - lx)), (ylo, xhi, (1 - ly) * lx), (yhi, xlo, ly * (1 - lx)),
                             (yhi, xhi, ly * lx)]
            bins.append((ph * pooled[1] + pw, taps))
    return int(batch), grid_h * grid_w, bins


def _clamped(y, size):
    y = max(y, 0.0)
    low = int(np.floor(y))
    if low >= size - 1:
        return size - 1, size - 1, 0.0
    return low, low + 1, y - low


def roi_align(data, rois, pooled, spatial_scale, sample_ratio=-1, position_sensitive=False, aligned=False):
    """(R, C', PH, PW): each region's bins, the mean of the data interpolated at their sample points."""
    bins = pooled[0] * pooled[1]
    channels = data.shape[1] // bins if position_sensitive else data.shape[1]
    out = np.zeros((len(rois), channels, bins))
    for r, roi in enumerate(rois):
        found = _roi_samples(roi, data.shape[0], data.shape[2:], pooled, spatial_scale, sample_ratio, aligned)
        if found is None:
            continue
        if isinstance(found, str):
            out[r] = np.nan
            continue
        batch, count, per_bin = found
        for b, taps in per_bin:
            planes = np.arange(channels) * bins + b if position_sensitive else np.arange(channels)
            for row, col, weight in taps:
                out[r, :, b] += weight * data[batch, planes, row, col]
            out[r, :, b] /= count
    return out.reshape(len(rois), channels, *pooled)


def roi_align_grad(h, data_shape, rois, pooled, spatial_scale, sample_ratio=-1, position_sensitive=False,
                   aligned=False):
    """d(sum(h * roi_align(data, rois)))/d(data): each sample's share of its bin's gradient
    on its four taps (invalid regions add nothing)."""
    bins = pooled[0] * pooled[1]
    channels = h.shape[1]
    dx = np.zeros(data_shape)
    hb = h.reshape(len(rois), channels, bins)
    for r, roi in enumerate(rois):
        found = _roi_samples(roi, data_shape[0], data_shape[2:], pooled, spatial_scale, sample_ratio, aligned)
        if found is None or isinstance(found, str):
            continue
        batch, count, per_bin = found
        for b, taps in per_bin:
            planes = np.arange(channels) * bins + b if position_sensitive else np.arange(channels)
            for row, col, weight in taps:
                dx[batch, planes, row, col] += weight * hb[r, :, b] / count
    return dx


def _round_half_away(x):
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def roi_pooling(data, rois, pooled, spatial_scale, grad_head=None):
    """(R, C, PH, PW): each region's bins of whole pixels, the maximum of each (the first
    one, a NaN one kept), 0 for an empty bin or a padding region, NaN for an invalid one.
    With ``grad_head`` (the output's gradient), d(sum(head * out))/d(data) instead."""
    batches, channels, height, width = data.shape
    out = np.zeros((len(rois), channels, *pooled))
    dx = np.zeros_like(data)
    for r, roi in enumerate(rois):
        batch = roi[0]
        start_w, start_h, end_w, end_h = _round_half_away(roi[1:] * spatial_scale)
        if batch == np.floor(batch) and batch < 0:
            continue
        if not (batch == np.floor(batch) and batch < batches) or not np.all(np.isfinite(roi[1:])):
            out[r] = np.nan
            continue
        size_h, size_w = max(end_h - start_h + 1, 1), max(end_w - start_w + 1, 1)
        for ph in range(pooled[0]):
            y0 = int(min(max(np.floor(ph * size_h / pooled[0]) + start_h, 0), height))
            y1 = int(min(max(np.ceil((ph + 1) * size_h / pooled[0]) + start_h, 0), height))
            for pw in range(pooled[1]):
                x0 = int(min(max(np.floor(pw * size_w / pooled[1]) + start_w, 0), width))
                x1 = int(min(max(np.ceil((pw + 1) * size_w / pooled[1]) + start_w, 0), width))
                if y1 <= y0 or x1 <= x0:
                    continue
                for c in range(channels):
                    window = data[int(batch), c, y0:y1, x0:x1].reshape(-1)
                    nan = np.flatnonzero(np.isnan(window))
                    at = nan[0] if nan.size else int(np.argmax(window))
                    out[r, c, ph, pw] = window[at]
                    if grad_head is not None:
                        dx[int(batch), c, y0 + at // (x1 - x0), x0 + at % (x1 - x0)] += grad_head[r, c, ph, pw]
    return dx if grad_head is not None else out


def _box_corners(boxes, fmt):
    if fmt == "center":
        x, y, w, h = np.moveaxis(boxes, -1, 0)
        return np.stack([x - w / 2, y - h / 2, x + w / 2, y + h / 2], axis=-1)
    return boxes


def box_iou(lhs, rhs, fmt="corner"):
    """lhs.shape[:-1] + rhs.shape[:-1]: intersection over union of every pair, 0 where the
    boxes do not overlap, NaN where either holds a NaN."""
    a = _box_corners(lhs.reshape(-1, 4), fmt)[:, None]
    b = _box_corners(rhs.reshape(-1, 4), fmt)[None]
    with np.errstate(invalid="ignore"):
        wx = np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0])
        wy = np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1])
        overlap = (wx > 0) & (wy > 0)
        inter = np.where(overlap, wx * wy, 0.0)
        area = lambda c: (c[..., 2] - c[..., 0]) * (c[..., 3] - c[..., 1])  # noqa: E731
        iou = np.where(overlap, inter / np.where(overlap, area(a) + area(b) - inter, 1.0), 0.0)
    bad = np.isnan(a).any(-1) | np.isnan(b).any(-1)
    return np.where(bad, np.nan, iou).reshape(*lhs.shape[:-1], *rhs.shape[:-1])


def box_iou_grads(h, lhs, rhs, fmt="corner"):
    """d(sum(h * box_iou(lhs, rhs)))/d(lhs), d(rhs), by the chain rule through the corners
    (the intersection's edge on a tie taken from rhs; NaN through a pair with a NaN box)."""
    a, b = _box_corners(lhs.reshape(-1, 4), fmt), _box_corners(rhs.reshape(-1, 4), fmt)
    hh = h.reshape(len(a), len(b))
    ga, gb = np.zeros_like(a), np.zeros_like(b)
    for i in range(len(a)):
        for j in range(len(b)):
            p, q = a[i], b[j]
            if np.isnan(p).any() or np.isnan(q).any():
                ga[i] += np.nan
                gb[j] += np.nan
                continue
            left, top = p[0] > q[0], p[1] > q[1]  # lhs bounds the intersection there
            right, bottom = p[2] < q[2], p[3] < q[3]
            wx = (p[2] if right else q[2]) - (p[0] if left else q[0])
            wy = (p[3] if bottom else q[3]) - (p[1] if top else q[1])
            if wx <= 0 or wy <= 0:  # no overlap: a derivative of 0 (times the head: NaN stays NaN)
                ga[i] += 0.0 * hh[i, j]
                gb[j] += 0.0 * hh[i, j]
                continue
            inter = wx * wy
            union = (p[2] - p[0]) * (p[3] - p[1]) + (q[2] - q[0]) * (q[3] - q[1]) - inter
            c_i, c_a = (union + inter) / union ** 2, inter / union ** 2
            for box, g, mine in ((p, ga[i], (left, top, right, bottom)), (q, gb[j], (not left, not top, not right,
                                                                                       not bottom))):
                width, height = box[2] - box[0], box[3] - box[1]
                d_inter = np.array([-wy * mine[0], -wx * mine[1], wy * mine[2], wx * mine[3]])
                d_area = np.array([-height, -width, height, width])
                g += hh[i, j] * (c_i * d_inter - c_a * d_area)
    if fmt == "center":
        chain = lambda g: np.stack([g[:, 0] + g[:, 2], g[:, 1] + g[:, 3], (g[:, 2] - g[:, 0]) / 2,  # noqa: E731
                                    (g[:, 3] - g[:, 1]) / 2], axis=1)
        ga, gb = chain(ga), chain(gb)
    return ga.reshape(lhs.shape), gb.reshape(rhs.shape)


def ravel_multi_index(coords, shape):
    """Row-major flat indices of the coordinates along coords' first axis; NaN where one is
    not a whole number inside its axis."""
    with np.errstate(invalid="ignore"):
        inside = np.all([(c == np.floor(c)) & (c >= 0) & (c < n) for c, n in zip(coords, shape)], axis=0)
        flat = np.ravel_multi_index(tuple(np.where(inside, c, 0).astype(np.int64) for c in coords), shape)
    return np.where(inside, flat, np.nan).astype(np.float64)


def unravel_index(flat, shape):
    """The coordinates (len(shape), ...) of row-major flat indices; NaN where one is not a
    whole number inside the shape."""
    with np.errstate(invalid="ignore"):
        inside = (flat == np.floor(flat)) & (flat >= 0) & (flat < np.prod(shape))
        coords = np.unravel_index(np.where(inside, flat, 0).astype(np.int64), shape)
    return np.where(inside, np.stack(coords), np.nan).astype(np.float64)


def khatri_rao(*factors, columns=None):
    """Column c: the Kronecker product of the factors' columns c (rows row-major over them);
    of no factors, one row of ones."""
    product = np.ones((1, factors[0].shape[1] if factors else columns))
    for f in factors:
        product = (product[:, None, :] * f[None, :, :]).reshape(-1, f.shape[1])
    return product


def khatri_rao_grads(h, *factors):
    """Each factor's gradient: the head summed against the products of the other factors."""
    grads = []
    for k, f in enumerate(factors):
        left, right = khatri_rao(*factors[:k], columns=f.shape[1]), khatri_rao(*factors[k + 1:], columns=f.shape[1])
        head = h.reshape(left.shape[0], f.shape[0], right.shape[0], f.shape[1])
        grads.append(np.einsum("pmqn,pn,qn->mn", head, left, right))
    return grads


def _deconv_taps(x_shape, w_shape, stride, dilate):
    """For each kernel tap: the tap and the strided slices of the uncropped output that the
    data's positions reach through it (position i lands on i*stride + tap*dilate)."""
    for tap in np.ndindex(*w_shape[2:]):
        yield tap, (slice(None), slice(None)) + tuple(
            slice(t * d, t * d + s * (n - 1) + 1, s) for t, d, s, n in zip(tap, dilate, stride, x_shape[2:]))


def _deconv_extent(x_shape, w_shape, stride, dilate, pad, adj):
    """(the uncropped output's length, made long enough for the adj past it; the cropped
    output's length) per axis."""
    full = [s * (n - 1) + d * (k - 1) + 1 for n, k, s, d in zip(x_shape[2:], w_shape[2:], stride, dilate)]
    out = [f - 2 * p + a for f, p, a in zip(full, pad, adj)]
    return [max(f, p + o) for f, p, o in zip(full, pad, out)], out


def deconvolution(x, w, b=None, stride=None, dilate=None, pad=None, adj=None, groups=1):
    """Transposed convolution of x (N, C, *spatial) with w (C, F / groups, *kernel): every
    input position scattered through every tap into the uncropped output, then ``pad``
    cropped from both ends (and ``adj`` zeros kept past the end)."""
    spatial = x.ndim - 2
    stride, dilate = stride or (1,) * spatial, dilate or (1,) * spatial
    pad, adj = pad or (0,) * spatial, adj or (0,) * spatial
    extent, out = _deconv_extent(x.shape, w.shape, stride, dilate, pad, adj)
    per_group, filters = x.shape[1] // groups, w.shape[1]
    full = np.zeros((x.shape[0], filters * groups, *extent))
    for tap, window in _deconv_taps(x.shape, w.shape, stride, dilate):
        for g in range(groups):
            channels, outputs = slice(g * per_group, (g + 1) * per_group), slice(g * filters, (g + 1) * filters)
            full[window][:, outputs] += np.einsum("nc...,cf->nf...", x[:, channels], w[(channels, slice(None)) + tap])
    y = full[(slice(None), slice(None)) + tuple(slice(p, p + o) for p, o in zip(pad, out))]
    if b is not None:
        y = y + b.reshape((1, -1) + (1,) * spatial)
    return y


def deconvolution_grads(dy, x, w, stride=None, dilate=None, pad=None, adj=None, groups=1):
    """(dx, dw, db) of ``deconvolution``: dy placed in the uncropped output (zeros where
    cropped), each tap's products differentiated."""
    spatial = x.ndim - 2
    stride, dilate = stride or (1,) * spatial, dilate or (1,) * spatial
    pad, adj = pad or (0,) * spatial, adj or (0,) * spatial
    extent, out = _deconv_extent(x.shape, w.shape, stride, dilate, pad, adj)
    full = np.zeros(dy.shape[:2] + tuple(extent))
    full[(slice(None), slice(None)) + tuple(slice(p, p + o) for p, o in zip(pad, out))] = dy
    dx, dw = np.zeros_like(x), np.zeros_like(w)
    per_group, filters = x.shape[1] // groups, w.shape[1]
    for tap, window in _deconv_taps(x.shape, w.shape, stride, dilate):
        for g in range(groups):
            channels, outputs = slice(g * per_group, (g + 1) * per_group), slice(g * filters, (g + 1) * filters)
            reached = full[window][:, outputs]
            dx[:, channels] += np.einsum("nf...,cf->nc...", reached, w[(channels, slice(None)) + tap])
            inputs = x[:, channels].reshape(x.shape[0], per_group, -1)
            dw[(channels, slice(None)) + tap] += np.einsum("ncs,nfs->cf", inputs,
                                                           reached.reshape(*reached.shape[:2], -1))
    return dx, dw, dy.sum(axis=(0, *range(2, dy.ndim)))


def _pool_windows(shape, kernel, stride, pad, convention):
    """Each output position, its window's slices of the data (clipped to it) and the size
    average pooling divides by with and without the padding (MXNet's rule)."""
    spans = []
    for n, k, s, p in zip(shape[2:], kernel, stride, pad):
        extent = n + 2 * p - k
        outputs = (extent // s if convention == "valid" else -(-extent // s)) + 1
        spans.append([(o * s - p, min(o * s - p + k, n + p)) for o in range(outputs)])
    for position in np.ndindex(*[len(s) for s in spans]):
        bounds = [span[o] for span, o in zip(spans, position)]
        clipped = [(max(lo, 0), min(hi, n)) for (lo, hi), n in zip(bounds, shape[2:])]
        with_pad = int(np.prod([hi - lo for lo, hi in bounds]))
        inside = int(np.prod([hi - lo for lo, hi in clipped]))
        yield position, tuple(slice(lo, hi) for lo, hi in clipped), with_pad, inside


def take(a, indices, axis, mode):
    """numpy's take of whole indices, clipped or wrapped (``mode``)."""
    return np.take(a, indices.astype(np.int64), axis=axis, mode="clip" if mode == "clip" else "wrap")


def take_grad(dy, a_shape, indices, axis, mode):
    """Each slice of a: the sum of the output gradient's slices at the positions whose
    (clipped or wrapped) index is that slice's."""
    length = a_shape[axis]
    where = indices.astype(np.int64).ravel()
    where = np.clip(where, 0, length - 1) if mode == "clip" else np.mod(where, length)
    moved = np.moveaxis(dy, list(range(axis, axis + indices.ndim)), list(range(indices.ndim)))
    moved = moved.reshape((indices.size, *moved.shape[indices.ndim:]))
    grad = np.zeros((length, *moved.shape[1:]))
    np.add.at(grad, where, moved)
    return np.moveaxis(grad, 0, axis)


def _addressed(indices, shape):
    """The tuple of index arrays numpy's fancy indexing takes for gather_nd's coordinates
    (negative ones count from the end, as numpy's do)."""
    return tuple(indices.astype(np.int64)[m] for m in range(indices.shape[0]))


def gather_nd(data, indices):
    """MXNet's gather_nd: out[y, ...] = data[indices[0, y], ..., indices[M-1, y], ...]."""
    return data[_addressed(indices, data.shape)]


def gather_nd_grad(dy, data_shape, indices):
    """Each addressed slice of data: the sum of the output gradients of its positions."""
    grad = np.zeros(data_shape)
    np.add.at(grad, _addressed(indices, data_shape), dy)
    return grad


def scatter_nd(data, indices, shape):
    """0 but at the addressed slices, which hold the sum of their positions' data."""
    return gather_nd_grad(data, shape, indices)


def product_of_others(x, axes, skip_nan=False):
    """Each element's product of the other elements of its reduction over ``axes`` (prod's
    gradient, exact at zeros): NaN throughout a group holding NaN, or with ``skip_nan``
    (nanprod's) NaN counted as 1 and its own gradient 0."""
    kept = [d for d in range(x.ndim) if d not in axes]
    moved = np.moveaxis(x, list(axes), list(range(x.ndim - len(axes), x.ndim)))
    rows = moved.reshape(-1, int(np.prod([x.shape[d] for d in axes])))
    out = np.empty_like(rows)
    for r, row in enumerate(rows):
        values = np.where(np.isnan(row), 1.0, row) if skip_nan else row
        for i in range(len(row)):
            out[r, i] = np.prod(np.delete(values, i))
        if skip_nan:
            out[r] = np.where(np.isnan(row), 0.0, out[r])
        elif np.isnan(row).any():
            out[r] = np.nan
    out = out.reshape(moved.shape)
    return np.moveaxis(out, list(range(x.ndim - len(axes), x.ndim)), list(axes)) if kept or axes else out


def sort_order(x, axis, ascending):
    """The indices that sort ``x`` along ``axis`` (None: flattened), stably (ties in index
    order), NaN larger than every number: last ascending, first descending."""
    x = x.reshape(-1) if axis is None else np.moveaxis(x, axis, -1)
    nan = np.isnan(x)
    value = np.where(nan, 0.0, x if ascending else -x)
    order = np.lexsort((value, nan if ascending else ~nan), axis=-1)
    return order if axis is None else np.moveaxis(order, -1, axis)


def topk(x, axis, k, ascending):
    """(values, indices) of the ``k`` first elements of each row in that order (k < 1: all)."""
    data = x.reshape(-1) if axis is None else x
    axis = 0 if axis is None else axis
    k = data.shape[axis] if k < 1 else k
    order = np.take(sort_order(data, axis, ascending), np.arange(k), axis=axis)
    return np.take_along_axis(data, order, axis), order.astype(np.float64)


def topk_mask(x, axis, k, ascending):
    """1 where an element is among its row's ``k`` first, else 0, in x's shape."""
    data = x.reshape(-1) if axis is None else x
    mask = np.zeros(data.shape)
    np.put_along_axis(mask, topk(data, axis, k, ascending)[1].astype(np.int64), 1.0, 0 if axis is None else axis)
    return mask.reshape(x.shape)


def topk_grad(dy, x, axis, k, ascending):
    """The values' gradient: each kept element gets its output position's, the rest 0."""
    data = x.reshape(-1) if axis is None else x
    grad = np.zeros(data.shape)
    np.put_along_axis(grad, topk(data, axis, k, ascending)[1].astype(np.int64), dy.reshape(-1) if axis is None
                      else dy, 0 if axis is None else axis)
    return grad.reshape(x.shape)


def _lrn_scale(x, nsize, alpha, knorm):
    """knorm + alpha / nsize * the sum of squares over each channel's window (axis 1)."""
    half, channels = nsize // 2, x.shape[1]
    sums = np.stack([(x[:, max(0, c - half):c + half + 1] ** 2).sum(1) for c in range(channels)], 1)
    return knorm + alpha / nsize * sums


def lrn(x, nsize, alpha, beta, knorm):
    """Local response normalization across the channels of axis 1."""
    return x * _lrn_scale(x, nsize, alpha, knorm) ** -beta


def lrn_grad(dy, x, nsize, alpha, beta, knorm):
    """d(sum(dy * lrn(x)))/dx: the element's own scale, and its share of each window it is in."""
    s, half = _lrn_scale(x, nsize, alpha, knorm), nsize // 2
    terms = dy * x * s ** (-beta - 1)
    sums = np.stack([terms[:, max(0, c - half):c + half + 1].sum(1) for c in range(x.shape[1])], 1)
    return dy * s ** -beta - 2 * alpha * beta / nsize * x * sums


def pad_sources(length, before, after, mode):
    """Where each output position of an axis of ``length`` padded by (before, after) in
    ``mode`` copies from: numpy's pad of the positions themselves (-1: the constant)."""
    if mode == "constant":
        return np.pad(np.arange(length), (before, after), constant_values=-1)
    return np.pad(np.arange(length), (before, after), mode=mode)


def pad(x, pads, mode, value=0.0):
    """x padded by ``pads`` (a (before, after) pair per axis): numpy's pad."""
    return np.pad(x, pads, mode=mode, **({"constant_values": value} if mode == "constant" else {}))


def pad_grad(dy, shape, pads, mode):
    """Each input element's gradient: the sum of the output gradient over the output
    elements that copied it, one axis at a time."""
    dx = dy
    for axis, (n, (before, after)) in enumerate(zip(shape, pads)):
        sources = pad_sources(n, before, after, mode)
        moved = np.moveaxis(dx, axis, 0)
        folded = np.zeros((n, *moved.shape[1:]))
        kept = sources >= 0
        np.add.at(folded, sources[kept], moved[kept])
        dx = np.moveaxis(folded, 0, axis)
    return dx


def upsample_nearest(x, height, width):
    """x (N, C, H, W) with each element copied into its (height / H) x (width / W) block."""
    return x.repeat(height // x.shape[2], 2).repeat(width // x.shape[3], 3)


def upsample_nearest_grad(dy, shape):
    """Each input element's gradient: the sum of its block of dy."""
    n, c, h, w = shape
    return dy.reshape(n, c, h, dy.shape[2] // h, w, dy.shape[3] // w).sum((3, 5))


def pooling(x, kind, kernel, stride=None, pad=None, convention="valid", count_include_pad=True, p_value=None):
    """MXNet's Pooling, window by window; max takes the first NaN, else the first maximum."""
    spatial = x.ndim - 2
    stride, pad = stride or (1,) * spatial, pad or (0,) * spatial
    windows = list(_pool_windows(x.shape, kernel, stride, pad, convention))
    out = np.zeros(x.shape[:2] + tuple(n + 1 for n in max(w[0] for w in windows)))
    for position, window, with_pad, inside in windows:
        part = x[(slice(None), slice(None)) + window].reshape(x.shape[0], x.shape[1], -1)
        if kind == "max":
            value = np.take_along_axis(part, np.argmax(part, axis=-1)[..., None], -1)[..., 0]
        elif kind == "avg":
            value = part.sum(-1) / (with_pad if count_include_pad else inside)
        elif kind == "sum":
            value = part.sum(-1)
        else:
            total = (part ** p_value).sum(-1)
            value = np.cbrt(total) if p_value == 3 else total ** (1.0 / p_value)
        out[(slice(None), slice(None)) + position] = value
    return out


def pooling_grad(dy, x, kind, kernel, stride=None, pad=None, convention="valid", count_include_pad=True,
                 p_value=None):
    spatial = x.ndim - 2
    stride, pad = stride or (1,) * spatial, pad or (0,) * spatial
    y = pooling(x, kind, kernel, stride, pad, convention, count_include_pad, p_value)
    dx = np.zeros_like(x)
    for position, window, with_pad, inside in _pool_windows(x.shape, kernel, stride, pad, convention):
        where = (slice(None), slice(None)) + window
        part = x[where]
        g = dy[(slice(None), slice(None)) + position].reshape(x.shape[:2] + (1,) * spatial)
        if kind == "max":
            flat = part.reshape(x.shape[0], x.shape[1], -1)
            chosen = np.zeros_like(flat)
            np.put_along_axis(chosen, np.argmax(flat, axis=-1)[..., None], 1.0, -1)
            dx[where] += np.where(chosen.reshape(part.shape) > 0, g, 0.0)  # a NaN head only where it goes
        elif kind == "avg":
            dx[where] += g / (with_pad if count_include_pad else inside)
        elif kind == "sum" or p_value == 1:
            dx[where] += g
        else:
            out = y[(slice(None), slice(None)) + position].reshape(g.shape)
            dx[where] += g * (part / out) ** (p_value - 1)
    return dx


# ------------------------------------------------------------------- linalg


def _matrix_transpose(t):
    return np.swapaxes(t, -1, -2)


def linalg_gemm(a, b, c, transpose_a, transpose_b, alpha, beta, axis=-2):
    """alpha op(A) op(B) (+ beta C), the matrices' rows on ``axis``, their columns last."""
    a, b = np.moveaxis(a, axis, -2), np.moveaxis(b, axis, -2)
    out = alpha * ((_matrix_transpose(a) if transpose_a else a) @ (_matrix_transpose(b) if transpose_b else b))
    if c is not None:
        out = out + beta * np.moveaxis(c, axis, -2)
    return np.moveaxis(out, -2, axis)


def linalg_gemm_grads(h, a, b, transpose_a, transpose_b, alpha, beta, axis=-2):
    """(A', B', C') of linalg_gemm under the head gradient h."""
    a, b, h = (np.moveaxis(t, axis, -2) for t in (a, b, h))
    a_op = _matrix_transpose(a) if transpose_a else a
    b_op = _matrix_transpose(b) if transpose_b else b
    ga, gb = alpha * h @ _matrix_transpose(b_op), alpha * _matrix_transpose(a_op) @ h
    ga, gb = (_matrix_transpose(ga) if transpose_a else ga), (_matrix_transpose(gb) if transpose_b else gb)
    return tuple(np.moveaxis(g, -2, axis) for g in (ga, gb, beta * h))


def linalg_syrk(a, transpose, alpha):
    return alpha * (_matrix_transpose(a) @ a if transpose else a @ _matrix_transpose(a))


def linalg_syrk_grad(h, a, transpose, alpha):
    """d(sum(h * alpha A A^T))/dA = alpha (h + h^T) A; for A^T A, alpha A (h + h^T)."""
    both = h + _matrix_transpose(h)
    return alpha * (a @ both if transpose else both @ a)


def triangle_entries(n, offset, lower):
    """(rows, columns) of MXNet's packed triangle of n x n matrices: the entries on or below
    diagonal ``offset`` (< 0, or 0 with ``lower``) row by row, else those on or above it
    column by column."""
    if offset < 0 or (offset == 0 and lower):
        pairs = [(i, j) for i in range(n) for j in range(n) if i - j >= -offset]
    else:
        pairs = [(i, j) for j in range(n) for i in range(n) if j - i >= offset]
    rows, columns = zip(*pairs)
    return np.array(rows), np.array(columns)


def extract_triangle(a, offset, lower):
    rows, columns = triangle_entries(a.shape[-1], offset, lower)
    return a[..., rows, columns]


def make_triangle(v, offset, lower):
    """The square matrices whose packed triangle is v (zero elsewhere)."""
    m = int((np.sqrt(8 * v.shape[-1] + 1) - 1) / 2)
    n = m + abs(offset)
    out = np.zeros(v.shape[:-1] + (n, n))
    rows, columns = triangle_entries(n, offset, lower)
    out[..., rows, columns] = v
    return out


def extract_diagonal(a, offset):
    return np.diagonal(a, offset, -2, -1).copy()


def make_diagonal(v, offset):
    n = v.shape[-1] + abs(offset)
    out = np.zeros(v.shape[:-1] + (n, n))
    rows = np.arange(v.shape[-1]) + max(-offset, 0)
    out[..., rows, rows + offset] = v
    return out


def sumlogdiag(a):
    out = np.log(np.diagonal(a, 0, -2, -1)).sum(-1)
    return out.reshape(1) if a.ndim == 2 else out


def sumlogdiag_grad(h, a):
    """h / A[i, i] on the diagonal; exactly 0 off it (no entry there is read: a NaN on the
    diagonal stays there)."""
    n = a.shape[-1]
    on_diagonal = h.reshape(a.shape[:-2])[..., None, None] / np.diagonal(a, 0, -2, -1)[..., None, :]
    return np.where(np.eye(n, dtype=bool), on_diagonal, 0.0)


def _triangle_of(a, lower):
    return np.tril(a) if lower else np.triu(a)


def _substitute(m, b, lower):
    """x with m x = b for triangular m, by substitution (a row of x depends on the rows of
    b and m it reads, so a NaN reaches only those rows, as the math says)."""
    n = m.shape[-1]
    x = np.zeros(np.broadcast_shapes(m.shape[:-2], b.shape[:-2]) + b.shape[-2:])
    for i in (range(n) if lower else range(n - 1, -1, -1)):
        done = slice(0, i) if lower else slice(i + 1, n)
        solved = np.einsum("...k,...kc->...c", m[..., i, done], x[..., done, :])
        x[..., i, :] = (b[..., i, :] - solved) / m[..., i, i, None]
    return x


def _solve_left(m, b, lower):
    return _substitute(m, b, lower)


def _solve_right(m, b, lower):
    """x with x m = b: m^T x^T = b^T, m^T upper where m is lower."""
    return _matrix_transpose(_substitute(_matrix_transpose(m), _matrix_transpose(b), not lower))


def linalg_trmm(a, b, transpose, rightside, lower, alpha):
    m = _triangle_of(a, lower)
    m = _matrix_transpose(m) if transpose else m
    return alpha * (b @ m if rightside else m @ b)


def linalg_trmm_grads(h, a, b, transpose, rightside, lower, alpha):
    m = _triangle_of(a, lower)
    m = _matrix_transpose(m) if transpose else m
    if rightside:
        gb, gm = alpha * h @ _matrix_transpose(m), alpha * _matrix_transpose(b) @ h
    else:
        gb, gm = alpha * _matrix_transpose(m) @ h, alpha * h @ _matrix_transpose(b)
    return _triangle_of(_matrix_transpose(gm) if transpose else gm, lower), gb


def linalg_trsm(a, b, transpose, rightside, lower, alpha):
    m = _triangle_of(a, lower)
    m = _matrix_transpose(m) if transpose else m
    m_lower = lower != transpose
    return alpha * (_solve_right(m, b, m_lower) if rightside else _solve_left(m, b, m_lower))


def linalg_trsm_grads(h, a, b, transpose, rightside, lower, alpha):
    """M X = alpha B: B' = alpha M^-T G, M' = -M^-T G X^T; X M = alpha B: B' = alpha G M^-T,
    M' = -X^T G M^-T."""
    m = _triangle_of(a, lower)
    m = _matrix_transpose(m) if transpose else m
    x = linalg_trsm(a, b, transpose, rightside, lower, alpha)
    m_lower = lower != transpose  # M^T is triangular the other way
    if rightside:
        y = _solve_right(_matrix_transpose(m), h, not m_lower)
        gm = -_matrix_transpose(x) @ y
    else:
        y = _solve_left(_matrix_transpose(m), h, not m_lower)
        gm = -y @ _matrix_transpose(x)
    return _triangle_of(_matrix_transpose(gm) if transpose else gm, lower), alpha * y


def _symmetric_from(a, lower):
    """The symmetric matrix of a's lower (or upper) triangle."""
    t = _triangle_of(a, lower)
    return t + _matrix_transpose(t) - np.eye(a.shape[-1]) * t


def linalg_potrf(a, lower=True):
    factor = np.linalg.cholesky(_symmetric_from(a, lower))
    return factor if lower else _matrix_transpose(factor)


def linalg_potrf_grad(h, a, lower=True):
    """MXNet's symmetric gradient: 0.5 L^-T sym(L^T L') L^-1, sym(S) the symmetric matrix of
    S's lower triangle (for an upper factor, of the transposed problem)."""
    factor = linalg_potrf(a, True) if lower else _matrix_transpose(linalg_potrf(a, False))
    head = h if lower else _matrix_transpose(h)
    s = _symmetric_from(_matrix_transpose(factor) @ head, True)
    inverse = np.linalg.inv(factor)
    grad = 0.5 * _matrix_transpose(inverse) @ s @ inverse
    return grad if lower else _matrix_transpose(grad)


def linalg_potri(a, lower=True):
    t = _triangle_of(a, lower)
    return np.linalg.inv(t @ _matrix_transpose(t) if lower else _matrix_transpose(t) @ t)


def linalg_potri_grad(h, a, lower=True):
    """d/dL of sum(h (L L^T)^-1) = -P (h + h^T) L^-T, on L's triangle (U = L^T: transposed)."""
    factor = _triangle_of(a, lower) if lower else _matrix_transpose(_triangle_of(a, lower))
    p = linalg_potri(a, lower)
    grad = np.tril(-p @ (h + _matrix_transpose(h)) @ _matrix_transpose(np.linalg.inv(factor)))
    return grad if lower else _matrix_transpose(grad)


def linalg_inverse(a):
    """A^-1; every entry NaN for a matrix holding a NaN (each depends on every entry of A),
    where LAPACK's answer keeps some finite."""
    return np.where(np.isnan(a).any((-1, -2), keepdims=True), np.nan, np.linalg.inv(np.nan_to_num(a)))


def linalg_inverse_grad(h, a):
    """d/dA of sum(h A^-1) = -A^-T h A^-T."""
    inverse_t = _matrix_transpose(linalg_inverse(a))
    return -inverse_t @ h @ inverse_t


def linalg_det(a):
    out = np.linalg.det(a)
    return out.reshape(1) if a.ndim == 2 else out


def linalg_det_grad(h, a):
    """d det(A)/dA = det(A) A^-T (the adjugate's transpose, for an invertible A)."""
    scale = (h.reshape(a.shape[:-2]) * np.linalg.det(a))[..., None, None]
    return scale * _matrix_transpose(linalg_inverse(a))


def linalg_slogdet(a):
    sign, logabs = np.linalg.slogdet(a)
    sign = np.where(np.isnan(a).any((-1, -2)), np.nan, sign)  # the sign of an unknown determinant
    return (sign.reshape(1), logabs.reshape(1)) if a.ndim == 2 else (sign, logabs)


def linalg_slogdet_grad(h, a):
    """d log |det A| / dA = A^-T (the sign has no gradient)."""
    return h.reshape(a.shape[:-2])[..., None, None] * _matrix_transpose(linalg_inverse(a))


def linalg_syevd(a):
    """(U, L): the eigenvectors of the symmetric matrix of a's lower triangle as rows, each
    signed so that its entry of largest magnitude (the first, on a tie) is positive, and the
    eigenvalues ascending."""
    symmetric = _symmetric_from(a, True)
    unknown = np.isnan(symmetric).any((-1, -2))  # NaN in: every eigenvalue and vector NaN
    values, vectors = np.linalg.eigh(np.where(unknown[..., None, None], 0.0, symmetric))
    u = _matrix_transpose(vectors)
    largest = np.take_along_axis(u, np.abs(u).argmax(-1)[..., None], -1)
    u = np.where(largest < 0, -u, u)
    return np.where(unknown[..., None, None], np.nan, u), np.where(unknown[..., None], np.nan, values)


def linalg_syevd_grad(head_u, head_l, a):
    """MXNet's: U^T Y U, Y[i, i] = L'[i], Y[i, j] = Y[j, i] = (X[i, j] - X[j, i]) /
    (2 (L[i] - L[j])) for i > j, X = U' U^T."""
    u, values = linalg_syevd(a)
    x = head_u @ _matrix_transpose(u)
    gap = values[..., :, None] - values[..., None, :]
    off = (x - _matrix_transpose(x)) / (2.0 * np.where(gap == 0, 1.0, gap))
    lower = np.tril(off, -1)
    y = lower + _matrix_transpose(lower) + np.eye(a.shape[-1]) * head_l[..., None, :]
    return _matrix_transpose(u) @ y @ u


def linalg_gelqf(a):
    """(Q, L) with A = L Q, Q's rows orthonormal, L lower triangular, signed as LAPACK's
    Householder reflections sign them (numpy's QR of A^T is the same reflections)."""
    q, r = np.linalg.qr(_matrix_transpose(a))
    return _matrix_transpose(q), _matrix_transpose(r)


def linalg_gelqf_grad(head_q, head_l, a):
    """MXNet's: L^-T (Q' + sym(L^T L' - Q' Q^T) Q), sym the symmetric matrix of the lower
    triangle."""
    q, lower = linalg_gelqf(a)
    m = _matrix_transpose(lower) @ head_l - head_q @ _matrix_transpose(q)
    return _solve_left(_matrix_transpose(lower), head_q + _symmetric_from(m, True) @ q, False)  # by substitution


# ------------------------------------------------------------------- the fused RNN

RNN_GATES = {"rnn_relu": 1, "rnn_tanh": 1, "lstm": 4, "gru": 3}


def rnn_parameters(flat, mode, layers, directions, inputs, hidden, projection=None):
    """The flat parameter vector cut as MXNet (and cuDNN) lay it out: for each layer and
    direction the input weights (G H, width) then the hidden weights (G H, H); after all of
    them, for each layer and direction, the input bias then the hidden bias. A dict keyed by
    (layer, direction, "wx" / "wh" / "bx" / "bh"). With a ``projection`` of P units (MXNet's
    CPU LSTM with projection_size, and Gluon's): the hidden weights are (G H, P), each
    layer's and direction's weights end with the projection's "wr" (P, H), and a layer
    above the first reads directions x P features."""
    rows, state = RNN_GATES[mode] * hidden, projection or hidden
    pieces, at = {}, 0
    for kinds in (("wx", "wh", "wr") if projection else ("wx", "wh"), ("bx", "bh")):
        for layer in range(layers):
            width = inputs if layer == 0 else directions * state
            for direction in range(directions):
                for kind in kinds:
                    shape = {"wx": (rows, width), "wh": (rows, state), "wr": (state, hidden)}.get(kind, (rows,))
                    size = int(np.prod(shape))
                    pieces[layer, direction, kind] = flat[at:at + size].reshape(shape)
                    at += size
    assert at == flat.size, (at, flat.size)
    return pieces


def rnn_parameter_count(mode, layers, directions, inputs, hidden, projection=None):
    """MXNet's GetRnnParamSize, written out."""
    rows, state = RNN_GATES[mode] * hidden, projection or hidden
    first = rows * (inputs + state + 2)
    count = directions * (first + (layers - 1) * rows * (directions * state + state + 2))
    return count + (layers * directions * projection * hidden if projection else 0)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _rnn_step(mode, x, h, c, p, clip=None):
    """One step: (h', c', what the step's gradient needs); ``clip`` (low, high): lstm's c'
    clipped (cuDNN's cell clipping; NaN stays NaN)."""
    gx, gh = x @ p["wx"].T + p["bx"], h @ p["wh"].T + p["bh"]
    if mode == "lstm":
        i, f, g, o = np.split(gx + gh, 4, axis=-1)
        i, f, g, o = _sigmoid(i), _sigmoid(f), np.tanh(g), _sigmoid(o)
        unclipped = f * c + i * g
        c2 = unclipped
        if clip is not None:
            c2 = np.where(unclipped < clip[0], clip[0], np.where(unclipped > clip[1], clip[1], unclipped))
        # a NaN was not clipped: it takes the gradient
        inside = np.ones(c2.shape, bool) if clip is None else ~((unclipped < clip[0]) | (unclipped > clip[1]))
        return o * np.tanh(c2), c2, (i, f, g, o, c, c2, inside)
    if mode == "gru":
        (xr, xz, xn), (hr, hz, hn) = np.split(gx, 3, axis=-1), np.split(gh, 3, axis=-1)
        r, z = _sigmoid(xr + hr), _sigmoid(xz + hz)
        n = np.tanh(xn + r * hn)
        return (1.0 - z) * n + z * h, None, (r, z, n, hn, h)
    h2 = np.maximum(gx + gh, 0.0) if mode == "rnn_relu" else np.tanh(gx + gh)
    return h2, None, (h2,)


def _rnn_step_grad(mode, dh, dc, kept):
    """(gradient of the input projection gx, of the hidden projection gh, the direct part
    of h's gradient, c's gradient) of one step from h' and c' gradients."""
    if mode == "lstm":
        i, f, g, o, c, c2, inside = kept
        t = np.tanh(c2)
        dc2 = np.where(inside, dc + dh * o * (1.0 - t * t), 0.0)  # (clamp's: 0 where the clip held c')
        pre = np.concatenate([dc2 * g * i * (1 - i), dc2 * c * f * (1 - f), dc2 * i * (1 - g * g),
                              dh * t * o * (1 - o)], axis=-1)
        return pre, pre, 0.0, dc2 * f
    if mode == "gru":
        r, z, n, hn, h = kept
        dn = dh * (1.0 - z) * (1.0 - n * n)
        dr = dn * hn * r * (1.0 - r)
        dz = dh * (h - n) * z * (1.0 - z)
        return (np.concatenate([dr, dz, dn], axis=-1), np.concatenate([dr, dz, dn * r], axis=-1), dh * z, None)
    (h2,) = kept
    # relu's derivative at a NaN h' is NaN (the Activation operator's rule), not h' > 0's False
    pre = dh * (np.where(np.isnan(h2), np.nan, h2 > 0) if mode == "rnn_relu" else 1.0 - h2 * h2)
    return pre, pre, 0.0, None


def _rnn_live(lengths, steps, batch):
    """(T, N, 1) booleans: does each sequence reach each step (every one without lengths)."""
    if lengths is None:
        return np.ones((steps, batch, 1), bool)
    return (np.arange(steps)[:, None] < np.asarray(lengths)[None, :])[..., None]


def rnn(data, flat, state, state_cell, mode, layers, bidirectional, drops=None, lengths=None, projection=None,
        clip=None):
    """MXNet's RNN operator: (out, final hidden states, final cell states or None, and what
    the gradient needs), data (T, N, I), states (L D, N, H); ``drops[l]``: the factor (a
    dropout mask over 1 - p) on layer l's output as the layer above reads it; ``lengths``
    (N,) whole numbers in [0, T]: sequence n is its first lengths[n] steps (the reverse
    direction starts at its last), its output 0 past them (cuDNN's padded sequences);
    ``projection``: an lstm's h is h W_r^T (P units: the states (L D, N, P), the cell
    states' (L D, N, H)), which the output, the next step and the layer above read;
    ``clip`` (low, high): lstm's cell state clipped after each step."""
    directions = 1 + bidirectional
    hidden = state_cell.shape[-1] if state_cell is not None else state.shape[-1]
    params = rnn_parameters(flat, mode, layers, directions, data.shape[-1], hidden, projection)
    x, h_last, c_last, tape = data, np.empty_like(state), None if state_cell is None else np.empty_like(state_cell), []
    live = _rnn_live(lengths, *data.shape[:2])
    for layer in range(layers):
        outs = []
        for direction in range(directions):
            k = layer * directions + direction
            p = {kind: params[layer, direction, kind] for kind in ("wx", "wh", "wr", "bx", "bh") if projection
                 or kind != "wr"}
            h, c = state[k], None if state_cell is None else state_cell[k]
            steps = range(len(x))[::-1] if direction else range(len(x))
            out, kept = np.empty((len(x), *h.shape)), {}
            h_cell = np.zeros((len(h), hidden))  # h before its projection (what a finished row carries)
            for t in steps:
                h_before, c_before = h, c
                h, c, kept[t] = _rnn_step(mode, x[t], h, c, p, clip)
                if projection:  # kept: the step's and h before its projection
                    h_cell = np.where(live[t], h, h_cell)
                    kept[t], h = (kept[t], h_cell), h_cell @ p["wr"].T
                h = np.where(live[t], h, h_before)  # a sequence that has ended (or not begun) keeps its state
                c = None if c is None else np.where(live[t], c, c_before)
                out[t] = np.where(live[t], h, 0.0)
                kept[t] = (kept[t], h_before)
            h_last[k] = h
            if c_last is not None:
                c_last[k] = c
            outs.append(out)
            tape.append((layer, direction, x, p, kept, list(steps)))
        x = np.concatenate(outs, axis=-1)
        if drops is not None and layer < layers - 1:
            x = x * drops[layer]
    return x, h_last, c_last, tape


def rnn_grads(head_out, head_h, head_c, data, flat, state, state_cell, mode, layers, bidirectional, drops=None,
              lengths=None, projection=None, clip=None):
    """Gradients (data, flat parameters, state, state_cell or None) of sum(head * output)
    over the RNN's outputs: backpropagation through time, layer by layer from the top."""
    directions, width = 1 + bidirectional, state.shape[-1]
    hidden = state_cell.shape[-1] if state_cell is not None else width
    _, _, _, tape = rnn(data, flat, state, state_cell, mode, layers, bidirectional, drops, lengths, projection, clip)
    live = _rnn_live(lengths, *data.shape[:2])
    flat_grad = np.zeros_like(flat)
    # views into flat_grad
    grads = rnn_parameters(flat_grad, mode, layers, directions, data.shape[-1], hidden, projection)
    d_state = np.zeros_like(state)
    d_cell = None if state_cell is None else np.zeros_like(state_cell)
    d_out = head_out
    for layer in reversed(range(layers)):
        x_grad = None
        for direction in range(directions):
            _, _, x, p, kept, steps = tape[layer * directions + direction]
            k = layer * directions + direction
            dh, dc = head_h[k].copy(), None if head_c is None else head_c[k].copy()
            dx = np.zeros_like(x)
            for t in reversed(steps):
                (step_kept, h_before) = kept[t]
                dh_after, dc_after = dh, dc
                dh = dh + d_out[t][..., direction * width:(direction + 1) * width]
                if projection:  # h = h_cell W_r^T where the sequence reaches t: W_r's gradient, then h_cell's
                    step_kept, h_cell = step_kept
                    dh = np.where(live[t], dh, 0.0)
                    grads[layer, direction, "wr"] += dh.T @ h_cell
                    dh = dh @ p["wr"]
                dgx, dgh, dh_direct, dc = _rnn_step_grad(mode, dh, dc, step_kept)
                # where the sequence does not reach t the step carried the states: its
                # projections take nothing and the states' gradients pass through
                dgx, dgh = np.where(live[t], dgx, 0.0), np.where(live[t], dgh, 0.0)
                dc = None if dc is None else np.where(live[t], dc, dc_after)
                dx[t] = dgx @ p["wx"]
                grads[layer, direction, "wx"] += dgx.T @ x[t]
                grads[layer, direction, "bx"] += dgx.sum(0)
                grads[layer, direction, "wh"] += dgh.T @ h_before
                grads[layer, direction, "bh"] += dgh.sum(0)
                # (the product runs on every row, as the kernels' does: 0 times a NaN weight is NaN)
                dh = np.where(live[t], dh_direct, dh_after) + dgh @ p["wh"]
            d_state[k] = dh
            if d_cell is not None:
                d_cell[k] = dc
            x_grad = dx if x_grad is None else x_grad + dx
        d_out = x_grad * drops[layer - 1] if drops is not None and layer > 0 else x_grad
    return d_out, flat_grad, d_state, d_cell


# ------------------------------------------------------------------- CTC loss

def _logsumexp(values):
    values = np.asarray(values, dtype=np.float64)
    top = values.max() if values.size else -np.inf
    if np.isnan(values).any():
        return np.nan
    return top if top == -np.inf else top + np.log(np.exp(values - top).sum())


def ctc_loss(data, label, blank_first=True, data_lengths=None, label_lengths=None):
    """(losses (N,), occupancies (T, N, C)): -log p(label | data) by Graves' forward
    recursion over the blank-separated labels, the softmax over the last axis of data
    (T, N, C); a label ends at its length or at its first padding value (0 with the blank
    first, -1 with it last); an impossible alignment has loss inf. ``occupancies`` holds
    each step's posterior probability of each channel (the gradient is softmax - it)."""
    steps, batch, channels = data.shape
    blank = 0 if blank_first else channels - 1
    pad = 0 if blank_first else -1
    logp = data - np.log(np.exp(data - data.max(-1, keepdims=True)).sum(-1, keepdims=True)) - \
        data.max(-1, keepdims=True)
    losses, occupancy = np.empty(batch), np.zeros_like(data)
    for n in range(batch):
        row = list(label[n])
        length = int(label_lengths[n]) if label_lengths is not None else \
            next((i for i, v in enumerate(row) if v == pad), len(row))
        ext = [blank]
        for v in row[:length]:
            ext += [int(v), blank]
        t_n = int(data_lengths[n]) if data_lengths is not None else steps
        s_n = len(ext)
        alpha = np.full((t_n, s_n), -np.inf)
        beta = np.full((t_n, s_n), -np.inf)
        for t in range(t_n):
            for s in range(s_n):
                lp = logp[t, n, ext[s]]
                if t == 0:
                    alpha[t, s] = lp if s < 2 else -np.inf
                    continue
                terms = [alpha[t - 1, s]] + ([alpha[t - 1, s - 1]] if s >= 1 else [])
                if s >= 2 and ext[s] != blank and ext[s] != ext[s - 2]:
                    terms.append(alpha[t - 1, s - 2])
                alpha[t, s] = lp + _logsumexp(terms)
        for t in reversed(range(t_n)):
            for s in range(s_n):
                if t == t_n - 1:
                    beta[t, s] = 0.0 if s >= s_n - 2 else -np.inf
                    continue
                terms = [beta[t + 1, s] + logp[t + 1, n, ext[s]]]
                if s + 1 < s_n:
                    terms.append(beta[t + 1, s + 1] + logp[t + 1, n, ext[s + 1]])
                if s + 2 < s_n and ext[s + 2] != blank and ext[s + 2] != ext[s]:
                    terms.append(beta[t + 1, s + 2] + logp[t + 1, n, ext[s + 2]])
                beta[t, s] = _logsumexp(terms)
        log_p = _logsumexp(alpha[t_n - 1, max(s_n - 2, 0):])
        losses[n] = -log_p
        with np.errstate(invalid="ignore"):
            for t in range(t_n):
                for s in range(s_n):
                    occupancy[t, n, ext[s]] += np.exp(alpha[t, s] + beta[t, s] - log_p)
    return losses, occupancy


def ctc_loss_grad(head, data, label, blank_first=True, data_lengths=None, label_lengths=None):
    """d(sum(head * loss))/d data: (softmax - occupancy) times each sample's head, 0 past its
    length, NaN (the sample's every step inside its length) where its loss is not finite."""
    steps, batch, _ = data.shape
    losses, occupancy = ctc_loss(data, label, blank_first, data_lengths, label_lengths)
    grad = (softmax(data) - occupancy) * np.asarray(head).reshape(1, batch, 1)
    grad[:, ~np.isfinite(losses)] = np.nan  # no derivative where the loss is not finite
    if data_lengths is not None:
        grad[np.arange(steps)[:, None] >= np.asarray(data_lengths)[None, :]] = 0.0
    return grad


def _nms_box(row, coord, fmt):
    """(left, top, right, bottom, area) of one box, as MXNet's NMS computes them."""
    a, b, c, d = row[coord:coord + 4]
    left, top, right, bottom, width, height = ((a - c / 2, b - d / 2, a + c / 2, b + d / 2, c, d) if fmt == "center"
                                               else (a, b, c, d, c - a, d - b))
    return left, top, right, bottom, (0.0 if width < 0 or height < 0 else width * height)


def _reencoded(coords, in_format, out_format):
    a, b, c, d = coords
    if in_format == out_format:
        return np.array(coords)
    if out_format == "center":
        return np.array([(a + c) / 2, (b + d) / 2, c - a, d - b])
    return np.array([a - c / 2, b - d / 2, a + c / 2, b + d / 2])


def box_nms(data, overlap_thresh=0.5, valid_thresh=0.0, topk=-1, coord_start=2, score_index=1, id_index=-1,
            background_id=-1, force_suppress=False, in_format="corner", out_format="corner", grad_head=None):
    """Greedy non-maximum suppression of each image's rows of data (..., N, W): candidates
    (score above valid_thresh, id not background_id) by descending score, ties by row, the
    topk first; each survivor suppresses the later candidates it overlaps by an IoU above
    overlap_thresh (float32, MXNet's float parameter) of its own class (ids as ints) unless
    force_suppress. The survivors first, re-encoded to out_format, the rest -1; an image
    with a NaN score, coordinate or id all NaN. With grad_head: the data's gradient (each
    survivor's output row's, through the re-encoding; NaN for a NaN image)."""
    x = np.asarray(data, np.float64)
    images = x.reshape(-1, *x.shape[-2:])
    heads = None if grad_head is None else np.asarray(grad_head, np.float64).reshape(images.shape)
    out = np.full(images.shape, -1.0)
    grad = np.zeros(images.shape)
    overlap = float(np.float32(overlap_thresh))
    valid = float(np.float32(valid_thresh))
    boxes = images.shape[1]
    k = boxes if topk < 0 else min(topk, boxes)
    read = [score_index, *range(coord_start, coord_start + 4)] + ([id_index] if id_index >= 0 else [])
    for n, rows in enumerate(images):
        if np.isnan(rows[:, read]).any():
            out[n] = grad[n] = np.nan
            continue
        candidates = [i for i in range(boxes) if rows[i, score_index] > valid
                      and (id_index < 0 or rows[i, id_index] != background_id)]
        candidates = sorted(candidates, key=lambda i: -rows[i, score_index])[:k]  # stable: ties by row
        kept = []
        for i in candidates:
            l1, t1, r1, b1, a1 = _nms_box(rows[i], coord_start, in_format)
            suppressed = False
            for j in kept:
                if id_index >= 0 and not force_suppress and int(rows[j, id_index]) != int(rows[i, id_index]):
                    continue
                l0, t0, r0, b0, a0 = _nms_box(rows[j], coord_start, in_format)
                inter = max(min(r0, r1) - max(l0, l1), 0.0) * max(min(b0, b1) - max(t0, t1), 0.0)
                with np.errstate(invalid="ignore", divide="ignore"):
                    if np.float64(inter) / np.float64(a0 + a1 - inter) > overlap:
                        suppressed = True
                        break
            if not suppressed:
                kept.append(i)
        for p, i in enumerate(kept):
            out[n, p] = rows[i]
            out[n, p, coord_start:coord_start + 4] = _reencoded(rows[i, coord_start:coord_start + 4], in_format,
                                                                out_format)
            if heads is not None:
                g = heads[n, p].copy()
                h0, h1, h2, h3 = g[coord_start:coord_start + 4]
                if (in_format, out_format) == ("corner", "center"):
                    g[coord_start:coord_start + 4] = [h0 / 2 - h2, h1 / 2 - h3, h0 / 2 + h2, h1 / 2 + h3]
                elif (in_format, out_format) == ("center", "corner"):
                    g[coord_start:coord_start + 4] = [h0 + h2, h1 + h3, (h2 - h0) / 2, (h3 - h1) / 2]
                grad[n, i] = g
    return (grad if grad_head is not None else out).reshape(x.shape)


def _decode_parts(data, anchors, stds, clip, fmt):
    """(x', y', half width, half height, width clipped, height clipped, anchors (x, y, w, h),
    the scales, exp of the width and height offsets)."""
    t = np.asarray(data, np.float64)
    a = np.asarray(anchors, np.float64).reshape(1, -1, 4)
    if fmt == "corner":
        w, h = a[..., 2] - a[..., 0], a[..., 3] - a[..., 1]
        x, y = a[..., 0] + w * 0.5, a[..., 1] + h * 0.5
    else:
        x, y, w, h = np.moveaxis(a, -1, 0)
    s = [float(np.float32(v)) for v in stds]
    dw, dh = t[..., 2] * s[2], t[..., 3] * s[3]
    clip = float(np.float32(clip))
    with np.errstate(invalid="ignore"):
        cw = (dw >= clip) if clip > 0 else np.zeros(dw.shape, bool)
        ch = (dh >= clip) if clip > 0 else np.zeros(dh.shape, bool)
    dw, dh = np.where(cw, clip, dw), np.where(ch, clip, dh)
    ew, eh = np.exp(dw), np.exp(dh)
    return (t[..., 0] * s[0] * w + x, t[..., 1] * s[1] * h + y, ew * w * 0.5, eh * h * 0.5, cw, ch, (x, y, w, h), s,
            (ew, eh))


def box_decode(data, anchors, stds=(1.0, 1.0, 1.0, 1.0), clip=-1.0, fmt="center"):
    """The corner boxes of offsets data (B, N, 4) against anchors (1, N, 4): center
    x + t0 std0 w, width w exp(min(t2 std2, clip)) (clip when positive; NaN stays NaN)."""
    ox, oy, ow, oh, *_ = _decode_parts(data, anchors, stds, clip, fmt)
    return np.stack([ox - ow, oy - oh, ox + ow, oy + oh], axis=-1)


def box_decode_grads(g, data, anchors, stds=(1.0, 1.0, 1.0, 1.0), clip=-1.0, fmt="center"):
    """d(sum(g * box_decode))/d(data), d(anchors) (the anchors' summed over the batch; a
    clipped side none through its offset)."""
    t = np.asarray(data, np.float64)
    _, _, ow, oh, cw, ch, (x, y, w, h), s, (ew, eh) = _decode_parts(data, anchors, stds, clip, fmt)
    g = np.asarray(g, np.float64)
    dox, doy, dow, doh = g[..., 0] + g[..., 2], g[..., 1] + g[..., 3], g[..., 2] - g[..., 0], g[..., 3] - g[..., 1]
    ddata = np.stack([dox * s[0] * w, doy * s[1] * h, np.where(cw, 0.0 * dow, dow * ow * s[2]),
                      np.where(ch, 0.0 * doh, doh * oh * s[3])], axis=-1)
    gx, gy = dox.sum(0), doy.sum(0)
    gw = (dox * t[..., 0] * s[0] + dow * ew * 0.5).sum(0)
    gh = (doy * t[..., 1] * s[1] + doh * eh * 0.5).sum(0)
    if fmt == "corner":
        gx, gy, gw, gh = gx * 0.5 - gw, gy * 0.5 - gh, gx * 0.5 + gw, gy * 0.5 + gh
    return ddata, np.stack([gx, gy, gw, gh], axis=-1).reshape(np.shape(anchors))


def box_encode(samples, matches, anchors, refs, means, stds):
    """(targets, masks) (B, N, 4): for a positive anchor (sample > 0.5) matched with ref m,
    both as centers and sides, ((x_m - x) / w - means[0]) / stds[0] and (log(w_m / w) -
    means[2]) / stds[2] (y, h likewise) and a mask of 1; 0 for the rest; NaN targets for a
    positive whose match is not a whole number in [0, M); NaN targets and masks for a NaN
    sample."""
    samples, matches = np.asarray(samples, np.float64), np.asarray(matches, np.float64)
    anchors, refs = np.asarray(anchors, np.float64), np.asarray(refs, np.float64)
    means, stds = np.asarray(means, np.float64), np.asarray(stds, np.float64)

    def center(box):
        w, h = box[..., 2] - box[..., 0], box[..., 3] - box[..., 1]
        return box[..., 0] + w / 2, box[..., 1] + h / 2, w, h

    positive = samples > 0.5
    found = positive & (matches == np.floor(matches)) & (matches >= 0) & (matches < refs.shape[1])
    chosen = np.where(found, matches, 0).astype(np.int64)
    matched = np.take_along_axis(refs, chosen[..., None], axis=1) if refs.shape[1] else np.ones_like(anchors)
    rx, ry, rw, rh = center(matched)
    x, y, w, h = center(anchors)
    with np.errstate(all="ignore"):
        targets = np.stack([((rx - x) / w - means[0]) / stds[0], ((ry - y) / h - means[1]) / stds[1],
                            (np.log(rw / w) - means[2]) / stds[2], (np.log(rh / h) - means[3]) / stds[3]], axis=-1)
    other = np.where(np.isnan(samples), np.nan, 0.0)[..., None]
    targets = np.where(positive[..., None], np.where(found[..., None], targets, np.nan), other)
    masks = np.where(positive[..., None], 1.0, other) + np.zeros_like(targets)
    return targets, masks


def multibox_prior(height, width, sizes=(1.0,), ratios=(1.0,), clip=False, steps=(-1.0, -1.0), offsets=(0.5, 0.5)):
    """SSD's prior boxes (1, height width A, 4) of a height x width map, cell-major: each size
    s at the first ratio, then the first size at every other ratio q, half sides
    s height / width sqrt(q) / 2 and s / sqrt(q) / 2 around the cell's center
    ((c + offset_x) step_x, (r + offset_y) step_y), steps 1 / width and 1 / height unless
    positive; ``clip`` clamps into [0, 1]. The parameters are float32 values (MXNet's)."""
    as_param = lambda values: [float(np.float32(v)) for v in values]  # noqa: E731
    sizes, ratios, steps, offsets = as_param(sizes), as_param(ratios), as_param(steps), as_param(offsets)
    step_y, step_x = steps if steps[0] > 0 else (1 / height, 1 / width)
    rows, cols = np.meshgrid(np.arange(height, dtype=np.float64), np.arange(width, dtype=np.float64), indexing="ij")
    y, x = (rows + offsets[0]) * step_y, (cols + offsets[1]) * step_x
    boxes = []
    for s, q in [(s, ratios[0]) for s in sizes] + [(sizes[0], q) for q in ratios[1:]]:
        w, h = s * height / width * np.sqrt(q) / 2, s / np.sqrt(q) / 2
        boxes.append(np.stack([x - w, y - h, x + w, y + h], axis=-1))
    out = np.stack(boxes, axis=2).reshape(1, -1, 4)
    return np.clip(out, 0.0, 1.0) if clip else out


def multibox_detection(cls_prob, loc_pred, anchor, clip=True, threshold=0.01, nms_threshold=0.5,
                       force_suppress=False, variances=(0.1, 0.1, 0.2, 0.2), nms_topk=-1):
    """SSD's detections (B, N, 6), rows [id, score, x1, y1, x2, y2]: each anchor's most
    probable class c > 0 (the first of equal ones) with probability at least ``threshold``
    is a detection of id c - 1, its box the anchor's (corner) center moved by
    t0 v0 w and sized w exp(t2 v2) (y, h likewise), clamped into [0, 1] when ``clip``; by
    descending score, ties by anchor, the first ``nms_topk``; each one not suppressed
    suppresses the later ones of its class (any, ``force_suppress``) of IoU at least
    ``nms_threshold``, their id then -1; the remaining rows -1. An image with a NaN in its
    probabilities (past the background's), offsets or the anchors: all NaN. The parameters
    are float32 values."""
    cls_prob, loc_pred = np.asarray(cls_prob, np.float64), np.asarray(loc_pred, np.float64)
    images, _, count = cls_prob.shape
    a = np.asarray(anchor, np.float64).reshape(count, 4)
    v = [float(np.float32(x)) for x in variances]
    threshold, nms_threshold = float(np.float32(threshold)), float(np.float32(nms_threshold))
    out = -np.ones((images, count, 6))
    aw, ah = a[:, 2] - a[:, 0], a[:, 3] - a[:, 1]
    ax, ay = (a[:, 0] + a[:, 2]) / 2, (a[:, 1] + a[:, 3]) / 2
    for b in range(images):
        t = loc_pred[b].reshape(count, 4)
        if np.isnan(cls_prob[b, 1:]).any() or np.isnan(t).any() or np.isnan(a).any():  # the background's unread
            out[b] = np.nan
            continue
        probs = cls_prob[b, 1:]
        score = np.maximum(probs.max(0), -1.0) if len(probs) else -np.ones(count)
        label = np.where(score > -1.0, probs.argmax(0) + 1, 0) if len(probs) else np.zeros(count, np.int64)
        label = np.where(score < threshold, 0, label)
        x, y = t[:, 0] * v[0] * aw + ax, t[:, 1] * v[1] * ah + ay
        w, h = np.exp(t[:, 2] * v[2]) * aw / 2, np.exp(t[:, 3] * v[3]) * ah / 2
        boxes = np.stack([x - w, y - h, x + w, y + h], axis=-1)
        if clip:
            boxes = np.clip(boxes, 0.0, 1.0)
        order = sorted(np.flatnonzero(label > 0), key=lambda i: (-score[i], i))
        order = order[:nms_topk] if nms_topk > 0 else order
        alive = [True] * len(order)
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        for p, i in enumerate(order):
            if not alive[p]:
                continue
            for q in range(p + 1, len(order)):
                j = order[q]
                if alive[q] and (force_suppress or label[i] == label[j]):
                    iw = max(0.0, min(boxes[i, 2], boxes[j, 2]) - max(boxes[i, 0], boxes[j, 0]))
                    ih = max(0.0, min(boxes[i, 3], boxes[j, 3]) - max(boxes[i, 1], boxes[j, 1]))
                    union = area[i] + area[j] - iw * ih
                    alive[q] = not (union > 0 and iw * ih / union >= nms_threshold)
        for k, i in enumerate(order):
            out[b, k] = [label[i] - 1 if alive[k] else -1, score[i], *boxes[i]]
    return out


def make_loss_valid_gradient(data, grad_scale=1.0, valid_thresh=0.0):
    """MakeLoss's gradient with normalization='valid': grad_scale / max(1, the elements of
    data above valid_thresh, a float32 value), everywhere; NaN everywhere if one is NaN."""
    data = np.asarray(data, np.float64)
    count = np.nan if np.isnan(data).any() else max(1, int((data > float(np.float32(valid_thresh))).sum()))
    return np.full(data.shape, grad_scale / count)


def multibox_target(anchor, label, cls_pred, overlap_threshold=0.5, ignore_label=-1.0, negative_mining_ratio=-1.0,
                    negative_mining_thresh=0.5, minimum_negative_samples=0, variances=(0.1, 0.1, 0.2, 0.2)):
    """SSD's training targets (loc_target (B, 4 N), loc_mask (B, 4 N), cls_target (B, N)).
    An image's boxes are its label rows before the first of class -1. IoU of corner boxes, 0
    for an empty union. Each box in turn takes an anchor: the best pair of a free anchor
    and a free box with IoU above 1e-6, ties by anchor then box; each anchor left, its
    first best box, a positive when that IoU is above ``overlap_threshold`` (> 0). With
    ``negative_mining_ratio`` > 0: of the anchors left with best IoU below
    ``negative_mining_thresh``, the max(int(positives ratio), minimum_negative_samples)
    (at most the anchors left, at most those candidates) of least background softmax
    probability, ties by anchor, are negatives; else every anchor left. Positive: class + 1
    (NaN unless a whole number in [0, C - 1)), mask 1, offsets ((gx - ax) / aw / v0, (gy -
    ay) / ah / v1, log(gw / aw) / v2, log(gh / ah) / v3) of centers and sides; negative:
    class 0; the rest ignore_label; no boxes: all ignored. NaN IoU: the image all NaN; a
    NaN candidate probability: its classes NaN. Parameters are float32 values."""
    anchor, label = np.asarray(anchor, np.float64)[0], np.asarray(label, np.float64)
    cls_pred = np.asarray(cls_pred, np.float64)
    f32 = lambda v: float(np.float32(v))  # noqa: E731
    overlap_threshold, ratio, mining_threshold = map(f32, (overlap_threshold, negative_mining_ratio,
                                                           negative_mining_thresh))
    v = [f32(x) for x in variances]
    images, classes, count = cls_pred.shape
    loc_target, loc_mask = np.zeros((images, count, 4)), np.zeros((images, count, 4))
    cls_target = np.full((images, count), f32(ignore_label))
    for b in range(images):
        ends = np.flatnonzero(label[b, :, 0] == -1)
        boxes = label[b, :ends[0] if len(ends) else label.shape[1]]
        if len(boxes) == 0:
            continue
        with np.errstate(all="ignore"):
            iw = np.maximum(np.minimum(anchor[:, None, 2], boxes[None, :, 3]) -
                            np.maximum(anchor[:, None, 0], boxes[None, :, 1]), 0)
            ih = np.maximum(np.minimum(anchor[:, None, 3], boxes[None, :, 4]) -
                            np.maximum(anchor[:, None, 1], boxes[None, :, 2]), 0)
            union = ((anchor[:, 2] - anchor[:, 0]) * (anchor[:, 3] - anchor[:, 1]))[:, None] + \
                ((boxes[:, 3] - boxes[:, 1]) * (boxes[:, 4] - boxes[:, 2]))[None, :] - iw * ih
            iou = np.where(union == 0, 0.0, iw * ih / np.where(union == 0, 1, union))
        if np.isnan(iou).any():
            loc_target[b] = loc_mask[b] = cls_target[b] = np.nan
            continue
        state, match, best_iou = -np.ones(count, np.int64), -np.ones(count, np.int64), -np.ones(count)
        free = np.ones(len(boxes), bool)
        while free.any():
            masked = np.where((state != 1)[:, None] & free[None, :], iou, -np.inf)
            j, k = np.unravel_index(np.argmax(masked), masked.shape)  # the first greatest, anchor-major
            if not masked[j, k] > f32(1e-6):
                break
            state[j], match[j], best_iou[j], free[k] = 1, k, iou[j, k], False
        for j in np.flatnonzero(state != 1):
            if iou[j].max() > -1:
                match[j], best_iou[j] = np.argmax(iou[j]), iou[j].max()
                if overlap_threshold > 0 and best_iou[j] > overlap_threshold:
                    state[j] = 1
        positives = int((state == 1).sum())
        if ratio > 0:
            candidates = np.flatnonzero((state == -1) & (best_iou < mining_threshold))
            logits = cls_pred[b][:, candidates]
            with np.errstate(all="ignore"):
                probs = np.exp(logits[0] - logits.max(0)) / np.exp(logits - logits.max(0)).sum(0)
            wanted = max(int(np.float32(positives) * np.float32(ratio)), minimum_negative_samples)
            wanted = min(wanted, count - positives, len(candidates))
            if np.isnan(probs).any():
                cls_target[b] = np.nan
            elif wanted > 0:
                state[candidates[sorted(range(len(candidates)), key=lambda i: (probs[i], i))[:wanted]]] = 0
        else:
            state[state == -1] = 0
        for j in range(count):
            if state[j] == 1:
                cls, g0, g1, g2, g3 = boxes[match[j], :5]
                whole = cls == np.floor(cls) and 0 <= cls <= classes - 2
                if not np.isnan(cls_target[b, j]):
                    cls_target[b, j] = cls + 1 if whole else np.nan
                a0, a1, a2, a3 = anchor[j]
                aw, ah, gw, gh = a2 - a0, a3 - a1, g2 - g0, g3 - g1
                loc_target[b, j] = [((g0 + g2) / 2 - (a0 + a2) / 2) / aw / v[0], ((g1 + g3) / 2 - (a1 + a3) / 2) / ah
                                    / v[1], np.log(gw / aw) / v[2], np.log(gh / ah) / v[3]]
                loc_mask[b, j] = 1
            elif state[j] == 0 and not np.isnan(cls_target[b, j]):
                cls_target[b, j] = 0
    return loc_target.reshape(images, -1), loc_mask.reshape(images, -1), cls_target


def bipartite_matching(data, threshold, is_ascend=False, topk=-1):
    """(rows (..., N), cols (..., M)): MXNet's walk down each image's pairs sorted by score
    (descending; ascending with ``is_ascend``; ties by flat position): a pair of a free row
    and a free column is matched if its score is above ``threshold`` (below, ascending),
    else the walk ends; it ends too after ``topk`` matches. -1 unmatched; NaN markers for
    an image holding a NaN. ``threshold`` is a float32 value."""
    data = np.asarray(data, np.float64)
    n, m = data.shape[-2:]
    threshold = float(np.float32(threshold))
    scores = data.reshape(-1, n * m)
    rows, cols = -np.ones((len(scores), n)), -np.ones((len(scores), m))
    for b, s in enumerate(scores):
        if np.isnan(s).any():
            rows[b], cols[b] = np.nan, np.nan
            continue
        count = 0
        for place in np.argsort(s if is_ascend else -s, kind="stable"):
            r, c = divmod(int(place), m)
            if rows[b, r] != -1 or cols[b, c] != -1:
                continue
            if not (s[place] < threshold if is_ascend else s[place] > threshold):
                break
            rows[b, r], cols[b, c] = c, r
            count += 1
            if count == topk:
                break
    return rows.reshape(data.shape[:-1]), cols.reshape((*data.shape[:-2], m))


def _deformable_points(x, offset, kernel, stride, dilate, pad, deformable_groups, zero_pad):
    """Every tap's sample point of a deformable convolution and its interpolation, per
    channel: (N, C, T, OH, OW) arrays of the value v, dv/dy, dv/dx, and the four corners
    (row, column, weight, counts) that the value reads."""
    batch, channels, height, width = x.shape
    out_h, out_w = offset.shape[2:]
    taps = kernel[0] * kernel[1]
    off = np.repeat(offset.reshape(batch, deformable_groups, taps, 2, out_h, out_w), channels // deformable_groups, 1)
    tap_rows, tap_cols = np.divmod(np.arange(taps), kernel[1])
    py = ((np.arange(out_h) * stride[0] - pad[0])[None, :, None] + (tap_rows * dilate[0])[:, None, None]
          + off[:, :, :, 0])
    px = ((np.arange(out_w) * stride[1] - pad[1])[None, None, :] + (tap_cols * dilate[1])[:, None, None]
          + off[:, :, :, 1])
    with np.errstate(invalid="ignore"):
        y0, x0 = np.floor(py), np.floor(px)
        ly, lx = py - y0, px - x0
        if zero_pad:  # DCN v2: a zero-padded image, points in (-1, H) x (-1, W)
            inside = (py > -1) & (px > -1) & (py < height) & (px < width)
            rows_in = [(y0 >= 0), (y0 + 1 <= height - 1)]
            cols_in = [(x0 >= 0), (x0 + 1 <= width - 1)]
        else:  # DCN v1: points in [0, H) x [0, W), the last row's (column's) fraction dropped
            inside = (py >= 0) & (px >= 0) & (py < height) & (px < width)
            rows_in = [np.ones_like(inside), y0 < height - 1]
            cols_in = [np.ones_like(inside), x0 < width - 1]
            ly, lx = np.where(rows_in[1], ly, 0.0), np.where(cols_in[1], lx, 0.0)
    images = np.arange(batch).reshape(-1, 1, 1, 1, 1)
    chans = np.arange(channels).reshape(1, -1, 1, 1, 1)
    corners, values = [], {}
    for i, (wy, row_in) in enumerate(((1 - ly, rows_in[0]), (ly, rows_in[1]))):
        for j, (wx, col_in) in enumerate(((1 - lx, cols_in[0]), (lx, cols_in[1]))):
            counts = inside & row_in & col_in
            rows = np.clip(np.nan_to_num(y0) + i, 0, height - 1).astype(int)
            cols = np.clip(np.nan_to_num(x0) + j, 0, width - 1).astype(int)
            values[i, j] = np.where(counts, x[images, chans, rows, cols], 0.0)
            corners.append((rows, cols, wy * wx, counts))
    v = (1 - ly) * ((1 - lx) * values[0, 0] + lx * values[0, 1]) + ly * ((1 - lx) * values[1, 0] + lx * values[1, 1])
    dv_dy = (1 - lx) * (values[1, 0] - values[0, 0]) + lx * (values[1, 1] - values[0, 1])
    dv_dx = (1 - ly) * (values[0, 1] - values[0, 0]) + ly * (values[1, 1] - values[1, 0])
    if not zero_pad:
        dv_dy, dv_dx = np.where(rows_in[1], dv_dy, 0.0), np.where(cols_in[1], dv_dx, 0.0)
    nan = np.isnan(py) | np.isnan(px)  # a NaN point: NaN value and derivatives, no pixel read
    v, dv_dy, dv_dx = (np.where(nan, np.nan, np.where(inside, a, 0.0)) for a in (v, dv_dy, dv_dx))
    return v, dv_dy, dv_dx, corners


def _deformable_columns(x, offset, mask, kernel, stride, dilate, pad, deformable_groups, zero_pad):
    v, dv_dy, dv_dx, corners = _deformable_points(x, offset, kernel, stride, dilate, pad, deformable_groups,
                                                  zero_pad)
    m = 1.0 if mask is None else np.repeat(mask.reshape(*mask.shape[:1], deformable_groups, -1, *mask.shape[2:]),
                                           x.shape[1] // deformable_groups, 1)
    return v * m, v, dv_dy, dv_dx, corners, m


def deformable_convolution(x, offset, mask, w, b, kernel, stride=(1, 1), dilate=(1, 1), pad=(0, 0), groups=1,
                           deformable_groups=1, zero_pad=False):
    """out[n, f, p] = sum over (c, t) of w[f, c, t] m v(x[n, c] at tap t's displaced point)
    (+ b[f]): DCN v1 (mask None, MXNet's sampling) or v2 (``zero_pad``, mask)."""
    cols = _deformable_columns(x, offset, mask, kernel, stride, dilate, pad, deformable_groups, zero_pad)[0]
    per_group, filters = w.shape[1], w.shape[0] // groups
    wt = w.reshape(w.shape[0], per_group, -1)
    out = np.concatenate([np.einsum("nctij,fct->nfij", cols[:, g * per_group:(g + 1) * per_group],
                                    wt[g * filters:(g + 1) * filters]) for g in range(groups)], axis=1)
    return out if b is None else out + b.reshape(1, -1, 1, 1)


def deformable_convolution_grads(h, x, offset, mask, w, kernel, stride=(1, 1), dilate=(1, 1), pad=(0, 0), groups=1,
                                 deformable_groups=1, zero_pad=False):
    """(dx, doffset, dmask (None without a mask), dw, db) of ``deformable_convolution``."""
    cols, v, dv_dy, dv_dx, corners, m = _deformable_columns(x, offset, mask, kernel, stride, dilate, pad,
                                                            deformable_groups, zero_pad)
    per_group, filters = w.shape[1], w.shape[0] // groups
    wt = w.reshape(w.shape[0], per_group, -1)
    dcols = np.concatenate([np.einsum("nfij,fct->nctij", h[:, g * filters:(g + 1) * filters],
                                      wt[g * filters:(g + 1) * filters]) for g in range(groups)], axis=1)
    dw = np.concatenate([np.einsum("nfij,nctij->fct", h[:, g * filters:(g + 1) * filters],
                                   cols[:, g * per_group:(g + 1) * per_group]) for g in range(groups)]).reshape(w.shape)
    batch, channels = x.shape[:2]
    by_group = (batch, deformable_groups, channels // deformable_groups, *dcols.shape[2:])
    dmask = None if mask is None else (dcols * v).reshape(by_group).sum(axis=2).reshape(mask.shape)
    d_y = (dcols * m * dv_dy).reshape(by_group).sum(axis=2)
    d_x = (dcols * m * dv_dx).reshape(by_group).sum(axis=2)
    doffset = np.stack([d_y, d_x], axis=3).reshape(offset.shape)
    dx = np.zeros_like(x)
    images = np.broadcast_to(np.arange(batch).reshape(-1, 1, 1, 1, 1), dcols.shape)
    chans = np.broadcast_to(np.arange(channels).reshape(1, -1, 1, 1, 1), dcols.shape)
    for rows, cols_, weight, counts in corners:
        np.add.at(dx, (images[counts], chans[counts], rows[counts], cols_[counts]), (dcols * m * weight)[counts])
    return dx, doffset, dmask, dw, h.sum(axis=(0, 2, 3))


def psroi_pooling(data, rois, output_dim, pooled_size, group_size, spatial_scale, grad_head=None):
    """(R, output_dim, P, P): R-FCN's position-sensitive average pooling, output channel k of
    bin (i, j) the mean of data channel (k G + gi) G + gj over the bin, 0 for an empty bin
    or a padding region, NaN for an invalid one. With ``grad_head`` (the output's gradient),
    d(sum(head * out))/d(data) instead."""
    batches, _, height, width = data.shape
    size, groups = pooled_size, group_size
    out = np.zeros((len(rois), output_dim, size, size))
    dx = np.zeros_like(data)
    for r, roi in enumerate(rois):
        batch = roi[0]
        if batch == np.floor(batch) and batch < 0:
            continue
        if not (batch == np.floor(batch) and batch < batches) or not np.all(np.isfinite(roi[1:])):
            out[r] = np.nan
            continue
        x1, y1, x2, y2 = _round_half_away(roi[1:])
        start_w, start_h = x1 * spatial_scale, y1 * spatial_scale
        size_w = max((x2 + 1) * spatial_scale - start_w, 0.1)
        size_h = max((y2 + 1) * spatial_scale - start_h, 0.1)
        for i in range(size):
            r0 = int(min(max(np.floor(start_h + i * size_h / size), 0), height))
            r1 = int(min(max(np.ceil(start_h + (i + 1) * size_h / size), 0), height))
            gi = min(i * groups // size, groups - 1)
            for j in range(size):
                c0 = int(min(max(np.floor(start_w + j * size_w / size), 0), width))
                c1 = int(min(max(np.ceil(start_w + (j + 1) * size_w / size), 0), width))
                gj = min(j * groups // size, groups - 1)
                if r1 <= r0 or c1 <= c0:
                    continue
                channels = (np.arange(output_dim) * groups + gi) * groups + gj
                out[r, :, i, j] = data[int(batch), channels, r0:r1, c0:c1].mean(axis=(1, 2))
                if grad_head is not None:
                    dx[int(batch), channels, r0:r1, c0:c1] += (grad_head[r, :, i, j] / ((r1 - r0) * (c1 - c0)))[
                        :, None, None]
    return dx if grad_head is not None else out
