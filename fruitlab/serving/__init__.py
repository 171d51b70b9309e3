"""Deploying trained models: rebuilding them from the tracking store, export (TorchScript, ONNX), ONNX
Runtime, int8 quantization and an HTTP prediction endpoint."""
