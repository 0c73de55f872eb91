"""The benchmark suite behind bench/run.sh: five ways to configure each pipeline, measured alike.

For every config in bench/suite/ it builds and measures: naive (as shipped: every parallelism 1,
no prefetch), heuristic (parallelism = cores on every parallel stage, prefetch 2), hill-climbing
(tf.data AUTOTUNE's published rule, by measurement), sluice-tuned (one `sluice profile`, then
`sluice tune --memory`), and the oracle (a bounded grid search). It then measures the five chosen
configs in interleaved rounds, the tuned config once more with the tracer on, compares the image
pipeline with PyTorch's DataLoader (bench/peer/torch_image.py) and, where a GPU and
build/bin/gpu_train exist, runs examples/gpu_train before and after tuning. It writes
results.json and tables.md under --out and regenerates the suite's section of
docs/benchmarks.md between marker comments.

Standard library only: it runs under /usr/bin/python3.
"""

import argparse
import copy
import datetime
import itertools
import json
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PIPELINES = ["image", "text", "io_bound", "cacheable", "skewed"]
METHODS = ["naive", "heuristic", "hill", "sluice", "oracle"]
METHOD_TITLES = {"naive": "naive", "heuristic": "heuristic", "hill": "hill-climbing",
                 "sluice": "sluice-tuned", "oracle": "oracle"}
BEGIN_MARK = "<!-- bench/run.sh:begin -->"
END_MARK = "<!-- bench/run.sh:end -->"

# Settings per mode. run_s: one measurement of a chosen config; reps: interleaved rounds of
# those measurements (the tables give medians); search_s: one trial of hill-climbing or one
# grid point; confirm: grid points re-measured for run_s before the oracle picks; profile_s:
# sluice's one profile; hill_rounds: the most rounds hill-climbing may take.
MODES = {
    "quick": {"run_s": 1.5, "reps": 2, "search_s": 1.0, "confirm": 3, "profile_s": 2.0,
              "hill_rounds": 8, "peer_s": 1.5},
    "full": {"run_s": 4.0, "reps": 5, "search_s": 2.0, "confirm": 3, "profile_s": 5.0,
             "hill_rounds": 16, "peer_s": 4.0},
}
HILL_MIN_GAIN = 0.03   # hill-climbing stops when the best step gains less than 3 %
HILL_MAX_PREFETCH = 8  # hill-climbing's ceiling on the prefetch depth
START_COST_S = 0.25    # a run's start-up and JSON output, for the cost estimate only


def log(msg):
    print(msg, flush=True)


class Clock:
    """Wall time since the suite started, for progress lines."""

    def __init__(self):
        self.start = time.monotonic()

    def elapsed(self):
        return time.monotonic() - self.start


# ---------------------------------------------------------------------------------------------
# Running sluice


class Runner:
    """Calls the sluice CLI; every call is timed and bounded."""

    def __init__(self, sluice):
        self.sluice = sluice
        self.runs = 0

    def run(self, config, seconds, trace=None):
        """Runs CONFIG for SECONDS (endless epochs, traced into TRACE when given); returns the
        --json result plus wall_s (the call's wall time) and peak_rss_mib (the child's own rusage,
        from wait4)."""
        cmd = [self.sluice, "run", config, "--seconds", str(seconds), "--epochs", "-1", "--json"]
        env = dict(os.environ)
        env.pop("SLUICE_TRACE", None)
        if trace:
            env["SLUICE_TRACE"] = trace
        start = time.monotonic()
        with tempfile.TemporaryFile() as err, open(os.devnull, "rb") as devnull:
            proc = subprocess.Popen(cmd, stdin=devnull, stdout=subprocess.PIPE, stderr=err, env=env)
            killer = threading.Timer(seconds + 60, proc.kill)  # a hung run must not hang the suite
            killer.start()
            out = proc.stdout.read()
            _, status, usage = os.wait4(proc.pid, 0)
            killer.cancel()
            proc.returncode = os.waitstatus_to_exitcode(status)
            proc.stdout.close()
            err.seek(0)
            err_text = err.read().decode(errors="replace").strip()
        self.runs += 1
        if proc.returncode != 0:
            raise RuntimeError(f"{shlex.join(cmd)} exited {proc.returncode}: {err_text}")
        result = json.loads(out)
        result["wall_s"] = time.monotonic() - start
        result["peak_rss_mib"] = usage.ru_maxrss / 1024.0  # Linux reports KiB
        return result

    def call(self, args, check=True):
        """Runs `sluice ARGS`; returns (stdout, wall seconds)."""
        start = time.monotonic()
        proc = subprocess.run([self.sluice] + args, capture_output=True, text=True, timeout=600)
        wall = time.monotonic() - start
        if check and proc.returncode != 0:
            raise RuntimeError(f"sluice {shlex.join(args)} exited {proc.returncode}: "
                               f"{proc.stderr.strip()}")
        return proc.stdout, wall


# ---------------------------------------------------------------------------------------------
# Configs


def load(path):
    with open(path) as f:
        return json.load(f)


