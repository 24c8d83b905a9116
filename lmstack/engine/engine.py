"""The inference engine: requests in, streamed tokens out, over a paged KV cache.

Follows vLLM's LLMEngine and nano-vllm's loop (Kwon et al. 2023, "Efficient Memory Management
for LLM Serving with PagedAttention"): schedule, run the model once per group, sample, emit.
"""

from __future__ import annotations

import time
import uuid
from collections import deque

import torch

from lmstack.engine.detokenizer import IncrementalDetokenizer, StopChecker
from lmstack.engine.paged_cache import PagedKVCache
from lmstack.engine.params import EngineFullError, RequestOutput, SamplingParams
from lmstack.engine.sampler import Sampler, SampleRow
from lmstack.engine.scheduler import Scheduler, Sequence
from lmstack.nn.fusion import fuse_projections, pack_weights

DEFAULT_KV_CACHE_BYTES = 1 << 30  # when num_blocks is not given: up to 1 GiB of keys + values


class Engine:
    """Continuous-batching generation for one model and its tokenizer.

    max_num_seqs caps the running batch and max_num_batched_tokens the tokens one step may
    compute (prompt chunks plus one per decoding sequence). The KV cache holds num_blocks
    blocks of block_size tokens (default: enough for max_num_seqs full contexts, at most
    1 GiB). max_model_len bounds prompt + completion (default: the model's positions);
    max_queue, when set, refuses new requests while that many wait. The model is left as it
    is given; column_major=True says the engine owns the model (one just loaded for it) and may
    re-store its weights in place for decoding, same values and names: q/k/v and gate/up
    stacked into one matrix each (see lmstack.nn.fusion), and fp32 CPU Linear weights
    column-major (see column_major_weights). packed_weights=True (implies the same ownership)
    also keeps oneDNN-prepacked copies of bf16 CPU weights beside them (see lmstack.nn.packed):
    twice the weight memory, decoding measured 1.2-1.4x faster on an AVX-512 CPU.
    adapters (a lmstack.adapt.multi_lora.MultiLoRA on this model) lets each request name a
    LoRA adapter (SamplingParams.adapter); rows with different adapters share each step.
    Not thread-safe: drive it from one thread, or via AsyncEngine.
    """

    def __init__(
        self, model, tokenizer, max_num_seqs: int = 64, max_num_batched_tokens: int = 512,
        block_size: int = 16, num_blocks: int | None = None, max_model_len: int | None = None,
        max_queue: int | None = None, seed: int | None = None, column_major: bool = False,
        packed_weights: bool = False, adapters=None,
    ):
        cfg = model.config
        self.model, self.tokenizer = model.eval(), tokenizer
        param = next(model.parameters())
        self.device, self.dtype = param.device, param.dtype
        if column_major or packed_weights:
            transpose = self.device.type == "cpu" and self.dtype == torch.float32
            fuse_projections(model, column_major=transpose)
            if transpose:
                column_major_weights(model)
            if packed_weights:
                pack_weights(model)
        self.max_model_len = max_model_len or cfg.max_position_embeddings
        if self.max_model_len > cfg.max_position_embeddings:
            # As vLLM: past its trained positions a model either fails (learned tables)
            # or degrades silently (rotary), so the limit holds for every architecture.
            raise ValueError(f"the model has {cfg.max_position_embeddings} positions but "
                             f"max_model_len is {self.max_model_len}; lower max_model_len")
        if max_num_seqs < 1 or max_num_batched_tokens < 1 or block_size < 1:
            raise ValueError("max_num_seqs, max_num_batched_tokens and block_size must be >= 1")
        per_token = PagedKVCache.bytes_per_token(
            cfg.num_hidden_layers, cfg.num_key_value_heads, cfg.head_dim, self.dtype)
        if num_blocks is None:
            want = max_num_seqs * self.max_model_len
            tokens = min(want, max(DEFAULT_KV_CACHE_BYTES // per_token, self.max_model_len))
            num_blocks = -(-tokens // block_size) + 1
        self.cache = PagedKVCache(
            cfg.num_hidden_layers, num_blocks, block_size, cfg.num_key_value_heads,
            cfg.head_dim, self.dtype, self.device)
        self.scheduler = Scheduler(self.cache.allocator, block_size, max_num_seqs,
                                   max_num_batched_tokens)
        self.sampler = Sampler(cfg.vocab_size, self.device, seed)
        self.max_queue = max_queue
        self.adapters = adapters
        self.eos_ids = _eos_ids(model, tokenizer)
        self._seqs: dict[str, Sequence] = {}
        self._aborted: list[Sequence] = []
        self._counters = {"prefill_tokens": 0, "generation_tokens": 0, "steps": 0,
                          "requests_finished": 0, "mixed_adapter_passes": 0}
        self._recent: deque[tuple[float, int]] = deque(maxlen=64)  # (time, tokens) per step

    # ------------------------------------------------------------------ requests
    def make_sequence(self, prompt: str | list[int], params: SamplingParams,
                      request_id: str | None = None) -> Sequence:
        """Tokenize and validate a request without touching the scheduler (thread-safe)."""
        if isinstance(prompt, str):
            if self.tokenizer is None:
                raise ValueError("this engine has no tokenizer; pass the prompt as token ids")
            ids = self.tokenizer.encode(prompt, add_special_tokens=True)
        else:
            ids = [int(t) for t in prompt]
        params.validate()
        if params.adapter is not None:
            if self.adapters is None:
                raise ValueError(f"adapter {params.adapter!r} was asked for, but this engine "
                                 "serves no adapters")
            try:
                self.adapters.index(params.adapter)
            except KeyError as exc:
                raise ValueError(exc.args[0]) from None
        if not ids:
            raise ValueError("the prompt is empty; give at least one token")
        vocab = self.model.config.vocab_size
        if min(ids) < 0 or max(ids) >= vocab:
            raise ValueError(f"prompt token ids must lie in [0, {vocab})")
        if len(ids) >= self.max_model_len:
            raise ValueError(
                f"the prompt has {len(ids)} tokens but the context holds {self.max_model_len} "
                "(prompt and completion together); shorten the prompt")
        kv_tokens = min(len(ids) + params.max_tokens, self.max_model_len) - 1
        need = self.cache.blocks_for(kv_tokens)
        if need > self.cache.allocator.capacity:
            raise EngineFullError(
                f"the request needs {kv_tokens} tokens of KV cache but the engine holds only "
                f"{self.cache.allocator.capacity * self.cache.block_size}; lower max_tokens or "
                "shorten the prompt, or start the engine with more num_blocks")
        generator = None
        if params.seed is not None:
            generator = torch.Generator(device=self.device)
            generator.manual_seed(params.seed)
        return Sequence(
            request_id=request_id or uuid.uuid4().hex, prompt_ids=ids, params=params,
            detokenizer=IncrementalDetokenizer(self.tokenizer, ids, params.skip_special_tokens),
            stop=StopChecker(params.stop), generator=generator)

    def add_sequence(self, seq: Sequence, check_queue: bool = True) -> str:
        if seq.request_id in self._seqs:
            raise ValueError(f"request id {seq.request_id!r} is already in use")
        if (check_queue and self.max_queue is not None
                and len(self.scheduler.waiting) >= self.max_queue):
            raise EngineFullError(f"{self.max_queue} requests are already waiting; retry later")
        self._seqs[seq.request_id] = seq
        self.scheduler.add(seq)
        return seq.request_id

    def add_request(self, prompt: str | list[int], params: SamplingParams | None = None,
                    request_id: str | None = None) -> str:
        """Queue a request; returns its id. Raises ValueError (EngineFullError when the cache
        could never hold it) instead of accepting work it cannot finish."""
        return self.add_sequence(self.make_sequence(prompt, params or SamplingParams(),
                                                    request_id))

    def abort(self, request_id: str) -> None:
        """Stop a request and free its KV blocks now; the next step reports it as aborted."""
        seq = self._seqs.pop(request_id, None)
        if seq is None or seq.finished:
            return
        self.scheduler.finish(seq, "abort")
        self._aborted.append(seq)

    def has_unfinished(self) -> bool:
        return self.scheduler.has_unfinished() or bool(self._aborted)

    # ------------------------------------------------------------------ the loop
    @torch.inference_mode()
    def step(self) -> list[RequestOutput]:
        """Schedule, run the model, sample, and report every request that has news."""
        outputs = [self._output(seq) for seq in self._aborted]
        self._aborted = []
        batch = self.scheduler.schedule()
        if not batch:
            return outputs
        # Decode rows (one new token) and prefill chunks run as two forward passes, so a long
        # chunk's padding never multiplies across the whole decode batch.
        groups = [[(s, n) for s, n in batch if n == 1], [(s, n) for s, n in batch if n > 1]]
        # Prompt tokens (and recomputed ones after a preemption), not fed-back samples.
        self._counters["prefill_tokens"] += sum(n for s, n in batch if n > 1 or not s.output_ids)
        to_sample: list[Sequence] = []
        logits = []
        for group in groups:
            if not group:
                continue
            group_logits = self._forward(group)
            rows = []
            for row, (seq, n) in enumerate(group):
                seq.num_computed += n
                if seq.num_computed == seq.num_tokens:  # prompt (or recompute) complete
                    to_sample.append(seq)
                    rows.append(row)
            if len(rows) == len(group):
                logits.append(group_logits)
            elif rows:  # mid-prompt chunks have nothing to sample yet
                logits.append(group_logits[rows])
        if to_sample:
            rows = [SampleRow(s.params, s.prompt_ids, s.output_ids, s.generator)
                    for s in to_sample]
            result = self.sampler(logits[0] if len(logits) == 1 else torch.cat(logits), rows)
            for seq, token, lp, error in zip(to_sample, result.token_ids, result.logprobs,
                                             result.errors, strict=True):
                if error is None:
                    self._append(seq, token, lp)
                else:  # this request's parameters failed: end it alone, the batch goes on
                    del self._seqs[seq.request_id]
                    self.scheduler.finish(seq, "abort")
                    seq.error = error  # reported below, once, with the rest of to_sample
        self._counters["steps"] += 1
        self._counters["generation_tokens"] += len(to_sample)
        self._recent.append((time.perf_counter(), len(to_sample)))
        for seq in to_sample:
            if seq.new_token_ids or seq.finished:
                outputs.append(self._output(seq))
        return outputs

    def _forward(self, group: list[tuple[Sequence, int]]) -> torch.Tensor:
        """Logits [B, vocab] at each row's newest token, for a left-padded batch."""
        context = [s.num_computed + n for s, n in group]
        queries = [n for _, n in group]
        Q = max(queries)
        step = self.cache.prepare([s.block_table for s, _ in group], context, queries)
        ids = [[0] * (Q - n) + seq.tokens(seq.num_computed, ctx)
               for (seq, n), ctx in zip(group, context, strict=True)]
        input_ids = torch.tensor(ids, device=self.device)
        if self.adapters is not None:  # each row's adapter, gathered per row when they differ
            rows = [self.adapters.index(seq.params.adapter) for seq, _ in group]
            self._counters["mixed_adapter_passes"] += self.adapters.select_rows(rows, self.device)
        logits = self.model(input_ids, context=step, logits_to_keep=1)
        return logits[:, -1]

    def _append(self, seq: Sequence, token: int, logprob) -> None:
        """Record a sampled token and decide whether the sequence is done."""
        if seq.first_token_time is None:
            seq.first_token_time = time.perf_counter()
        seq.output_ids.append(token)
        seq.new_token_ids.append(token)
        p = seq.params
        if logprob is not None:
            seq.new_logprobs.append(self._logprob_entry(token, logprob))
        reason = None
        if token in p.stop_token_ids or (not p.ignore_eos and token in self.eos_ids):
            reason = "stop"  # the stopping token's own text is not shown
        else:
            seq.new_text += seq.stop.add(seq.detokenizer.add(token))
            if seq.stop.stopped:
                reason = "stop"
        if reason is None and (len(seq.output_ids) >= p.max_tokens
                               or seq.num_tokens >= self.max_model_len):
            reason = "length"
        if reason is not None:
            if not seq.stop.stopped:
                seq.new_text += seq.stop.add(seq.detokenizer.flush()) + seq.stop.flush()
            self.scheduler.finish(seq, reason)
            self._seqs.pop(seq.request_id, None)
            self._counters["requests_finished"] += 1

    def _logprob_entry(self, token: int, logprob) -> dict:
        chosen, top = logprob
        def text(ids: list[int]) -> str:
            return self.tokenizer.decode(ids) if self.tokenizer is not None else ""

        return {"token": text([token]), "token_id": token, "logprob": chosen,
                "top_logprobs": [{"token": text([t]), "token_id": t, "logprob": v}
                                 for t, v in top]}

    def _output(self, seq: Sequence) -> RequestOutput:
        out = RequestOutput(
            request_id=seq.request_id, text=seq.new_text, token_ids=seq.new_token_ids,
            finished=seq.finished, finish_reason=seq.finish_reason,
            prompt_tokens=len(seq.prompt_ids), completion_tokens=len(seq.output_ids),
            logprobs=seq.new_logprobs if seq.params.logprobs is not None else None,
            error=seq.error)
        seq.new_text, seq.new_token_ids, seq.new_logprobs = "", [], []
        return out

    # ------------------------------------------------------------------ conveniences
    def generate(self, prompts: list[str | list[int]],
                 params: SamplingParams | list[SamplingParams] | None = None,
                 ) -> list[RequestOutput]:
        """Run prompts to completion (together, continuously batched); whole text per prompt."""
        if isinstance(params, list) and len(params) != len(prompts):
            raise ValueError("give one SamplingParams, or one per prompt")
        plist = params if isinstance(params, list) else [params or SamplingParams()] * len(
            prompts)
        ids = [self.add_request(p, sp) for p, sp in zip(prompts, plist, strict=True)]
        done: dict[str, RequestOutput] = {}
        parts: dict[str, list[RequestOutput]] = {i: [] for i in ids}
        while len(done) < len(ids) and self.has_unfinished():
            for out in self.step():
                if out.request_id in parts:
                    parts[out.request_id].append(out)
                    if out.finished:
                        done[out.request_id] = merge_outputs(parts[out.request_id])
        return [done[i] for i in ids]

    @property
    def stats(self) -> dict:
        now = time.perf_counter()
        recent = [(t, n) for t, n in self._recent if now - t < 10.0]
        span = (recent[-1][0] - recent[0][0]) if len(recent) > 1 else 0.0
        rate = sum(n for _, n in recent[1:]) / span if span > 0 else 0.0
        alloc = self.cache.allocator
        return {
            "waiting": len(self.scheduler.waiting), "running": len(self.scheduler.running),
            "free_blocks": alloc.num_free, "total_blocks": alloc.capacity,
            "block_size": self.cache.block_size, "kv_cache_usage": 1 - alloc.num_free / max(
                1, alloc.capacity), "preemptions": self.scheduler.num_preemptions,
            "generation_tokens_per_s": rate, **self._counters,
        }


def merge_outputs(parts: list[RequestOutput]) -> RequestOutput:
    """Fold a request's stream of deltas into one output holding the whole completion."""
    last = parts[-1]
    logprobs = None
    if any(p.logprobs is not None for p in parts):
        logprobs = [e for p in parts for e in (p.logprobs or [])]
    return RequestOutput(
        request_id=last.request_id, text="".join(p.text for p in parts),
        token_ids=[t for p in parts for t in p.token_ids], finished=last.finished,
        finish_reason=last.finish_reason, prompt_tokens=last.prompt_tokens,
        completion_tokens=last.completion_tokens, logprobs=logprobs)


@torch.no_grad()
def column_major_weights(model: torch.nn.Module) -> None:
    """Store each Linear weight transposed in memory (same values, same [out, in] shape).

    Decoding one token is a matrix-vector product per weight, and PyTorch's fp32 CPU kernel
    reads a column-major weight markedly faster (2x for a 32K-vocabulary head, ~25% more
    decode tokens/s on the benchmark model). Only for fp32: bf16 kernels are ~10x slower on
    that layout. Saving still writes the usual layout (save_model makes tensors contiguous),
    and a weight shared with an embedding stays shared.
    """
    for module in model.modules():
        if isinstance(module, torch.nn.Linear) and module.weight.is_contiguous():
            module.weight.data = module.weight.data.t().contiguous().t()


def _eos_ids(model, tokenizer) -> set[int]:
    ids: set[int] = set()
    for source in (getattr(tokenizer, "eos_token_id", None),
                   getattr(model.config, "eos_token_id", None)):
        if isinstance(source, int):
            ids.add(source)
        elif isinstance(source, (list, tuple)):
            ids.update(int(i) for i in source)
    return ids
