"""MXNet's ``mx.sym.random``: ``uniform``, ``normal``, ``randn``, ``exponential``, ``gamma``,
``poisson``, ``negative_binomial``, ``generalized_negative_binomial``, ``randint``, their
``*_like`` forms and ``multinomial``.

With numbers as the distribution's parameters they make one ``_random_<name>`` node (an array
of ``shape``); with symbols, one ``_sample_<name>`` node (one distribution per element of
theirs, each drawn ``shape`` times). Nodes are named as MXNet names them (``_random_uniform0``,
``_sample_normal0``, ``uniform_like0``). The operators are in ``operators/sampling.py``; the
draws come from ``tritonsym.random``'s seed. ``multinomial`` draws categories from rows of
weights (``_sample_multinomial``, ``operators/multinomial.py``); ``shuffle`` reorders the
first axis of an array (``_shuffle``, ``operators/shuffle.py``).

>>> import tritonsym as ts
>>> mu, log_sigma = ts.sym.Variable("mu"), ts.sym.Variable("log_sigma")
>>> z = mu + ts.sym.exp(log_sigma) * ts.sym.random.normal(shape=(0, 8))   # a VAE's draw
>>> z.infer_shape(mu=(32, 8), log_sigma=(32, 8))[1]
[(32, 8)]
"""

from __future__ import annotations

import numbers

from ..base import dtype_name, to_dtype
from .symbol import Symbol, create_called

__all__ = ["exponential", "exponential_like", "gamma", "gamma_like", "generalized_negative_binomial",
           "generalized_negative_binomial_like", "multinomial", "negative_binomial", "negative_binomial_like",
           "normal", "normal_like", "poisson", "poisson_like", "randint", "randn", "shuffle", "uniform",
           "uniform_like"]


def _dtype(params: dict, dtype) -> dict:
    if dtype is not None:  # "float16", np.float16, torch.float16 ...
        params["dtype"] = dtype_name(to_dtype(dtype))
    return params


def _draw(name: str, values: dict, arrays: tuple[str, ...], shape, dtype, kwargs: dict) -> Symbol:
    """``_random_<name>`` for numbers, ``_sample_<name>`` for symbols (all of one kind, as MXNet asks)."""
    given = list(values.values())
    node_name, attr = kwargs.pop("name", None), kwargs.pop("attr", None)
    if all(isinstance(v, Symbol) for v in given):
        params = _dtype({"shape": shape} if shape is not None else {}, dtype)
        return create_called(f"_sample_{name}", f"_sample_{name}", *given, name=node_name, attr=attr,
                             **params, **kwargs)
    if all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in given):
        params = _dtype({**values, **({"shape": shape} if shape is not None else {})}, dtype)
        return create_called(f"_random_{name}", f"_random_{name}", name=node_name, attr=attr, **params, **kwargs)
    kinds = ", ".join(f"{k}={type(v).__name__}" for k, v in values.items())
    raise TypeError(f"random.{name}: the distribution's parameters ({', '.join(arrays)}) must all be numbers or "
                    f"all be symbols, got {kinds}")


def uniform(low=0.0, high=1.0, shape=None, dtype=None, **kwargs) -> Symbol:
    """Draws uniform on [low, high): an array of ``shape``, or with symbols ``shape`` draws
    for each element of theirs."""
    return _draw("uniform", {"low": low, "high": high}, ("low", "high"), shape, dtype, kwargs)


def normal(loc=0.0, scale=1.0, shape=None, dtype=None, **kwargs) -> Symbol:
    """Draws from the normal of mean ``loc`` and standard deviation ``scale``."""
    return _draw("normal", {"loc": loc, "scale": scale}, ("mu", "sigma"), shape, dtype, kwargs)


def randn(*shape, **kwargs) -> Symbol:
    """``normal(loc, scale, shape)`` with the shape given as positional sizes (loc 0 and scale
    1 unless given by keyword)."""
    loc, scale, dtype = kwargs.pop("loc", 0.0), kwargs.pop("scale", 1.0), kwargs.pop("dtype", None)
    return normal(loc, scale, shape, dtype, **kwargs)


def exponential(scale=1.0, shape=None, dtype=None, **kwargs) -> Symbol:
    """Draws from the exponential of mean ``scale`` (rate 1 / scale, as MXNet's)."""
    if isinstance(scale, numbers.Real) and not isinstance(scale, bool) and scale <= 0:
        raise ValueError(f"random.exponential: scale={scale} must be positive")
    return _draw("exponential", {"lam": 1.0 / scale}, ("lam",), shape, dtype, kwargs)


