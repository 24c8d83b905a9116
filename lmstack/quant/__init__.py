"""Model compression: weight quantization (int8 / int4 / llama.cpp blocks, fast CPU kernels,
calibration, quality), pruning (prune.py, structured.py) and ONNX export (onnx_export.py).

quantize_model turns a model's Linear layers into QuantLinear; save_quantized / load_quantized
(or lmstack.load) keep it as a folder; lmstack.quant.quality measures what it cost.
"""

from lmstack.quant.apply import SCHEMES, model_bytes, quantize_model
from lmstack.quant.folder import load_quantized, save_quantized
from lmstack.quant.linear import QuantLinear
from lmstack.quant.schemes import QuantSchemeError, QuantWeight

__all__ = ["SCHEMES", "QuantLinear", "QuantSchemeError", "QuantWeight", "load_quantized",
           "model_bytes", "quantize_model", "save_quantized"]
