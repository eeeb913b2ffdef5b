"""How the files beside this script were written, once, by tritonsym's first file format
(symbol JSON version 1, parameters and optimizer states as safetensors with a SHA-256).

They are frozen: tests/test_file_format.py reads them to prove that checkpoints written by
an earlier tritonsym still load. Do not re-run this to make a failing test pass; a reader
that no longer accepts these files would lose its users' checkpoints. A deliberate format
change bumps the version and keeps reading version 1.

    python tests/data/format_v1/write_files.py
"""

from pathlib import Path

import torch

import tritonsym as ts
from tritonsym.io import DataBatch

HERE = Path(__file__).resolve().parent


def network():
    net = ts.sym.FullyConnected(ts.sym.Variable("data"), name="fc1", num_hidden=5)
    net = ts.sym.Activation(net, name="tanh1", act_type="tanh")
    net = ts.sym.FullyConnected(net, name="fc2", num_hidden=3)
    return ts.sym.SoftmaxOutput(net, name="softmax")


def known_params() -> dict[str, torch.Tensor]:
    """Values that float32 holds exactly, so a test can write them down again."""
    return {"fc1_weight": (torch.arange(30.0).reshape(5, 6) - 15) / 32, "fc1_bias": torch.arange(5.0) / 8,
            "fc2_weight": (torch.arange(15.0).reshape(3, 5) - 7) / 16, "fc2_bias": -torch.arange(3.0) / 4}


def batch() -> DataBatch:
    return DataBatch(data=[(torch.arange(24.0).reshape(4, 6) - 12) / 10], label=[torch.tensor([0.0, 2.0, 1.0, 2.0])])


def main() -> None:
    mod = ts.mod.Module(network())
    mod.bind([("data", (4, 6))], [("softmax_label", (4,))])
    mod.init_params(arg_params=known_params())
    mod.init_optimizer(optimizer="adam", optimizer_params={"learning_rate": 0.01, "wd": 1e-3})
    mod.train_step(batch())
    mod.save_checkpoint(str(HERE / "mlp"), 2, save_optimizer_states=True)


if __name__ == "__main__":
    main()
