"""A trained transformer saved to one file and written with later: ``models.saved`` and
``tritonsym sample`` (its output against the sampler's own, its errors)."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest
import torch

import tritonsym as ts
from tritonsym.cli import main
from tritonsym.models import saved, sequences, transformer

CHARACTERS = tuple(" .acehmnost")


def _random_params(cfg, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return {name: (torch.randn(shape, generator=generator, dtype=torch.float64) * 0.5).to(dtype)
            for name, (shape, dtype) in saved.expected_params(cfg).items()}


@pytest.fixture
def text_model(tmp_path):
    cfg = transformer.Config(vocab=len(CHARACTERS), max_len=8, width=8, heads=2, layers=1, positions="rotary",
                             kv_heads=1, norm="rms", dtype="float64")
    path = str(tmp_path / "text-transformer.safetensors")
    saved.save(path, cfg, _random_params(cfg), saved.Tokens(characters=CHARACTERS))
    return path, cfg


def test_a_saved_model_loads_as_it_was(text_model):
    path, cfg = text_model
    model = saved.load(path)
    assert model.cfg == cfg and model.tokens == saved.Tokens(characters=CHARACTERS)
    want = _random_params(cfg)
    assert model.params.keys() == want.keys()
    for name, value in want.items():
        assert model.params[name].dtype == torch.float64 and torch.equal(model.params[name], value), name


def test_damaged_foreign_and_mismatched_files_are_refused(text_model, tmp_path):
    path, cfg = text_model
    raw = bytearray(open(path, "rb").read())
    raw[-3] ^= 0xFF  # a flipped bit in the last parameter
    damaged = tmp_path / "damaged.safetensors"
    damaged.write_bytes(bytes(raw))
    with pytest.raises(ts.base.FormatError, match="do not match the checksum"):
        saved.load(str(damaged))
    checkpoint = str(tmp_path / "mlp.safetensors")
    ts.model.save_params(checkpoint, {"w": torch.ones(2)}, {})
    with pytest.raises(ts.base.FormatError, match="format 'tritonsym-params', expected 'tritonsym-transformer'"):
        saved.load(checkpoint)
    wrong = str(tmp_path / "wrong.safetensors")  # a file written with a configuration of another width
    ts.model.save_tensors(wrong, _random_params(transformer.Config(vocab=11, max_len=8, width=4, heads=2, layers=1,
                                                                   positions="rotary", kv_heads=1, norm="rms",
                                                                   dtype="float64")),
                          {"format": saved.FORMAT, "config": json.dumps(dataclasses.asdict(cfg)),
                           "tokens": '{"characters": null, "task": "sort"}'})
    with pytest.raises(ts.base.FormatError, match=r"token_embed_weight: stored shape \(11, 4\), the network has "
                                                  r"\(11, 8\)"):
        saved.load(wrong)
    digits = str(tmp_path / "digits.safetensors")  # a model of 5 tokens called a digits model
    five = transformer.Config(vocab=5, max_len=8, width=8, heads=2, layers=1)
    saved.save(digits, five, _random_params(five), saved.Tokens(task="sort"))
    with pytest.raises(ts.base.FormatError, match="a model of the task 'sort' with a vocabulary of 5 .* 11 tokens"):
        saved.load(digits)
    unreadable = str(tmp_path / "unreadable.safetensors")
    ts.model.save_tensors(unreadable, _random_params(cfg), {"format": saved.FORMAT, "config": "{\"vocab\": 11}"})
    with pytest.raises(ts.base.FormatError, match="its configuration or tokens cannot be read"):
        saved.load(unreadable)
    with pytest.raises(ts.base.ParamError, match="missing lm_head_weight"):
        saved.save(str(tmp_path / "x.safetensors"), cfg, {k: v for k, v in _random_params(cfg).items()
                                                          if k != "lm_head_weight"}, saved.Tokens(task="sort"))
    with pytest.raises(ts.base.ParamError, match="give characters .* or task"):
        saved.Tokens()


@pytest.mark.slow  # 13 s
def test_sample_writes_what_the_sampler_writes_for_prompts_of_every_length(text_model, capsys):
    path, cfg = text_model
    prompts = ["the cat", "on", "the mat. the cat sat"]  # the last longer than the caches (8): a ring
    assert main(["sample", path, *[a for p in prompts for a in ("--prompt", p)], "--length", "6"]) == 0
    lines = capsys.readouterr().out.splitlines()
    index = {c: k for k, c in enumerate(CHARACTERS)}
    sampler = sequences.Sampler(cfg, saved.load(path).params, ts.cpu(), rows=1)
    for prompt, line in zip(prompts, lines, strict=True):
        written = sampler.continue_([[index[c] for c in prompt]], 6)[0]
        assert line == prompt + "".join(CHARACTERS[k] for k in written)
    drawn = [main(["sample", path, "--prompt", "the", "--temperature", "0.9", "--top-p", "0.9", "--seed", "3",
                   "--length", "4"]) for _ in range(2)]
    assert drawn == [0, 0]
    first, second = capsys.readouterr().out.splitlines()
    assert first == second and first.startswith("the") and len(first) == 3 + 4  # the draw: a function of the seed


def test_a_digits_model_answers_each_question_at_its_own_length(tmp_path, capsys):
    cfg = transformer.Config(vocab=sequences.TASK_VOCAB, max_len=8, width=8, heads=2, layers=1)
    path = str(tmp_path / "sort-transformer.safetensors")
    saved.save(path, cfg, _random_params(cfg, seed=1), saved.Tokens(task="sort"))
    assert main(["sample", path, "--prompt", "312", "--prompt", "4"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [re.fullmatch(r"(\d+) -> ([0-9|]+)", line).groups()[0] for line in lines] == ["312", "4"]
    assert [len(line.split(" -> ")[1]) for line in lines] == [3, 1]  # the separator written as |
    sampler = sequences.Sampler(cfg, saved.load(path).params, ts.cpu(), rows=1)
    want = sampler.continue_([[3, 1, 2, sequences.SEP]], 3)[0]
    assert lines[0] == "312 -> " + sequences.digits_text(want)


def test_summary_shows_a_saved_transformers_network(text_model, capsys):
    path, cfg = text_model
    assert main(["summary", path]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{path}: a transformer of 1 blocks, width 8, 2 heads (1 for keys and values), rms norm, "
                          "gelu MLP, rotary positions, vocabulary 11 (characters), up to 8 tokens, float64")
    total = sum(torch.Size(shape).numel() for shape, _ in saved.expected_params(cfg).values())
    assert f"Total params: {total}" in out
    assert re.search(r"block0_att_attention \(ScaledDotProductAttention\)\s*\(1, 2, 8, 4\)", out)


@pytest.mark.parametrize(("argv", "message"), [
    (["--prompt", "the cxt"], "--prompt 'the cxt': characters 'x' are not in the model's vocabulary"),
    (["--prompt", ""], "--prompt '': a continuation needs at least one token"),
    (["--prompt", "a", "--length", "-1"], "--length -1: must be at least 0"),
    (["--prompt", "a", "--temperature", "-0.5"], "--temperature -0.5 must be 0 (greedy) or positive"),
    (["--prompt", "a", "--top-k", "0"], "--top-k 0 must be a whole number of tokens, at least 1"),
    (["--prompt", "a", "--device", "tpu"], "--device 'tpu': expected auto, cpu, gpu or gpu:N"),
])
def test_bad_sample_options_get_clear_errors(text_model, argv, message, capsys):
    assert main(["sample", text_model[0], *argv]) == 1
    assert message in capsys.readouterr().err


def test_sample_refuses_what_is_not_a_saved_model(tmp_path, capsys):
    assert main(["sample", str(tmp_path / "missing.safetensors"), "--prompt", "a"]) == 1
    assert "No such file" in capsys.readouterr().err
    text = tmp_path / "poem.txt"
    text.write_text("the cat sat on the mat")
    assert main(["sample", str(text), "--prompt", "a"]) == 1
    assert "not a readable safetensors file" in capsys.readouterr().err
    cfg = transformer.Config(vocab=sequences.TASK_VOCAB, max_len=8, width=8, heads=2, layers=1)
    path = str(tmp_path / "sort-transformer.safetensors")
    saved.save(path, cfg, _random_params(cfg), saved.Tokens(task="sort"))
    assert main(["sample", path, "--prompt", "3a1"]) == 1
    assert "a model of the sort task reads digits 0-9" in capsys.readouterr().err


def test_a_model_whose_weights_are_not_finite_writes_nothing(tmp_path, capsys):
    cfg = transformer.Config(vocab=sequences.TASK_VOCAB, max_len=8, width=8, heads=2, layers=1)
    params = _random_params(cfg)
    params["lm_head_bias"][3] = float("nan")  # a diverged run's weights: every distribution NaN
    path = str(tmp_path / "diverged-transformer.safetensors")
    saved.save(path, cfg, params, saved.Tokens(task="sort"))
    assert main(["sample", path, "--prompt", "31"]) == 1
    assert "row 0's next-token distribution holds 11 NaN/inf of 11" in capsys.readouterr().err


@pytest.mark.slow  # 12 s of training
def test_a_trained_text_model_writes_the_same_after_it_is_saved(tmp_path, capsys):
    poem = tmp_path / "poem.txt"
    poem.write_text("the cat sat on the mat. " * 12)
    prefix = str(tmp_path / "run")
    assert main(["train", "--model", "transformer", "--text", str(poem), "--epochs", "1", "--context", "12",
                 "--width", "16", "--layers", "1", "--sample-length", "10", "--prompt", "the mat", "--save", prefix,
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"saving: {prefix}-transformer.safetensors after each epoch" in out
    greedy = re.search(r"sample \(greedy\):\n(.*)\n", out).group(1)
    assert main(["sample", f"{prefix}-transformer.safetensors", "--prompt", "the mat", "--length", "10"]) == 0
    assert capsys.readouterr().out.splitlines() == [greedy]


@pytest.mark.slow  # 3 short trainings, 30 s
def test_a_resumed_transformer_run_ends_where_the_uninterrupted_one_ends(tmp_path, capsys):
    """With dropout (its masks' random state is saved with the optimizer's): 2 epochs in one
    run, and 1 then --resume to 2, give the same model, bit for bit."""
    poem = tmp_path / "poem.txt"
    poem.write_text("the cat sat on the mat. " * 12)
    options = ["train", "--model", "transformer", "--text", str(poem), "--context", "12", "--width", "16", "--layers",
               "1", "--dropout", "0.1", "--sample-length", "4", "--no-progress"]
    whole, part = str(tmp_path / "whole"), str(tmp_path / "part")
    assert main([*options, "--epochs", "2", "--save", whole]) == 0
    assert main([*options, "--epochs", "1", "--save", part]) == 0
    capsys.readouterr()
    assert main([*options, "--epochs", "2", "--save", part, "--resume"]) == 0
    assert f"resume: from {part}-0001, epochs 2 to 2" in capsys.readouterr().out
    want, got = saved.load(f"{whole}-transformer.safetensors"), saved.load(f"{part}-transformer.safetensors")
    for name, value in want.params.items():
        assert torch.equal(got.params[name], value), name
    assert main([*options, "--epochs", "2", "--save", part, "--resume"]) == 0
    assert "is already epoch 2 of --epochs 2: nothing to train" in capsys.readouterr().out
    assert main([*options, "--epochs", "3", "--save", part, "--resume", "--width", "8", "--heads", "2"]) == 1
    assert "trained with width 16 (now 8), heads 4 (now 2); give the same options" in capsys.readouterr().err
