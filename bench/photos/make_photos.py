#!/usr/bin/python3
"""Makes an ImageNet-like JPEG data set from real photographs shipped by Debian wallpaper packages.

Each output image is a random crop of one source photograph (crop sizes varied), downscaled to an
ImageNet-like size (long side mostly 500, short side mostly 300-500, a few percent portrait) and
saved as a baseline JPEG with a random quality in 75..95 and 4:2:0 chroma subsampling. The
result is OUT/classNN/NNNNN.jpg (ImageFolder-style: the source photographs are dealt round-robin
into --classes classes), plus OUT/files.txt (flat list), OUT/manifest.tsv (one line per image:
file, class, source, crop box, size, quality) and OUT/sources.tsv (class, package, photograph).
The same --seed, sources and Pillow give the same bytes.

  /usr/bin/python3 bench/photos/make_photos.py --out /work/data/photos [--count 2000] [--seed 1]

Needs python3-pil and the packages of bench/photos/install_sources.sh. Standard library + PIL.
"""

import argparse
import glob
import os
import random
import re
import statistics
import sys

from PIL import Image

Image.MAX_IMAGE_PIXELS = None  # the sources are large but trusted (Debian's own files)

# (package, glob): the photographs of each package, chosen by eye; its drawings, renders and
# logos are left out. A plasma wallpaper ships one picture at many resolutions: the largest is
# kept (see photo_key).
BG = "/usr/share/backgrounds/"
KDE = "/usr/share/wallpapers/{}/contents/images/*.jpg"
DEFAULT_SOURCES = (
    [("mate-backgrounds", BG + "mate/nature/*.jpg")] +  # 12 macro and nature photos
    [("lomiri-wallpapers-16.04", BG + name + "_by_*.jpg") for name in (
        "Bridge", "Dragonfly", "Picture_0B", "Picture_1A", "Wine", "aitzgorri", "analogpattern",
        "free", "friends", "greentock", "life", "picosdeeuropa", "seeding", "sunset")] +
    [("lomiri-wallpapers-20.04", BG + "Kleiber_by_Lukas_Baubkus.jpg")] +
    [("plasma-workspace-wallpapers", KDE.format(name)) for name in (
        "BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "EveningGlow", "FallenLeaf",
        "Grey", "OneStandsOut", "Path", "summer_1am")])

# Output aspect ratios (long/short side) and their weights; None: uniform in 1.0..1.8.
ASPECTS = [(4 / 3, 30), (3 / 2, 12), (1.0, 25), (5 / 4, 23), (16 / 9, 3), (None, 7)]
PORTRAIT = 0.05  # share turned portrait (squares stay square, so ~4 % end up taller than wide)


def photo_key(path):
    """Files that are one photograph: a KDE wallpaper's resolutions share its folder's name."""
    m = re.search(r"/wallpapers/([^/]+)/contents/images/", path)
    return "kde:" + m.group(1) if m else path


def find_sources(specs):
    """Expands (package, glob) specs into sorted (package, path) photographs; exits naming the
    packages (or globs) that matched nothing."""
    best, missing = {}, []
    for package, pattern in specs:
        found = sorted({os.path.realpath(f) for f in glob.glob(pattern)})  # links: the file
        if not found:
            missing.append(package or pattern)
        for path in found:  # the most pixels wins; on a tie the first path in sorted order
            with Image.open(path) as img:
                pixels = img.width * img.height
            key = photo_key(path)
            if key not in best or pixels > best[key][0]:
                best[key] = (pixels, package, path)
    if missing:
        names = sorted(set(missing))
        sys.exit("make_photos.py: no source photographs for: " + ", ".join(names) +
                 "\n  install them with bench/photos/install_sources.sh (or apt-get install -y "
                 "--no-install-recommends PACKAGE), or pass --sources GLOB...")
    return sorted(((package, path) for _, package, path in best.values()), key=lambda s: s[1])


def out_size(rng):
    """An ImageNet-like (width, height): short side around 300-500, long side mostly 500."""
    aspect = rng.choices([a for a, _ in ASPECTS], [w for _, w in ASPECTS])[0]
    if aspect is None:
        aspect = rng.uniform(1.0, 1.8)
    short = rng.triangular(300, 500, 400)
    if short * aspect > 500 and rng.random() < 0.9:  # ImageNet's long sides mostly stop at 500
        short = 500 / aspect
    w, h = round(short * aspect), round(short)
    return (h, w) if rng.random() < PORTRAIT else (w, h)


