"""Deploying recorded models: rebuilt from the tracking store, exported (TorchScript, ONNX), int8-quantized, served
over HTTP. May import evaluation, tracking, data, models and the layers below; never training or sweeping."""
