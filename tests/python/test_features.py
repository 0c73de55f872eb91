"""Tests of the Python package's loader features: len(), passes and set_epoch, class names,
manifests, pin_memory without a GPU, Python ops (and the GIL named when one limits), Ctrl-C
during a long wait, `sluice profile` of a Python job."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

import sluice

from test_pipeline import CLASSES, PER_CLASS, image_config, image_folder  # noqa: F401

SLUICE_BIN = os.environ.get("SLUICE_BIN", "")


def labels_of(pipeline):
    out = []
    for _, labels in pipeline:
        out += [int(v) for v in labels.tolist()]
    return out


def test_len_counts_batches_per_iteration(image_folder):
    # 12 images (3 classes of 4).
    assert len(sluice.Pipeline(image_config(image_folder, batch=5))) == 3  # 5, 5, 2
    cfg = image_config(image_folder, batch=5, epochs=2)
    cfg["stages"][-1]["args"]["drop_remainder"] = True
    p = sluice.Pipeline(cfg)
    assert len(p) == 4
    assert len(list(p)) == 4
    assert len(sluice.Pipeline(image_config(image_folder, batch=1), world_size=5, rank=4)) == 2
    with pytest.raises(TypeError, match="no length"):
        len(sluice.Pipeline(image_config(image_folder, epochs=-1)))


def test_each_pass_is_a_new_epoch_and_set_epoch_picks_one(image_folder):
    pytest.importorskip("torch")
    cfg = image_config(image_folder, batch=12)
    one_run = sluice.Pipeline(dict(cfg, epochs=3))
    three_epochs = [labels_of([item]) for item in one_run]
    passes = sluice.Pipeline(cfg)
    by_pass = [labels_of(passes) for _ in range(3)]
    assert by_pass == three_epochs  # pass k runs epoch k, shuffled as epoch k
    assert by_pass[0] != by_pass[1]
    again = sluice.Pipeline(cfg)
    again.set_epoch(2)
    assert labels_of(again) == three_epochs[2]
    again.set_epoch(0)
    assert labels_of(again) == three_epochs[0]


def test_class_names_follow_the_folders(image_folder):
    assert sluice.Pipeline(image_config(image_folder)).classes == [c for c, _ in CLASSES]


def test_manifest_labels_by_name_and_index(image_folder, tmp_path):
    torch = pytest.importorskip("torch")
    rows = [(f"{name}/{i}.jpg", name) for name, _ in CLASSES for i in range(PER_CLASS)]
    csv = image_folder / "train.csv"
    csv.write_text("path,label\n" + "".join(f'"{p}",{n}\n' for p, n in rows))
    jsonl = tmp_path / "train.jsonl"
    jsonl.write_text("".join(json.dumps({"file": str(image_folder / p),
                                         "y": [c for c, _ in CLASSES].index(n)}) + "\n"
                             for p, n in rows))
    for source in ({"path": str(csv)}, {"path": str(jsonl), "path_key": "file", "label_key": "y"}):
        cfg = image_config(image_folder)
        cfg["stages"][0] = {"name": "files", "op": "read_manifest", "args": source}
        p = sluice.Pipeline(cfg)
        for images, labels in p:
            colour = images.mean(dim=(2, 3)).argmax(dim=1)
            assert torch.equal(colour, labels)
        assert len(p) == 3
    assert sluice.Pipeline(dict(image_config(image_folder), stages=[
        {"name": "files", "op": "read_manifest", "args": {"path": str(csv)}}])).classes == \
        [c for c, _ in CLASSES]


def test_manifest_errors_name_the_file_line_and_key(image_folder):
    bad = image_folder / "bad.csv"
    bad.write_text("path,label\ncat/0.jpg\n")
    cfg = image_config(image_folder)
    cfg["stages"][0] = {"name": "files", "op": "read_manifest", "args": {"path": str(bad)}}
    with pytest.raises(sluice.Error, match=r"stage 'files'.*bad\.csv:2: 1 fields, the header has 2"):
        sluice.Pipeline(cfg)


def test_pin_memory_without_a_gpu_warns_once_and_works(image_folder, tmp_path):
    code = f"""
import json, sluice
cfg = json.loads({json.dumps(image_config(image_folder))!r})
for _ in range(2):
    n = sum(1 for _ in sluice.Pipeline(cfg, pin_memory=True))
