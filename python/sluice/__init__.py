"""sluice: a data-loader runtime a PyTorch job iterates in place of a DataLoader.

    for images, labels in sluice.Pipeline("train.json", rank=rank, world_size=world_size):
        ...

Each item is a tuple of tensors in the element's tensor order (images, then labels after a
batch), handed over without a copy through DLPack: torch tensors when torch imports, otherwise
`sluice.Tensor` objects that any DLPack consumer (numpy.from_dlpack) takes.
"""

import json
import os

from ._sluice import Error, Tensor, _Pipeline, capsule_data_ptr

try:  # torch is optional at run time
    from torch.utils.dlpack import from_dlpack as _torch_from_dlpack
except ImportError:  # pragma: no cover - depends on the environment
    _torch_from_dlpack = None

Error.__module__ = "sluice"  # tracebacks read sluice.Error
Tensor.__module__ = "sluice"

__all__ = ["Pipeline", "Error", "Tensor", "have_torch"]


def have_torch():
    """True when items come as torch tensors."""
    return _torch_from_dlpack is not None


class Pipeline:
    """An iterable over a sluice pipeline's outputs.

    config: a path to a JSON pipeline config, or the config as a dict (relative paths in a dict
        resolve against the current directory).
    epochs: overrides the config's epochs (-1 repeats forever).
    rank, world_size: this process's shard of every epoch for data-parallel jobs (the first
        stage, a source, gets num_shards=world_size and shard_index=rank).

    Raises sluice.Error, naming the file, stage and key, for a bad config and, during
    iteration, naming the stage whose op failed. The pipeline's threads start on the first
    next() and stop at the end, on stop(), or when the object is garbage collected.
    """

    def __init__(self, config, *, epochs=None, rank=0, world_size=1):
        if isinstance(config, dict):
            self._impl = _Pipeline("", json.dumps(config),
                                   os.path.join(os.getcwd(), "<dict>"), epochs, rank, world_size)
        else:
            self._impl = _Pipeline(os.fspath(config), "", "", epochs, rank, world_size)

    def __iter__(self):
        return self

    def __next__(self):
        if _torch_from_dlpack is None:
            return self._impl.next_tensors()
        return tuple(_torch_from_dlpack(c) for c in self._impl.next_capsules())

    def snapshot(self):
        """Per-stage counters since start: {"stages": [{"name", "op", "elements_out",
        "cpu_seconds", "busy_seconds", ...}], "consumer": {...}, ...}."""
        return self._impl.snapshot()

    def stop(self):
        """Stops every thread of the pipeline; iteration then ends. Safe to call twice."""
        self._impl.stop()

    @property
    def name(self):
        return self._impl.name

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False
