"""Symbols as JSON: round trips, MXNet's own format, and files that must be rejected."""

import json

import pytest

import tritonsym as ts
from tritonsym import FormatError

S = ts.sym


def sample():
    data = S.Variable("data", shape=(8, 6), lr_mult=2.0)
    fc = S.FullyConnected(data, num_hidden=5, name="fc1", attr={"group": "a"})
    act = S.LeakyReLU(fc, act_type="elu", slope=0.3, name="elu")
    return S.Group([S.SoftmaxOutput(act * 2.0, name="out", normalization="valid"), S.BlockGrad(fc, name="mon")])


def test_round_trip_keeps_everything(tmp_path):
    sym = sample()
    again = S.load_json(sym.tojson())
    assert again.list_arguments() == sym.list_arguments()
    assert again.list_outputs() == sym.list_outputs()
    assert again.attr_dict() == sym.attr_dict()
    assert again.debug_str() == sym.debug_str()
    assert again.infer_shape(data=(8, 6)) == sym.infer_shape(data=(8, 6))
    path = tmp_path / "net-symbol.json"
    sym.save(str(path))
    assert S.load(str(path)).tojson() == sym.tojson()
    assert [p.name for p in tmp_path.iterdir()] == ["net-symbol.json"], "no temporary file left behind"
    doc = json.loads(sym.tojson())
    assert doc["format"] == "tritonsym-symbol" and doc["version"] == 1


def test_shared_nodes_stay_shared():
    x = S.Variable("x")
    sym = S.load_json((x * x + x).tojson())
    assert sym.list_arguments() == ["x"]


def test_mxnet_json_loads():
    mxnet_json = json.dumps({
        "nodes": [
            {"op": "null", "name": "data", "inputs": []},
            {"op": "null", "name": "fc1_weight", "attrs": {"__lr_mult__": "1.0"}, "inputs": []},
            {"op": "null", "name": "fc1_bias", "inputs": []},
            {"op": "FullyConnected", "name": "fc1", "attrs": {"num_hidden": "128", "ctx_group": "stage1"},
             "inputs": [[0, 0, 0], [1, 0, 0], [2, 0, 0]]},
            {"op": "Activation", "name": "relu1", "attrs": {"act_type": "relu"}, "inputs": [[3, 0, 0]]},
        ],
        "arg_nodes": [0, 1, 2], "heads": [[4, 0, 0]], "attrs": {"mxnet_version": ["int", 10901]}})
    sym = S.load_json(mxnet_json)
    assert sym.list_arguments() == ["data", "fc1_weight", "fc1_bias"]
    assert sym.get_internals()["fc1_output"].attr("num_hidden") == "128"
    # MXNet's one dict is split: the operator's parameters, and the user's attributes
    fc1 = next(n for n in json.loads(sym.tojson())["nodes"] if n["name"] == "fc1")
    assert fc1["params"] == {"num_hidden": "128"} and fc1["attrs"] == {"ctx_group": "stage1"}


@pytest.mark.parametrize("text,message", [
    ("{not json", "not valid JSON"),
    ("[]", "expected an object with 'nodes' and 'heads'"),
    ('{"nodes": [{"op": "Conv9D", "name": "c", "inputs": []}], "heads": [[0, 0]]}', "unknown operator 'Conv9D'"),
    ('{"nodes": [{"op": "null", "name": "x", "inputs": []}, {"op": "negative", "name": "n", "inputs": [[5, 0]]}],'
     ' "heads": [[1, 0]]}', "node 1 \\('n'\\) input 0: refers to node 5, which does not come before it"),
    ('{"nodes": [{"op": "negative", "name": "n", "inputs": [[0, 0]]}], "heads": [[0, 0]]}',
     "refers to node 0, which does not come before it"),
    ('{"nodes": [{"op": "null", "name": "x", "inputs": []}, {"op": "FullyConnected", "name": "fc", '
     '"params": {"num_hidden": "__import__(\'os\')"}, "inputs": [[0, 0], [0, 0], [0, 0]]}], "heads": [[1, 0]]}',
     "is not a valid integer"),
    ('{"nodes": [{"op": "null", "name": "x", "inputs": []}, {"op": "negative", "name": "n", "inputs": [[0, 0], '
     '[0, 0]]}], "heads": [[1, 0]]}', "negative takes 1 inputs \\(data\\), got 2"),
    ('{"nodes": [{"op": "null", "name": "x", "inputs": []}], "heads": [[0, 3]]}', "refers to output 3 of node 0"),
    ('{"nodes": [{"op": "null", "name": "x", "inputs": []}], "heads": [[0, 1]]}',
     "refers to output 1 of node 0 \\('x'\\), which has 1"),  # one past the last
    # JSON's true is no index (Python would read it as node 1), nor is 0.0
    ('{"nodes": [{"op": "null", "name": "x", "inputs": []}, {"op": "null", "name": "y", "inputs": []}], '
     '"heads": [[true, 0]]}', "an input must be \\[node index, output index\\], got \\[True, 0\\]"),
    ('{"nodes": [{"op": "null", "name": "x", "inputs": []}], "heads": [[0.0, 0]]}', "got \\[0.0, 0\\]"),
    ('{"nodes": [{"op": "null", "name": "x", "inputs": []}], "heads": []}', "'heads' is empty"),
    ('{"format": "tritonsym-symbol", "version": 9, "nodes": [], "heads": []}', "written by a newer tritonsym"),
    ('{"format": "tritonsym-symbol", "version": 0, "nodes": [], "heads": []}', "version 0 is not a valid version"),
    ('{"format": "tritonsym-symbol", "version": "1", "nodes": [], "heads": []}', "version '1' is not a valid"),
    ('{"nodes": [{"op": "null", "name": "x", "inputs": []}, {"op": "null", "name": "y", "inputs": [[0, 0]]}], '
     '"heads": [[1, 0]]}', "node 1 \\('y'\\): a variable has no inputs"),
    ('{"nodes": [{"op": "null", "name": "x", "attrs": {"a": 1}, "inputs": []}], "heads": [[0, 0]]}',
     "attributes must be an object of strings"),
    ("[" * 100000 + "]" * 100000, "not valid JSON"),
])
def test_malformed_json_is_rejected_clearly(text, message):
    with pytest.raises(FormatError, match=message):
        S.load_json(text)
