"""Deploying trained models: rebuilding them from the tracking store, ONNX export and ONNX Runtime."""
