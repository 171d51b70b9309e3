"""`python -m fruitlab.report`: rankings, learning curves and the PCA curve from the MLflow store
(see fruitlab/reporting/report.py)."""

from fruitlab.reporting.report import main

if __name__ == "__main__":
    main()
