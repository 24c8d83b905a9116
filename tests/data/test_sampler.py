"""The resumable sampler: state round trip mid-epoch, fresh permutations per epoch."""

from __future__ import annotations

from lmstack.data import ResumableSampler


def test_resumes_mid_epoch_on_the_same_index():
    a = ResumableSampler(10, seed=3)
    a.take(7)
    state = a.state_dict()
    rest = a.take(25)
    b = ResumableSampler(10, seed=3)
    b.load_state_dict(state)
    assert b.take(25) == rest


def test_each_epoch_is_a_permutation_and_epochs_differ():
    s = ResumableSampler(50, seed=0)
    e0, e1 = s.take(50), s.take(50)
    assert sorted(e0) == sorted(e1) == list(range(50))
    assert e0 != e1 and s.consumed == 100
    assert ResumableSampler(5, shuffle=False).take(7) == [0, 1, 2, 3, 4, 0, 1]
