"""Prompting techniques as small pieces: few-shot templates, chain-of-thought answer extraction,
self-consistency voting, structured JSON output. Pure Python: no torch, no model imports."""

from lmstack.prompting.cot import COT_TRIGGER, extract_choice, extract_number
from lmstack.prompting.fewshot import Example, FewShotTemplate, select_examples
from lmstack.prompting.self_consistency import majority_vote, self_consistency
from lmstack.prompting.structured import StructuredOutputError, generate_json, validate

__all__ = ["COT_TRIGGER", "Example", "FewShotTemplate", "StructuredOutputError",
           "extract_choice", "extract_number", "generate_json", "majority_vote",
           "select_examples", "self_consistency", "validate"]
