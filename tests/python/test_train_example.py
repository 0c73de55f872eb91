"""examples/train_torch.py: both loaders train, and `sluice profile` of the job measures the
training step the script measures itself, with the right verdict."""

import json
import os
import subprocess
import sys

import pytest

from test_pipeline import image_folder  # noqa: F401

pytest.importorskip("torch")
pytest.importorskip("torchvision")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLE = os.path.join(ROOT, "examples", "train_torch.py")
SLUICE_BIN = os.environ.get("SLUICE_BIN", "")


def slow_config(tmp_path):
    """The example's pipeline with one worker and a 15 ms wait per image: input-bound."""
    with open(os.path.join(ROOT, "examples", "torch_pipeline.json")) as f:
        cfg = json.load(f)
    for stage in cfg["stages"]:
        stage.pop("parallelism", None)
        if stage["op"] != "prefetch":
            stage.pop("buffer_size", None)
        if stage["op"] == "batch":
            stage["args"]["size"] = 4
        if stage["op"] == "decode_random_resized_crop":
            stage["args"]["size"] = 64
    cfg["stages"].insert(3, {"name": "slow", "op": "sleep", "args": {"us": 15000}})
    path = tmp_path / "slow.json"
    path.write_text(json.dumps(cfg))
    return path


def run_example(args, timeout=120):
    proc = subprocess.run([sys.executable, EXAMPLE, "--model", "tiny", "--json", *args],
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_both_loaders_train(image_folder, tmp_path):
    for loader in ("sluice", "dataloader"):
        summary = run_example(["--data", str(image_folder), "--loader", loader, "--workers", "0",
                               "--pipeline", str(slow_config(tmp_path)), "--steps", "3",
                               "--warmup-steps", "1"])
        assert summary["loader"] == loader and summary["steps"] == 3
        assert summary["images_per_s"] > 0 and summary["last_loss"] > 0


@pytest.mark.skipif(not SLUICE_BIN, reason="SLUICE_BIN (the CLI) not given")
def test_profile_measures_the_scripts_own_training_step(image_folder, tmp_path):
    out = tmp_path / "prof"
    job = [sys.executable, EXAMPLE, "--model", "tiny", "--json", "--data", str(image_folder),
           "--pipeline", str(slow_config(tmp_path)), "--seconds", "4", "--warmup-steps", "0"]
    proc = subprocess.run([SLUICE_BIN, "profile", "--seconds", "30", "--out", str(out), "--",
                           *job], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    own = json.loads(next(line for line in proc.stdout.splitlines() if '"step_ms"' in line))
    assert (out / "report.html").exists()
    analysis = json.loads(subprocess.run(
        [SLUICE_BIN, "analyze", "--json", str(out / "trace.json")], check=True,
        capture_output=True, text=True, timeout=60).stdout)
    traced_ms = 1e3 * analysis["consumer"]["step_seconds"]
    assert abs(traced_ms - own["step_ms"]) <= 0.10 * own["step_ms"], (traced_ms, own)
    # The script waited most of the time for its batches: the trace says so too.
    assert own["wait_fraction"] > 0.5, own
    assert analysis["input_bound"]["verdict"] == "highly", analysis["input_bound"]
    assert "slow" in analysis["bottleneck"]["stages"], analysis["bottleneck"]