def save(doc, path):
    with open(path, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")


def stage_index(doc, name):
    for i, s in enumerate(doc["stages"]):
        if s.get("name") == name:
            return i
    raise KeyError(f"no stage '{name}' in config '{doc.get('name')}'")


def set_parallelism(doc, name, p, naive):
    """Sets a stage's workers; an asynchronous parallel stage keeps a queue of p elements (a
    parallel map in tf.data buffers as many elements as it has calls in flight)."""
    s = doc["stages"][stage_index(doc, name)]
    base = naive["stages"][stage_index(naive, name)]
    s["parallelism"] = p
    s["buffer_size"] = max(p, base.get("buffer_size", 0)) if p > 1 else base.get("buffer_size", 0)
    if s["buffer_size"] == 0:
        del s["buffer_size"]


def set_buffer(doc, name, b):
    doc["stages"][stage_index(doc, name)]["buffer_size"] = b


def set_prefetch(doc, b):
    """The prefetch depth: the output queue of the last stage (what the tuner sets, too)."""
    doc["stages"][-1]["buffer_size"] = b


def insert_cache(doc, after):
    i = stage_index(doc, after)
    doc["stages"].insert(i + 1, {"name": "cache", "op": "cache"})


def knob_summary(doc):
    """A compact description of a config's knobs: stage=workers/queue, and the cache."""
    parts = []
    for s in doc["stages"]:
        if s["op"] == "cache":
            parts.append("cache")
            continue
        p, b = s.get("parallelism", 1), s.get("buffer_size", 0)
        if p != 1 or b != 0:
            parts.append(f"{s['name']}={p}/{b}")
    return ", ".join(parts) if parts else "all inline"


def resolve_grid_value(v, cores):
    """Grid values are numbers, or "c", "c/2", "2c" (relative to the cores)."""
    if isinstance(v, (int, float)) or v is None:
        return v
    m = re.fullmatch(r"(\d*)c(?:/(\d+))?", v)
    if not m:
        raise ValueError(f"bad grid value {v!r}")
    mul = int(m.group(1) or 1)
    div = int(m.group(2) or 1)
    return max(1, (mul * cores) // div)


def grid_axes(grid_spec, cores):
    """[(key, [values])] with values resolved and deduplicated in order."""
    axes = []
    for key, values in grid_spec.items():
        seen = []
        for v in values:
            r = v if key == "cache_after" else resolve_grid_value(v, cores)
            if r not in seen:
                seen.append(r)
        axes.append((key, seen))
    return axes


def grid_bounds_text(axes):
    parts = []
    for key, values in axes:
        vals = ", ".join("none" if v is None else str(v) for v in values)
        if key == "prefetch":
            parts.append(f"prefetch {{{vals}}}")
        elif key == "cache_after":
            parts.append(f"cache after {{{vals}}}")
        elif key.endswith(".buffer_size"):
            parts.append(f"{key[:-len('.buffer_size')]} queue {{{vals}}}")
        else:
            parts.append(f"{key} workers {{{vals}}}")
    return "; ".join(parts)


def grid_config(naive, point):
    doc = copy.deepcopy(naive)
    doc.pop("bench_grid", None)
    cache_after = None
    for key, v in point:
        if key == "prefetch":
            set_prefetch(doc, v)
        elif key == "cache_after":
            cache_after = v
        elif key.endswith(".buffer_size"):
            set_buffer(doc, key[:-len(".buffer_size")], v)
        else:
            set_parallelism(doc, key, v, naive)
    # Explicit queue sizes win over the workers' default queue.
    for key, v in point:
        if key.endswith(".buffer_size"):
            set_buffer(doc, key[:-len(".buffer_size")], v)
    if cache_after:
        insert_cache(doc, cache_after)
    return doc


# ---------------------------------------------------------------------------------------------
# The five methods


def heuristic_config(naive, parallel, cores):
    doc = copy.deepcopy(naive)
    for name in parallel:
        set_parallelism(doc, name, cores, naive)
    set_prefetch(doc, 2)
    return doc


def hill_climb(runner, naive, parallel, cores, work, mode, clock):
    """tf.data AUTOTUNE's published hill-climbing, by measurement: start with every knob at its
    minimum; each round, try one more on each knob (the workers of each parallel stage, up to the
    cores; the prefetch depth, up to HILL_MAX_PREFETCH), measure each candidate, keep the best;
    stop when the best gains less than HILL_MIN_GAIN or after hill_rounds rounds."""
    start = time.monotonic()
    state = {name: 1 for name in parallel}
    state["prefetch"] = 0
    caps = {name: cores for name in parallel}
    caps["prefetch"] = HILL_MAX_PREFETCH

    def build(st):
        doc = copy.deepcopy(naive)
        for name in parallel:
            set_parallelism(doc, name, st[name], naive)
        if st["prefetch"]:
            set_prefetch(doc, st["prefetch"])
        return doc

    trials = 0

    def measure(st):
        nonlocal trials
        path = os.path.join(work, "trials", f"hill_{trials:03d}.json")
        save(build(st), path)
        trials += 1
        return runner.run(path, mode["search_s"])["outputs_per_s"]

    current = measure(state)
    rounds = 0
    for _ in range(mode["hill_rounds"]):
        candidates = []
        for knob in state:
            if state[knob] >= caps[knob]:
                continue
            st = dict(state)
            st[knob] += 1
            candidates.append((measure(st), knob, st))
        if not candidates:
            break
        rate, knob, st = max(candidates, key=lambda c: c[0])
        rounds += 1
        if rate < current * (1 + HILL_MIN_GAIN):
            break
        state, current = st, rate
        log(f"    [{clock.elapsed():6.1f} s] hill-climbing round {rounds}: +1 {knob} -> "
            f"{rate:.1f} outputs/s")
    return build(state), {"seconds": time.monotonic() - start, "trials": trials,
                          "rounds": rounds, "knobs": state}


def oracle_search(runner, naive, axes, work, mode, clock):
    """Every point of the bounded grid for search_s, then the best `confirm` points again for
    run_s; the oracle is the best of those."""
    start = time.monotonic()
    keys = [k for k, _ in axes]
    screened = []
    for n, values in enumerate(itertools.product(*[v for _, v in axes])):
        point = list(zip(keys, values))
        path = os.path.join(work, "trials", f"grid_{n:03d}.json")
        save(grid_config(naive, point), path)
        screened.append((runner.run(path, mode["search_s"])["outputs_per_s"], path))
    screened.sort(key=lambda s: -s[0])
    confirmed = []
    for rate, path in screened[:mode["confirm"]]:
        confirmed.append((runner.run(path, mode["run_s"])["outputs_per_s"], path))
    best_rate, best_path = max(confirmed, key=lambda c: c[0])
    log(f"    [{clock.elapsed():6.1f} s] oracle: {len(screened)} grid points, best "
        f"{best_rate:.1f} outputs/s")
    return load(best_path), {"seconds": time.monotonic() - start, "points": len(screened)}


def sluice_tune(runner, naive_path, work, mode, memory):
    """One `sluice profile` of the naive config, then `sluice tune` with the memory budget: the
    tuner's one-shot plan, without the profile's trials (bench/tuner_grid.sh measures those)."""
    prof = os.path.join(work, "profile")
    shutil.rmtree(prof, ignore_errors=True)
    _, profile_s = runner.call(["profile", naive_path, "--seconds", str(mode["profile_s"]),
                                "--trials", "0", "--out", prof])
    tuned_path = os.path.join(work, "sluice.json")
    out, tune_s = runner.call(["tune", os.path.join(prof, "trace.json"), "--config", naive_path,
                               "--memory", memory, "--json", "-o", tuned_path])
    plan = json.loads(out)
    return load(tuned_path), {
        "seconds": profile_s + tune_s, "profile_s": profile_s, "tune_s": tune_s,
        "predicted": plan["predicted_outputs_per_s"],
        "profiled_outputs_per_s": plan.get("current_outputs_per_s"),
        "changes": len(plan.get("changes", [])), "cache_after": plan.get("cache_after"),
        "planned_memory_bytes": plan.get("memory_bytes"),
        "memory_budget_bytes": plan.get("memory_budget_bytes"),
        "threads": plan.get("threads"), "bottleneck": plan.get("bottleneck", {}).get("why"),
        "notes": plan.get("notes", [])}


# ---------------------------------------------------------------------------------------------
# One pipeline


def warm_page_cache(data_dir):
    """Reads every dataset file once so that each method starts with the same warm page cache."""
    for base, _, files in os.walk(data_dir):
        for f in files:
            with open(os.path.join(base, f), "rb") as fh:
                while fh.read(1 << 20):
                    pass


def bench_pipeline(name, runner, args, mode, cores, clock):
    src = os.path.join(ROOT, "bench", "suite", f"{name}.json")
    work = os.path.join(args.out, "work", name)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(os.path.join(work, "trials"))
    # Configs resolve their data paths against their own directory.
    os.symlink(args.data, os.path.join(work, "data"))
    os.symlink(args.data, os.path.join(work, "trials", "data"))
    naive = load(src)
    grid_spec = naive.get("bench_grid", {"prefetch": [1, 4]})
    axes = grid_axes(grid_spec, cores)
    naive_doc = copy.deepcopy(naive)
    naive_doc.pop("bench_grid", None)
    naive_path = os.path.join(work, "naive.json")
    save(naive_doc, naive_path)
    warm_page_cache(args.data)

    log(f"== {name} [{clock.elapsed():6.1f} s]")
    probe = runner.run(naive_path, 0.3)
    parallel = [s["name"] for s in probe["stages"] if s["parallelizable"]]

    configs = {"naive": naive_doc, "heuristic": heuristic_config(naive_doc, parallel, cores)}
    cost = {"naive": {"seconds": 0.0}, "heuristic": {"seconds": 0.0}}
    configs["hill"], cost["hill"] = hill_climb(runner, naive_doc, parallel, cores, work, mode,
                                               clock)
    log(f"    [{clock.elapsed():6.1f} s] hill-climbing: {cost['hill']['trials']} trials, "
        f"{cost['hill']['seconds']:.1f} s")
    configs["sluice"], cost["sluice"] = sluice_tune(runner, naive_path, work, mode, args.memory)
    log(f"    [{clock.elapsed():6.1f} s] sluice: profile {cost['sluice']['profile_s']:.1f} s + "
        f"tune {cost['sluice']['tune_s']:.1f} s, predicted {cost['sluice']['predicted']:.1f}")
    configs["oracle"], cost["oracle"] = oracle_search(runner, naive, axes, work, mode, clock)

    paths = {}
    for m in METHODS:
        paths[m] = os.path.join(work, f"{m}.json")
        if m != "sluice" and m != "naive":
            save(configs[m], paths[m])

    # The chosen configs, measured in interleaved rounds so that drift hits them alike; the
    # tuned config once more per round with the tracer on.
    meas = {m: [] for m in METHODS + ["sluice_traced"]}
    tracer = []
    for rep in range(mode["reps"]):
        for m in METHODS:
            meas[m].append(runner.run(paths[m], mode["run_s"]))
        trace_path = os.path.join(work, f"traced_{rep}.json")
        meas["sluice_traced"].append(runner.run(paths["sluice"], mode["run_s"],
                                                trace=trace_path))
        t = load(trace_path)["tracer"]
        tracer.append({"cpu_seconds": t["cpu_seconds"], "overhead_fraction":
                       t["overhead_fraction"], "interval": t["interval"]})
    log(f"    [{clock.elapsed():6.1f} s] measured: " + ", ".join(
        f"{m} {statistics.median(r['outputs_per_s'] for r in meas[m]):.1f}" for m in METHODS))

    def med(m, key):
        return statistics.median(r[key] for r in meas[m])

    def spread(m):
        rates = [r["outputs_per_s"] for r in meas[m]]
        mid = statistics.median(rates)
        return (max(rates) - min(rates)) / mid if mid > 0 else 0.0

    result = {
        "pipeline": name, "parallel_stages": parallel,
        "grid": grid_bounds_text(axes), "grid_points": cost["oracle"]["points"],
        "methods": {}, "tracer": {}, "sluice": cost["sluice"],
    }
    for m in METHODS:
        result["methods"][m] = {
            "outputs_per_s": med(m, "outputs_per_s"), "spread": spread(m),
            "runs": [r["outputs_per_s"] for r in meas[m]],
            "peak_rss_mib": max(r["peak_rss_mib"] for r in meas[m]),
            "cost_s": cost[m]["seconds"], "knobs": knob_summary(configs[m]),
            "config": configs[m]}
        if m == "hill":
            result["methods"][m].update(trials=cost[m]["trials"], rounds=cost[m]["rounds"])
    result["tracer"] = {
        "untraced": med("sluice", "outputs_per_s"), "traced": med("sluice_traced", "outputs_per_s"),
        "cpu_share": statistics.median(t["overhead_fraction"] for t in tracer),
        "cpu_seconds_per_s": statistics.median(t["cpu_seconds"] for t in tracer) / mode["run_s"],
        "interval_s": tracer[0]["interval"]}
    return result


# ---------------------------------------------------------------------------------------------
# The peer (PyTorch DataLoader) and the GPU job


def torch_status():
    """None when torch, torchvision and PIL import under /usr/bin/python3; else why not."""
    proc = subprocess.run(["/usr/bin/python3", "-c", "import torch, torchvision, PIL"],
                          capture_output=True, text=True)
    if proc.returncode == 0:
        return None
    last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "import failed"
    return (f"{last}; install with `apt-get install -y python3-torch python3-torchvision "
            f"python3-pil` (not part of scripts/bootstrap.sh: the suite is not run by CI)")


def run_peer(args, mode, cores, clock):
    why = torch_status()
    if why:
        log(f"== peer: skipped: {why}")
        return {"skipped": why}
    log(f"== peer: PyTorch DataLoader grid [{clock.elapsed():6.1f} s]")
    out = os.path.join(args.out, "peer.json")
    # The peer batches as the suite's image pipeline does (torch_image.py's default is 64).
    batch = next(s["args"]["size"] for s in load(os.path.join(ROOT, "bench", "suite", "image.json"))
                 ["stages"] if s["op"] == "batch")
    cmd = ["/usr/bin/python3", os.path.join(ROOT, "bench", "peer", "torch_image.py"),
           "--data", os.path.join(args.data, "images"), "--seconds", str(mode["peer_s"]),
           "--cores", str(cores), "--batch", str(batch), "--json", out]
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1200)
    if proc.returncode != 0:
        why = f"bench/peer/torch_image.py failed: {proc.stderr.strip()[-400:]}"
        log(f"   {why}")
        return {"skipped": why}
    res = load(out)
    res["seconds_total"] = time.monotonic() - start
    log(f"    [{clock.elapsed():6.1f} s] best DataLoader: {res['best']['setting']} "
        f"{res['best']['batches_per_s']:.1f} batches/s")
    return res


def gpu_status(build_dir):
    exe = os.path.join(build_dir, "bin", "gpu_train")
    if not os.path.exists(exe):
        return exe, f"{os.path.relpath(exe, ROOT)} not built (needs nvcc)"
    if shutil.which("nvidia-smi") is None:
        return exe, "no NVIDIA GPU (nvidia-smi not found)"
    proc = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True)
    if proc.returncode != 0 or "GPU" not in proc.stdout:
        return exe, f"no NVIDIA GPU (nvidia-smi -L: {(proc.stdout + proc.stderr).strip()[:200]})"
    return exe, None


