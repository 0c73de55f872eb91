#!/usr/bin/python3
"""The Python package's cost per batch, and a PyTorch training job fed by sluice against the
same job fed by PyTorch's DataLoader, in one run.

  1. next() overhead: a pipeline far faster than its consumer (generate -> batch -> prefetch);
     per next() call from Python to the torch tensors, and the part of it spent in the C++
     runtime's Next() (the pipeline's own consumer counter), so the rest is the Python layer.
  2. examples/train_torch.py (--model tiny: small enough that the loader decides the rate) on
     the same ImageFolder of photographs, same crop, batch and cores: sluice with the example's
     config as shipped, and the DataLoader at each num_workers of 1..2*cores, ROUNDS rounds
     interleaved, each run WARMUP steps then SECONDS measured; the DataLoader's best setting per
     round is its figure.

  /usr/bin/python3 bench/python_bench.py [--data DIR] [--seconds 8] [--rounds 3] [--doc FILE]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "build", "python"))  # the package as built
EXAMPLE = os.path.join(ROOT, "examples", "train_torch.py")
BEGIN = "<!-- python_bench: begin -->"
END = "<!-- python_bench: end -->"


def next_overhead(calls, repeats):
    import sluice
    cfg = {"name": "overhead", "epochs": -1, "stages": [
        {"name": "gen", "op": "generate", "args": {"bytes": 256}},
        {"name": "batch", "op": "batch", "args": {"size": 64}},
        {"name": "prefetch", "op": "prefetch", "buffer_size": 8}]}
    totals, runtime = [], []
    for _ in range(repeats):
        p = sluice.Pipeline(cfg)
        for _ in range(200):
            next(p)
        before = p.snapshot()["consumer"]
        t = time.perf_counter()
        for _ in range(calls):
            (batch,) = next(p)
            del batch
        per = (time.perf_counter() - t) / calls
        after = p.snapshot()["consumer"]
        p.stop()
        totals.append(per * 1e6)
        runtime.append((after["wait_seconds"] - before["wait_seconds"]) / calls * 1e6)
    return totals, runtime


def train_once(data, loader, seconds, warmup, workers=None):
    cmd = [sys.executable, EXAMPLE, "--data", data, "--model", "tiny", "--json",
           "--loader", loader, "--seconds", str(seconds), "--warmup-steps", str(warmup)]
    if workers is not None:
        cmd += ["--workers", str(workers)]
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "build", "python"))
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def spread(values):
    return f"{statistics.median(values):.0f} ({min(values):.0f}–{max(values):.0f})"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="/work/data/photos")
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--calls", type=int, default=20000)
    ap.add_argument("--doc", default="")
    args = ap.parse_args()
    cores = os.cpu_count()

    totals, runtime = next_overhead(args.calls, 5)
    python = [t - r for t, r in zip(totals, runtime)]
    print(f"next(): {spread(totals)} us per batch, runtime {spread(runtime)}, Python {spread(python)}",
          flush=True)

    grid = list(range(1, 2 * cores + 1))
    sl, dl, best_w = [], [], []
    steps = {"sluice": [], "dataloader": []}
    for r in range(args.rounds):
        s = train_once(args.data, "sluice", args.seconds, args.warmup)
        sl.append(s["images_per_s"])
        steps["sluice"].append(s)
        per_setting = {}
        for w in grid:
            d = train_once(args.data, "dataloader", args.seconds, args.warmup, w)
            per_setting[w] = d
        w = max(per_setting, key=lambda k: per_setting[k]["images_per_s"])
        dl.append(per_setting[w]["images_per_s"])
        best_w.append(w)
        steps["dataloader"].append(per_setting[w])
        print(f"round {r + 1}: sluice {s['images_per_s']} img/s (wait {s['wait_fraction']:.2f}); "
              "DataLoader " + ", ".join(f"{k}w {v['images_per_s']}" for k, v in per_setting.items()),
              flush=True)

    ratio = [a / b for a, b in zip(sl, dl)]

    def median_of(key, loader):
        return statistics.median(x[key] for x in steps[loader])

    lines = [
        BEGIN,
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {cores} cores; "
        f"command: `/usr/bin/python3 bench/python_bench.py --data {args.data} --seconds "
        f"{args.seconds:g} --rounds {args.rounds} --doc docs/benchmarks.md`.",
        "",
        f"**next() overhead** (a pipeline far faster than its consumer: batches of 64 elements of "
        f"256 bytes behind a prefetch; {args.calls} calls, 5 repetitions, median "
        "(min–max)):",
        "",
        "| per next() | µs |",
        "|---|---|",
        f"| from Python to the torch tensors | {spread(totals)} |",
        f"| of which in the runtime's Next() | {spread(runtime)} |",
        f"| the Python layer (DLPack hand-over, tuple, call) | {spread(python)} |",
        "",
        f"**Training job** `examples/train_torch.py --model tiny` (224-pixel random resized crops "
        f"of the photographs, batch 64, CPU), {args.warmup} warm-up steps then {args.seconds:g} s "
        f"measured, {args.rounds} rounds interleaved; the DataLoader at num_workers 1..{2 * cores}"
        " each round, its best setting taken (median (min–max)):",
        "",
        "| loader | images/s, training included | step ms | wait ms per batch | vs DataLoader |",
        "|---|---|---|---|---|",
        f"| sluice, examples/torch_pipeline.json as shipped | {spread(sl)} | "
        f"{median_of('step_ms', 'sluice'):.1f} | {median_of('wait_ms', 'sluice'):.1f} | "
        f"{statistics.median(ratio):.2f}x ({min(ratio):.2f}–{max(ratio):.2f}) |",
        f"| DataLoader, best num_workers (picked: {', '.join(map(str, best_w))}) | {spread(dl)} | "
        f"{median_of('step_ms', 'dataloader'):.1f} | {median_of('wait_ms', 'dataloader'):.1f} | 1.00x |",
        END,
    ]
    text = "\n".join(lines)
    print(text)
    if args.doc:
        with open(args.doc) as f:
            doc = f.read()
        if BEGIN in doc:
            doc = doc[:doc.index(BEGIN)] + text + doc[doc.index(END) + len(END):]
        else:
            doc = doc.rstrip("\n") + "\n\n## The Python package and a PyTorch training job\n\n" + \
                text + "\n"
        with open(args.doc, "w") as f:
            f.write(doc)


if __name__ == "__main__":
    main()
