"""Evaluating a trained classifier given as an argument: test predictions, scores, figures, Grad-CAM, latency.
May import tracking, data, models, plotting and config, errors, signals, console; never training or anything above."""
