"""The CNN's hand-written layers and whole nets against torch.nn with the same weights."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lmstack.models import cnn


@pytest.mark.parametrize("stride,padding", [(1, 0), (1, 2), (2, 1)])
def test_conv2d_matches_torch_with_gradients(stride, padding):
    torch.manual_seed(0)
    x = torch.randn(3, 4, 11, 9, dtype=torch.float64, requires_grad=True)
    w = torch.randn(5, 4, 3, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(5, dtype=torch.float64, requires_grad=True)
    ours = cnn.conv2d(x, w, b, stride, padding)
    ref = F.conv2d(x, w, b, stride, padding)
    torch.testing.assert_close(ours, ref, atol=1e-10, rtol=0)
    g = torch.randn_like(ref)
    grads = torch.autograd.grad(ours, (x, w, b), g)
    ref_grads = torch.autograd.grad(ref, (x, w, b), g)
    for a, r in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(a, r, atol=1e-10, rtol=0)


def test_max_pool_matches_torch():
    x = torch.randn(2, 3, 8, 6)
    torch.testing.assert_close(cnn.max_pool2d(x), F.max_pool2d(x, 2), atol=0, rtol=0)


def test_batch_norm_matches_torch_in_training_and_evaluation():
    torch.manual_seed(0)
    ours, ref = cnn.BatchNorm2d(4), nn.BatchNorm2d(4)
    with torch.no_grad():
        ours.weight.uniform_(0.5, 2)
        ours.bias.uniform_(-1, 1)
    ref.load_state_dict(ours.state_dict(), strict=False)  # torch adds num_batches_tracked
    for _ in range(3):  # three training batches update the running statistics
        x = torch.randn(8, 4, 5, 5) * 3 + 1
        torch.testing.assert_close(ours(x), ref(x), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ours.running_mean, ref.running_mean, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(ours.running_var, ref.running_var, atol=1e-6, rtol=1e-6)
    ours.eval()
    ref.eval()
    x = torch.randn(2, 4, 5, 5)
    torch.testing.assert_close(ours(x), ref(x), atol=1e-5, rtol=1e-5)


def with_torch_layers(model: nn.Module) -> nn.Module:
    """A copy whose Conv2d and BatchNorm2d are torch.nn's, holding the same weights."""
    twin = copy.deepcopy(model)
    for name, m in list(twin.named_modules()):
        if isinstance(m, cnn.Conv2d):
            o, i, k, _ = m.weight.shape
            new = nn.Conv2d(i, o, k, m.stride, m.padding, bias=m.bias is not None)
        elif isinstance(m, cnn.BatchNorm2d):
            new = nn.BatchNorm2d(len(m.weight), m.eps, m.momentum)
        else:
            continue
        new.load_state_dict(m.state_dict(), strict=False)
        parent, _, leaf = name.rpartition(".")
        setattr(twin.get_submodule(parent) if parent else twin, leaf, new)
    return twin


def lenet_as_sequential(model: cnn.LeNet) -> nn.Sequential:
    """The same LeNet spelled as one torch.nn.Sequential: the textbook form."""
    layers: list[nn.Module] = []
    for conv in model.convs:
        o, i, k, _ = conv.weight.shape
        c = nn.Conv2d(i, o, k, padding=conv.padding)
        c.load_state_dict(conv.state_dict())
        layers += [c, nn.ReLU(), nn.MaxPool2d(2)]
    layers.append(nn.Flatten())
    for j, fc in enumerate(model.fcs):
        layers += [copy.deepcopy(fc)] + ([nn.ReLU()] if j < len(model.fcs) - 1 else [])
    return nn.Sequential(*layers)


@pytest.mark.parametrize("size,kernel", [(28, 5), (8, 3)])
def test_lenet_equals_torch_sequential(size, kernel):
    torch.manual_seed(0)
    model = cnn.build_cnn(cnn.CNNConfig("lenet", size, kernel=kernel))
    x = torch.rand(5, 1, size, size)
    torch.testing.assert_close(model(x), lenet_as_sequential(model)(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("train", [True, False])
def test_resnet_equals_torch_layers(train):
    torch.manual_seed(0)
    model = cnn.build_cnn(cnn.CNNConfig("resnet", 28, widths=[8, 16, 16]))
    twin = with_torch_layers(model)
    assert not any(isinstance(m, cnn.Conv2d) for m in twin.modules())
    model.train(train)
    twin.train(train)
    x = torch.rand(6, 1, 28, 28)
    torch.testing.assert_close(model(x), twin(x), atol=1e-5, rtol=1e-5)


def test_a_transposed_filter_is_caught():
    torch.manual_seed(0)
    model = cnn.build_cnn(cnn.CNNConfig("lenet", 28))
    reference = lenet_as_sequential(model)
    with torch.no_grad():  # an "im2col" that reads patches column-major would do this
        model.convs[0].weight.copy_(model.convs[0].weight.transpose(2, 3).clone())
    x = torch.rand(5, 1, 28, 28)
    assert (model(x) - reference(x)).abs().max() > 1e-4


def test_save_and_load_round_trip(tmp_path):
    model = cnn.build_cnn(cnn.CNNConfig("resnet", 8, widths=[4, 8]))
    model.eval()
    model.save_pretrained(tmp_path)
    again = cnn.load_cnn(tmp_path).eval()
    x = torch.rand(2, 1, 8, 8)
    torch.testing.assert_close(model(x), again(x), atol=0, rtol=0)


def test_bad_config_is_one_clear_error():
    with pytest.raises(ValueError, match="multiple of 4"):
        cnn.CNNConfig("lenet", 30)


def test_lenet_learns_the_digits_with_the_trainer(tmp_path):
    """The Classification objective through the real Trainer: 120 steps on the 8x8 digits."""
    from lmstack.data.digits import sklearn_digits, split
    from lmstack.learn.topic_cnn import train_cnn

    model, r = train_cnn("lenet", split(*sklearn_digits()), 120, tmp_path, lr=1e-2)
    assert r["steps"] == 120 and r["accuracy"] > 0.85
    assert (tmp_path / "metrics.jsonl").is_file()
    saved = cnn.load_cnn(next((tmp_path / "checkpoints").iterdir())).eval()
    x = torch.rand(4, 1, 8, 8)
    torch.testing.assert_close(saved(x), model(x), atol=0, rtol=0)  # the checkpoint is the model
