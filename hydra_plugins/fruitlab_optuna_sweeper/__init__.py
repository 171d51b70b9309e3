"""fruitlab's Hydra plugins: the Optuna sweeper (`hydra/sweeper: fruitlab_optuna`) and the `sweep` config group
read from the repository's sweeps/ folder. Hydra finds them in the `hydra_plugins` namespace package."""
