"""AsyncEngine: many concurrent streams from asyncio and threads, cancellation frees blocks,
bad requests fail at the call."""

from __future__ import annotations

import asyncio
import threading

import pytest
from engine_helpers import ScriptedLM, random_prompts

from lmstack.engine import AsyncEngine, Engine, EngineFullError, SamplingParams

GREEDY = SamplingParams(max_tokens=24, temperature=0, ignore_eos=True)


@pytest.fixture()
def async_engine(llama):
    engine = AsyncEngine(Engine(llama, None, block_size=4, num_blocks=49))
    yield engine
    engine.shutdown()


def test_concurrent_streams_match_offline_generate(llama, async_engine):
    prompts = random_prompts([3, 9, 14, 6, 20, 1, 11, 8], seed=4)
    expected = [o.token_ids for o in Engine(llama, None).generate(prompts, GREEDY)]

    async def one(prompt):
        tokens, finished = [], 0
        async for out in async_engine.stream(prompt, GREEDY):
            tokens += out.token_ids
            finished += out.finished
        assert finished == 1
        return tokens

    async def main():
        return await asyncio.gather(*(one(p) for p in prompts))

    assert asyncio.run(main()) == expected
    assert async_engine.stats["free_blocks"] == 48


def test_cancelled_stream_aborts_and_frees_blocks(async_engine):
    long = SamplingParams(max_tokens=120, temperature=0, ignore_eos=True)

    async def main():
        stream = async_engine.stream(random_prompts([10])[0], long)
        got = 0
        async for out in stream:
            got += len(out.token_ids)
            if got >= 3:
                break  # a client that disconnects
        await stream.aclose()

        started = asyncio.Event()

        async def reader():
            async for _ in async_engine.stream(random_prompts([10])[0], long):
                started.set()

        task = asyncio.create_task(reader())
        await started.wait()
        task.cancel()  # what a server does when the client goes away
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(100):
            stats = async_engine.stats
            if stats["running"] == 0 and stats["free_blocks"] == 48:
                return stats
            await asyncio.sleep(0.05)
        return async_engine.stats

    stats = asyncio.run(main())
    assert stats["running"] == 0 and stats["free_blocks"] == 48
    assert stats["in_flight"] == 0


def test_bad_requests_raise_at_the_call(async_engine):
    async def main():
        with pytest.raises(ValueError, match="empty"):
            async_engine.stream([], GREEDY)
        with pytest.raises(EngineFullError):
            async_engine.stream([1] * 10, SamplingParams(max_tokens=1000))
        out = await async_engine.generate([1, 2, 3], GREEDY)
        assert out.finished and len(out.token_ids) == 24

    asyncio.run(main())


def test_blocking_iterate_from_threads(llama, async_engine):
    prompts = random_prompts([4, 7, 12, 5], seed=8)
    expected = [o.token_ids for o in Engine(llama, None).generate(prompts, GREEDY)]
    results: dict[int, list[int]] = {}

    def worker(i):
        results[i] = [t for out in async_engine.iterate(prompts[i], GREEDY)
                      for t in out.token_ids]

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(prompts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert [results[i] for i in range(len(prompts))] == expected


def test_a_failing_step_fails_its_requests_and_the_engine_keeps_serving():
    class Flaky(ScriptedLM):
        def forward(self, input_ids, *args, **kwargs):
            if (input_ids == 13).any():
                raise RuntimeError("kernel exploded")
            return super().forward(input_ids, *args, **kwargs)

    engine = AsyncEngine(Engine(Flaky([5, 6, 7], 3, 50), None))
    try:
        with pytest.raises(RuntimeError, match="kernel exploded"):
            list(engine.iterate([1, 13, 2], GREEDY))
        out = [t for o in engine.iterate([1, 2, 3], SamplingParams(max_tokens=3))
               for t in o.token_ids]
        assert out == [5, 6, 7]
    finally:
        engine.shutdown()


def test_a_request_whose_sampling_fails_ends_alone(llama):
    # One request's parameters break the sampler mid-batch: only its stream fails, the
    # others finish with the tokens they would have had anyway.
    prompts = random_prompts([5, 7, 9], seed=11)
    params = SamplingParams(max_tokens=12, temperature=0, ignore_eos=True)
    expected = Engine(llama, None).generate(prompts, params)
    bad = SamplingParams(max_tokens=12, temperature=0.7, ignore_eos=True)
    engine = AsyncEngine(Engine(llama, None))
    try:
        async def run(stream):
            return [t async for o in stream for t in o.token_ids]

        async def main():
            streams = [engine.stream(p, params) for p in prompts]
            streams.append(engine.stream(prompts[0], bad))
            bad.top_p = float("nan")  # after admission, as a future bug might let through
            return await asyncio.gather(*map(run, streams), return_exceptions=True)

        *good, failed = asyncio.run(main())
        assert isinstance(failed, ValueError) and "finite" in str(failed)
        assert good == [e.token_ids for e in expected]
        assert engine.stats["in_flight"] == 0
    finally:
        engine.shutdown()


def test_a_failed_request_is_reported_once_with_its_error(llama):
    engine = Engine(llama, None)
    good = engine.add_request([1, 2, 3], SamplingParams(max_tokens=3, temperature=0))
    bad_params = SamplingParams(max_tokens=3, temperature=0.5)
    bad = engine.add_request([4, 5], bad_params)
    bad_params.min_p = "broken"  # after admission, as a future bug might let through
    reports, good_tokens = [], []
    while engine.has_unfinished():
        for out in engine.step():
            if out.request_id == bad:
                reports.append(out)
            good_tokens += out.token_ids if out.request_id == good else []
    assert len(reports) == 1 and reports[0].finished and reports[0].finish_reason == "abort"
    assert "invalid sampling parameters" in reports[0].error
    assert len(good_tokens) == 3
