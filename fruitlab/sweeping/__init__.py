"""Hyperparameter sweeps: Optuna studies over Hydra overrides, tracked as MLflow parent and child runs."""
