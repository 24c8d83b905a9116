"""CLIP parity: a tiny random transformers.CLIPModel, saved with save_pretrained, loads into
lmstack and gives the same text and image embeddings and logits; a broken pooling or swapped
projections is caught; an lmstack folder loads back into transformers."""

from __future__ import annotations

import pytest
import torch

transformers = pytest.importorskip("transformers")

from lmstack.models.clip import CLIPConfig, CLIPModel

TOL = 1e-4


def tiny_hf(eos_token_id: int = 98):
    text = {"vocab_size": 99, "hidden_size": 32, "intermediate_size": 37,
            "num_hidden_layers": 2, "num_attention_heads": 4, "max_position_embeddings": 16,
            "eos_token_id": eos_token_id, "bos_token_id": 97, "pad_token_id": 0}
    vision = {"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2,
              "num_attention_heads": 4, "image_size": 16, "patch_size": 4, "num_channels": 3}
    torch.manual_seed(0)
    cfg = transformers.CLIPConfig(text_config=text, vision_config=vision, projection_dim=24)
    model = transformers.CLIPModel(cfg).eval()
    with torch.no_grad():  # HF initialises LayerNorms to 1/0 and the class token near 0:
        for p in model.parameters():  # perturb everything so every weight matters
            p.add_(torch.randn_like(p) * 0.05)
    return model


def inputs(eos: int):
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(3, 90, (3, 9), generator=g)
    ids[:, 0] = 97
    ends = [8, 5, 3]                     # rows of different length, padded after their end
    mask = torch.zeros_like(ids)
    for row, end in enumerate(ends):
        ids[row, end] = eos
        ids[row, end + 1:] = 0
        mask[row, :end + 1] = 1
    pixels = torch.rand(4, 3, 16, 16, generator=g)
    return ids, mask, pixels


def raw(features):
    """transformers 5 returns an output object whose pooler_output is projected; 4 a tensor."""
    return getattr(features, "pooler_output", features)


def compare(ours: CLIPModel, ref, eos: int = 98) -> float:
    """Largest gap over raw projected embeddings (text, image) and logits per text."""
    ids, mask, pixels = inputs(eos)
    with torch.no_grad():
        text = raw(ref.get_text_features(input_ids=ids, attention_mask=mask))
        image = raw(ref.get_image_features(pixel_values=pixels))
        logits = ref(input_ids=ids, attention_mask=mask, pixel_values=pixels).logits_per_text
        gaps = [(ours.get_text_features(ids, mask) - text).abs().max(),
                (ours.get_image_features(pixels) - image).abs().max(),
                (ours(ids, pixels, mask)[0] - logits).abs().max()]
    return max(float(g) for g in gaps)


@pytest.mark.parametrize("eos", [98, 2])  # new-style eos id, and the old OpenAI config's "2"
def test_hf_clip_loads_with_equal_embeddings_and_logits(tmp_path, eos):
    ref = tiny_hf(eos)
    ref.save_pretrained(tmp_path)
    ours = CLIPModel.from_pretrained(tmp_path)
    # Inputs end with id 98, the largest, so the old argmax rule finds the same token.
    gap = compare(ours, ref, 98)
    assert gap < TOL, gap


def test_deliberate_breaks_are_caught(tmp_path):
    ref = tiny_hf()
    ref.save_pretrained(tmp_path)
    ours = CLIPModel.from_pretrained(tmp_path)
    assert compare(ours, ref, 98) < TOL
    ours.text_model.config.eos_token_id = 5          # pooling at the wrong token
    assert compare(ours, ref, 98) > 1e-2
    ours.text_model.config.eos_token_id = 98
    with torch.no_grad():                             # the two projections swapped
        t, v = ours.text_projection.weight.clone(), ours.visual_projection.weight.clone()
        ours.text_projection.weight.copy_(v)
        ours.visual_projection.weight.copy_(t)
    assert compare(ours, ref, 98) > 1e-2


def test_lmstack_folder_loads_in_transformers(tmp_path):
    torch.manual_seed(0)
    cfg = CLIPConfig.from_dict(tiny_hf().config.to_dict())
    ours = CLIPModel(cfg).eval()
    ours.save_pretrained(tmp_path)
    ref = transformers.CLIPModel.from_pretrained(tmp_path).eval()
    assert compare(ours, ref, 98) < TOL


def test_cnn_image_encoder_round_trips(tmp_path):
    cfg = CLIPConfig.from_dict(tiny_hf().config.to_dict())
    cfg.vision_config.encoder, cfg.vision_config.cnn_widths = "cnn", [8, 16]
    model = CLIPModel(cfg).eval()
    pixels = torch.rand(2, 3, 16, 16)
    model.save_pretrained(tmp_path)
    again = CLIPModel.from_pretrained(tmp_path)
    with torch.no_grad():
        assert model.get_image_features(pixels).shape == (2, 24)
        assert torch.equal(model.get_image_features(pixels), again.get_image_features(pixels))
