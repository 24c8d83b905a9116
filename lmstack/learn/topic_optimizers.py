"""`lmstack learn optimizers`: SGD, momentum, Nesterov, RMSprop, Adam and AdamW from their
update rules walking Rosenbrock's valley, step for step beside torch.optim.

Reference: torch.optim (the same algorithms, same defaults).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lmstack.learn.registry import Topic


def run(out: Path, tiny: bool) -> dict[str, Any]:
    import numpy as np
    import torch

    from lmstack.foundations import optimizers as O
    from lmstack.learn import plots

    steps = 100 if tiny else 3000
    cases = {
        "SGD": (O.SGD(1e-3), lambda p: torch.optim.SGD(p, lr=1e-3)),
        "momentum": (O.SGD(1e-3, momentum=0.9), lambda p: torch.optim.SGD(p, 1e-3, 0.9)),
        "Nesterov": (O.SGD(1e-3, momentum=0.9, nesterov=True),
                     lambda p: torch.optim.SGD(p, 1e-3, 0.9, nesterov=True)),
        "RMSprop": (O.RMSprop(1e-3), lambda p: torch.optim.RMSprop(p, lr=1e-3)),
        "Adam": (O.Adam(2e-2), lambda p: torch.optim.Adam(p, lr=2e-2)),
        "AdamW": (O.AdamW(2e-2, weight_decay=0.01),
                  lambda p: torch.optim.AdamW(p, lr=2e-2, weight_decay=0.01)),
    }
    results, rows, paths, losses = {}, [], {}, {}
    for name, (ours, make_ref) in cases.items():
        p = np.array([-1.5, 2.0])
        t = torch.tensor(p.copy(), requires_grad=True)
        ref = make_ref([t])
        path, gap, curve = [p.copy()], 0.0, []
        for _ in range(steps):
            value, grad = O.rosenbrock(p)
            curve.append(value)
            ours.step([p], [grad])
            ref.zero_grad()
            x, y = t
            ((1 - x) ** 2 + 100 * (y - x * x) ** 2).backward()
            ref.step()
            gap = max(gap, float(np.abs(p - t.detach().numpy()).max()))
            path.append(p.copy())
        paths[name], losses[name] = np.array(path), curve
        results[f"{name} max|Δ| vs torch"] = gap
        results[f"{name} final loss"] = round(O.rosenbrock(p)[0], 6)
        rows.append([name, f"{gap:.1e}", O.rosenbrock(p)[0], f"({p[0]:.3f}, {p[1]:.3f})"])
    plots.plot_curves(losses, out / "loss.png", f"Rosenbrock, {steps} steps from (-1.5, 2)",
                      "f(x, y)", log=True)

    def draw(_, ax):
        gx, gy = np.meshgrid(np.linspace(-2, 2, 200), np.linspace(-1, 3, 200))
        ax.contour(gx, gy, (1 - gx) ** 2 + 100 * (gy - gx ** 2) ** 2,
                   levels=np.logspace(-1, 3.5, 15), cmap="Greys", linewidths=0.5)
        for name, path in paths.items():
            ax.plot(path[:, 0], path[:, 1], lw=1, label=name)
        ax.plot(1, 1, "k*", ms=10)
        ax.legend(fontsize=7)

    plots.figure_grid(1, out / "paths.png", draw)
    intro = ("Each optimiser takes the same steps as its torch.optim twin from the same start; "
             "the largest coordinate gap over the whole walk is the second column. The "
             "minimum is at (1, 1).")
    plots.write_table_report(out, "Optimisers from their update rules", intro,
                             ["optimiser", "max gap vs torch", "final f", "final point"], rows,
                             ["paths.png", "loss.png"])
    return results


TOPIC = Topic("optimizers", "SGD, momentum, RMSprop, Adam, AdamW vs torch.optim on Rosenbrock",
              run)
