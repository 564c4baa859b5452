"""The model: its input (noise, clip, cut-outs, normalisation, built in one place), its card, and the ONNX Runtime shim."""
