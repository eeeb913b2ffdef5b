"""The README's training example runs as written (with fewer epochs)."""

import pathlib
import re


def test_training_section_example_runs(tmp_path, monkeypatch):
    readme = (pathlib.Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme[readme.index("## Training ("):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert code.count("15") == 3  # num_epoch, save_checkpoint, load: shortened together below
    monkeypatch.chdir(tmp_path)
    scope = {}
    exec(compile(code.replace("15", "2"), "README.md", "exec"), scope)
    assert scope["probs"].shape == (359, 10)
    assert scope["mod"].score(scope["val"], "acc")[0][1] > 0.9
    assert scope["mod2"].optimizer is None  # the states wait for init_optimizer
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "digits-0001.safetensors", "digits-0002.safetensors", "digits-0002.states.safetensors", "digits-symbol.json"]