def crop_box(rng, src_w, src_h, w, h):
    """A random box of aspect w:h inside the source, from the largest that fits down to a
    quarter of it in side (never smaller than the output, so crops are only ever shrunk)."""
    full = min(src_w / w, src_h / h)  # the scale of the largest box of that aspect
    scale = full * rng.uniform(0.25, 1.0) ** 0.7  # bias towards larger crops
    scale = max(scale, min(1.0, full))
    cw, ch = min(src_w, round(w * scale)), min(src_h, round(h * scale))
    x, y = rng.randint(0, src_w - cw), rng.randint(0, src_h - ch)
    return x, y, x + cw, y + ch


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="output folder (its class*/ JPEGs are replaced)")
    ap.add_argument("--count", type=int, default=2000, help="images to make (default 2000)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--classes", type=int, default=10, help="class folders (default 10)")
    ap.add_argument("--sources", nargs="+", metavar="GLOB",
                    help="source photographs (default: the packages' photos listed in this file)")
    args = ap.parse_args()

    sources = find_sources([(None, g) for g in args.sources] if args.sources else DEFAULT_SOURCES)
    classes = min(args.classes, len(sources))
    rng = random.Random(args.seed)
    # The whole plan first (source, size, crop fractions, quality per image), so that the output
    # does not depend on the order in which the sources are decoded below.
    plan = []
    for n in range(args.count):
        s = rng.randrange(len(sources))
        w, h = out_size(rng)
        plan.append({"n": n, "src": s, "cls": f"class{s % classes:02d}", "w": w, "h": h,
                     "q": rng.randint(75, 95), "seed": rng.getrandbits(32)})

    for old in glob.glob(os.path.join(args.out, "class*", "*.jpg")):
        os.remove(old)
    for c in range(classes):
        os.makedirs(os.path.join(args.out, f"class{c:02d}"), exist_ok=True)
    for s, (_, path) in enumerate(sources):  # each source decoded once, then released
        with Image.open(path) as src:
            img = src.convert("RGB")
        for item in (p for p in plan if p["src"] == s):
            box = crop_box(random.Random(item["seed"]), img.width, img.height, item["w"], item["h"])
            out = img.crop(box).resize((item["w"], item["h"]), Image.LANCZOS, reducing_gap=3.0)
            item["box"] = box
            item["file"] = os.path.join(item["cls"], f"{item['n']:05d}.jpg")
            out.save(os.path.join(args.out, item["file"]), "JPEG", quality=item["q"],
                     subsampling=2)  # 2: 4:2:0
        print(f"  {s + 1}/{len(sources)} {path}", flush=True)

    with open(os.path.join(args.out, "files.txt"), "w") as f:
        f.writelines(p["file"] + "\n" for p in plan)
    with open(os.path.join(args.out, "manifest.tsv"), "w") as f:
        f.write("file\tclass\tsource\tcrop_box\twidth\theight\tquality\n")
        for p in plan:
            f.write(f"{p['file']}\t{p['cls']}\t{sources[p['src']][1]}\t"
                    f"{','.join(map(str, p['box']))}\t{p['w']}\t{p['h']}\t{p['q']}\n")
    with open(os.path.join(args.out, "sources.tsv"), "w") as f:
        f.write("class\tpackage\tphotograph\n")
        for s, (package, path) in enumerate(sources):
            f.write(f"class{s % classes:02d}\t{package or '-'}\t{path}\n")

    sizes = [os.path.getsize(os.path.join(args.out, p["file"])) for p in plan]
    print(f"make_photos.py: {len(plan)} JPEGs from {len(sources)} photographs in {classes} "
          f"classes under {args.out}\n  mean {statistics.mean(p['w'] for p in plan):.0f} x "
          f"{statistics.mean(p['h'] for p in plan):.0f} px (short side "
          f"{min(min(p['w'], p['h']) for p in plan)}..{max(min(p['w'], p['h']) for p in plan)}), "
          f"{sum(p['h'] > p['w'] for p in plan)} portrait, mean file {statistics.mean(sizes) / 1024:.1f} "
          f"KiB, total {sum(sizes) / 2**20:.1f} MiB, quality {min(p['q'] for p in plan)}.."
          f"{max(p['q'] for p in plan)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
