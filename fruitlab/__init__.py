"""fruitlab: experiment tracking and hyperparameter search for image classification."""

__version__ = "0.1.0"
