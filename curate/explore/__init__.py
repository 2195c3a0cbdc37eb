"""Reading results: the notebook API (`notebook.py`), previews and plots (`visuals.py`), and the static HTML
report (`report.py`).

May import: `curate.store`, `curate.video` (thumbnails of clips), `curate.config`, `curate.common`, and
`filters.policy` (the pure keep/drop rules, to show and re-decide thresholds). Never the job: reading a dataset
needs no Ray.
"""
