"""Deployment of recorded models: load by run id or model URI, export (TorchScript, ONNX), int8
quantization and an HTTP prediction endpoint."""
