"""Demo stage `diffusion`: a class-conditioned DDPM trained on scikit-learn's 8x8 digits for about
a minute, sampled with DDIM and classifier-free guidance, rated by a LeNet trained on the real
digits; the report shows the grid and the classifier's verdict.

A shorter run than benchmarks/diffusion.py's (7 minutes), so the digits are rougher; the
README's table has the full-length numbers.
"""

from __future__ import annotations

from typing import Any

from lmstack.demo.registry import Stage

DEFAULTS = {"minutes": 1.2, "widths": [32, 64], "per_class": 10, "steps": 25, "guidance": 2.0,
            "classifier_steps": 300}


def stage_diffusion(run: Any) -> None:
    import torch

    from lmstack.data.digits import sklearn_digits, split
    from lmstack.learn.topic_cnn import train_cnn
    from lmstack.multimodal.pictures import grid, save_png
    from lmstack.multimodal.quality import conditional_accuracy, frechet_distance, lenet_features
    from lmstack.multimodal.train_diffusion import digit_model, train_diffusion

    opts = run.settings("diffusion", DEFAULTS)
    Xtr, Xte, ytr, yte = split(*sklearn_digits())
    clf, clf_info = train_cnn("lenet", (Xtr, Xte, ytr, yte), opts["classifier_steps"],
                              run.out / "diffusion-train" / "lenet", lr=1e-2)
    torch.manual_seed(0)
    model = digit_model(8, opts["widths"])
    summary = train_diffusion(model, Xtr, torch.from_numpy(ytr), 10**6,
                              run.out / "diffusion-train", minutes=opts["minutes"])
    model.save_pretrained(run.out / "diffusion")
    wanted = torch.arange(10).repeat(opts["per_class"])
    images = model.generate(wanted, steps=opts["steps"], guidance=opts["guidance"], seed=0)
    feats, probs = lenet_features(clf, images)
    real, _ = lenet_features(clf, torch.from_numpy(Xte))
    rated = conditional_accuracy(probs, wanted)
    fid = frechet_distance(feats.numpy(), real.numpy())
    save_png(grid(images[:100], rows=min(10, opts["per_class"]), scale=4),
             run.out / "diffusion_grid.png")
    line = (f"{100 * rated['accuracy_at_confidence']:.0f}% read as the requested digit with "
            f"confidence >= 0.9 ({100 * rated['accuracy']:.0f}% by argmax), "
            f"{rated['classes_present']} of 10 digits present, Frechet distance {fid:.1f}")
    run.console.print(f"diffusion: {line}")
    run.section("Diffusion: digits from noise", "\n".join([
        (f"A class-conditioned DDPM (a UNet of {sum(p.numel() for p in model.parameters()):,} "
         f"parameters, cosine noise schedule) trained on {len(Xtr)} of scikit-learn's 8x8 "
         f"digits for {summary['elapsed']:.0f} s ({summary['step']} steps), then "
         f"{len(wanted)} digits drawn with {opts['steps']} DDIM steps and classifier-free "
         f"guidance {opts['guidance']} (each column asks for 0..9):"), "",
        "![generated digits](diffusion_grid.png)", "",
        (f"A LeNet trained on the real digits ({100 * clf_info['accuracy']:.1f}% on held-out "
         f"real ones) rates them: {line} (on its penultimate features, against real "
         "held-out digits). This is a short run; benchmarks/diffusion.py trains for 7 "
         "minutes (README, Multimodal)."), "",
        ("Draw more: `lmstack serve --image-model "
         f"{run.out / 'diffusion'}` and POST /v1/images/generations "
         '{"prompt": "a handwritten seven"} (or use the page\'s draw box).'),
    ]))


STAGE = Stage("diffusion", 72, stage_diffusion,
              "a small DDPM draws digits from noise; a LeNet rates them")
