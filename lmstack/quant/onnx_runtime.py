"""Run an exported ONNX decoder (lmstack.quant.onnx_export's layout) with ONNX Runtime.

Greedy decoding feeds each step's `present` back as the next `past`, as optimum's
ORTModelForCausalLM does; `logit_gap` measures how far the graph strays from the lmstack model
it came from (the export command and the parity tests both use it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from lmstack.quant.onnx_export import past_names


class OnnxDecoderSession:
    """An onnxruntime InferenceSession over one exported decoder, with its KV bookkeeping."""

    def __init__(self, path: str | Path, threads: int = 0):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads  # 0 = onnxruntime's own choice
        options.inter_op_num_threads = 1
        # Idle pool threads sleep instead of spinning, as OMP_WAIT_POLICY=PASSIVE makes torch's
        # do in the benchmarks: on a shared machine spinning threads stall each other.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), options,
                                            providers=["CPUExecutionProvider"])
        past = [i for i in self.session.get_inputs() if i.name.startswith("past_key_values.")]
        self.num_layers = len(past) // 2
        _, self.kv_heads, _, self.head_dim = past[0].shape  # [batch, kv_heads, past, head_dim]

    def empty_past(self, batch: int = 1) -> list[np.ndarray]:
        shape = (batch, self.kv_heads, 0, self.head_dim)
        return [np.zeros(shape, np.float32) for _ in range(2 * self.num_layers)]

    def forward(self, input_ids: np.ndarray, past: list[np.ndarray]
                ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Logits [B, T, vocab] for T new tokens after the past; and the next step's past."""
        B, T = input_ids.shape
        P = past[0].shape[2]
        feed = {"input_ids": input_ids.astype(np.int64),
                "attention_mask": np.ones((B, P + T), np.int64),
                "position_ids": np.broadcast_to(np.arange(P, P + T, dtype=np.int64), (B, T)),
                **dict(zip(past_names(self.num_layers), past, strict=True))}
        logits, *present = self.session.run(None, feed)
        return logits, present

    def greedy(self, prompt: list[int], max_new_tokens: int) -> list[int]:
        """The new token ids greedy decoding picks: one prefill, then one token per step."""
        logits, past = self.forward(np.array([prompt]), self.empty_past())
        out = []
        for _ in range(max_new_tokens):
            out.append(int(logits[0, -1].argmax()))
            logits, past = self.forward(np.array([[out[-1]]]), past)
        return out


@torch.no_grad()
def logit_gap(model, session: OnnxDecoderSession, prompt: list[int], extra: list[int]) -> float:
    """Largest |logit difference| between lmstack's `model` and the session, over the prompt
    scored with an empty past and then `extra` scored after the prompt's past."""
    ids = torch.tensor([prompt + extra])
    want = model(ids).float().numpy()
    head, past = session.forward(np.array([prompt]), session.empty_past())
    tail, _ = session.forward(np.array([extra]), past)
    return float(max(np.abs(head - want[:, :len(prompt)]).max(),
                     np.abs(tail - want[:, len(prompt):]).max()))
