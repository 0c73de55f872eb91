"""Tests of the Python package: shapes, labels, zero copy, errors, shards, counters."""

import gc
import json
import threading
import time

import pytest

import sluice

PIL_Image = pytest.importorskip("PIL.Image")

# Class folders in sorted order, each a solid colour, so that a decoded image says its label.
CLASSES = [("cat", (255, 0, 0)), ("dog", (0, 255, 0)), ("fish", (0, 0, 255))]
PER_CLASS = 4


def write_jpeg(path, color, size=(48, 40)):
    path.parent.mkdir(parents=True, exist_ok=True)
    PIL_Image.new("RGB", size, color).save(path, quality=95)


@pytest.fixture
def image_folder(tmp_path):
    root = tmp_path / "train"
    for name, color in CLASSES:
        for i in range(PER_CLASS):
            write_jpeg(root / name / f"{i}.jpg", color)
    return root


def image_config(root, batch=4, epochs=1, shuffle=True):
    return {
        "name": "py_test",
        "epochs": epochs,
        "stages": [
            {"name": "files", "op": "list_files",
             "args": {"pattern": str(root / "*" / "*.jpg"), "shuffle": shuffle, "seed": 3,
                      "label_from": "parent_dir"}},
            {"name": "read", "op": "read_file"},
            {"name": "decode", "op": "decode_jpeg"},
            {"name": "crop", "op": "random_resized_crop", "args": {"size": 32, "seed": 5}},
            {"name": "normalize", "op": "normalize", "args": {"layout": "chw"}},
            {"name": "batch", "op": "batch", "args": {"size": batch}},
        ],
    }


def test_batches_shapes_dtypes_and_labels(image_folder):
    torch = pytest.importorskip("torch")
    seen = []
    for images, labels in sluice.Pipeline(image_config(image_folder)):
        assert isinstance(images, torch.Tensor)
        assert images.shape == (4, 3, 32, 32) and images.dtype == torch.float32
        assert labels.shape == (4,) and labels.dtype == torch.int64
        # Solid red / green / blue images: the brightest channel is the class index.
        colour = images.mean(dim=(2, 3)).argmax(dim=1)
        assert torch.equal(colour, labels)
        seen += labels.tolist()
    assert sorted(seen) == sorted(i for i in range(len(CLASSES)) for _ in range(PER_CLASS))


def test_config_file_path_and_epochs_override(image_folder, tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps(image_config(image_folder, epochs=1)))
    items = list(sluice.Pipeline(path, epochs=2))
    assert len(items) == 2 * len(CLASSES) * PER_CLASS // 4


def test_zero_copy(image_folder):
    torch = pytest.importorskip("torch")
    p = sluice.Pipeline(image_config(image_folder))
    capsules = p._impl.next_capsules()
    ptrs = [sluice.capsule_data_ptr(c) for c in capsules]
    images, labels = (torch.from_dlpack(c) for c in capsules)
    # torch took the element's buffer itself, not a copy.
    assert images.data_ptr() == ptrs[0] and labels.data_ptr() == ptrs[1]
    # The two tensors of a batch share no bytes.
    a0, a1 = images.data_ptr(), images.data_ptr() + images.numel() * images.element_size()
    b0, b1 = labels.data_ptr(), labels.data_ptr() + labels.numel() * labels.element_size()
    assert a1 <= b0 or b1 <= a0
    # Without the pipeline, the tensors keep their buffers alive.
    expected = images.clone()
    p.stop()
    del p
    gc.collect()
    assert torch.equal(images, expected)


def test_tensor_objects_without_torch_conversion(image_folder):
    p = sluice.Pipeline(image_config(image_folder))
    images, labels = p._impl.next_tensors()
    assert images.shape == [4, 3, 32, 32] and images.dtype == "float32"
    assert labels.shape == [4] and labels.dtype == "int64"
    assert images.__dlpack_device__() == (1, 0)
    torch = pytest.importorskip("torch")
    t = torch.from_dlpack(images)
    assert t.data_ptr() == images.data_ptr
    np = pytest.importorskip("numpy")
    if hasattr(np, "from_dlpack"):
        arr = np.from_dlpack(labels)
        assert arr.ctypes.data == labels.data_ptr


def test_op_error_names_the_stage(image_folder):
    good = (image_folder / "cat" / "0.jpg").read_bytes()
    (image_folder / "cat" / "0.jpg").write_bytes(good[:20])  # truncated inside the header
    with pytest.raises(sluice.Error, match="stage 'decode'"):
        for _ in sluice.Pipeline(image_config(image_folder, shuffle=False)):
            pass


def test_bad_config_raises_error(tmp_path):
    with pytest.raises(sluice.Error, match="pattern"):
        sluice.Pipeline({"name": "x", "stages": [
            {"name": "files", "op": "list_files", "args": {"pattern": str(tmp_path / "*.none")}}]})


def shard_labels(root, rank, world_size, epochs):
    # One file per folder: the label identifies the file.
    cfg = {"name": "shards", "epochs": epochs, "stages": [
        {"name": "files", "op": "list_files",
         "args": {"pattern": str(root / "*" / "*.jpg"), "shuffle": True, "seed": 9,
                  "label_from": "parent_dir"}}]}
    out = []
    for (label,) in sluice.Pipeline(cfg, rank=rank, world_size=world_size):
        out.append(int(label.item()) if hasattr(label, "item") else label)
    return out


