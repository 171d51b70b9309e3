"""Training a classifier from a composed config: one fit or cross-validation, recorded in the tracking store.
May import evaluation, exploration, tracking, data, models, plotting and config, errors, signals, console."""
