#!/usr/bin/python3
"""Online tuning, measured: sluice's model-driven loop against the hill-climbing baseline
(tf.data AUTOTUNE's procedure, run online through the same runtime), each started from the
suite's pipelines as shipped (every parallelism 1, no prefetch), against the config that
`sluice profile CONFIG` settles on offline (the oracle here).

For each pipeline: the oracle is profiled once and its steady rate measured over the last 5 s
of a run; each online policy runs `sluice run CONFIG --autotune --json` for --seconds, --rounds
times, and the oracle's config itself runs as long under the same tracer with nothing changed
(`--autotune-policy observe`), which shows how late the convergence measure puts a config that
never changes. Reported: the rate over the last 5 s against the oracle's, the time to converge (the
rate reaches and stays within 5 % of its final level), the number of changes made to the running
job, peak RSS against the memory budget, and the model's one-shot error before and after
calibration. Writes the section between the autotune_bench markers of docs/benchmarks.md.

    /usr/bin/python3 bench/autotune_bench.py [--only skewed,image,example:image_pipeline]
        [--seconds 20] [--rounds 2] [--build build] [--photos /work/data/photos]
        [--memory 1G] [--phase] [--doc docs/benchmarks.md]

Images are photographs (bench/photos/README.md makes them from Debian's wallpaper packages):
--photos DIR (DIR/<class>/*.jpg) is laid out as data/images/img_NNNNN.jpg for the suite's and
the examples' patterns, and as data/photos for torch_pipeline's; text comes from examples/data.
`example:NAME` runs examples/NAME.json as shipped.

Standard library only.
"""

import argparse
import datetime
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench", "lib"))
import suite  # noqa: E402  (the suite's page-cache warming and docs splicing)

PIPELINES = ["skewed", "io_bound", "image", "text", "cacheable", "example:synthetic_pipeline",
             "example:image_pipeline", "example:cacheable_pipeline", "example:text_pipeline",
             "example:torch_pipeline"]
BEGIN = "<!-- autotune_bench: begin -->"
END = "<!-- autotune_bench: end -->"


def run(cmd, timeout):
    """Runs CMD; returns its standard output."""
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{shlex.join(cmd)} exited {proc.returncode}: {proc.stderr[-2000:]}")
    return proc.stdout


