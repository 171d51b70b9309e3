"""fruitlab's Hydra plugin: the Optuna sweeper (`hydra/sweeper: fruitlab_optuna`). Hydra finds it in the
`hydra_plugins` namespace package."""
