"""fruitlab's Hydra plugin: the Optuna sweeper (`hydra/sweeper: fruitlab_optuna`), found by Hydra in the
`hydra_plugins` namespace package. An adapter over fruitlab.sweeping; fruitlab never imports it."""
