"""Rankings, tables and figures of finished runs, read from the tracking store only. May import tracking,
plotting and config, errors, signals, console; never data, models, evaluation, training or lightning."""
