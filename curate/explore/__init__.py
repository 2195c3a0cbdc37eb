"""Reading results: the notebook API (`notebook.py`), previews and plots (`visuals.py`), the static HTML
report (`report.py`) and similarity search (`search.py`).

May import: `curate.store`, `curate.video` (thumbnails of clips), `curate.config`, `curate.common`,
`filters.policy` (the pure keep/drop rules, to show and re-decide thresholds) and `filters.aesthetic` (the
CLIP towers that embed a search's text or image). Never the job: reading a dataset needs no Ray.
"""