def run_gpu(runner, args, mode, clock):
    """examples/gpu_train fed by the naive image config, then by its sluice-tuned version; each
    traced by `sluice profile -- gpu_train` for profile_s, figures from the traces."""
    exe, why = gpu_status(args.build_dir)
    if why:
        log(f"== gpu_train: not run: {why}")
        return {"skipped": why}
    log(f"== gpu_train before and after tuning [{clock.elapsed():6.1f} s]")
    work = os.path.join(args.out, "work", "gpu")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    os.symlink(args.data, os.path.join(work, "data"))
    naive = load(os.path.join(ROOT, "bench", "suite", "image.json"))
    naive.pop("bench_grid", None)
    cfg = os.path.join(work, "image.json")
    save(naive, cfg)
    seconds = str(max(mode["profile_s"], 5.0))

    def profile(tag):
        out = os.path.join(work, tag)
        runner.call(["profile", "--seconds", seconds, "--out", out, "--", exe, "--pipeline", cfg,
                     "--epochs", "-1"])
        trace = os.path.join(out, "trace.json")
        tuned = os.path.join(out, "tuned_bench.json")
        plan, _ = runner.call(["tune", trace, "--config", cfg, "--memory", args.memory, "--json",
                               "-o", tuned])
        t = load(trace)
        return {"outputs_per_s": json.loads(plan)["current_outputs_per_s"],
                "gpu_busy_fraction": t["gpu"]["busy_fraction"],
                "device": t["gpu"]["device_name"], "tuned": tuned}

    before = profile("before")
    runner.call(["apply", before["tuned"], "--to", cfg])
    after = profile("after")
    return {"before": before, "after": after, "tuned_knobs": knob_summary(load(cfg)),
            "seconds_per_profile": float(seconds)}


