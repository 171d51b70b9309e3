"""Hyperparameter sweeps: Optuna studies over Hydra overrides, tracked as MLflow parent and child runs. May import
training and every layer below it; never serving, reporting, commands or studies."""
