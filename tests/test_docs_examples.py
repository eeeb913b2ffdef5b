"""Every code example in README.md and docs/ runs as written, and prints what it says.

Each file's ```python blocks run in order in one fresh Python process (so an example that
registers an operator or seeds the generator leaves nothing behind), in an empty folder.
A line ``print(...)  # value`` (or a print followed by a comment line) promises that output
when the comment shows a value (a number, a word, a list) rather than describing it: the
printed lines must include each promised value, in order. A ```json block that is a
tritonsym symbol must load. ```text blocks are signatures and ```sh blocks shell commands
(the set-up commands are what CI runs from a fresh clone); neither is run here.

Runs that would take minutes as written are shortened (``SHORTER``); ``SETUP`` gives a
file what its example expects from its surroundings (torchrun's environment).
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import socket
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
FILES = ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.S)

SHORTER = {"docs/training.md": [("num_epoch=15", "num_epoch=2"), ('"digits", 15', '"digits", 2'),
                                 ("num_epoch=10", "num_epoch=1")],
           "docs/distributed.md": [("num_epoch=10", "num_epoch=1")]}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _setup(name: str) -> dict[str, str]:
    if name == "docs/distributed.md":  # one worker, as torchrun would start it
        return dict(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()), RANK="0", WORLD_SIZE="1",
                    LOCAL_RANK="0", LOCAL_WORLD_SIZE="1")
    return {}


def blocks(name: str, language: str) -> list[str]:
    return [code for lang, code in BLOCK.findall((ROOT / name).read_text()) if lang == language]


def _looks_printed(text: str) -> bool:
    """A comment that shows a value (a number, a word, a list or tuple) rather than
    describing what is printed ("the memory plan, structured")."""
    return bool(text) and (" " not in text or text[0] in "[({'\"-0123456789")


def promised_output(code: str) -> list[str]:
    """The texts the block's print lines promise, in order."""
    promised, lines = [], code.split("\n")
    for i, line in enumerate(lines):
        if not line.lstrip().startswith("print("):
            continue
        inline = re.search(r"\)\s+#\s*(.+)$", line)
        text = inline.group(1).strip() if inline else (
            lines[i + 1].lstrip()[2:].strip() if i + 1 < len(lines) and lines[i + 1].lstrip().startswith("# ") else "")
        if _looks_printed(text):
            promised.append(text)
    return promised


# The README's and the Symbol API's examples in the quick run; the others (training runs,
# several devices and workers, gradient checks, bindings and their reports) under -m slow,
# which CI runs too.
QUICK_DOCS = ("README.md", "docs/symbol.md")


@pytest.mark.parametrize("name", [pytest.param(f, marks=() if f in QUICK_DOCS else pytest.mark.slow)
                                  for f in FILES if blocks(f, "python")])
def test_python_examples_run_and_print_what_they_say(name, tmp_path):
    code = "\n\n".join(blocks(name, "python"))
    for old, new in SHORTER.get(name, []):
        assert old in code, f"{name}: the shortening {old!r} no longer applies"
        code = code.replace(old, new)
    # The examples bind on cpu(): Triton's interpreter, also on a machine with a GPU.
    env = {**os.environ, **_setup(name), "TRITONSYM_INTERPRET": "1", "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, f"{name}: an example failed\n{done.stderr[-3000:]}"
    printed = [line.strip() for line in done.stdout.splitlines()]
    at = 0
    for text in promised_output(code):
        while at < len(printed) and printed[at] != text:
            at += 1
        assert at < len(printed), f"{name}: no printed line {text!r} (in order) in:\n{done.stdout[-3000:]}"
        at += 1


@pytest.mark.parametrize("name", [f for f in FILES if blocks(f, "json")])
def test_json_examples_load(name):
    import tritonsym as ts

    for text in blocks(name, "json"):
        if json.loads(text).get("format") == "tritonsym-symbol":
            assert ts.sym.load_json(text).list_arguments()


@pytest.mark.slow  # 5 s of training; README's examples stay in the quick run
def test_the_training_example_trains_and_checkpoints(tmp_path, monkeypatch):
    """The training page's example, with its checks: what fit, score, predict and the
    checkpoint files are said to give."""
    code = blocks("docs/training.md", "python")[0]
    for old, new in SHORTER["docs/training.md"]:
        code = code.replace(old, new)
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(code, "docs/training.md", "exec"), scope)
    assert scope["probs"].shape == (359, 10)
    assert scope["mod"].score(scope["val"], "acc")[0][1] > 0.9
    assert scope["mod2"].optimizer is None  # the states wait for init_optimizer
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "digits-0001.safetensors", "digits-0002.safetensors", "digits-0002.states.safetensors", "digits-symbol.json"]