def run_json(cmd, timeout):
    """Runs CMD (a `sluice run ... --json`) and returns its JSON with the peak RSS (MiB)."""
    with open(os.devnull, "rb") as devnull:
        proc = subprocess.Popen(cmd, stdin=devnull, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        out = proc.stdout.read()
        err = proc.stderr.read()
        _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{shlex.join(cmd)} failed: {err.decode()[-2000:]}")
    result = json.loads(out)
    result["peak_rss_mib"] = usage.ru_maxrss / 1024.0
    return result


def photo_data(out, photos):
    """A data folder: the photographs as images/img_NNNNN.jpg and photos/<class>/, and the
    examples' text corpus."""
    data = os.path.join(out, "data")
    shutil.rmtree(data, ignore_errors=True)
    os.makedirs(os.path.join(data, "images"))
    files = sorted(os.path.join(d, f) for d, _, fs in os.walk(photos) for f in fs
                   if f.lower().endswith((".jpg", ".jpeg")))
    if not files:
        raise SystemExit(f"no photographs under {photos}: make them with bench/photos/README.md")
    for i, f in enumerate(files):
        os.symlink(f, os.path.join(data, "images", f"img_{i:05d}.jpg"))
    os.symlink(os.path.abspath(photos), os.path.join(data, "photos"))
    os.symlink(os.path.join(ROOT, "examples", "data", "text"), os.path.join(data, "text"))
    return data, len(files)


def config_path(name):
    """bench/suite/NAME.json, or examples/X.json for example:X."""
    if name.startswith("example:"):
        return os.path.join(ROOT, "examples", name.split(":", 1)[1] + ".json")
    return os.path.join(ROOT, "bench", "suite", f"{name}.json")


def workdir(out, name, data, config=None):
    """A fresh work folder for NAME with the suite's CONFIG (default: NAME) as shipped."""
    work = os.path.join(out, name.replace(":", "_"))
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    doc = suite.load(config_path(config or name))
    doc.pop("bench_grid", None)
    doc["epochs"] = -1
    path = os.path.join(work, "naive.json")
    suite.save(doc, path)
    os.symlink(data, os.path.join(work, "data"))
    return work, path


def profile_offline(sluice, work, naive):
    """`sluice profile CONFIG` (with its trials): the config it settles on."""
    out = os.path.join(work, "offline")
    os.makedirs(out)
    os.symlink(os.path.join(work, "data"), os.path.join(out, "data"))
    run([sluice, "profile", naive, "--seconds", "10", "--out", out], 600)
    return os.path.join(out, "tuned.json")


def oracle_rate(sluice, tuned, seconds):
    """The offline-tuned config's rate over the last 5 s of a run as long as the online ones."""
    r = run_json([sluice, "run", tuned, "--seconds", str(seconds), "--epochs", "-1", "--json",
                  "--warmup", str(seconds - 5)], seconds + 120)
    return r["steady_outputs_per_s"]


def online(sluice, work, naive, policy, seconds, memory, k):
    out = os.path.join(work, f"{policy}-{k}")
    r = run_json([sluice, "run", naive, "--seconds", str(seconds), "--epochs", "-1", "--json",
                  "--autotune", "--autotune-policy", policy, "--memory", memory, "--out", out],
                 seconds + 120)
    a = r["autotune"]
    applied = [c for c in a["changes"] if c["when"] != "not_applied"]
    changes = len(applied)
    return {"final": a["final_outputs_per_s"], "converged": a["converged_after_s"],
            "last_change": max((c["t"] for c in applied), default=0.0),
            "changes": changes, "retunes": a["retunes"], "rss_mib": r["peak_rss_mib"],
            "tuner_cpu_s": a["tuner_cpu_seconds"],
            "model_error": a["model_error"], "calibrated_error": a["calibrated_model_error"]}


# The phase scenarios: `skewed` under a 5 ms training step, one stage's cost tripling at 10 s.
# lookup (1000 -> 3000 us blocked): the workers that kept pace before no longer do, and more
# help. augment (900 -> 2700 us CPU): the pipeline already uses both cores, so the right re-plan
# changes nothing and says why.
PHASES = {"lookup": ("sleep", "us", 1000), "augment": ("burn", "cpu_us", 900)}


def rate_between(trace_path, t0, t1):
    """Outputs/s between t0 and t1 s of a trace (its samples chunks), or None."""
    t, n = [], []
    with open(trace_path) as f:
        for line in f:
            d = json.loads(line)
            if d.get("chunk") != "samples" or not d.get("pipelines"):
                continue
            # A pipeline's samples are the chunk's last ones (it may start after the tracer).
            nc = d["pipelines"][0]["series"]["consumer_next"]
            t += d["series"]["t"][len(d["series"]["t"]) - len(nc):]
            n += nc
    pts = [(a, b) for a, b in zip(t, n) if t0 <= a <= t1]
    if len(pts) < 2 or pts[-1][0] <= pts[0][0]:
        return None
    return (pts[-1][1] - pts[0][1]) / (pts[-1][0] - pts[0][0])


def phase_change(sluice, out, data, seconds, rounds):
    """For each scenario of PHASES: how long after the change the loop re-planned (a change or a
    recorded re-plan), what it did, and the rate over 5 s before the change and at the end."""
    found = {}
    for stage, (op, key, cost) in PHASES.items():
        work, naive = workdir(out, f"skewed_phase_{stage}", data, "skewed")
        doc = suite.load(naive)
        args = doc["stages"][suite.stage_index(doc, stage)]["args"]
        args[key] = cost
        args["schedule"] = [[10, 3 * cost]]
        suite.save(doc, naive)
        found[stage] = []
        for k in range(rounds):
            run_out = os.path.join(work, f"model-{k}")
            r = run_json([sluice, "run", naive, "--seconds", str(seconds), "--epochs", "-1",
                          "--json", "--consumer-ms", "5", "--autotune", "--out", run_out],
                         seconds + 120)
            a = r["autotune"]
            changed = [c for c in a["changes"] if c["t"] > 10 and c["when"] != "not_applied"]
            first = min((c["t"] for c in changed), default=None)
            workers = ", ".join(f"{c['stage']} workers {c['from']} → {c['to']}" for c in changed
                                if c["t"] == first and c["knob"] == "parallelism")
            moves = sorted(([(first, workers or "queues changed")] if changed else [])
                           + [(x["t"], "re-planned, no change") for x in a["replans"]
                              if x["t"] > 10])
            trace = os.path.join(run_out, "trace.json")
            got = {"after": moves[0][0] - 10 if moves else None,
                   "what": moves[0][1] if moves else "nothing",
                   "before": rate_between(trace, 5, 10), "final": a["final_outputs_per_s"]}
            found[stage].append(got)
            print(f"   phase {stage} {k}: {got}", flush=True)
    return found


def spread(xs, fmt="{:.1f}"):
    if not xs:
        return "-"
    med = statistics.median(xs)
    if len(xs) == 1:
        return fmt.format(med)
    return f"{fmt.format(med)} ({fmt.format(min(xs))}–{fmt.format(max(xs))})"


def render(results, meta):
    lines = [BEGIN, f"Measured {meta['when']} on {meta['cores']} cores; command: "
             f"`{meta['command']}`.", "",
             "Each pipeline starts as shipped (every parallelism 1, no prefetch) and runs "
             f"{meta['seconds']} s with the online tuner on {meta['photos']} photographs "
             "(bench/photos); the oracle is the config `sluice profile "
             "CONFIG` settles on offline, run as long, in the same round. Rates are the last 5 s "
             "of each run; a ratio compares a run with the oracle's run of its round; medians "
             "(min–max) over "
             f"{meta['rounds']} runs. \"Converged after\": from the start until the rate over 5 s "
             "windows last rose to within 5 % of the final rate and stayed there (not before the "
             "last change); \"last change\": when the last change was applied. \"Offline "
             "config, untouched\": the oracle's config run under the same tracer and measured "
             "the same way (`--autotune-policy observe`), nothing changed: the measure's own "
             "floor. "
             f"Memory budget `--memory {meta['memory']}` for both policies "
             "(peak RSS is the whole process).", "",
             "| pipeline | oracle (outputs/s) | policy | final / oracle | converged after (s) | "
             "last change (s) | changes | peak RSS (MiB) | tuner CPU (s) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        if "error" in r:
            lines.append(f"| {name} | failed: {r['error'][:120]} | | | | | | | |")
            continue
        for policy, label in (("model", "sluice (model)"), ("hill", "hill-climbing"),
                              ("observe", "offline config, untouched")):
            runs = r.get(policy)
            if not runs:
                continue
            # Each run against the oracle's run of the same round.
            ratios = [x["final"] / ok for x, ok in zip(runs, r["oracle"])]
            lines.append(
                f"| {name} | {spread(r['oracle'])} | {label} | "
                f"{spread(ratios, '{:.2f}')} | "
                f"{spread([x['converged'] for x in runs])} | "
                f"{spread([x.get('last_change', 0.0) for x in runs])} | "
                f"{spread([x['changes'] for x in runs], '{:.0f}')} | "
                f"{spread([x['rss_mib'] for x in runs], '{:.0f}')} | "
                f"{spread([x['tuner_cpu_s'] for x in runs], '{:.2f}')} |")
    errors = [x["model_error"][0] for r in results.values() if "model" in r
              for x in r["model"] if x["model_error"]]
    later = [e for r in results.values() if "model" in r for x in r["model"]
             for e in x["calibrated_error"][1:]]
    if meta.get("phase") is not None:
        lines += ["", "Phase change: `skewed` under a 5 ms training step, one stage's cost "
                  "tripling at 10 s (interval 2 s):", "",
                  "| stage (cost) | re-planned after the change (s) | first act | rate 5–10 s | "
                  "rate 15–20 s |", "|---|---|---|---|---|"]
        for stage, runs in meta["phase"].items():
            op, key, cost = PHASES[stage]
            got = [x["after"] for x in runs if x["after"] is not None]
            acts = sorted({x["what"] for x in runs})
            lines.append(f"| {stage} ({op} {key} {cost} → {3 * cost}) | {spread(got)}, in "
                         f"{len(got)} of {len(runs)} runs | {'; '.join(acts)} | "
                         f"{spread([x['before'] for x in runs if x['before']])} | "
                         f"{spread([x['final'] for x in runs])} |")
    lines += ["", "Model error |predicted − measured| / measured of the re-tunes: the first "
              f"(one-shot, uncalibrated) {spread([100 * e for e in errors], '{:.0f}')} %; later "
              f"ones with calibration {spread([100 * e for e in later], '{:.0f}')} %.", END]
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=",".join(PIPELINES))
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--photos", default="/work/data/photos")
    ap.add_argument("--memory", default="1G")
    ap.add_argument("--out", default=None)
    ap.add_argument("--doc", default=None, help="docs/benchmarks.md to update")
    ap.add_argument("--phase", action="store_true", help="also time the re-plan after a phase "
                    "change")
    args = ap.parse_args()
    sluice = os.path.join(args.build, "bin", "sluice")
    out = args.out or os.path.join(args.build, "autotune_bench")
    data, photos = photo_data(out, args.photos)
    suite.warm_page_cache(args.photos)
    results = {}
    for name in filter(None, args.only.split(",")):  # --only "" --phase: the phases alone
        print(f"== {name}", flush=True)
        work, naive = workdir(out, name, data)
        try:
            tuned = profile_offline(sluice, work, naive)
            r = {"oracle_config": tuned, "oracle": [], "model": [], "hill": [], "observe": []}
            for k in range(args.rounds):
                # Interleaved, so that drift hits the four alike.
                r["oracle"].append(oracle_rate(sluice, tuned, args.seconds))
                print(f"   oracle {k}: {r['oracle'][-1]:.1f}", flush=True)
                for policy in ("model", "hill", "observe"):
                    # observe: the offline config as it is, measured as the online runs are.
                    config = tuned if policy == "observe" else naive
                    r[policy].append(online(sluice, work, config, policy, args.seconds,
                                            args.memory, k))
                    print(f"   {policy} {k}: {r[policy][-1]['final']:.1f}, converged after "
                          f"{r[policy][-1]['converged']:.1f} s, {r[policy][-1]['changes']} "
                          "changes", flush=True)
        except Exception as e:  # one pipeline failing is reported, not fatal
            r = {"error": str(e)}
            print(f"   failed: {e}", flush=True)
        results[name] = r
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump({"results": results}, f, indent=2)
    phase = phase_change(sluice, out, data, args.seconds, args.rounds) if args.phase else None
    meta = {"phase": phase, "when": datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC"),
            "cores": os.cpu_count(), "seconds": args.seconds, "rounds": args.rounds,
            "memory": args.memory, "photos": photos,
            "command": "/usr/bin/python3 bench/autotune_bench.py " + " ".join(
                shlex.quote(a) for a in sys.argv[1:])}
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump({"meta": meta, "results": results}, f, indent=2)
    section = render(results, meta)
    print(section)
    if args.doc:
        global_begin, global_end = suite.BEGIN_MARK, suite.END_MARK
        suite.BEGIN_MARK, suite.END_MARK = BEGIN, END
        try:
            suite.update_docs(args.doc, section)
        finally:
            suite.BEGIN_MARK, suite.END_MARK = global_begin, global_end


if __name__ == "__main__":
    main()
