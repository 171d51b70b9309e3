"""Deploying trained models: rebuilding them from the tracking store, export (torch.export, ONNX), ONNX Runtime,
int8 quantization and an HTTP prediction endpoint."""