# ---------------------------------------------------------------------------------------------
# Cost estimate


def estimate(mode, cores, names, peer, gpu):
    """Seconds the suite takes at most (hill-climbing at its round limit) and typically (it
    usually stops after about cores + 2 rounds)."""
    run = lambda s: s + START_COST_S
    lo = hi = 0.0
    for name in names:
        doc = load(os.path.join(ROOT, "bench", "suite", f"{name}.json"))
        points = 1
        for _, values in grid_axes(doc.get("bench_grid", {"prefetch": [1, 4]}), cores):
            points *= len(values)
        knobs = sum(1 for s in doc["stages"] if s["op"] in PARALLEL_OPS) + 1
        fixed = (run(0.3) + run(mode["profile_s"]) + 1.0 + points * run(mode["search_s"]) +
                 mode["confirm"] * run(mode["run_s"]) +
                 mode["reps"] * (len(METHODS) + 1) * run(mode["run_s"]))
        typical_rounds = min(mode["hill_rounds"], cores + 2)
        lo += fixed + (1 + typical_rounds * knobs) * run(mode["search_s"])
        hi += fixed + (1 + mode["hill_rounds"] * knobs) * run(mode["search_s"])
    if peer:
        extra = 10 + (1 + 4 * cores) * (mode["peer_s"] + 1.5)  # num_workers 0..2*cores
        lo += extra
        hi += extra
    if gpu:
        lo += 2 * (max(mode["profile_s"], 5.0) + 5)
        hi += 2 * (max(mode["profile_s"], 5.0) + 5)
    return lo, hi


