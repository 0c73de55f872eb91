"""sluice: a data-loader runtime a PyTorch job iterates in place of a DataLoader.

    for images, labels in sluice.Pipeline("train.json", rank=rank, world_size=world_size):
        ...

Each item is a tuple of tensors in the element's tensor order (images, then labels after a
batch), handed over without a copy through DLPack: torch tensors when torch imports, otherwise
`sluice.Tensor` objects that any DLPack consumer (numpy.from_dlpack) takes.
"""

import atexit
import json
import os
import weakref

from . import _sluice
from ._sluice import Error, Tensor, _Pipeline, capsule_data_ptr

try:  # torch is optional at run time
    from torch.utils.dlpack import from_dlpack as _torch_from_dlpack
except ImportError:  # pragma: no cover - depends on the environment
    _torch_from_dlpack = None

Error.__module__ = "sluice"  # tracebacks read sluice.Error
Tensor.__module__ = "sluice"
_sluice._set_tensor_factory(_torch_from_dlpack)

__all__ = ["Pipeline", "Error", "Tensor", "have_torch", "register_op"]

_live = weakref.WeakSet()


@atexit.register
def _stop_all():
    # Before the interpreter finalizes: a worker running a Python op needs the GIL to finish.
    for p in list(_live):
        p.stop()


def have_torch():
    """True when items come as torch tensors."""
    return _torch_from_dlpack is not None


def register_op(name, fn, *, deterministic=False, stateless=False):
    """Makes `name` a map op for every pipeline created afterwards in this process.

    fn is called with the element's tensors (torch tensors sharing the runtime's buffers: read
    them, do not write them; `bytes` for an element of raw file contents) and returns a tensor
    or a tuple of tensors (copied into the runtime), or bytes. It runs under the GIL, one call at
    a time in the whole process, so the op is sequential: the tuner never gives it workers, and
    the analyzer names the GIL when it limits the pipeline. Declare deterministic=True only when
    fn gives the same output for the same input every epoch (a cache may then be placed after
    it), stateless=True when it keeps nothing between calls.
    """
    _sluice.register_op(name, fn, bool(deterministic), bool(stateless))


class Pipeline:
    """An iterable over a sluice pipeline's outputs.

    config: a path to a JSON pipeline config, or the config as a dict (relative paths in a dict
        resolve against the current directory).
    epochs: overrides the config's epochs per iteration (-1 repeats forever).
    rank, world_size: this process's shard of every epoch for data-parallel jobs (the first
        stage, a source, gets num_shards=world_size and shard_index=rank).
    pin_memory: batches in page-locked memory for fast, asynchronous copies to a CUDA device;
        without one, a warning and ordinary memory.
    stop_timeout: seconds stop() (and Ctrl-C) waits for threads still inside an op.
    autotune: tune workers and queue sizes while the job runs (as SLUICE_AUTOTUNE=1 does); the
        re-tunes go into the trace (SLUICE_TRACE, or sluice-autotune/trace.json) and the last
        config into tuned.json beside it when the process exits.

    Iterating again after an iteration started runs the following epochs (as a DataLoader does,
    a fresh pass each time, with new shuffles); set_epoch(n) makes the next iteration epoch n
    alone. Raises sluice.Error, naming the file, stage and key, for a bad config and, during
    iteration, naming the stage whose op failed. The pipeline's threads start on the first
    next() and stop at the end, on stop(), or when the object is garbage collected.
    """

    def __init__(self, config, *, epochs=None, rank=0, world_size=1, pin_memory=False,
                 stop_timeout=5.0, autotune=False):
        if isinstance(config, dict):
            self._source = ("", json.dumps(config), os.path.join(os.getcwd(), "<dict>"))
        else:
            self._source = (os.fspath(config), "", "")
        self._options = {"epochs": epochs, "first_epoch": 0, "rank": int(rank),
                         "world_size": int(world_size), "pin_memory": bool(pin_memory),
                         "stop_timeout": float(stop_timeout), "autotune": bool(autotune)}
        self._impl = _Pipeline(*self._source, self._options)
        self._started = False
        _live.add(self)

    def _rebuild(self):
        self._impl.stop()
        self._impl = _Pipeline(*self._source, self._options)
        self._started = False

    def __iter__(self):
        if self._started:  # a new pass: the epochs after the ones the last pass ran
            if self._impl.epochs < 0:
                raise Error(f"pipeline '{self.name}' repeats forever: it has no next pass")
            self._options["first_epoch"] += self._impl.epochs
            self._rebuild()
        return self

    def __next__(self):
        self._started = True
        if _torch_from_dlpack is None:
            return self._impl.next_tensors()
        return tuple(_torch_from_dlpack(c) for c in self._impl.next_capsules())

    def __len__(self):
        """Items one iteration yields, when every stage knows its count up front."""
        n = self._impl.length
        if n is None:
            raise TypeError(f"pipeline '{self.name}' has no length: it repeats forever or a "
                            "stage (such as filter) drops an unknown number of elements")
        return n

    def set_epoch(self, epoch):
        """The next iteration runs epoch `epoch` alone: its shuffle and random augmentation are
        those of that epoch number (as DistributedSampler.set_epoch, for loops that count
        epochs themselves)."""
        if int(epoch) < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        self._options["first_epoch"] = int(epoch)
        self._options["epochs"] = 1
        self._rebuild()

    @property
    def classes(self):
        """The class names the labels index (list_files with label_from, read_manifest)."""
        return self._impl.classes

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
