"""The parts of scripts/quality_benchmark.py: the tasks (photos and their known transforms), the
configurations (named flag sets), the runs (train.py and test.py as subprocesses) and the report
(table, JSON file, pictures)."""
