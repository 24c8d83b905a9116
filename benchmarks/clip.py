"""CLIP, captioning and visual Q&A trained here from random weights on captioned digits and
procedural shapes (captions half English, half Chinese), scored on images never trained on.

- digits: scikit-learn's 8x8 digits, stratified 80/20 split; ViT with 2x2 patches.
- shapes: 16x16 pictures of the seen colour-shape combinations (train, and new drawings for the
  test), and the HELD_OUT combinations (a red square...) never seen together, scored apart;
  a ViT with 4x4 patches and the CNN option.
- the captioner (frozen CLIP + prefix decoder) on the shapes' better CLIP, and on digits.
- speed: the trained ViT CLIP loaded into transformers.CLIPModel, both encoding the same batch
  in this process (medians of 5), with the largest difference of their embeddings.

Run: `.venv/bin/python benchmarks/clip.py` (about 20 minutes on 2 loaded cores; `--save DIR`
keeps the shapes captioner for `lmstack serve --caption-model DIR`). Results:
benchmarks/results/clip.json and the PNG grids beside it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from forward import machine

from lmstack.data.digits import sklearn_digits, split
from lmstack.fileio import atomic_write_text
from lmstack.multimodal.caption_data import digit_examples, shape_examples
from lmstack.multimodal.caption_train import (
    evaluate_digit_captions,
    evaluate_shape_captions,
    train_captioner,
)
from lmstack.multimodal.caption_vocab import build_caption_tokenizer
from lmstack.multimodal.captioned import CaptionedImages, digit_pairs, shape_pairs
from lmstack.multimodal.clip_train import (
    evaluate_digits,
    evaluate_shapes,
    small_clip_config,
    train_clip,
)
from lmstack.multimodal.grid import save_grid
from lmstack.multimodal.shapes import make_shapes

RESULTS = Path(__file__).parent / "results"
QUERIES = ["a red square at the top right", "左下角的蓝色圆形", "a yellow triangle at the top left"]


def median_seconds(fn, runs: int = 5) -> float:
    fn()  # warm-up
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def speed_vs_transformers(itm, images: np.ndarray, texts: list[str], folder: Path) -> dict:
    import transformers

    itm.model.save_pretrained(folder)
    ref = transformers.CLIPModel.from_pretrained(folder).eval()
    x = torch.from_numpy(images)
    enc = itm.tokenize(texts)
    ids, mask = enc["input_ids"], enc["attention_mask"]

    def ours():
        return itm.model.get_image_features(x), itm.model.get_text_features(ids, mask)

    def theirs():
        image = ref.get_image_features(pixel_values=x)
        text = ref.get_text_features(input_ids=ids, attention_mask=mask)
        return (getattr(image, "pooler_output", image), getattr(text, "pooler_output", text))

    with torch.no_grad():
        gap = max(float((a - b).abs().max()) for a, b in zip(ours(), theirs()))
        t_ours, t_ref = median_seconds(ours), median_seconds(theirs)
    return {"images": len(x), "texts": len(texts), "lmstack_s": round(t_ours, 4),
            "transformers_s": round(t_ref, 4), "speedup": round(t_ref / t_ours, 3),
            "max_abs_diff": gap}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--digit-steps", type=int, default=500)
    p.add_argument("--shape-steps", type=int, default=900)
    p.add_argument("--cnn-steps", type=int, default=250)
    p.add_argument("--caption-steps", type=int, default=400)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--minutes", type=float, default=9.0, help="cap per model")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--save", type=Path, help="keep the shapes captioner here")
    p.add_argument("--out", type=Path, default=RESULTS / "clip.json")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="clip-bench-"))
    tok = build_caption_tokenizer(work / "tokenizer")
    report: dict = {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                    "machine": {**machine(), "threads": args.threads}, "load_average_start": os.getloadavg(),
                    "tokenizer": {"vocab": tok.vocab_size,
                                  "kind": "BERT WordPiece vocab: English words + CJK chars"}}

    def train(name, data, config, steps):
        t = time.perf_counter()
        itm, summary = train_clip(data, config, work / name, steps, args.batch,
                                  minutes=args.minutes)
        params = sum(q.numel() for q in itm.model.parameters())
        report[name] = {"steps": summary["step"], "batch": args.batch, "parameters": params,
                        "train_s": round(time.perf_counter() - t, 1)}
        print(name, report[name], flush=True)
        return itm

    # ---- digits
    X, y = sklearn_digits()
    Xtr, Xte, ytr, yte = split(X, y)
    digits = train("clip_digits", CaptionedImages(*digit_pairs(Xtr, ytr, seed=0), tok),
                   small_clip_config(tok.vocab_size, 8, 1, 2), args.digit_steps)
    report["clip_digits"]["test"] = evaluate_digits(digits, Xte, yte)
    report["clip_digits"]["test_images"] = len(yte)

    # ---- shapes: ViT and CNN on the same pairs
    images, captions, groups, shapes = shape_pairs(6000, "train", seed=0)
    seen_x, seen = make_shapes(600, seed=100, split="train")
    held_x, held = make_shapes(600, seed=101, split="held_out")
    towers = {}
    for name, encoder, steps in [("clip_shapes_vit", "vit", args.shape_steps),
                                 ("clip_shapes_cnn", "cnn", args.cnn_steps)]:
        config = small_clip_config(tok.vocab_size, 16, 3, 4, encoder=encoder)
        if encoder == "cnn":
            config.vision_config.cnn_widths = [16, 32]
        towers[name] = train(name, CaptionedImages(images, captions, groups, tok), config, steps)
        report[name]["seen_combinations"] = evaluate_shapes(towers[name], seen_x, seen,
                                                            (held_x, held))
        report[name]["held_out_combinations"] = evaluate_shapes(towers[name], held_x, held,
                                                                (seen_x, seen))
        print(name, report[name], flush=True)
    best = max(towers, key=lambda n: report[n]["seen_combinations"]["en_caption"])

    # ---- retrieval example: each query's five nearest pictures among seen + held-out
    gallery = np.concatenate([seen_x, held_x])
    sims = towers[best].encode_text(QUERIES) @ towers[best].encode_images(gallery).T
    top = sims.topk(5, dim=1).indices                                      # [queries, 5]
    save_grid(gallery[top.flatten().numpy()], RESULTS / "clip_retrieval.png", cols=5, scale=6)
    everything = list(seen) + list(held)
    report["retrieval_example"] = {"model": best, "grid": "clip_retrieval.png",
                                   "queries": {q: [everything[int(i)].caption() for i in row]
                                               for q, row in zip(QUERIES, top)}}

    # ---- captioning and Q&A
    t = time.perf_counter()
    captioner, summary = train_captioner(towers[best], images[:3000],
                                         shape_examples(shapes[:3000]), work / "cap_shapes",
                                         args.caption_steps, args.batch, minutes=args.minutes)
    report["captioner_shapes"] = {
        "clip": best, "steps": summary["step"], "train_s": round(time.perf_counter() - t, 1),
        "seen_combinations": evaluate_shape_captions(captioner, seen_x, seen),
        "held_out_combinations": evaluate_shape_captions(captioner, held_x, held)}
    sample = np.concatenate([seen_x[:4], held_x[:4]])
    save_grid(sample, RESULTS / "clip_captions.png", cols=8, scale=6)
    truth = [s.caption() for s in (*seen[:4], *held[:4])]
    report["caption_example"] = {"grid": "clip_captions.png", "truth": truth,
                                 "en": captioner.describe(sample, "en"),
                                 "zh": captioner.describe(sample, "zh")}
    print("captioner_shapes", report["captioner_shapes"], flush=True)
    if args.save:
        captioner.save(args.save)
    t = time.perf_counter()
    digit_captioner, summary = train_captioner(digits, Xtr, digit_examples(ytr.tolist()),
                                               work / "cap_digits", args.caption_steps // 2,
                                               args.batch, minutes=args.minutes)
    report["captioner_digits"] = {"steps": summary["step"],
                                  "train_s": round(time.perf_counter() - t, 1),
                                  "test": evaluate_digit_captions(digit_captioner, Xte, yte)}
    print("captioner_digits", report["captioner_digits"], flush=True)

    # ---- speed against transformers on the same weights
    report["speed_vs_transformers"] = speed_vs_transformers(
        towers["clip_shapes_vit"], seen_x[:512], [s.caption() for s in seen[:512]],
        work / "hf")
    report["load_average_end"] = os.getloadavg()
    text = json.dumps(report, indent=2, ensure_ascii=False) + "\n"
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
