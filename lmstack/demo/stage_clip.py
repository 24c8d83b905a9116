"""Demo stage `clip`: a small CLIP trained from random weights on captioned shapes (English and
Chinese), its zero-shot accuracy on pictures never trained on, a text -> image search, and a
captioner that describes pictures and answers questions about them.

The shapes are drawn by lmstack itself (lmstack/multimodal/shapes.py), so the stage needs only
the installed packages. Shorter than benchmarks/clip.py (the README's numbers): about a minute
of CLIP and half a minute of captioner training.
"""

from __future__ import annotations

import time
from typing import Any

from lmstack.demo.registry import Stage

DEFAULTS = {"pairs": 3000, "clip_steps": 400, "caption_steps": 200, "batch": 128,
            "width": 64, "layers": 2, "minutes": 1.0, "test_images": 300}
QUERY = "a blue triangle at the bottom left"


def pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def stage_clip(run: Any) -> None:
    from lmstack.multimodal.caption_data import shape_examples
    from lmstack.multimodal.caption_train import train_captioner
    from lmstack.multimodal.caption_vocab import build_caption_tokenizer
    from lmstack.multimodal.captioned import CaptionedImages, shape_pairs
    from lmstack.multimodal.clip_train import evaluate_shapes, small_clip_config, train_clip
    from lmstack.multimodal.grid import save_grid
    from lmstack.multimodal.shapes import make_shapes

    o = run.settings("clip", DEFAULTS)
    folder = run.out / "clip"
    tok = build_caption_tokenizer(folder / "tokenizer")
    images, captions, groups, shapes = shape_pairs(o["pairs"], "train", seed=0)
    config = small_clip_config(tok.vocab_size, 16, 3, 4, width=o["width"], layers=o["layers"])
    t0 = time.perf_counter()
    clip, summary = train_clip(CaptionedImages(images, captions, groups, tok), config,
                               folder / "train", o["clip_steps"], o["batch"],
                               minutes=o["minutes"])
    clip_s = time.perf_counter() - t0
    seen_x, seen = make_shapes(o["test_images"], seed=100, split="train")
    held_x, held = make_shapes(o["test_images"], seed=101, split="held_out")
    scores = {"seen": evaluate_shapes(clip, seen_x, seen, (held_x, held)),
              "unseen": evaluate_shapes(clip, held_x, held, (seen_x, seen))}
    rows = [f"| {name} | {lang} | " + " | ".join(pct(s[f"{lang}_{k}"]) for k in
                                                 ("colour", "shape", "position", "caption"))
            + f" | {pct(s[f'{lang}_t2i_r1'])} |"
            for name, s in scores.items() for lang in ("en", "zh")]
    run.console.print(*rows, sep="\n")

    gallery = make_shapes(200, seed=102, split="all")[0]
    top = (clip.encode_text([QUERY]) @ clip.encode_images(gallery).T).topk(8).indices[0]
    save_grid(gallery[top.numpy()], run.out / "clip_search.png", cols=8, scale=6)

    t0 = time.perf_counter()
    captioner, _ = train_captioner(clip, images, shape_examples(shapes), folder / "captioner_train",
                                   o["caption_steps"], o["batch"], minutes=o["minutes"] / 2)
    caption_s = time.perf_counter() - t0
    captioner.save(folder / "captioner")
    sample_x = held_x[:4]
    save_grid(sample_x, run.out / "clip_captions.png", cols=4, scale=6)
    en, zh = captioner.describe(sample_x, "en"), captioner.describe(sample_x, "zh")
    colours = captioner.answer(sample_x, "what colour is the shape?")
    caption_rows = [f"| {i + 1} | {h.caption()} | {e} | {z} | {c} |"
                    for i, (h, e, z, c) in enumerate(zip(held[:4], en, zh, colours))]
    run.console.print(*caption_rows, sep="\n")
    run.section("Image and text (CLIP)", "\n".join([
        (f"A CLIP (`lmstack.models.clip`, transformers' CLIPModel layout: a ViT over 4x4 "
         f"patches and a causal text Transformer, {o['width']} wide, depth {o['layers']}) "
         f"trained from random weights for {summary['step']} steps ({clip_s:.0f} s) on "
         f"{o['pairs']} procedural 16x16 shapes captioned half in English, half in Chinese "
         "(\"a red circle at the top left\" / \"左上角的红色圆形\"). Zero-shot accuracy on new "
         "pictures, the caption chosen among all 48; *unseen* are colour-shape pairs never "
         "shown together in training (a red square), though each colour and shape was. "
         "Chance: colour 25%, shape 33%, position 25%, caption 2%. This is the demo's short run; "
         "benchmarks/clip.py trains longer for the README's table."), "",
        "| pictures | captions | colour | shape | position | caption | text→image R@1 |",
        "|---|---|---|---|---|---|---|", *rows, "",
        f"Searching {len(gallery)} pictures for \"{QUERY}\" (the 8 nearest, best first):", "",
        "![text to image search](clip_search.png)", "",
        (f"A captioner (the frozen CLIP's patch features as a prefix to a small decoder, "
         f"{caption_s:.0f} s of training) describes four pictures of unseen combinations and "
         "answers \"what colour is the shape?\":"), "",
        "![four pictures](clip_captions.png)", "",
        "| # | truth | caption (en) | caption (zh) | colour? |", "|---|---|---|---|---|",
        *caption_rows, "",
        (f"Serve it with `lmstack serve --caption-model {folder / 'captioner'}`: POST "
         "/v1/images/captions takes a base64 PNG and an optional question, and the page gains "
         "an image box."),
    ]))


STAGE = Stage("clip", 70, stage_clip,
              "a small CLIP and captioner on captioned shapes (EN/ZH): zero-shot, search, captions")
