"""Record what real MXNet 1.9.1 gives for every case of tests/mxnet_cases.py.

Run by hand, never by CI, with MXNet in a virtual environment of its own (it needs
numpy < 1.24, which tritonsym's environment does not have):

    python3 -m venv /tmp/mxv && /tmp/mxv/bin/pip install mxnet==1.9.1 "numpy<1.24"
    /tmp/mxv/bin/python scripts/record_mxnet_fixtures.py

It writes tests/data/mxnet/cases.json (each case's plain results, or the exception MXNet
raised: type and message) and tests/data/mxnet/arrays.npz (inputs and array results);
tests/test_mxnet_differential.py replays every case on tritonsym against them.
``--only PREFIX`` records the cases whose id starts with PREFIX and keeps the others.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import warnings

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests"))

import mxnet_cases  # noqa: E402
import mxnet_harness as harness  # noqa: E402


class MXNetAdapter(harness.Adapter):
    def __init__(self, mx):
        self.mx = mx
        self.sym = mx.sym
        self.lr_scheduler, self.metric, self.io, self.init = mx.lr_scheduler, mx.metric, mx.io, mx.init
        self.mod, self.optimizer, self.cpu, self.AttrScope, self.nd = mx.mod, mx.optimizer, mx.cpu, mx.AttrScope, mx.nd
        self.kv, self.rnn = mx.kv, mx.rnn

    def array(self, value):
        return self.mx.nd.array(value, dtype=value.dtype)

    def numpy(self, value):
        return value.asnumpy()

    def zeros_like(self, value):
        return self.mx.nd.zeros_like(value)

    def dtype_name(self, dtype):
        return np.dtype(dtype).name

    def prefix(self, text):
        return self.mx.name.Prefix(text)

    def fresh_names(self):
        return self.mx.name.NameManager()

    def bind(self, sym, shapes, grad_req="write", dtypes=None):
        return sym.simple_bind(self.mx.cpu(), grad_req=grad_req, type_dict=dtypes or None, **shapes)

    def set(self, exe, name, value):
        exe.arg_dict[name][:] = value

    def set_aux(self, exe, name, value):
        exe.aux_dict[name][:] = value

    def aux(self, exe):
        return {k: v.asnumpy() for k, v in exe.aux_dict.items()}

    def forward(self, exe, is_train=False):
        return [o.asnumpy() for o in exe.forward(is_train=is_train)]

    def backward(self, exe, head_grads):
        exe.backward(out_grads=None if head_grads is None else [self.mx.nd.array(h) for h in head_grads])

    def grads(self, exe):
        return {k: g.asnumpy() for k, g in exe.grad_dict.items() if g is not None}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help="record only the cases whose id starts with this")
    options = parser.parse_args()
    import mxnet as mx

    api = MXNetAdapter(mx)
    cases, arrays = ({}, {}) if not options.only or not harness.RESULTS_JSON.exists() else harness.load()
    cases = {k: v for k, v in cases.items() if k != "_meta" and not k.startswith(options.only)}
    arrays = {k: v for k, v in arrays.items() if not k.startswith(options.only)}
    for case in mxnet_cases.CASES:
        if not case.id.startswith(options.only):
            continue
        texts: dict = {}
        data = harness.Recording(case.id, arrays, texts, recording=True)
        record = {"area": case.area}
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                result = case.run(api, data)
            record["result"] = harness.encode(case.id, result, arrays)
            record["warnings"] = sorted({w.category.__name__ for w in caught})
        except Exception as error:  # noqa: BLE001 (an exception is what the case records)
            record["error"] = {"type": type(error).__name__, "message": str(error).strip().split("\n")[0][:300]}
        record["texts"] = texts
        cases[case.id] = record
        print(f"{case.id}: {'raised ' + record['error']['type'] if 'error' in record else 'ok'}")
    cases["_meta"] = {"mxnet": mx.__version__, "numpy": np.__version__}
    harness.FIXTURES.mkdir(parents=True, exist_ok=True)
    harness.RESULTS_JSON.write_text(json.dumps(cases, indent=1, sort_keys=True, default=_plain) + "\n")
    np.savez_compressed(harness.ARRAYS_NPZ, **arrays)
    print(f"recorded {len(cases) - 1} cases into {harness.FIXTURES}")
    return 0


def _plain(value):
    """JSON for what a case returns besides arrays: numpy scalars and tuples of them."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot record {type(value).__name__}")


if __name__ == "__main__":
    sys.exit(main())
