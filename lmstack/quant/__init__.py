"""Model compression: pruning, ONNX export (and, beside them, weight quantization)."""