# Parallelizable built-in ops (docs/config.md), used only for the estimate before anything runs;
# the suite itself takes each stage's property from `sluice run --json`.
PARALLEL_OPS = {"read_file", "read_lines", "decode_jpeg", "resize", "random_resized_crop",
                "random_flip", "normalize", "tokenize", "pad", "filter", "burn", "sleep"}


# ---------------------------------------------------------------------------------------------
# Tables


def pct(x):
    return f"{100 * x:.0f}%"


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def mem_gib():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / (1 << 20)
    except OSError:
        pass
    return 0.0


def verdicts(p, peer):
    """The issue's targets for one pipeline: (target, met, figure, the method compared with)."""
    m = p["methods"]
    s = m["sluice"]["outputs_per_s"]
    o = m["oracle"]["outputs_per_s"]
    out = [("≥ 95% of the oracle", s >= 0.95 * o, f"{100 * s / o:.1f}%" if o else "-", "oracle")]
    for other in ("heuristic", "hill"):
        r = m[other]["outputs_per_s"]
        out.append((f"ahead of {METHOD_TITLES[other]}", s > r, f"{s / r:.2f}x" if r else "-",
                    other))
    if p["pipeline"] == "image" and peer and "best" in peer:
        b = peer["best"]["batches_per_s"]
        out.append(("ahead of the best DataLoader", s > b, f"{s / b:.2f}x" if b else "-",
                    "DataLoader"))
    return out


