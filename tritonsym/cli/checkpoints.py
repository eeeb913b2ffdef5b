"""Which checkpoint ``tritonsym train --resume`` continues from (the MLP and the transformer jobs)."""

from __future__ import annotations

from ..base import TritonSymError


def last_complete_checkpoint(prefix: str) -> int | None:
    """The highest epoch saved under ``prefix`` whose weights and optimizer states come from
    one save (a run killed between the two files leaves a pair that does not match)."""
    import glob
    import os
    import re

    from .. import model

    epochs = []
    for path in glob.glob(glob.escape(prefix) + "-*.states.safetensors"):
        found = re.fullmatch(re.escape(os.path.basename(prefix)) + r"-(\d{4,})\.states\.safetensors",
                             os.path.basename(path))
        if found:
            epochs.append(int(found.group(1)))
    for epoch in sorted(epochs, reverse=True):
        params, states = model.params_path(prefix, epoch), model.states_path(prefix, epoch)
        try:
            metadata = model.read_metadata(params)
            model.check_pair(states, model.read_metadata(states), params)
        except (TritonSymError, OSError):
            continue
        if metadata.get("epoch", str(epoch)) == str(epoch):
            return epoch
    return None
