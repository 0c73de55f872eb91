"""The image pipeline of bench/suite/image.json in PyTorch's DataLoader, over a grid of settings.

Same work as sluice's: read each JPEG file, decode it (PIL), random-resized-crop to SIZE with the
same scale and ratio ranges, flip half of them, convert to float32 CHW and normalize with
ImageNet's mean and std, batch BATCH images (drop_last), files shuffled, epochs repeated. Each
setting (num_workers 0..CORES; prefetch_factor 2 and 4 when there are workers) runs for SECONDS
after its first batch arrives and reports batches/s.

  /usr/bin/python3 bench/peer/torch_image.py --data examples/data/images --seconds 2 --cores 2 \\
      [--json OUT]

Needs Debian's python3-torch, python3-torchvision and python3-pil.
"""

import argparse
import glob
import json
import os
import sys
import time

import PIL
import torch
import torchvision
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms


class JpegFiles(Dataset):
    """One item per JPEG file: read, decode, augment, to a normalized float32 CHW tensor."""

    def __init__(self, files, size):
        self.files = files
        self.transform = transforms.Compose([
            transforms.RandomResizedCrop(size, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)),
            transforms.RandomHorizontalFlip(p=0.5),
            transforms.ToTensor(),
            transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
        ])

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        with open(self.files[i], "rb") as f:
            img = Image.open(f)
            img = img.convert("RGB")  # decodes
        return self.transform(img)


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


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="directory of JPEG files")
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--cores", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()

    files = sorted(glob.glob(os.path.join(args.data, "*.jpg")))
    if len(files) < args.batch:
        sys.exit(f"torch_image.py: {len(files)} JPEG files in {args.data}, fewer than a batch")
    dataset = JpegFiles(files, args.size)
    settings = [(0, None)] + [(w, p) for w in range(1, args.cores + 1) for p in (2, 4)]
    results = []
    for workers, prefetch in settings:
        rate = measure(dataset, args.batch, workers, prefetch, args.seconds)
        setting = (f"num_workers={workers}" if workers == 0 else
                   f"num_workers={workers}, prefetch_factor={prefetch}")
        print(f"{setting}: {rate:.2f} batches/s", flush=True)
        results.append({"num_workers": workers, "prefetch_factor": prefetch, "setting": setting,
                        "batches_per_s": rate})
    best = max(results, key=lambda r: r["batches_per_s"])
    out = {"torch": torch.__version__, "torchvision": torchvision.__version__,
           "pil": PIL.__version__, "files": len(files), "batch": args.batch, "size": args.size,
           "seconds": args.seconds, "cores": args.cores, "torch_threads": torch.get_num_threads(),
           "results": results, "best": best}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
