"""The bundled DiT + VAE trainer over `clips.lance` (issue 6). Not built yet."""
