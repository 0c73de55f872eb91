#!/usr/bin/env python3
"""Trains an image classifier on an ImageFolder of photographs, fed by sluice or by PyTorch's
DataLoader, and measures itself: images/s, the training step and the time spent waiting for
input, after a warm-up. The two loaders do the same work (random resized crop, flip, normalize)
on the same model, data and cores, so their figures compare.

    /usr/bin/python3 examples/train_torch.py --data DIR [--loader sluice|dataloader]
    sluice profile --out prof -- /usr/bin/python3 examples/train_torch.py --data DIR

On CPU by default (ResNet-18, or --model tiny); on a CUDA device, when present, in bfloat16
with channels_last and pinned batches.
"""

import argparse
import json
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="an ImageFolder: DIR/<class>/<image>.jpg")
    p.add_argument("--loader", choices=["sluice", "dataloader"], default="sluice")
    p.add_argument("--pipeline", default=os.path.join(HERE, "torch_pipeline.json"),
                   help="the sluice pipeline config (its list_files pattern is pointed at --data)")
    p.add_argument("--model", choices=["resnet18", "tiny"], default="resnet18")
    p.add_argument("--workers", type=int, default=os.cpu_count(),
                   help="DataLoader worker processes (the sluice config sets its own threads)")
    p.add_argument("--prefetch-factor", type=int, default=2, help="DataLoader prefetch_factor")
    p.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's)")
    p.add_argument("--warmup-steps", type=int, default=5)
    p.add_argument("--steps", type=int, default=0, help="stop after this many measured steps")
    p.add_argument("--seconds", type=float, default=20, help="stop after this long measuring")
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--json", action="store_true", help="print the summary as one JSON line")
    return p.parse_args(argv)


def sluice_config(args):
    """The pipeline config with its source pointed at --data; its crop size and batch size are
    the ones the DataLoader path uses too."""
    with open(args.pipeline) as f:
        cfg = json.load(f)
    source = cfg["stages"][0]
    source.setdefault("args", {})["pattern"] = os.path.join(os.path.abspath(args.data), "*", "*.jpg")
    source["args"]["label_from"] = "parent_dir"
    size = next(s["args"]["size"] for s in cfg["stages"]
                if s["op"] in ("random_resized_crop", "decode_random_resized_crop"))
    batch = next(s["args"]["size"] for s in cfg["stages"] if s["op"] == "batch")
    return cfg, size, batch


def sluice_batches(cfg, cuda):
    import sluice
    pipeline = sluice.Pipeline(cfg, epochs=-1, pin_memory=cuda)
    return pipeline, len(pipeline.classes)


def dataloader_batches(args, size, batch, cuda):
    from torchvision import datasets, transforms
    tf = transforms.Compose([
        transforms.RandomResizedCrop(size, antialias=True),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    ])
    dataset = datasets.ImageFolder(args.data, transform=tf)
    workers = max(0, args.workers)
    multiprocess = {"persistent_workers": True, "prefetch_factor": args.prefetch_factor}
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch, shuffle=True, drop_last=True, num_workers=workers,
        pin_memory=cuda, **(multiprocess if workers > 0 else {}))

    def forever():
        while True:
            yield from loader
    return forever(), len(dataset.classes)


def make_model(name, classes):
    if name == "resnet18":
        from torchvision.models import resnet18
        return resnet18(num_classes=classes)
    # A few milliseconds per image on a CPU core: small enough that the loader decides the rate.
    return nn.Sequential(
        nn.Conv2d(3, 16, 4, stride=4), nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, classes))


def train(args, batches, model, device, batch):
    """The loop, timed as the tracer times a consumer: its step runs from the return of next()
    to the following call; its wait is the time inside next()."""
    cuda = device.type == "cuda"
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    model.train()
    it = iter(batches)
    step_s = wait_s = 0.0
    measured = warm = 0
    began = None
    loss = torch.zeros(())
    while True:
        t0 = time.perf_counter()
        images, labels = next(it)
        t1 = time.perf_counter()
        images = images.to(device, non_blocking=True,
                           memory_format=torch.channels_last if cuda else torch.contiguous_format)
        labels = labels.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
            loss = F.cross_entropy(model(images), labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        t2 = time.perf_counter()
        if began is None:
            warm += 1
            if warm >= args.warmup_steps:
                began = time.perf_counter()
            continue
        step_s += t2 - t1
        wait_s += t1 - t0
        measured += 1
        if (args.steps and measured >= args.steps) or t2 - began >= args.seconds:
            break
    if cuda:
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - began
    return {"loader": args.loader, "model": args.model, "device": device.type,
            "batch": batch, "steps": measured, "seconds": round(elapsed, 3),
            "images_per_s": round(measured * batch / elapsed, 2),
            "step_ms": round(1e3 * step_s / measured, 3),
            "wait_ms": round(1e3 * wait_s / measured, 3),
            "wait_fraction": round(wait_s / elapsed, 4), "last_loss": round(float(loss), 4)}


def main(argv=None):
    args = parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    cfg, size, batch = sluice_config(args)
    if args.loader == "sluice":
        batches, classes = sluice_batches(cfg, cuda)
    else:
        batches, classes = dataloader_batches(args, size, batch, cuda)
    model = make_model(args.model, classes).to(device)
    if cuda:
        model = model.to(memory_format=torch.channels_last)
    summary = train(args, batches, model, device, batch)
    if args.json:
        print(json.dumps(summary), flush=True)
    else:
        print(f"{summary['loader']}: {summary['images_per_s']} images/s over {summary['steps']} "
              f"steps; step {summary['step_ms']} ms, waiting {summary['wait_ms']} ms per batch "
              f"({100 * summary['wait_fraction']:.1f} % of the time)", flush=True)
    if args.loader == "sluice":
        batches.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
