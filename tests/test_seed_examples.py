"""Every example of the original document runs and prints exactly its argument lists."""

import os
import pathlib
import re
import subprocess
import sys

import pytest

import tritonsym as ts

ROOT = pathlib.Path(__file__).resolve().parents[1]
SEED = ROOT.parent / "shared" / "seeds" / "symbol_and_autodiff.txt"

# The document's R output, as Python lists.
EXPECTED = [
    ["data", "fc1_weight", "fc1_bias", "fc2_weight", "fc2_bias", "out_label"],
    ["data", "myweight", "fc1_bias"],
    ["data1", "data2", "fc1_weight", "fc1_bias"],
    ["data2", "net2_weight", "net2_bias", "fc1_weight", "fc1_bias"],
]


def test_expected_lists_are_the_documents():
    """The lists above are read off the original document itself, MXNet's symbol tutorial
    (symbol_and_autodiff.txt, when it is in ../shared/seeds beside the checkout)."""
    if not SEED.exists():
        pytest.skip(f"the original document is not beside the checkout ({SEED})")
    text = SEED.read_text()
    blocks = re.findall(r"arguments\((?:net|composed\.net)\)\n((?:## .*\n)+)", text)
    from_document = [re.findall(r'"([^"]+)"', block) for block in blocks]
    assert from_document == EXPECTED


def test_examples_script_prints_the_documents_argument_lists():
    # The script binds on cpu(): Triton's interpreter, also on a machine with a GPU.
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "seed_symbols.py")], capture_output=True,
                            text=True, timeout=300, cwd=ROOT, env={**os.environ, "TRITONSYM_INTERPRET": "1"})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "Symbol"
    assert lines[1:5] == [str(e) for e in EXPECTED]


def test_examples_inline():
    S = ts.sym
    net = S.Variable("data")
    net = S.FullyConnected(data=net, name="fc1", num_hidden=128)
    net = S.Activation(data=net, name="relu1", act_type="relu")
    net = S.FullyConnected(data=net, name="fc2", num_hidden=64)
    net = S.Softmax(data=net, name="out")
    assert net.list_arguments() == EXPECTED[0]

    net = S.FullyConnected(data=S.Variable("data"), weight=S.Variable("myweight"), name="fc1", num_hidden=128)
    assert net.list_arguments() == EXPECTED[1]

    net = S.FullyConnected(data=S.Variable("data1") + S.Variable("data2"), name="fc1", num_hidden=128)
    assert net.list_arguments() == EXPECTED[2]

    net = S.FullyConnected(data=S.Variable("data"), name="fc1", num_hidden=128)
    net2 = S.FullyConnected(data=S.Variable("data2"), name="net2", num_hidden=128)
    for composed in (S.compose(net, data=net2, name="compose"), net(data=net2, name="compose")):
        assert composed.list_arguments() == EXPECTED[3]
        assert composed.list_outputs() == ["compose_output"]
    assert net.list_arguments() == ["data", "fc1_weight", "fc1_bias"], "composition must not change the original"


@pytest.mark.slow  # 11 s: the example trains (the quick run stays under 5 minutes)
def test_training_example_runs():
    """examples/train_digits.py: the intermediate API, fit, checkpoint, load and predict."""
    import pathlib
    import subprocess
    import sys

    script = pathlib.Path(__file__).resolve().parents[1] / "examples" / "train_digits.py"
    result = subprocess.run([sys.executable, str(script), "--epochs", "2"], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert "after one epoch by hand: ('accuracy'," in result.stdout
    assert "already bound" not in result.stderr + result.stdout  # fit uses the module as set up
    accuracy = float(result.stdout.split("validation accuracy ")[1].split()[0])
    assert accuracy > 0.9


@pytest.mark.slow
def test_the_token_network_with_embedding_layer_norm_and_dropout_learns_the_digits():
    """examples/digits_tokens.py: Embedding, a broadcast position embedding, LayerNorm and
    Dropout under Module.fit; two epochs on the CPU reach 90% on the validation digits."""
    import pathlib
    import subprocess
    import sys

    script = pathlib.Path(__file__).resolve().parents[1] / "examples" / "digits_tokens.py"
    result = subprocess.run([sys.executable, str(script), "--epochs", "2"], capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr
    accuracy = float(result.stdout.split("validation accuracy ")[1].split()[0])
    assert accuracy > 0.9, result.stdout
    # LayerNorm keeps two float32 values per row (64 x 64 rows) for backward; Dropout keeps nothing.
    assert "norm_mean                      saved     float32  (4096,)" in result.stdout
    kept = [line.split()[0] for line in result.stdout.splitlines() if " saved " in line]
    assert kept and not any(name.startswith("drop") for name in kept), kept
