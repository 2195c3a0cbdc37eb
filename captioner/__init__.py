"""Dense video captioning with vision-language models (issue 5): prompts, VLM backends, caption checks.

Not built yet. The job already passes each scene's frames (upright JPEG samples from the analysis pass) to the
stages after it, and `clips.lance` already has the caption columns this package will fill.
"""
