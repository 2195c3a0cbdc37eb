"""The bundled text-to-video trainer: it reads a curated dataset's `clips.lance` directly (a version or tag and
a filter), with no export step.

    data.py         the Lance clip dataset (lazy blob reads, decord/PyAV decode, buckets, captions), batching
    vae.py          the causal 3D convolutional VAE            dit.py      the latent video DiT
    flow.py         rectified flow: loss, Euler sampler         text.py     the frozen open_clip caption encoder
    tasks.py        what a VAE / DiT training step computes     loop.py     the training loop (both stages)
    checkpoint.py   exact-resume checkpoints                    latents.py  the latents cache table
    distributed.py  one device, torchrun, Ray Train             sample.py   text -> mp4
    config.py       the YAML config                             __main__.py `python -m train ...`

The trainer imports `curate` store, schema, versions and compat only; `curate` never imports it.
"""
