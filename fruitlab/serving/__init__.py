"""Deploying recorded models: rebuilt from the tracking store, exported (torch.export, ONNX), int8-quantized with
ONNX Runtime, served over HTTP. May import evaluation, tracking, data, models and the layers below; never training
or sweeping."""
