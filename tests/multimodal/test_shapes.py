"""The procedural captioned shapes: captions in both languages, the held-out combinations kept
out of training, and each shape drawn in its own corner."""

import numpy as np

from lmstack.multimodal.shapes import (
    COLOURS,
    HELD_OUT,
    SHAPES,
    Shape,
    digit_caption,
    make_shapes,
    render,
)


def test_captions_in_english_and_chinese():
    s = Shape("red", "circle", "top left")
    assert s.caption() == "a red circle at the top left"
    assert s.caption("zh") == "左上角的红色圆形"
    assert ("what colour is the shape?", "red") in s.questions()
    assert ("这个图形是什么颜色？", "红色") in s.questions("zh")
    assert digit_caption(7) == "a handwritten seven" and digit_caption(7, "zh") == "手写的数字七"


def test_held_out_combinations_never_train_but_their_parts_do():
    _, train = make_shapes(600, seed=0, split="train")
    _, held = make_shapes(200, seed=1, split="held_out")
    assert not any((s.colour, s.shape) in HELD_OUT for s in train)
    assert all((s.colour, s.shape) in HELD_OUT for s in held)
    assert {s.colour for s in train} == set(COLOURS) and {s.shape for s in train} == set(SHAPES)


def test_each_shape_lies_in_its_corner_in_its_colour():
    for position in ("top left", "top right", "bottom left", "bottom right"):
        image = render(Shape("blue", "square", position), size=16,
                       rng=np.random.default_rng(3))
        ys, xs = np.nonzero(image.max(0))
        assert len(ys) > 4
        assert (ys.mean() < 8) == position.startswith("top")
        assert (xs.mean() < 8) == position.endswith("left")
        lit = image[:, ys[0], xs[0]]
        assert np.allclose(lit, COLOURS["blue"])


def test_seeded_sets_are_reproducible_and_varied():
    a, sa = make_shapes(200, seed=5)
    b, sb = make_shapes(200, seed=5)
    assert np.array_equal(a, b) and sa == sb
    same = [i for i in range(1, 200) if sa[i] == sa[0]]
    assert same and all(not np.array_equal(a[0], a[i]) for i in same)  # jitter: equal labels differ
