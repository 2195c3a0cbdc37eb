"""Video in: finding inputs (`sources.py`), probing and decoding them (`media.py`), cutting scenes
(`scenes/`), and the synthetic demo corpus (`democorpus.py`).

May import: `curate.common`, `curate.config`. Never the job, the store or the notebook side.
"""
