"""Small diffusion models trained on two CPU cores, and rated: class-conditioned DDPMs on 8x8
(scikit-learn) and 28x28 (MNIST 5k) digits, the 28x28 ones in pixels and in a small
autoencoder's 4x7x7 latents (latent diffusion), a text-conditioned one on 8x8 digits whose
captions ("a handwritten seven", "手写的数字七") go through a CLIP trained here first, and a
caption-conditioned one on 16x16 shapes.

Digits: a LeNet trained on the real digits of the same size (its test accuracy reported) reads
up to 100 x 10 generated digits (DDIM, classifier-free guidance): the share read as the requested
digit with confidence >= 0.9, the classes present, and the Frechet distance between its
penultimate features of generated and of real held-out digits (real train vs real test gives
the floor; for the latent model the autoencoder's reconstructions of the test digits give
its floor), at several guidance scales. Every run is sized by the clock (the schedule fitted to
the steps the minutes hold) and samples with an EMA of the weights. Shapes: colour, shape and
corner read from the pixels by rule (lmstack/multimodal/shape_reader.py) for prompts in English
and Chinese, seen and held-out colour-shape combinations. Side by side: our DDIM loop against
diffusers' DDIMScheduler driving the same UNet (same pictures, time ratio).
Run: `OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/diffusion.py` (~50 min on 2 cores;
`--only NAME` reruns one part; `--threads 1` when the machine is shared: two threads on two
busy cores ran 4x slower here).
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
from lmstack.multimodal.shape_reader import read_shape
from lmstack.multimodal.shapes import ALL_SHAPES, Shape, digit_caption, make_shapes
from lmstack.multimodal.train_diffusion import (
    caption_model,
    digit_model,
    train_autoencoder,
    train_diffusion,
)

RESULTS = Path(__file__).parent / "results"
# (name, loader, minutes of training (autoencoder + UNet), autoencoder minutes (0: pixels),
# UNet widths, batch, samples per digit, DDIM steps): 28x28 pixels cost ~12x more per image
# than 8x8, so a narrower top level and smaller batches; the 4x7x7 latents cost what 8x8 does.
DIGIT_RUNS = [("digits8", sklearn_digits, 7.0, 0, [32, 64], 64, 100, 50),
              ("mnist28", mnist_5k, 9.0, 0, [16, 32, 64], 32, 50, 25),
              ("mnist28_latent", mnist_5k, 9.0, 1.5, [64, 128], 64, 50, 25)]
GUIDANCE_SWEEP = [1.0, 2.0, 3.0, 5.0]


def generate(model, cond, steps: int, guidance: float, batch: int = 200) -> torch.Tensor:
    return torch.cat([model.generate(cond[i:i + batch], steps=steps, guidance=guidance, seed=i)
                      for i in range(0, len(cond), batch)])


def digit_rater(name: str, loader, work: Path):
    """The data split and a LeNet trained on the real digits (its test accuracy)."""
    X, y = loader()
    Xtr, Xte, ytr, yte = split(X, y)
    size = X.shape[-1]
    clf, info = train_cnn("lenet", (Xtr, Xte, ytr, yte), 300 if size < 28 else 400,
                          work / f"{name}-lenet", lr=1e-2 if size < 28 else 3e-3)
    return (Xtr, Xte, ytr, yte), clf, info


def sweep(model, clf, cond, wanted, real_test, steps: int, name: str, scale: int) -> dict:
    """Rate at each guidance scale; the grid of the best (by confident-correct) is saved."""
    rows, best = [], None
    for g in GUIDANCE_SWEEP:
        start = time.perf_counter()
        images = generate(model, cond, steps, g)
        feats, probs = lenet_features(clf, images)
        row = {"guidance": g, "sample_seconds": time.perf_counter() - start,
               **conditional_accuracy(probs, wanted),
               "frechet_distance": frechet_distance(feats.numpy(), real_test.numpy())}
        rows.append(row)
        print(name, json.dumps(row), flush=True)
        if best is None or row["accuracy_at_confidence"] > best[0]["accuracy_at_confidence"]:
            best = row, images
    save_png(grid(best[1][:100], rows=10, scale=scale), RESULTS / f"diffusion_{name}.png")
    return {"by_guidance": rows, "best": best[0]}


def rate_autoencoder(ae, clf, Xte, yte, real_test) -> dict:
    """How much the latent space loses: the LeNet on reconstructed test digits."""
    with torch.no_grad():
        recon = ae.decode(ae.encode(torch.from_numpy(Xte)))
    feats, probs = lenet_features(clf, recon)
    return {"parameters": sum(p.numel() for p in ae.parameters()),
            "latent_shape": [ae.config.latent_channels, ae.config.latent_size,
                             ae.config.latent_size],
            "test_reconstruction_mse": float(((recon - torch.from_numpy(Xte)) ** 2).mean()),
            **{f"reconstructions_{k}": v for k, v in
               conditional_accuracy(probs, torch.from_numpy(yte)).items()},
            "frechet_distance_reconstructions_vs_test": frechet_distance(feats.numpy(),
                                                                         real_test.numpy())}


def rate_digits(name, loader, minutes, ae_minutes, widths, batch, per_class, steps,
                work: Path) -> dict:
    (Xtr, Xte, ytr, yte), clf, clf_info = digit_rater(name, loader, work)
    size = Xtr.shape[-1]
    real_test, _ = lenet_features(clf, torch.from_numpy(Xte))
    real_train, _ = lenet_features(clf, torch.from_numpy(Xtr[:len(Xte)]))
    out: dict = {"classifier_test_accuracy": clf_info["accuracy"],
                 "frechet_distance_real_train_vs_test": frechet_distance(real_train.numpy(),
                                                                         real_test.numpy())}
    start = time.perf_counter()
    ae = None
    if ae_minutes:
        ae, ae_summary = train_autoencoder(Xtr, 10**6, work / f"{name}-ae", minutes=ae_minutes)
        out["autoencoder"] = {"train_seconds": ae_summary["wall_seconds"],
                              "train_steps": ae_summary["step"],
                              **rate_autoencoder(ae, clf, Xte, yte, real_test)}
        print(name, "autoencoder", json.dumps(out["autoencoder"]), flush=True)
    torch.manual_seed(0)
    model = digit_model(size, widths, autoencoder=ae)
    left = minutes - (time.perf_counter() - start) / 60
    summary = train_diffusion(model, Xtr, torch.from_numpy(ytr), 10**6, work / name,
                              batch=batch, minutes=left)
    out.update({"train_seconds_total": time.perf_counter() - start,
                "unet_train_seconds": summary["wall_seconds"], "train_steps": summary["step"],
                "precision": summary["precision"], "batch": batch, "unet_widths": widths,
                "unet_parameters": sum(p.numel() for p in model.unet.parameters()),
                "samples": 10 * per_class, "ddim_steps": steps, "ema_decay": 0.999})
    wanted = torch.arange(10).repeat(per_class)
    out.update(sweep(model, clf, wanted, wanted, real_test, steps, name, 4 if size < 28 else 2))
    model.save_pretrained(work / f"{name}-model")
    return out


def rate_text_digits(minutes: float, clip_steps: int, per_class: int, steps: int,
                     work: Path) -> dict:
    """Text -> image: a CLIP trained on captioned 8x8 digits lends its frozen text tower to a
    DDPM trained on the same digits' captions (half English, half Chinese); prompts in each
    language are rated per requested digit."""
    from lmstack.multimodal.caption_vocab import build_caption_tokenizer
    from lmstack.multimodal.captioned import CaptionedImages, digit_pairs
    from lmstack.multimodal.clip_train import evaluate_digits, small_clip_config, train_clip
    from lmstack.multimodal.text_condition import ClipText

    (Xtr, Xte, ytr, yte), clf, clf_info = digit_rater("text8", sklearn_digits, work)
    real_test, _ = lenet_features(clf, torch.from_numpy(Xte))
    start = time.perf_counter()
    tok = build_caption_tokenizer(work / "text8-tokenizer")
    images, captions, groups = digit_pairs(Xtr, ytr, seed=0)
    clip, clip_summary = train_clip(CaptionedImages(images, captions, groups, tok),
                                    small_clip_config(tok.vocab_size, 8, 1, 2),
                                    work / "text8-clip", clip_steps)
    clip_s = time.perf_counter() - start
    zero_shot = evaluate_digits(clip, Xte, yte)
    encoder = ClipText(clip.save(work / "text8-clip-model"))
    torch.manual_seed(0)
    model = caption_model([], size=8, channels=1, widths=[32, 64], encoder=encoder)
    left = minutes - (time.perf_counter() - start) / 60
    summary = train_diffusion(model, Xtr, encoder.encode(captions), 10**6, work / "text8",
                              minutes=left)
    out: dict = {"classifier_test_accuracy": clf_info["accuracy"],
                 "clip_train_seconds": clip_s, "clip_steps": clip_summary["step"],
                 "clip_zero_shot_en": zero_shot["en_zero_shot"],
                 "clip_zero_shot_zh": zero_shot["zh_zero_shot"],
                 "train_seconds_total": time.perf_counter() - start,
                 "unet_train_seconds": summary["wall_seconds"], "train_steps": summary["step"],
                 "precision": summary["precision"],
                 "unet_parameters": sum(p.numel() for p in model.unet.parameters()),
                 "samples_per_language": 10 * per_class, "ddim_steps": steps}
    wanted = torch.arange(10).repeat(per_class)
    for lang in ("en", "zh"):
        prompts = [digit_caption(int(d), lang) for d in wanted]
        out[lang] = {"example_prompt": prompts[7],
                     **sweep(model, clf, model.encode_prompts(prompts), wanted, real_test, steps,
                             f"text8_{lang}", 4)}
    return out


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
            reads = [read_shape(p) or Shape("none", "none", "none") for p in pics]
            key = f"{'held_out' if held else 'seen'}_{lang}"
            for attr in ("colour", "shape", "position"):
                out[f"{attr}_accuracy_{key}"] = float(np.mean(
                    [getattr(r, attr) == getattr(s, attr) for r, s in zip(reads, asked)]))
            out[f"all_three_{key}"] = float(np.mean([r == s for r, s in zip(reads, asked)]))
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
    parser.add_argument("--guidance", type=float, default=2.0, help="for the shapes")
    parser.add_argument("--shape-minutes", type=float, default=6.0)
    parser.add_argument("--text-minutes", type=float, default=8.0)
    parser.add_argument("--quick", action="store_true", help="minutes / 20 each, a smoke run")
    parser.add_argument("--only", help="one run (digits8, mnist28, mnist28_latent, text8, "
                        "shapes16): rerun it and update its entry in results/diffusion.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    shrink = 0.05 if args.quick else 1.0
    path = RESULTS / "diffusion.json"
    report = json.loads(path.read_text()) if args.only and path.is_file() else {}
    report["machine"] = machine()
    run = args.only or "all"
    report[f"load_before_{run}"] = os.getloadavg()
    report[f"threads_{run}"] = args.threads
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name, loader, minutes, ae_minutes, widths, batch, per_class, steps in DIGIT_RUNS:
            if args.only in (None, name):
                report[name] = rate_digits(name, loader, shrink * minutes, shrink * ae_minutes,
                                           widths, batch, 5 if args.quick else per_class,
                                           steps, work)
                print(name, json.dumps(report[name]), flush=True)
        if args.only in (None, "digits8"):
            from lmstack.multimodal.diffusion import load_diffusion

            report["sampler_vs_diffusers"] = sampler_race(load_diffusion(work / "digits8-model"),
                                                          5)
            print("race", json.dumps(report["sampler_vs_diffusers"]), flush=True)
        if args.only in (None, "text8"):
            report["text8"] = rate_text_digits(shrink * args.text_minutes,
                                               30 if args.quick else 500,
                                               5 if args.quick else 50, 50, work)
            print("text8", json.dumps(report["text8"]), flush=True)
        if args.only in (None, "shapes16"):
            report["shapes16"] = rate_shapes(shrink * args.shape_minutes, args.steps,
                                             args.guidance, work)
            print("shapes16", json.dumps(report["shapes16"]), flush=True)
    report[f"load_after_{run}"] = os.getloadavg()
    if not args.quick:
        atomic_write_text(path, json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