def render(results, meta):
    mode = meta["mode_settings"]
    L = []
    w = L.append
    w(BEGIN_MARK)
    w("## The suite: naive, heuristic, hill-climbing, sluice-tuned and the oracle "
      "(issue: benchmark suite)")
    w("")
    w("Generated by `bench/run.sh`; everything between the marker comments is rewritten on each "
      "run.")
    w("")
    w(f"Command (after `scripts/bootstrap.sh` and `build/bin/make_dataset examples/data`): "
      f"`{meta['command']}`  ")
    w(f"Machine: {meta['cpu']}, {meta['cores']} cores, {meta['mem_gib']:.0f} GiB, "
      f"{meta['os']}; load average {meta['load_start']:.2f} at the start and "
      f"{meta['load_end']:.2f} at the end (1 min)  ")
    w(f"Date: {meta['date']}; the suite took {meta['elapsed_s'] / 60:.1f} min "
      f"(estimated {meta['estimate'][0] / 60:.1f} to {meta['estimate'][1] / 60:.1f} min), "
      f"{meta['runs']} runs of sluice  ")
    w(f"sluice: `{meta['sluice']}`")
    w("")
    # The suite's own runs keep the load near the core count, so the end figure says little: the
    # load before it started tells whether other work was still running.
    if meta["load_start"] > meta["cores"] or meta["load_end"] > meta["cores"] + 1:
        w(f"**Noisy run**: the load average exceeded what the suite itself makes on "
          f"{meta['cores']} cores, so other work shared the machine with these measurements; "
          f"rerun in a quiet window before drawing conclusions.")
        w("")
    w("How each configuration is made (`bench/lib/suite.py`):")
    w("")
    w("- **naive**: the config as shipped in `bench/suite/`: every parallelism 1, no prefetch.")
    w("- **heuristic**: parallelism = cores on every parallel stage (with a queue as long), "
      "prefetch 2 (the last stage's output queue).")
    w(f"- **hill-climbing**, as tf.data's AUTOTUNE publishes it: every knob at its minimum, then "
      f"each round one more on each knob (workers of each parallel stage up to the cores, the "
      f"prefetch depth up to {HILL_MAX_PREFETCH}), each candidate measured for "
      f"{mode['search_s']:g} s, the best kept; it stops when the best step gains under "
      f"{pct(HILL_MIN_GAIN)} (or after {mode['hill_rounds']} rounds). Its cost is the time of "
      f"those measurements.")
    w(f"- **sluice-tuned**: one `sluice profile --trials 0` of the naive config for "
      f"{mode['profile_s']:g} s, then `sluice tune --memory {meta['memory']}`: the tuner's "
      f"one-shot plan, without the profile's trials of tuned candidates (measured in the tuner's "
      f"section above); its cost is the profile's and the tune's wall time.")
    w(f"- **oracle**: every point of a bounded grid (bounds below) measured for "
      f"{mode['search_s']:g} s, the best {mode['confirm']} measured again for {mode['run_s']:g} s, "
      f"the best of those kept; its cost is the whole search.")
    w(f"- Each chosen config is then run for {mode['run_s']:g} s "
      f"(`sluice run --epochs -1 --json`), "
      f"{mode['reps']} interleaved rounds; tables give the median outputs/s (an output is a "
      f"batch). Every pipeline reads from a warm page cache.")
    w("")

    w("### Throughput")
    w("")
    w("Median outputs/s; in brackets the share of the oracle and the speed-up over naive. "
      "\"spread\" is (max − min) / median of the sluice-tuned runs.")
    w("")
    w("| pipeline | " + " | ".join(METHOD_TITLES[m] for m in METHODS) + " | spread |")
    w("|---|" + "---|" * len(METHODS) + "---|")
    for p in results:
        m = p["methods"]
        o = m["oracle"]["outputs_per_s"]
        n = m["naive"]["outputs_per_s"]
        cells = []
        for k in METHODS:
            r = m[k]["outputs_per_s"]
            cells.append(f"{r:.1f} ({pct(r / o) if o else '-'}, {r / n:.2f}x)" if n else f"{r:.1f}")
        w(f"| {p['pipeline']} | " + " | ".join(cells) + f" | {pct(m['sluice']['spread'])} |")
    w("")

    w("### Against the targets")
    w("")
    w("| pipeline | target | met | figure |")
    w("|---|---|---|---|")
    misses = []
    for p in results:
        for target, ok, fig, rival in verdicts(p, meta.get("peer")):
            w(f"| {p['pipeline']} | sluice-tuned {target} | {'yes' if ok else '**no**'} | {fig} |")
            if not ok:
                misses.append((p, target, fig, rival))
    w("")

    w("### Cost of each method")
    w("")
    w("Seconds of measuring, profiling or searching before the config was chosen (naive and "
      "heuristic cost nothing).")
    w("")
    w("| pipeline | hill-climbing | sluice-tuned | oracle | oracle's grid |")
    w("|---|---|---|---|---|")
    for p in results:
        m = p["methods"]
        s = p["sluice"]
        rounds = m["hill"]["rounds"]
        w(f"| {p['pipeline']} | {m['hill']['cost_s']:.1f} s ({m['hill']['trials']} trials, "
          f"{rounds} round{'s' if rounds != 1 else ''}) | {s['seconds']:.1f} s "
          f"(profile {s['profile_s']:.1f} s, tune {s['tune_s']:.2f} s) | "
          f"{m['oracle']['cost_s']:.1f} s ({p['grid_points']} points) | {p['grid']} |")
    w("")

    w("### The chosen configs")
    w("")
    w("Stages whose workers/queue differ from inline (1/0); `cache` where one was inserted.")
    w("")
    w("| pipeline | " + " | ".join(METHOD_TITLES[m] for m in METHODS[1:]) + " |")
    w("|---|" + "---|" * (len(METHODS) - 1))
    for p in results:
        knobs = [p["methods"][m]["knobs"] for m in METHODS[1:]]
        w(f"| {p['pipeline']} | " + " | ".join(knobs) + " |")
    w("")

    w("### sluice's prediction against the measurement")
    w("")
    w("| pipeline | measured in the profile (naive) | predicted for the tuned config | "
      "measured tuned | error | changes | cache | bottleneck the plan expects |")
    w("|---|---|---|---|---|---|---|---|")
    for p in results:
        s = p["sluice"]
        meas = p["methods"]["sluice"]["outputs_per_s"]
        prof = s.get("profiled_outputs_per_s")
        w(f"| {p['pipeline']} | {prof:.1f} | {s['predicted']:.1f} | {meas:.1f} | "
          f"{100 * (s['predicted'] / meas - 1):+.1f}% | {s['changes']} | "
          f"{s['cache_after'] or 'none'} | {(s['bottleneck'] or '-').replace('|', '/')} |")
    w("")

    w("### Tracer overhead")
    w("")
    w("The sluice-tuned config run with `SLUICE_TRACE` set (the tracer loaded, sampling every "
      "100 ms) against the same config untraced, medians of the interleaved rounds; \"tracer CPU\" "
      "is the trace's own record of the tracer thread's CPU time.")
    w("")
    w("| pipeline | untraced | traced | difference | tracer CPU s per s | "
      "tracer share of process CPU |")
    w("|---|---|---|---|---|---|")
    for p in results:
        t = p["tracer"]
        w(f"| {p['pipeline']} | {t['untraced']:.1f} | {t['traced']:.1f} | "
          f"{100 * (t['traced'] / t['untraced'] - 1):+.1f}% | {t['cpu_seconds_per_s']:.4f} | "
          f"{100 * t['cpu_share']:.2f}% |")
    w("")

    w("### Peak memory")
    w("")
    w(f"Peak RSS of each run (`wait4`), the largest of the rounds, in MiB; the budget given to "
      f"`sluice tune --memory` is {meta['memory']} and covers queues, in-flight elements and a "
      f"cache (the plan's own figure in the last column), not the process's code and libraries.")
    w("")
    w("| pipeline | " + " | ".join(METHOD_TITLES[m] for m in METHODS) +
      " | sluice's planned memory / budget |")
    w("|---|" + "---|" * (len(METHODS) + 1))
    for p in results:
        s = p["sluice"]
        planned = s.get("planned_memory_bytes") or 0
        budget = s.get("memory_budget_bytes") or 0
        w(f"| {p['pipeline']} | " + " | ".join(f"{p['methods'][m]['peak_rss_mib']:.0f}"
                                              for m in METHODS) +
          f" | {planned / (1 << 20):.0f} / {budget / (1 << 20):.0f} MiB |")
    w("")

    w("### Peer: PyTorch DataLoader on the image pipeline")
    w("")
    peer = meta.get("peer")
    image = next((p for p in results if p["pipeline"] == "image"), None)
    if not peer or "skipped" in peer:
        w(f"Not run: {peer['skipped'] if peer else 'the image pipeline was not part of this run'}.")
    else:
        w(f"`bench/peer/torch_image.py` under /usr/bin/python3 (torch {peer['torch']}, torchvision "
          f"{peer['torchvision']}, Pillow {peer['pil']}): the same {peer['files']} JPEG files, "
          f"read, "
          f"decoded by PIL, RandomResizedCrop({peer['size']}), RandomHorizontalFlip, ToTensor, "
          f"Normalize (ImageNet), batches of {peer['batch']} (drop_last), shuffled; each setting "
          f"runs {peer['seconds']:g} s from the arrival of its first batch (worker start-up and "
          f"the first batch are not counted, whereas `sluice run` counts its own start: the "
          f"comparison leans towards the DataLoader). The grid took {peer['seconds_total']:.0f} s.")
        w("")
        w("| setting | batches/s |")
        w("|---|---|")
        for r in peer["results"]:
            w(f"| {r['setting']} | {r['batches_per_s']:.1f} |")
        if image:
            s = image["methods"]["sluice"]["outputs_per_s"]
            b = peer["best"]["batches_per_s"]
            knobs = image["methods"]["sluice"]["knobs"]
            w(f"| **sluice-tuned** (same {meta['cores']} cores: {knobs}) | {s:.1f} "
              f"({s / b:.2f}x the best DataLoader setting) |")
    w("")

    w("### GPU: examples/gpu_train before and after tuning")
    w("")
    gpu = meta.get("gpu")
    if not gpu or "skipped" in gpu:
        w(f"Not run: {gpu['skipped'] if gpu else 'not requested'}. The suite runs it when "
          f"`BUILD_DIR/bin/gpu_train` exists (built where nvcc is found) and `nvidia-smi -L` "
          f"lists a GPU.")
    else:
        w(f"`sluice profile --seconds {gpu['seconds_per_profile']:g} -- build/bin/gpu_train "
          f"--pipeline image.json --epochs -1` on the naive image config, `sluice apply` of its "
          f"tuned.json, then the same profile again ({gpu['before']['device']}).")
        w("")
        w("| config | batches/s (steady state) | GPU busy fraction |")
        w("|---|---|---|")
        before = gpu["before"]
        w(f"| naive | {before['outputs_per_s']:.1f} | {pct(before['gpu_busy_fraction'])} |")
        w(f"| tuned ({gpu['tuned_knobs']}) | {gpu['after']['outputs_per_s']:.1f} | "
          f"{pct(gpu['after']['gpu_busy_fraction'])} |")
    w("")

    for f in meta["failed"]:
        w(f"**{f['pipeline']} failed**: {f['error']}")
        w("")
    w("### Misses")
    w("")
    if not misses:
        w("None: sluice-tuned meets every target in this run.")
    else:
        w("Where sluice-tuned misses a target: the configs it and the winner chose, the run-to-run "
          "spread of each (a miss inside the spread is not a measured difference), what sluice "
          "predicted for its own config, and the tuner's notes.")
        w("")
        for p, target, fig, winner in misses:
            m = p["methods"]
            sl = p["sluice"]
            rate = m["sluice"]["outputs_per_s"]
            line = (f"- {p['pipeline']}, {target} ({fig}): sluice chose `{m['sluice']['knobs']}` "
                    f"(spread {pct(m['sluice']['spread'])})")
            if winner in m:
                line += (f", {METHOD_TITLES[winner]} `{m[winner]['knobs']}` "
                         f"(spread {pct(m[winner]['spread'])})")
            line += (f"; sluice predicted {sl['predicted']:.1f} for its config and it measured "
                     f"{rate:.1f} ({100 * (sl['predicted'] / rate - 1):+.0f}%)")
            # Why the tuner left a cache out matters only where the winner used one.
            cached = winner in m and "cache" in m[winner]["knobs"].split(", ")
            notes = [n for n in sl.get("notes", []) if cached and n.startswith("no cache")]
            line += "".join(f"; tuner: {n}" for n in notes) + "."
            w(line)
    w(END_MARK)
    return "\n".join(L) + "\n"