print(n)
"""
    (tmp_path / "pin.py").write_text(code)
    proc = subprocess.run([sys.executable, str(tmp_path / "pin.py")], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "3"
    assert proc.stderr.count("pin_memory:") == 1, proc.stderr
    assert "ordinary (pageable) memory" in proc.stderr


def test_python_op_transforms_each_element(image_folder):
    torch = pytest.importorskip("torch")

    def invert(image, label):
        return 255 - image, label * 10
    sluice.register_op("test_invert", invert, deterministic=True, stateless=True)
    cfg = image_config(image_folder, shuffle=False)
    cfg["stages"][3:5] = [{"name": "crop", "op": "resize", "args": {"size": 32}},
                          {"name": "invert", "op": "test_invert"}]
    for images, labels in sluice.Pipeline(cfg):
        assert images.dtype == torch.uint8
        # Inverted red is cyan: the darkest channel now says the class.
        assert torch.equal(images.float().mean(dim=(1, 2)).argmin(dim=1) * 10, labels)
    with pytest.raises(sluice.Error, match="parallelism.*Python op and holds the GIL"):
        cfg["stages"][4]["parallelism"] = 2
        sluice.Pipeline(cfg)
    with pytest.raises(sluice.Error):  # a name is registered once
        sluice.register_op("test_invert", invert)


def test_python_op_error_names_the_stage_and_the_exception(image_folder):
    def broken(image, label):
        raise ValueError("no such pixel")
    sluice.register_op("test_broken", broken)
    cfg = image_config(image_folder)
    cfg["stages"].insert(3, {"name": "mine", "op": "test_broken"})
    with pytest.raises(sluice.Error, match="mine.*Python op 'test_broken' raised.*no such pixel"):
        list(sluice.Pipeline(cfg))


@pytest.mark.skipif(not SLUICE_BIN, reason="SLUICE_BIN (the CLI) not given")
def test_a_limiting_python_op_is_named_with_the_gil(image_folder, tmp_path):
    cfg = image_config(image_folder, epochs=-1)
    cfg["stages"].insert(3, {"name": "pyaug", "op": "slow_py"})
    cfg["stages"].append({"name": "prefetch", "op": "prefetch", "buffer_size": 2})
    (tmp_path / "job.py").write_text(f"""
import json, time, sluice
def slow(image, label):
    end = time.perf_counter() + 0.004  # 4 ms of Python per image, holding the GIL
    while time.perf_counter() < end:
        pass
    return image, label
sluice.register_op("slow_py", slow)
cfg = json.loads({json.dumps(cfg)!r})
stop = time.monotonic() + 3
for images, labels in sluice.Pipeline(cfg):
    if time.monotonic() > stop:
        break
""")
    out = tmp_path / "prof"
    subprocess.run([SLUICE_BIN, "profile", "--out", str(out), "--", sys.executable,
                    str(tmp_path / "job.py")], check=True, capture_output=True, timeout=120)
    analysis = subprocess.run([SLUICE_BIN, "analyze", "--json", str(out / "trace.json")],
                              check=True, capture_output=True, text=True, timeout=60)
    result = json.loads(analysis.stdout)
    bottleneck = result["bottleneck"]
    assert "pyaug" in bottleneck["stages"], bottleneck
    assert "holds the GIL" in bottleneck["why"], bottleneck["why"]
    stage = next(s for s in result["stages"] if s["name"] == "pyaug")
    assert stage["holds_gil"] and not stage["parallelizable"]


def test_sigint_during_a_long_wait_stops_within_the_stop_timeout(image_folder, tmp_path):
    cfg = image_config(image_folder, batch=1, epochs=-1)
    # Each element takes 3 s on one worker: next() waits seconds for each.
    cfg["stages"].insert(3, {"name": "slow", "op": "sleep", "args": {"us": 3e6},
                             "buffer_size": 1})
    (tmp_path / "wait.py").write_text(f"""
import json, sys, sluice
p = sluice.Pipeline(json.loads({json.dumps(cfg)!r}), stop_timeout=0.5)
try:
    next(p)
    print("first", flush=True)
    next(p)
except KeyboardInterrupt:
    print("interrupted", flush=True)
    sys.exit(3)
""")
    proc = subprocess.Popen([sys.executable, str(tmp_path / "wait.py")], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "first"
    time.sleep(0.2)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert time.monotonic() - sent < 2.0, err
    assert proc.returncode == 3, err
    assert "interrupted" in out


def test_autotune_retunes_a_python_job_and_records_it(tmp_path):
    # A sleep stage inline on the consumer's thread: the tuner gives it workers while it runs.
    cfg = {"name": "py_autotune", "epochs": -1, "stages": [
        {"name": "src", "op": "generate", "args": {"count": 400, "bytes": 64}},
        {"name": "slow", "op": "sleep", "args": {"us": 2000}},
        {"name": "batch", "op": "batch", "args": {"size": 4}}]}
    (tmp_path / "job.py").write_text(f"""
import json, time, sluice
p = sluice.Pipeline(json.loads({json.dumps(cfg)!r}), autotune=True)
end = time.monotonic() + 6
for _ in p:
    time.sleep(0.005)  # the training step
    if time.monotonic() > end:
        break
""")
    trace_path = tmp_path / "out" / "trace.json"
    env = dict(os.environ, SLUICE_TRACE=str(trace_path), SLUICE_AUTOTUNE_INTERVAL="1")
    proc = subprocess.run([sys.executable, str(tmp_path / "job.py")], capture_output=True,
                          text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    # sluice-trace/2 is JSON Lines; the last "state" line holds the re-tunes.
    lines = [json.loads(line) for line in trace_path.read_text().splitlines()]
    assert lines[0]["format"] == "sluice-trace/2", lines[0]
    state = [line for line in lines if line.get("chunk") == "state"][-1]
    retunes = state["pipelines"][0]["retunes"]
    assert retunes and retunes[0]["action"] == "apply", retunes
    assert any(c["stage"] == "slow" and c["knob"] == "parallelism" and c["to"] > 1
               for c in retunes[0]["changes"]), retunes[0]
    tuned = json.loads((tmp_path / "out" / "tuned.json").read_text())
    slow = [s for s in tuned["stages"] if s["name"] == "slow"][0]
    assert slow.get("parallelism", 1) > 1
