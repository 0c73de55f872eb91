"""The image pipeline of bench/suite/image.json in PyTorch's DataLoader, over a grid of settings.

Same work as sluice's: read each JPEG file, decode it (PIL), random-resized-crop to SIZE with the
same scale and ratio ranges, flip half of them, convert to float32 CHW and normalize with
ImageNet's mean and std, batch BATCH images (drop_last), files shuffled, epochs repeated. Each
setting (num_workers 0..2*CORES; prefetch_factor 2 and 4 when there are workers) runs for at
least SECONDS after its first batch arrives and reports batches/s (and images/s). DATA is a
folder of JPEGs, searched recursively (**/*.jpg), so ImageFolder trees such as bench/photos's work.

The DataLoader's defaults are kept: each worker process runs torch with one thread (the
DataLoader calls torch.set_num_threads(1) in every worker); with num_workers=0 the main process
does the work with torch's default thread count (recorded as torch_threads).

--per-transform instead times each step in the main process on N images (default 300), as one
worker runs them (one torch thread): CPU time of this thread (time.thread_time, user + system)
per image for file read + PIL decode, RandomResizedCrop, RandomHorizontalFlip, ToTensor,
Normalize, and default_collate of BATCH tensors divided by BATCH; printed as a table and written
to --json under per_transform_ms (wall-clock times under per_transform_wall_ms).

  /usr/bin/python3 bench/peer/torch_image.py --data /work/data/photos --seconds 6 --cores 2 \\
      [--batch 64] [--json OUT] [--per-transform [--images 300]]

Needs Debian's python3-torch, python3-torchvision and python3-pil.
"""

import argparse
import glob
import json
import os
import random
import sys
import time
import warnings

import PIL
import torch
import torchvision
from PIL import Image
from torch.utils.data import DataLoader, Dataset, default_collate
from torchvision import transforms

# The grid goes past the core count on purpose: the DataLoader's warning about it is expected.
warnings.filterwarnings("ignore", message="This DataLoader will create")

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]  # ImageNet's


def load_rgb(path):
    """The file read and PIL decode, as the dataset does them."""
    with open(path, "rb") as f:
        img = Image.open(f)
        return img.convert("RGB")  # decodes


class JpegFiles(Dataset):
    """One item per JPEG file: read, decode, augment, to a normalized float32 CHW tensor."""

    def __init__(self, files, size):
        self.files = files
        self.transform = transforms.Compose(augmentations(size))

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        return self.transform(load_rgb(self.files[i]))


def augmentations(size):
    return [transforms.RandomResizedCrop(size, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)),
            transforms.RandomHorizontalFlip(p=0.5),
            transforms.ToTensor(),
            transforms.Normalize(mean=MEAN, std=STD)]


def measure(dataset, batch, workers, prefetch, seconds):
    """Batches/s over SECONDS of steady state, epochs repeated: the clock starts when the first
    batch arrives, so worker start-up and the first batch's latency are not counted (sluice's
    own runs count theirs: the comparison leans towards the DataLoader)."""
    kwargs = {"batch_size": batch, "shuffle": True, "drop_last": True, "num_workers": workers}
    if workers > 0:
        kwargs.update(prefetch_factor=prefetch, persistent_workers=True)
    loader = DataLoader(dataset, **kwargs)
    batches = -1  # the first batch starts the clock
    start = deadline = None
    done = False
    while not done:
        for images in loader:
            assert images.shape[0] == batch
            now = time.monotonic()
            batches += 1
            if start is None:
                start, deadline = now, now + seconds
            elif now >= deadline:
                done = True
                break
    elapsed = time.monotonic() - start
    del loader  # stops the workers
    return batches / elapsed


