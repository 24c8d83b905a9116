"""The noise schedules, the forward process and the DDPM / DDIM steps equal diffusers'
DDPMScheduler / DDIMScheduler to 1e-6, over whole sampling loops, plus a break they catch."""

from __future__ import annotations

import pytest
import torch

from lmstack.multimodal.schedulers import NoiseSchedule

diffusers = pytest.importorskip("diffusers")

SCHEDULES = [("linear", 1e-4, 0.02), ("scaled_linear", 0.00085, 0.012),
             ("squaredcos_cap_v2", 1e-4, 0.02)]


def ours_and_theirs(kind, start, end, cls, **extra):
    ours = NoiseSchedule(1000, kind, start, end)
    theirs = cls(num_train_timesteps=1000, beta_schedule=kind, beta_start=start, beta_end=end,
                 **extra)
    return ours, theirs


@pytest.mark.parametrize("kind,start,end", SCHEDULES)
def test_betas_and_forward_process_match(kind, start, end):
    ours, theirs = ours_and_theirs(kind, start, end, diffusers.DDPMScheduler)
    assert torch.allclose(ours.betas, theirs.betas, atol=1e-7, rtol=0)
    assert torch.allclose(ours.alphas_cumprod, theirs.alphas_cumprod, atol=1e-7, rtol=0)
    g = torch.Generator().manual_seed(0)
    x0, noise = torch.rand(8, 1, 8, 8, generator=g) * 2 - 1, torch.randn(8, 1, 8, 8, generator=g)
    t = torch.tensor([0, 1, 10, 250, 500, 750, 998, 999])
    assert torch.allclose(ours.add_noise(x0, noise, t), theirs.add_noise(x0, noise, t),
                          atol=1e-6, rtol=0)


def fake_eps(x: torch.Tensor, t: int) -> torch.Tensor:
    """A stand-in denoiser: any smooth function of (x, t) exercises every coefficient."""
    return torch.tanh(x * 1.3 + t / 700.0)


def start_loop(kind, start, end, cls, n, spacing):
    """Both schedulers set to n steps (the same list of steps, checked), one start x_T each."""
    ours, theirs = ours_and_theirs(kind, start, end, cls, timestep_spacing=spacing)
    theirs.set_timesteps(n)
    steps = ours.timesteps(n, spacing)
    assert steps == theirs.timesteps.tolist()
    x = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    return ours, theirs, steps, x, x.clone()


@pytest.mark.parametrize("kind,start,end", SCHEDULES)
@pytest.mark.parametrize("n,spacing", [(1000, "leading"), (50, "leading"), (20, "trailing")])
def test_ddpm_sampling_loop_matches(kind, start, end, n, spacing):
    ours, theirs, steps, x, y = start_loop(kind, start, end, diffusers.DDPMScheduler, n, spacing)
    g_ours, g_theirs = torch.Generator().manual_seed(2), torch.Generator().manual_seed(2)
    for t, prev in zip(steps, ours.prev_timesteps(steps, "ddpm"), strict=True):
        # diffusers draws its noise only for t > 0, with the generator: so do we.
        noise = torch.randn(x.shape, generator=g_ours) if t > 0 else None
        x = ours.ddpm_step(fake_eps(x, t), t, prev, x, noise)
        y = theirs.step(fake_eps(y, t), t, y, generator=g_theirs).prev_sample
        assert torch.allclose(x, y, atol=1e-6, rtol=0), (t, (x - y).abs().max())


@pytest.mark.parametrize("kind,start,end", SCHEDULES)
@pytest.mark.parametrize("n,spacing,eta", [(50, "leading", 0.0), (10, "leading", 0.5),
                                           (30, "trailing", 0.0), (7, "trailing", 1.0)])
def test_ddim_sampling_loop_matches(kind, start, end, n, spacing, eta):
    ours, theirs, steps, x, y = start_loop(kind, start, end, diffusers.DDIMScheduler, n, spacing)
    g_ours, g_theirs = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    for t, prev in zip(steps, ours.prev_timesteps(steps, "ddim"), strict=True):
        noise = torch.randn(x.shape, generator=g_ours) if eta > 0 else None
        x = ours.ddim_step(fake_eps(x, t), t, prev, x, eta, noise)
        y = theirs.step(fake_eps(y, t), t, y, eta=eta, generator=g_theirs).prev_sample
        assert torch.allclose(x, y, atol=1e-6, rtol=0), (t, (x - y).abs().max())


def test_a_wrong_step_is_caught():
    """The deliberate break: x_0 left unclipped on our side only (diffusers clips by default)
    drifts from diffusers' deterministic DDIM loop, so the loop tests would fail on it."""
    ours = NoiseSchedule(1000, "linear", clip_sample=False)
    theirs = diffusers.DDIMScheduler(num_train_timesteps=1000)
    theirs.set_timesteps(20)
    steps = ours.timesteps(20)
    x = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    y = x.clone()
    for t, prev in zip(steps, ours.prev_timesteps(steps, "ddim"), strict=True):
        x = ours.ddim_step(fake_eps(x, t), t, prev, x)
        y = theirs.step(fake_eps(y, t), t, y).prev_sample
    assert (x - y).abs().max() > 1e-2


@pytest.mark.parametrize("bad", [{"beta_schedule": "cosine"}, {"train_steps": 10}])
def test_bad_settings_say_how_to_fix(bad):
    with pytest.raises(ValueError, match="use|must be"):
        schedule = NoiseSchedule(**bad)
        schedule.timesteps(50)
