"""`python -m fruitlab.eda`: data exploration recorded as an MLflow run (see fruitlab/reporting/eda.py)."""

from fruitlab.reporting.eda import main

if __name__ == "__main__":
    main()
