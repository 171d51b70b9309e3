"""Hyperparameter sweeps: Optuna studies over Hydra overrides, tracked as MLflow parent and child runs. The parts:
`plan` (pure), `scheduler` (runs trials), `recorder` (the only module that calls fruitlab.tracking); `sweep.run_sweep`
puts them together and `trial` is a trial's side, in its job. May import training and every layer below it; never
serving, reporting, commands or studies."""
