"""What a request asks for (SamplingParams) and what the engine hands back (RequestOutput).

Field names and meanings follow the OpenAI API and vLLM's SamplingParams, so the server maps
request bodies onto them one to one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Below this a temperature is greedy: dividing logits by it overflows float32 (1e-46 even
# rounds to 0), so "almost greedy" would otherwise become NaNs and token 0. vLLM uses 1e-5 too.
GREEDY_BELOW = 1e-5


class EngineFullError(ValueError):
    """The request can never fit in this engine's KV cache (or its queue is full)."""


@dataclass
class SamplingParams:
    """How to pick each next token and when to stop.

    temperature 0 (or below GREEDY_BELOW) means greedy. top_k 0 and top_p 1 switch those
    filters off; min_p keeps tokens whose probability is at least min_p times the most likely
    one's. repetition_penalty is the
    CTRL/HF multiplicative penalty over prompt and output; frequency and presence penalties are
    OpenAI's additive ones over the output only. logprobs=n returns the chosen token's log
    probability and the n most likely alternatives (0 = the chosen token only).
    """

    max_tokens: int = 16
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    min_p: float = 0.0
    repetition_penalty: float = 1.0
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    seed: int | None = None
    stop: list[str] = field(default_factory=list)
    stop_token_ids: list[int] = field(default_factory=list)
    ignore_eos: bool = False
    logprobs: int | None = None
    skip_special_tokens: bool = True
    # A JSON Schema the output must match (decoding is masked; see json_guide.py); {} means
    # any JSON value, None no constraint.
    guided_json: dict | None = None

    def __post_init__(self) -> None:
        if isinstance(self.stop, str):  # OpenAI accepts a single string too
            self.stop = [self.stop]
        self.stop = [s for s in (self.stop or []) if s]
        self.stop_token_ids = list(self.stop_token_ids or [])
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the bad field and its allowed range."""
        checks = [
            (isinstance(self.max_tokens, int) and self.max_tokens >= 1,
             "max_tokens", "an integer >= 1"),
            (self.temperature >= 0, "temperature", ">= 0 (0 is greedy)"),
            (0 < self.top_p <= 1, "top_p", "in (0, 1]"),
            (isinstance(self.top_k, int) and self.top_k >= 0, "top_k", "an integer >= 0"),
            (0 <= self.min_p <= 1, "min_p", "in [0, 1]"),
            (self.repetition_penalty > 0, "repetition_penalty", "> 0 (1 is off)"),
            (-2 <= self.frequency_penalty <= 2, "frequency_penalty", "in [-2, 2]"),
            (-2 <= self.presence_penalty <= 2, "presence_penalty", "in [-2, 2]"),
            (self.logprobs is None or 0 <= self.logprobs <= 20, "logprobs", "in [0, 20]"),
            (self.seed is None or isinstance(self.seed, int), "seed", "an integer"),
            (self.guided_json is None or isinstance(self.guided_json, dict), "guided_json",
             "a JSON Schema object (a dict)"),
        ]
        for ok, name, allowed in checks:
            if not ok:
                raise ValueError(f"{name}={getattr(self, name)!r} is invalid; it must be {allowed}")

    @property
    def greedy(self) -> bool:
        return self.temperature < GREEDY_BELOW

    @property
    def needs_penalties(self) -> bool:
        return (self.repetition_penalty != 1.0 or self.frequency_penalty != 0.0
                or self.presence_penalty != 0.0)

    @property
    def needs_filters(self) -> bool:
        return self.top_k > 0 or self.top_p < 1.0 or self.min_p > 0.0


@dataclass
class RequestOutput:
    """One step's news about a request: the new text and tokens since the last output.

    `text` never ends inside a UTF-8 character and never shows a possible start of a stop
    string; the final output (finished=True) flushes whatever was held back. Engine.generate
    returns the same type with the whole completion instead of a delta.
    """

    request_id: str
    text: str
    token_ids: list[int]
    finished: bool
    finish_reason: str | None  # "stop" | "length" | "abort"
    prompt_tokens: int
    completion_tokens: int
    logprobs: list[dict] | None = None
    # Set when this request alone was ended because its parameters could not be used (the
    # rest of the batch carried on); finish_reason is then "abort".
    error: str | None = None
