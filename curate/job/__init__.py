"""The Ray job: the single analysis pass (`analyze.py`: decode once, cuts, samples, keyframes), the stages
(`stages.py`), their wiring into Ray Data and the driver's commits (`pipeline.py`), the clip encoder
(`encode.py`), re-deciding stored scores (`refilter.py`), cluster checks (`cluster.py`), retries
(`failures.py`) and the run summary (`summary.py`).

May import: every `curate` package, `filters` and `captioner` (the only part of `curate` that may).
"""
