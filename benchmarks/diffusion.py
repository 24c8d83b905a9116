"""Small diffusion models trained on two CPU cores, and rated: class-conditioned DDPMs on 8x8
(scikit-learn) and 28x28 (MNIST 5k) digits, and a caption-conditioned one on 16x16 shapes.

Digits: a LeNet trained on the real digits of the same size (its test accuracy reported) reads
100 x 10 generated digits (DDIM, classifier-free guidance): the share read as the requested
digit with confidence >= 0.9, the classes present, and the Frechet distance between its
penultimate features of generated and of real held-out digits (real train vs real test gives
the floor). Shapes: colour and corner read from the pixels for prompts in English and Chinese,
seen and held-out colour-shape combinations. Side by side: our DDIM loop against diffusers'
DDIMScheduler driving the same UNet (same pictures, time ratio).
Run: `OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/diffusion.py` (~35 min on 2 cores).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see benchmarks/engine.py

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from forward import machine

from lmstack.data.digits import mnist_5k, sklearn_digits, split
from lmstack.fileio import atomic_write_text
from lmstack.learn.topic_cnn import train_cnn
from lmstack.multimodal.pictures import grid, save_png
from lmstack.multimodal.quality import conditional_accuracy, frechet_distance, lenet_features
from lmstack.multimodal.shapes import ALL_SHAPES, COLOURS, make_shapes
from lmstack.multimodal.train_diffusion import caption_model, digit_model, train_diffusion

RESULTS = Path(__file__).parent / "results"
# (name, loader, minutes of training, UNet widths, batch, samples per digit, DDIM steps):
# 28x28 costs ~12x more per image, so a narrower top level, smaller batches, fewer samples.
DIGIT_RUNS = [("digits8", sklearn_digits, 7.0, [32, 64], 64, 100, 50),
              ("mnist28", mnist_5k, 9.0, [16, 32, 64], 32, 20, 25)]


def generate(model, cond, steps: int, guidance: float, batch: int = 200) -> torch.Tensor:
    return torch.cat([model.generate(cond[i:i + batch], steps=steps, guidance=guidance, seed=i)
                      for i in range(0, len(cond), batch)])


def rate_digits(name, loader, minutes, widths, batch, per_class, steps, guidance,
                work: Path) -> dict:
    X, y = loader()
    Xtr, Xte, ytr, yte = split(X, y)
    size = X.shape[-1]
    clf, clf_info = train_cnn("lenet", (Xtr, Xte, ytr, yte), 300 if size < 28 else 400,
                              work / f"{name}-lenet", lr=1e-2 if size < 28 else 3e-3)
    torch.manual_seed(0)
    model = digit_model(size, widths)
    summary = train_diffusion(model, Xtr, torch.from_numpy(ytr), 10**6, work / name,
                              batch=batch, minutes=minutes)
    wanted = torch.arange(10).repeat(per_class)
    start = time.perf_counter()
    images = generate(model, wanted, steps, guidance)
    sample_s = time.perf_counter() - start
    feats, probs = lenet_features(clf, images)
    real_test, _ = lenet_features(clf, torch.from_numpy(Xte))
    real_train, _ = lenet_features(clf, torch.from_numpy(Xtr[:len(Xte)]))
    save_png(grid(images[:100], rows=10, scale=4 if size < 28 else 2), RESULTS / f"diffusion_{name}.png")
    model.save_pretrained(work / f"{name}-model")
    return {"classifier_test_accuracy": clf_info["accuracy"], "train_seconds": summary["elapsed"],
            "train_steps": summary["step"], "batch": batch, "parameters": sum(p.numel() for p in model.parameters()),
            "samples": len(images), "ddim_steps": steps, "guidance": guidance,
            "sample_seconds": sample_s,
            **conditional_accuracy(probs, wanted),
            "frechet_distance": frechet_distance(feats.numpy(), real_test.numpy()),
            "frechet_distance_real_train_vs_test": frechet_distance(real_train.numpy(),
                                                                    real_test.numpy())}


def read_shape(image: np.ndarray) -> tuple[str, str]:
    """(colour, corner) of a generated [3, S, S] picture, from its bright pixels."""
    lit = image.max(axis=0) > 0.5
    if not lit.any():
        return "none", "none"
    mean = image[:, lit].mean(axis=1)
    colour = min(COLOURS, key=lambda c: np.square(mean - np.asarray(COLOURS[c])).sum())
    ys, xs = np.nonzero(lit)
    half = image.shape[-1] / 2
    corner = f"{'top' if ys.mean() < half else 'bottom'} {'left' if xs.mean() < half else 'right'}"
    return colour, corner


def rate_shapes(minutes, steps, guidance, work: Path) -> dict:
    images, shapes = make_shapes(4000, split="train")
    rng = np.random.default_rng(0)
    captions = [s.caption("zh" if rng.random() < 0.5 else "en") for s in shapes]
    torch.manual_seed(0)
    model = caption_model([s.caption(lang) for s in ALL_SHAPES for lang in ("en", "zh")])
    cond = model.text_encoder.encode(captions)
    summary = train_diffusion(model, images, cond, 10**6, work / "shapes", minutes=minutes)
    out = {"train_seconds": summary["elapsed"], "train_steps": summary["step"],
           "parameters": sum(p.numel() for p in model.parameters())}
    shown = []
    for held in (False, True):
        pool = [s for s in ALL_SHAPES if s.held_out == held]
        for lang in ("en", "zh"):
            asked = [pool[i % len(pool)] for i in range(4 * len(pool))]
            pics = generate(model, model.encode_prompts([s.caption(lang) for s in asked]), steps,
                            guidance).numpy()
            reads = [read_shape(p) for p in pics]
            key = f"{'held_out' if held else 'seen'}_{lang}"
            out[f"colour_accuracy_{key}"] = float(np.mean([r[0] == s.colour for r, s in zip(reads, asked)]))
            out[f"corner_accuracy_{key}"] = float(np.mean([r[1] == s.position for r, s in zip(reads, asked)]))
            shown.append(pics[:12])
    save_png(grid(np.concatenate(shown), rows=4, scale=3), RESULTS / "diffusion_shapes.png")
    return out


def sampler_race(model, runs: int) -> dict:
    """Our DDIM loop vs diffusers' DDIMScheduler stepping the same UNet: equal pictures?"""
    from diffusers import DDIMScheduler

    cond, steps = torch.arange(10), 50
    theirs = DDIMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2",
                           timestep_spacing="trailing")

    @torch.no_grad()
    def reference() -> torch.Tensor:
        theirs.set_timesteps(steps)
        x = torch.randn(10, 1, 8, 8, generator=torch.Generator().manual_seed(0))
        for t in theirs.timesteps:
            keep = torch.cat([torch.ones(10, dtype=torch.bool), torch.zeros(10, dtype=torch.bool)])
            e_c, e_u = model(x.repeat(2, 1, 1, 1), t.repeat(20), cond.repeat(2), keep).chunk(2)
            x = theirs.step(e_u + 2.0 * (e_c - e_u), t, x).prev_sample
        return ((x.clamp(-1, 1) + 1) / 2)

    def ours() -> torch.Tensor:
        return model.generate(cond, steps=steps, guidance=2.0, seed=0)

    diff = (ours() - reference()).abs().max().item()
    times: dict[str, list[float]] = {"lmstack": [], "diffusers": []}
    for _ in range(runs):
        for name, fn in (("lmstack", ours), ("diffusers", reference)):
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"max_abs_pixel_difference": diff, "median_seconds": med,
            "ratio_lmstack_over_diffusers": med["lmstack"] / med["diffusers"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=50, help="DDIM steps for the shapes")
    parser.add_argument("--guidance", type=float, default=2.0)
    parser.add_argument("--shape-minutes", type=float, default=6.0)
    parser.add_argument("--quick", action="store_true", help="minutes -> 0.3 each, a smoke run")
    parser.add_argument("--only", help="one run (digits8, mnist28, shapes16): rerun it and "
                        "update its entry in results/diffusion.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    scale = 0.3 if args.quick else None
    path = RESULTS / "diffusion.json"
    report = json.loads(path.read_text()) if args.only and path.is_file() else {}
    report["machine"] = machine()
    report[f"load_before_{args.only or 'all'}"] = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name, loader, minutes, widths, batch, per_class, steps in DIGIT_RUNS:
            if args.only in (None, name):
                report[name] = rate_digits(name, loader, scale or minutes, widths, batch,
                                           10 if args.quick else per_class, steps,
                                           args.guidance, work)
                print(name, json.dumps(report[name]), flush=True)
        if args.only in (None, "digits8"):
            from lmstack.multimodal.diffusion import load_diffusion

            report["sampler_vs_diffusers"] = sampler_race(load_diffusion(work / "digits8-model"),
                                                          5)
            print("race", json.dumps(report["sampler_vs_diffusers"]), flush=True)
        if args.only in (None, "shapes16"):
            report["shapes16"] = rate_shapes(scale or args.shape_minutes, args.steps,
                                             args.guidance, work)
            print("shapes16", json.dumps(report["shapes16"]), flush=True)
    report[f"load_after_{args.only or 'all'}"] = os.getloadavg()
    if not args.quick:
        atomic_write_text(path, json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