def per_transform(files, size, batch, count):
    """Milliseconds per image of each step, CPU time of this thread and wall time, over COUNT
    images (after 8 not counted, to warm up), one torch thread as in a DataLoader worker."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    order = random.Random(0).sample(range(len(files)), len(files))
    names = ["read+decode", "RandomResizedCrop", "RandomHorizontalFlip", "ToTensor", "Normalize"]
    steps = [load_rgb] + augmentations(size)
    cpu, wall = dict.fromkeys(names, 0), dict.fromkeys(names, 0)
    tensors = []
    for k in range(8 + count):
        x = files[order[k % len(files)]]
        for name, step in zip(names, steps):
            c, w = time.thread_time_ns(), time.perf_counter_ns()
            x = step(x)
            if k >= 8:
                cpu[name] += time.thread_time_ns() - c
                wall[name] += time.perf_counter_ns() - w
        if k >= 8:
            tensors.append(x)
    batches = max(1, count // batch)  # collate whole batches, cycling through the tensors
    cpu["collate"] = wall["collate"] = 0
    for b in range(batches):
        group = [tensors[(b * batch + j) % len(tensors)] for j in range(batch)]
        c, w = time.thread_time_ns(), time.perf_counter_ns()
        out = default_collate(group)
        cpu["collate"] += time.thread_time_ns() - c
        wall["collate"] += time.perf_counter_ns() - w
        assert out.shape == (batch, 3, size, size)
    n = dict.fromkeys(cpu, count)
    n["collate"] = batches * batch
    cpu_ms = {k: cpu[k] / n[k] / 1e6 for k in cpu}
    wall_ms = {k: wall[k] / n[k] / 1e6 for k in wall}
    cpu_ms["total"], wall_ms["total"] = sum(cpu_ms.values()), sum(wall_ms.values())
    print(f"per image, {count} images (collate: {batches} batches of {batch}), one torch thread:")
    print(f"  {'step':<22}{'CPU ms':>8}{'wall ms':>9}{'share':>7}")
    for k in cpu_ms:
        print(f"  {k:<22}{cpu_ms[k]:8.3f}{wall_ms[k]:9.3f}"
              f"{100 * cpu_ms[k] / cpu_ms['total']:6.1f}%")
    print(f"  => {1000 / cpu_ms['total']:.0f} images/s per fully used core "
          f"({1000 / cpu_ms['total'] / batch:.2f} batches/s of {batch})", flush=True)
    return cpu_ms, wall_ms


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="folder of JPEG files (searched recursively)")
    ap.add_argument("--seconds", type=float, default=6.0, help="per setting (default 6)")
    ap.add_argument("--cores", type=int, default=len(os.sched_getaffinity(0)),
                    help="the grid's num_workers goes up to 2*CORES")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--per-transform", action="store_true",
                    help="time each step in the main process instead of running the grid")
    ap.add_argument("--images", type=int, default=300, help="images for --per-transform")
    ap.add_argument("--only", metavar="WORKERS[,PREFETCH]",
                    help="run this one setting instead of the grid (a re-measure of the best)")
    args = ap.parse_args()

    files = sorted(glob.glob(os.path.join(args.data, "**", "*.jpg"), recursive=True))
    if len(files) < args.batch:
        sys.exit(f"torch_image.py: {len(files)} JPEG files in {args.data}, fewer than a batch")
    meta = {"torch": torch.__version__, "torchvision": torchvision.__version__,
            "pil": PIL.__version__, "data": os.path.abspath(args.data), "files": len(files),
            "batch": args.batch, "size": args.size}
    if args.per_transform:
        cpu_ms, wall_ms = per_transform(files, args.size, args.batch, args.images)
        out = dict(meta, per_transform_images=args.images, torch_threads=torch.get_num_threads(),
                   per_transform_ms=cpu_ms, per_transform_wall_ms=wall_ms)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(out, f, indent=2)
                f.write("\n")
        return 0

    dataset = JpegFiles(files, args.size)
    settings = [(0, None)] + [(w, p) for w in range(1, 2 * args.cores + 1) for p in (2, 4)]
    if args.only:
        parts = [int(v) for v in args.only.split(",")]
        settings = [(parts[0], parts[1] if parts[0] > 0 and len(parts) > 1 else
                     (2 if parts[0] > 0 else None))]
    results = []
    for workers, prefetch in settings:
        rate = measure(dataset, args.batch, workers, prefetch, args.seconds)
        setting = (f"num_workers={workers}" if workers == 0 else
                   f"num_workers={workers}, prefetch_factor={prefetch}")
        print(f"{setting}: {rate:.2f} batches/s = {rate * args.batch:.0f} images/s", flush=True)
        results.append({"num_workers": workers, "prefetch_factor": prefetch, "setting": setting,
                        "batches_per_s": rate, "images_per_s": rate * args.batch})
    best = max(results, key=lambda r: r["batches_per_s"])
    print(f"best: {best['setting']}: {best['images_per_s']:.0f} images/s", flush=True)
    out = dict(meta, seconds=args.seconds, cores=args.cores, torch_threads=torch.get_num_threads(),
               worker_torch_threads=1, results=results, best=best)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
