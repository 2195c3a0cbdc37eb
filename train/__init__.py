"""The bundled text-to-video trainer: it reads a curated dataset's `clips.lance` directly (a version or tag and
a filter), with no export step.

    data.py         the Lance clip dataset (lazy blob reads, decord/PyAV decode, buckets, captions), batching
    vae.py          the causal 3D convolutional VAE            dit.py      the latent video DiT
    flow.py         rectified flow: loss, Euler sampler         text.py     the frozen open_clip caption encoder
    tasks.py        what a VAE / DiT training step computes     loop.py     the training loop (both stages)
    checkpoint.py   exact-resume checkpoints                    latents.py  the latents cache table
    distributed.py  one device or a torchrun / Ray Train rank   sample.py   text -> mp4
    ray_train.py    fit on N Ray Train workers                  config.py   the YAML config
    __main__.py     `python -m train ...`

May import: `curate.store` (the Lance store, schema, versions) and `curate.common` (the leaf shared helpers);
`curate` never imports it.
"""
