"""The MLflow store: runs, their configs, metrics and artifacts, logged and registered models, queries. The only
package that imports mlflow; may import data, models, plotting and config, errors, signals, console."""
