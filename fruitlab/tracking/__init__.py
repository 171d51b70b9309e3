"""Everything fruitlab records in MLflow and reads back, through one `Store` handle per command (store.py); the
only package that imports mlflow. It may import data, models, plotting, config, signals, errors and console."""