def gamma(alpha=1.0, beta=1.0, shape=None, dtype=None, **kwargs) -> Symbol:
    """Draws from the gamma of shape ``alpha`` and scale ``beta`` (mean alpha beta)."""
    return _draw("gamma", {"alpha": alpha, "beta": beta}, ("alpha", "beta"), shape, dtype, kwargs)


def poisson(lam=1.0, shape=None, dtype=None, **kwargs) -> Symbol:
    """Counts drawn from the Poisson of mean ``lam`` (whole numbers in a float dtype)."""
    return _draw("poisson", {"lam": lam}, ("lam",), shape, dtype, kwargs)


def negative_binomial(k=1, p=1.0, shape=None, dtype=None, **kwargs) -> Symbol:
    """The failures before the ``k``-th success of trials of success probability ``p``
    (mean k (1 - p) / p), as MXNet draws them: Poisson of a gamma-distributed mean."""
    return _draw("negative_binomial", {"k": k, "p": p}, ("k", "p"), shape, dtype, kwargs)


def generalized_negative_binomial(mu=1.0, alpha=1.0, shape=None, dtype=None, **kwargs) -> Symbol:
    """Counts of mean ``mu`` and variance mu + alpha mu**2 (Poisson for alpha 0)."""
    return _draw("generalized_negative_binomial", {"mu": mu, "alpha": alpha}, ("mu", "alpha"), shape, dtype,
                 kwargs)


def randint(low, high, shape=None, dtype=None, **kwargs) -> Symbol:
    """Integers uniform on [low, high) (int32 unless ``dtype`` says int64); numbers only, as MXNet's."""
    if isinstance(low, Symbol) or isinstance(high, Symbol):
        raise TypeError("random.randint: low and high must be integers (MXNet has no per-element randint)")
    return _draw("randint", {"low": low, "high": high}, ("low", "high"), shape, dtype, kwargs)


def _like(name: str, data: Symbol, params: dict, kwargs: dict) -> Symbol:
    return create_called(f"{name}_like", f"_random_{name}_like", data, name=kwargs.pop("name", None),
                         attr=kwargs.pop("attr", None), **params, **kwargs)


def uniform_like(data, low=0.0, high=1.0, **kwargs) -> Symbol:
    """Draws uniform on [low, high) in the shape and dtype of ``data`` (not read)."""
    return _like("uniform", data, {"low": low, "high": high}, kwargs)


def normal_like(data, loc=0.0, scale=1.0, **kwargs) -> Symbol:
    """Normal draws in the shape and dtype of ``data`` (not read)."""
    return _like("normal", data, {"loc": loc, "scale": scale}, kwargs)


def exponential_like(data, lam=1.0, **kwargs) -> Symbol:
    """Exponential draws of rate ``lam`` in the shape and dtype of ``data`` (not read)."""
    return _like("exponential", data, {"lam": lam}, kwargs)


def gamma_like(data, alpha=1.0, beta=1.0, **kwargs) -> Symbol:
    """Gamma draws in the shape and dtype of ``data`` (not read)."""
    return _like("gamma", data, {"alpha": alpha, "beta": beta}, kwargs)


def poisson_like(data, lam=1.0, **kwargs) -> Symbol:
    """Poisson counts in the shape and dtype of ``data`` (not read)."""
    return _like("poisson", data, {"lam": lam}, kwargs)


def negative_binomial_like(data, k=1, p=1.0, **kwargs) -> Symbol:
    """Negative binomial counts in the shape and dtype of ``data`` (not read)."""
    return _like("negative_binomial", data, {"k": k, "p": p}, kwargs)


def generalized_negative_binomial_like(data, mu=1.0, alpha=1.0, **kwargs) -> Symbol:
    """Generalized negative binomial counts in the shape and dtype of ``data`` (not read)."""
    return _like("generalized_negative_binomial", data, {"mu": mu, "alpha": alpha}, kwargs)


def multinomial(data, shape=(), get_prob=True, dtype="int32", **kwargs) -> Symbol:
    """``shape`` draws of a category from each row of weights along ``data``'s last axis; with
    ``get_prob`` (the default of MXNet's function, where its operator's is False) a second
    output, the log of each drawn weight, whose gradient reaches ``data`` (REINFORCE)."""
    return create_called("_sample_multinomial", "_sample_multinomial", data, name=kwargs.pop("name", None),
                         attr=kwargs.pop("attr", None), shape=shape, get_prob=get_prob,
                         dtype=dtype_name(to_dtype(dtype)), **kwargs)


def shuffle(data, **kwargs) -> Symbol:
    """``data``'s slices along its first axis in a random order, drawn anew every call (a
    ``_shuffle`` node, as MXNet's)."""
    return create_called("_shuffle", "_shuffle", data, name=kwargs.pop("name", None), attr=kwargs.pop("attr", None),
                         **kwargs)
