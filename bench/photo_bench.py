#!/usr/bin/python3
"""sluice against PyTorch's DataLoader on real photographs, and an ordered CPU chain.

Same files, cores and work, in one run:
  1. the image pipeline as users write it (read_file, decode_jpeg, random_resized_crop 224,
     random_flip, normalize to float32 CHW, batch 64), all inline, tuned by `sluice profile`;
  2. the same with the fused decode_random_resized_crop op, tuned the same way;
  3. PyTorch's DataLoader (PIL decode, RandomResizedCrop, RandomHorizontalFlip, ToTensor,
     Normalize, batch 64) over num_workers 0..2*cores and prefetch_factor 2 and 4, each setting
     at least SECONDS after its first batch; its best setting is then re-measured;
  4. a chain of CPU-bound maps (burn 300 us, burn 60 us, batch 16, prefetch), ordered and with
     reordering allowed, tuned by `sluice profile`, against the CPU bound (cores / CPU per output
     measured inline, where no thread competes for a core).
The tuned configs and the best DataLoader setting are measured ROUNDS times, interleaved, each
for WARMUP + SECONDS with the rate taken over the SECONDS after the warm-up; tables give medians
and the min-max spread. Per-image CPU per op (sluice) and per transform (DataLoader) side by side.

  /usr/bin/python3 bench/photo_bench.py [--data DIR] [--out DIR] [--seconds 6] [--warmup 3]
      [--rounds 3] [--doc docs/benchmarks.md]

DATA defaults to bench/results/photos, made by bench/photos/make_photos.py when missing (its
source packages: bench/photos/install_sources.sh). Needs a build (build/bin/sluice) and Debian's
python3-torch, python3-torchvision and python3-pil for /usr/bin/python3.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SLUICE = os.path.join(ROOT, "build", "bin", "sluice")
PEER = os.path.join(ROOT, "bench", "peer", "torch_image.py")
BEGIN = "<!-- photo_bench: begin -->"
END = "<!-- photo_bench: end -->"


def image_config(name, pattern, fused):
    """The pipeline as a user writes it: every stage inline, no prefetch."""
    head = [{"name": "files", "op": "list_files",
             "args": {"pattern": pattern, "shuffle": True, "seed": 7}},
            {"name": "read", "op": "read_file"}]
    if fused:
        work = [{"name": "decode_crop", "op": "decode_random_resized_crop",
                 "args": {"size": 224, "seed": 11}}]
    else:
        work = [{"name": "decode", "op": "decode_jpeg"},
                {"name": "crop", "op": "random_resized_crop", "args": {"size": 224, "seed": 11}}]
    tail = [{"name": "flip", "op": "random_flip", "args": {"seed": 13}},
            {"name": "normalize", "op": "normalize", "args": {"layout": "chw"}},
            {"name": "batch", "op": "batch", "args": {"size": 64, "drop_remainder": True}}]
    return {"name": name, "epochs": -1, "stages": head + work + tail}


def chain_config(name, reorder):
    heavy = {"name": "heavy", "op": "burn", "args": {"cpu_us": 300}}
    light = {"name": "light", "op": "burn", "args": {"cpu_us": 60}}
    if reorder:
        heavy["allow_reorder"] = True
        light["allow_reorder"] = True
    return {"name": name, "epochs": -1, "stages": [
        {"name": "source", "op": "generate", "args": {"count": -1, "bytes": 256}},
        heavy, light,
        {"name": "batch", "op": "batch", "args": {"size": 16}},
        {"name": "prefetch", "op": "prefetch", "buffer_size": 2}]}


def sh(cmd, **kw):
    print("+ " + " ".join(cmd), flush=True)
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw).stdout


def sluice_run(config, seconds, warmup):
    out = sh([SLUICE, "run", config, "--seconds", str(warmup + seconds), "--warmup", str(warmup),
              "--json"])
    return json.loads(out)


def profile(config, out_dir, seconds):
    text = sh([SLUICE, "profile", config, "--out", out_dir, "--seconds", str(seconds)])
    print("\n".join(l for l in text.splitlines() if l.startswith(("round", "tuned", "bottleneck"))))
    return os.path.join(out_dir, "tuned.json")


def peer(data, cores, seconds, json_out, only=None):
    cmd = ["/usr/bin/python3", PEER, "--data", data, "--cores", str(cores), "--seconds",
           str(seconds), "--batch", "64", "--json", json_out]
    if only:
        cmd += ["--only", only]
    sh(cmd)
    with open(json_out) as f:
        return json.load(f)


def per_image_cpu_ms(run):
    images = max(s["elements_out"] for s in run["stages"] if s["name"] != "files")
    return {s["name"]: 1000 * s["cpu_seconds"] / images for s in run["stages"]}


def spread(values):
    return (statistics.median(values), min(values), max(values))


def fmt_spread(values, scale=1.0):
    med, lo, hi = spread([v * scale for v in values])
    return f"{med:.0f} ({lo:.0f}-{hi:.0f})"


def knobs(path):
    with open(path) as f:
        cfg = json.load(f)
    parts = []
    for s in cfg["stages"]:
        k = [f"{key} {s[key]}" for key in ("parallelism", "buffer_size") if key in s]
        if s.get("deterministic") is False:
            k.append("unordered")
        if k:
            parts.append(f"{s['name']}: " + ", ".join(k))
    return "; ".join(parts) or "all inline"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.path.join(ROOT, "bench", "results", "photos"))
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "photo_bench"))
    ap.add_argument("--seconds", type=float, default=6.0, help="steady window per run")
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--profile-seconds", type=float, default=6.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cores", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--doc", help="write the results into this markdown file's photo_bench section")
    args = ap.parse_args()

    if not os.path.isdir(args.data):
        sh(["/usr/bin/python3", os.path.join(ROOT, "bench", "photos", "make_photos.py"),
            "--out", args.data])
    os.makedirs(args.out, exist_ok=True)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load_before = os.getloadavg()[0]
    pattern = os.path.join(os.path.abspath(args.data), "*", "*.jpg")
    configs = {
        "user": image_config("photos_user", pattern, fused=False),
        "fused": image_config("photos_fused", pattern, fused=True),
        "chain": chain_config("chain_ordered", reorder=False),
        "chain_unordered": chain_config("chain_unordered", reorder=True),
    }
    paths, tuned = {}, {}
    for key, cfg in configs.items():
        paths[key] = os.path.join(args.out, f"{key}.json")
        with open(paths[key], "w") as f:
            json.dump(cfg, f, indent=1)
        tuned[key] = profile(paths[key], os.path.join(args.out, f"profile-{key}"),
                             args.profile_seconds)

    grid = peer(args.data, args.cores, args.seconds, os.path.join(args.out, "peer_grid.json"))
    best = grid["best"]
    only = f"{best['num_workers']},{best['prefetch_factor'] or 0}"
    transforms = sh(["/usr/bin/python3", PEER, "--data", args.data, "--per-transform", "--json",
                     os.path.join(args.out, "peer_transforms.json")])
    with open(os.path.join(args.out, "peer_transforms.json")) as f:
        peer_ms = json.load(f)["per_transform_ms"]

    # CPU per output of the chain, inline on one thread: the CPU bound's denominator.
    inline_chain = sluice_run(paths["chain"], 3, 1)
    chain_cpu = sum(s["cpu_seconds"] for s in inline_chain["stages"]) / inline_chain["outputs"]

    rates = {k: [] for k in ("user", "fused", "peer", "chain", "chain_unordered")}
    cpu = {}
    for r in range(args.rounds):
        for key in ("user", "fused", "chain", "chain_unordered"):
            run = sluice_run(tuned[key], args.seconds, args.warmup)
            rates[key].append(run["steady_outputs_per_s"])
            if key in ("user", "fused") and r == 0:
                cpu[key] = per_image_cpu_ms(run)
        res = peer(args.data, args.cores, args.warmup + args.seconds,
                   os.path.join(args.out, f"peer_best_{r}.json"), only)
        rates["peer"].append(res["results"][0]["batches_per_s"])
    load_after = os.getloadavg()[0]

    med = {k: statistics.median(v) for k, v in rates.items()}
    bound = args.cores / chain_cpu
    lines = [
        BEGIN,
        "## sluice against the DataLoader on real photographs",
        "",
        f"`/usr/bin/python3 bench/photo_bench.py --rounds {args.rounds} --seconds {args.seconds} "
        f"--warmup {args.warmup}` on {args.cores} cores, {started}; load average "
        f"{load_before:.2f} before, {load_after:.2f} after. Data: {grid['files']} JPEGs cut from "
        "photographs that Debian's wallpaper packages ship (bench/photos/README.md). Each tuned "
        f"config and the DataLoader's best setting ({best['setting']}, best of the grid) ran "
        f"{args.rounds} times interleaved; rates are over {args.seconds:.0f} s after a "
        f"{args.warmup:.0f} s warm-up; medians with min-max.",
        "",
        "| loader | images/s | vs DataLoader | tuned knobs |",
        "|---|---|---|---|",
        f"| PyTorch DataLoader, {best['setting']} | {fmt_spread(rates['peer'], 64)} | 1.00x | "
        "(grid: " + ", ".join(f"{r['num_workers']}/{r['prefetch_factor'] or '-'}: "
                              f"{r['images_per_s']:.0f}" for r in grid["results"]) + ") |",
        f"| sluice, decode_jpeg + random_resized_crop, tuned by `sluice profile` | "
        f"{fmt_spread(rates['user'], 64)} | {med['user'] / med['peer']:.2f}x | "
        f"{knobs(tuned['user'])} |",
        f"| sluice, decode_random_resized_crop, tuned by `sluice profile` | "
        f"{fmt_spread(rates['fused'], 64)} | {med['fused'] / med['peer']:.2f}x | "
        f"{knobs(tuned['fused'])} |",
        "",
        "CPU per image (ms), sluice (its trace's per-stage CPU, in the first round's tuned run) and "
        "the DataLoader (each transform timed in one process, one torch thread):",
        "",
        "| step | sluice (decode_jpeg + crop) | sluice (fused op) | DataLoader |",
        "|---|---|---|---|",
    ]
    rows = [("read", "read", "read", None), ("decode (DataLoader: read + decode)", "decode", "decode_crop", "read+decode"),
            ("crop", "crop", None, "RandomResizedCrop"),
            ("flip", "flip", "flip", "RandomHorizontalFlip"),
            ("to tensor / normalize", "normalize", "normalize", None),
            ("batch / collate", "batch", "batch", "collate")]
    for label, u, f_, p in rows:
        def cell(table, key):
            return f"{table[key]:.3f}" if key and key in table else "-"
        peer_cell = cell(peer_ms, p)
        if label.startswith("to tensor"):
            peer_cell = f"{peer_ms.get('ToTensor', 0) + peer_ms.get('Normalize', 0):.3f}"
        lines.append(f"| {label} | {cell(cpu['user'], u)} | {cell(cpu['fused'], f_)} | {peer_cell} |")
    lines.append(f"| total | {sum(cpu['user'].values()):.3f} | {sum(cpu['fused'].values()):.3f} | "
                 f"{peer_ms.get('total', 0):.3f} |")
    lines += [
        "",
        "Ordered CPU chain (generate, burn 300 µs, burn 60 µs, batch 16, prefetch 2) tuned by "
        f"`sluice profile`: CPU per output {1000 * chain_cpu:.2f} ms inline, so the CPU bound is "
        f"{bound:.0f} outputs/s on {args.cores} cores.",
        "",
        "| config | outputs/s | share of the CPU bound | tuned knobs |",
        "|---|---|---|---|",
        f"| ordered | {fmt_spread(rates['chain'])} | {med['chain'] / bound:.2f} | "
        f"{knobs(tuned['chain'])} |",
        f"| reordering allowed | {fmt_spread(rates['chain_unordered'])} | "
        f"{med['chain_unordered'] / bound:.2f} | {knobs(tuned['chain_unordered'])} |",
        "",
        END,
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump({"rates": rates, "cpu_ms": cpu, "peer_ms": peer_ms, "chain_cpu": chain_cpu,
                   "bound": bound, "best": best}, f, indent=1)
    if args.doc:
        with open(args.doc) as f:
            doc = f.read()
        if BEGIN in doc and END in doc:
            doc = doc[:doc.index(BEGIN)] + text.rstrip("\n") + doc[doc.index(END) + len(END):]
        else:
            doc = doc.rstrip("\n") + "\n\n" + text
        with open(args.doc, "w") as f:
            f.write(doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