def test_two_shards_are_disjoint_and_cover_every_epoch(tmp_path):
    pytest.importorskip("torch")
    root = tmp_path / "one_per_class"
    n = 13
    for i in range(n):
        write_jpeg(root / f"c{i:02d}" / "x.jpg", (i, i, i), size=(8, 8))
    epochs = 3
    a = shard_labels(root, 0, 2, epochs)
    b = shard_labels(root, 1, 2, epochs)
    assert len(a) + len(b) == n * epochs
    per = [len(a) // epochs, len(b) // epochs]
    assert sorted(per) == [n // 2, n - n // 2]
    for e in range(epochs):
        ea = a[e * per[0]:(e + 1) * per[0]]
        eb = b[e * per[1]:(e + 1) * per[1]]
        assert not set(ea) & set(eb)
        assert sorted(ea + eb) == list(range(n))


def test_bad_rank_raises(image_folder):
    with pytest.raises(sluice.Error, match="rank"):
        sluice.Pipeline(image_config(image_folder), rank=2, world_size=2)


def test_snapshot_has_the_stages(image_folder):
    p = sluice.Pipeline(image_config(image_folder))
    batches = sum(1 for _ in p)
    snap = p.snapshot()
    names = [s["name"] for s in snap["stages"]]
    assert names == ["files", "read", "decode", "crop", "normalize", "batch"]
    by_name = {s["name"]: s for s in snap["stages"]}
    assert by_name["batch"]["elements_out"] == batches
    assert by_name["decode"]["op"] == "decode_jpeg"
    assert by_name["decode"]["elements_out"] == len(CLASSES) * PER_CLASS
    for key in ("cpu_seconds", "busy_seconds", "elements_in", "bytes_out"):
        assert key in by_name["decode"]
    assert snap["consumer"]["next_calls"] == batches


def test_stop_ends_iteration_and_threads_run_while_waiting(image_folder):
    cfg = image_config(image_folder, epochs=-1)
    cfg["stages"].insert(3, {"name": "slow", "op": "sleep", "args": {"us": 20000}})
    p = sluice.Pipeline(cfg)
    ticks = []
    stop = threading.Event()

    def ticker():
        while not stop.is_set():
            ticks.append(1)
            time.sleep(0.001)

    t = threading.Thread(target=ticker)
    t.start()
    next(p)  # four 20 ms sleeps with the GIL released
    stop.set()
    t.join()
    assert len(ticks) >= 3  # 80 ms of sleeps; a held GIL would allow at most one tick
    p.stop()
    with pytest.raises(StopIteration):
        next(p)


def run_script(code, tmp_path, **popen_args):
    import os
    import subprocess
    import sys
    script = tmp_path / "script.py"
    script.write_text(code)
    env = dict(os.environ)
    return subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **popen_args)


def test_without_torch_items_are_dlpack_objects(image_folder, tmp_path):
    code = f"""
import sys
sys.modules["torch"] = None  # as if torch were not installed
import json, sluice
assert not sluice.have_torch()
cfg = json.loads({json.dumps(image_config(image_folder))!r})
images, labels = next(iter(sluice.Pipeline(cfg)))
assert isinstance(images, sluice.Tensor), type(images)
assert images.shape == [4, 3, 32, 32] and labels.dtype == "int64"
print("ok")
"""
    proc = run_script(code, tmp_path)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out.strip() == "ok"


def test_sigint_during_iteration_ends_the_process(image_folder, tmp_path):
    import signal
    cfg = image_config(image_folder, epochs=-1)
    cfg["stages"].insert(3, {"name": "slow", "op": "sleep", "args": {"us": 2000}})
    code = f"""
import json, sys, sluice
cfg = json.loads({json.dumps(cfg)!r})
print("started", flush=True)
try:
    for _ in sluice.Pipeline(cfg):
        pass
except KeyboardInterrupt:
    print("interrupted", flush=True)
    sys.exit(3)
"""
    proc = run_script(code, tmp_path)
    assert proc.stdout.readline().strip() == "started"
    time.sleep(0.5)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=10)
    assert time.monotonic() - sent < 2.0
    assert proc.returncode == 3, err
    assert "interrupted" in out


def rss_bytes():
    import os
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_rss_stable_over_2000_batches_with_tensors_dropped(image_folder):
    p = sluice.Pipeline(image_config(image_folder, epochs=-1))
    for _ in range(300):  # warm up the allocators
        next(p)
    before = rss_bytes()
    for _ in range(2000):
        items = next(p)
        del items
    grown = rss_bytes() - before
    p.stop()
    # A leaked batch is 48 KiB of images: 2,000 of them would be ~100 MB.
    assert grown < 8 * 1024 * 1024, f"RSS grew {grown} bytes"


def thread_count():
    import os
    return len(os.listdir("/proc/self/task"))


def test_garbage_collection_stops_the_threads(image_folder):
    cfg = image_config(image_folder, epochs=-1)
    cfg["stages"][2]["parallelism"] = 2
    cfg["stages"].append({"name": "prefetch", "op": "prefetch", "buffer_size": 2})
    before = thread_count()
    p = sluice.Pipeline(cfg)
    # The folder is small: an epoch's workers may finish (and exit) before next() returns, and
    # the next epoch starts new ones; so look over a few batches.
    seen = 0
    for _ in range(20):
        next(p)
        seen = max(seen, thread_count())
    assert seen > before
    del p
    gc.collect()
    assert thread_count() == before