def update_docs(path, section):
    """Replaces the text between the markers in PATH (or appends the section)."""
    with open(path) as f:
        text = f.read()
    if BEGIN_MARK in text and END_MARK in text:
        a = text.index(BEGIN_MARK)
        b = text.index(END_MARK) + len(END_MARK)
        rest = text[b:]
        if rest.startswith("\n"):
            rest = rest[1:]
        text = text[:a] + section + rest
    else:
        text = text.rstrip("\n") + "\n\n" + section
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(prog="bench/run.sh", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="short runs (about 6 minutes on 2 cores)")
    ap.add_argument("--out", help="results directory (default BUILD_DIR/bench)")
    ap.add_argument("--only", help="comma-separated pipelines (default: all five)")
    ap.add_argument("--memory", default="512M", help="memory budget for sluice tune (default 512M)")
    ap.add_argument("--no-peer", action="store_true", help="skip the PyTorch DataLoader comparison")
    ap.add_argument("--no-docs", action="store_true",
                    help="do not rewrite docs/benchmarks.md (implied by --only)")
    ap.add_argument("--estimate", action="store_true", help="print the cost estimate and exit")
    ap.add_argument("--from-results", metavar="JSON",
                    help="rewrite the tables (and docs) from an earlier results.json; run nothing")
    ap.add_argument("--build-dir", default=os.environ.get("BUILD_DIR", "build"))
    ap.add_argument("--command", help=argparse.SUPPRESS)  # the command line to record
    args = ap.parse_args()

    os.chdir(ROOT)
    if args.from_results:
        saved = load(args.from_results)
        section = render(saved["pipelines"], saved["meta"])
        out = os.path.join(os.path.dirname(os.path.abspath(args.from_results)), "tables.md")
        with open(out, "w") as f:
            f.write(section)
        if not args.no_docs:
            update_docs(os.path.join(ROOT, "docs", "benchmarks.md"), section)
        log(f"wrote {os.path.relpath(out)}" + ("" if args.no_docs else " and docs/benchmarks.md"))
        return 0
    args.build_dir = os.path.abspath(args.build_dir)
    sluice = os.environ.get("SLUICE") or os.path.join(args.build_dir, "bin", "sluice")
    args.out = os.path.abspath(args.out or os.path.join(args.build_dir, "bench"))
    args.data = os.path.join(ROOT, "examples", "data")
    mode_name = "quick" if args.quick else "full"
    mode = MODES[mode_name]
    names = args.only.split(",") if args.only else PIPELINES
    for n in names:
        if n not in PIPELINES:
            ap.error(f"unknown pipeline '{n}' (known: {', '.join(PIPELINES)})")
    if args.only:
        args.no_docs = True  # the docs hold the whole suite, never a part of it
    cores = len(os.sched_getaffinity(0))
    peer_why = "--no-peer" if args.no_peer else torch_status()
    _, gpu_why = gpu_status(args.build_dir)
    lo, hi = estimate(mode, cores, names, peer_why is None and "image" in names, gpu_why is None)
    log(f"bench/run.sh ({mode_name}): {len(names)} pipelines on {cores} cores; each chosen config "
        f"{mode['reps']} x {mode['run_s']:g} s, search trials {mode['search_s']:g} s, profile "
        f"{mode['profile_s']:g} s; estimated {lo / 60:.1f} min (at most {hi / 60:.1f} min)")
    if peer_why:
        log(f"  peer (PyTorch DataLoader): skipped: {peer_why}")
    if gpu_why:
        log(f"  gpu_train: not run: {gpu_why}")
    if args.estimate:
        return 0
    if not os.path.exists(sluice):
        sys.exit(f"bench/run.sh: {sluice} not found: build it first (scripts/bootstrap.sh)")
    if not os.path.isdir(os.path.join(args.data, "images")):
        sys.exit(f"bench/run.sh: no dataset in {args.data}: run "
                 f"{os.path.relpath(os.path.join(args.build_dir, 'bin', 'make_dataset'))} "
                 f"examples/data")
    os.makedirs(args.out, exist_ok=True)

    command = args.command or ("bench/run.sh" + (" --quick" if args.quick else ""))
    if args.build_dir != os.path.join(ROOT, "build"):
        command = f"BUILD_DIR={os.path.relpath(args.build_dir, ROOT)} {command}"
    if os.environ.get("SLUICE"):
        command = f"SLUICE={os.path.relpath(sluice, ROOT)} {command}"
    clock = Clock()
    runner = Runner(sluice)
    load_start = os.getloadavg()[0]
    results, failed = [], []
    for n in names:
        try:
            results.append(bench_pipeline(n, runner, args, mode, cores, clock))
        except (RuntimeError, OSError, ValueError, KeyError) as e:
            log(f"   {n} failed: {e}")
            failed.append({"pipeline": n, "error": str(e)})
    peer = {"skipped": peer_why} if peer_why else (
        run_peer(args, mode, cores, clock) if "image" in names else None)
    gpu = {"skipped": gpu_why} if gpu_why else run_gpu(runner, args, mode, clock)
    meta = {
        "command": command,
        "mode": mode_name, "mode_settings": mode, "cores": cores, "cpu": cpu_model(),
        "mem_gib": mem_gib(), "os": f"{platform.system()} {platform.release()}",
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "elapsed_s": clock.elapsed(), "estimate": [lo, hi], "runs": runner.runs,
        "memory": args.memory, "sluice": os.path.relpath(sluice, ROOT), "peer": peer, "gpu": gpu,
        "load_start": load_start, "load_end": os.getloadavg()[0], "failed": failed,
    }
    save({"meta": meta, "pipelines": results}, os.path.join(args.out, "results.json"))
    section = render(results, meta)
    with open(os.path.join(args.out, "tables.md"), "w") as f:
        f.write(section)
    if not args.no_docs:
        update_docs(os.path.join(ROOT, "docs", "benchmarks.md"), section)
    log(f"done in {clock.elapsed() / 60:.1f} min (estimated {lo / 60:.1f}, at most {hi / 60:.1f}): "
        f"{os.path.relpath(os.path.join(args.out, 'results.json'))}, "
        f"{os.path.relpath(os.path.join(args.out, 'tables.md'))}" +
        ("" if args.no_docs else ", docs/benchmarks.md"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
