"""print_summary, plot_network (DOT, rendering, the planner's sharing) and `tritonsym summary`."""

import shutil

import pytest
from networks import mlp

import tritonsym as ts
from tritonsym import TritonSymError
from tritonsym.cli import main

S = ts.sym


def _mlp():
    return mlp((128,), 10)


def _summary(net, shape=None):
    lines = []
    ts.viz.print_summary(net, shape=shape, print_fn=lines.append)
    return lines


def test_summary_rows_shapes_and_counts():
    lines = _summary(_mlp(), {"data": (64, 784)})
    rows = {line.split()[0]: line.split() for line in lines[2:-2]}
    assert list(rows) == ["data", "fc1", "relu1", "fc2", "softmax"]
    assert rows["fc1"][2:] == ["(64,", "128)", "100480", "data"]  # 784*128 + 128
    assert rows["fc2"][4] == "1290" and rows["softmax"][-2:] == ["fc2,", "softmax_label"]
    assert lines[-1] == f"Total params: {784 * 128 + 128 + 128 * 10 + 10}"


def test_summary_without_shapes_and_with_a_shared_weight():
    lines = _summary(_mlp())
    assert "fc1 (FullyConnected)            ?               ?        data" in lines
    assert lines[-1] == "Total params: 0 (and some of unknown shape)"
    w = S.Variable("w")
    h = S.FullyConnected(S.Variable("x"), weight=w, num_hidden=6, no_bias=True, name="first")
    y = S.FullyConnected(h, weight=w, num_hidden=6, no_bias=True, name="second")
    assert _summary(y, {"x": (2, 6)})[-1] == "Total params: 36"  # w once, not twice


def test_plot_network_dot_with_shapes_weights_and_memory():
    net = _mlp()
    dot = ts.viz.plot_network(net, shape={"data": (64, 784)}, title="mlp").source
    assert dot.startswith('digraph "mlp" {') and dot.rstrip().endswith("}")
    assert '"fc1" [label="fc1\\nFullyConnected\\nnum_hidden=128"' in dot
    assert '"data" -> "fc1" [label="(64, 784)"];' in dot and '"fc2" -> "softmax" [label="(64, 10)"];' in dot
    assert "fc1_weight" not in dot
    assert '"fc1_weight" -> "fc1";' in ts.viz.plot_network(net, hide_weights=False).source
    exe = net.simple_bind(ts.cpu(), data=(64, 784))
    with_memory = ts.viz.plot_network(net, shape={"data": (64, 784)}, memory=exe).source
    assert "in place over fc2_output" in with_memory  # the loss writes over its input
    odd = S.Activation(S.Variable("data"), name='say "hi"', act_type="relu")
    assert '"say \\"hi\\""' in ts.viz.plot_network(odd).source  # quotes escaped


def test_plot_network_takes_mxnets_dtype_node_attrs_and_save_format():
    net = _mlp()
    graph = ts.viz.plot_network(net, "typed", "png", shape={"data": (8, 784)}, dtype={"data": "float16"},
                                node_attrs={"shape": "oval", "fixedsize": "false"})
    assert graph.format == "png" and graph.name == "typed"
    assert '"data" -> "fc1" [label="(8, 784) float16"];' in graph.source
    assert 'node [shape="oval", style="rounded,filled", fontname="Helvetica", fontsize="10", fixedsize="false"];' \
        in graph.source
    untyped = ts.viz.plot_network(net, dtype={})  # nothing known: edges without dtypes
    assert '"data" -> "fc1";' in untyped.source


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
def test_render_svg(tmp_path):
    path = ts.viz.plot_network(_mlp(), shape={"data": (8, 20)}).render(str(tmp_path / "mlp"), format="svg")
    assert path.endswith("mlp.svg") and "<svg" in open(path).read()


def test_render_without_dot_says_what_to_install(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(TritonSymError, match="needs Graphviz's 'dot' program"):
        ts.viz.plot_network(_mlp()).render("x")


def test_summary_command(tmp_path, capsys):
    path = tmp_path / "net.json"
    _mlp().save(str(path))
    assert main(["summary", str(path), "--shape", "data=32,784", "--dot", str(tmp_path / "net.dot")]) == 0
    out = capsys.readouterr().out
    assert "fc1 (FullyConnected)            (32, 128)" in out and "Total params: 101770" in out
    assert (tmp_path / "net.dot").read_text().startswith('digraph "net.dot"')
    assert main(["summary", str(path), "--shape", "label=3"]) == 1
    assert "--shape names ['label'], which are not arguments" in capsys.readouterr().err
    assert main(["summary", str(tmp_path / "missing.json")]) == 1
    assert "No such file" in capsys.readouterr().err


def test_summary_and_plot_know_the_operators_beyond_the_mlp():
    """Embedding, a broadcast parameter, LayerNorm, a multi-output split, Concat, batch_dot:
    their output shapes, their parameters counted once, and their edges in the plot."""
    tokens = S.broadcast_add(S.Embedding(S.Variable("data"), input_dim=17, output_dim=16, name="pixel"),
                             S.Variable("position_weight", shape=(1, 64, 16)), name="tokens")
    normed = S.LayerNorm(tokens, name="norm")
    halves = S.split(normed, num_outputs=2, axis=1, name="halves")
    joined = S.Concat(halves[1], halves[0], dim=1, name="cat")
    net = S.sum(S.batch_dot(joined, joined, transpose_b=True, name="bd"), axis=(1, 2), name="total")
    rows = {line.split()[0]: line for line in _summary(net, {"data": (8, 64)})[2:-2]}
    assert rows["pixel"].split()[2:5] == ["(8,", "64,", "16)"] and rows["pixel"].split()[5] == "272"  # 17 x 16
    assert rows["tokens"].split()[5] == "1024" and rows["norm"].split()[5] == "32"  # 64 x 16; gamma and beta
    assert rows["cat"].split()[-2:] == ["halves_output1,", "halves_output0"]
    assert rows["bd"].split()[2:5] == ["(8,", "64,", "64)"] and rows["total"].split()[2] == "(8,)"
    dot = ts.viz.plot_network(net, shape={"data": (8, 64)}).source
    assert '"halves" -> "cat" [label="(8, 32, 16)"];' in dot and '"bd" -> "total" [label="(8, 64, 64)"];' in dot
