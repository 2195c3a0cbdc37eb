"""The job's models and optional packages: checked before any work, on the driver and on every node.

`preflight` fails at once, with the fix in one line, when a model's weights, its server or an optional package
cannot be had; on the way it downloads or builds what it checks into the machine's caches. On a cluster of more
than one node, `prepare_every_node` runs it once on each node (a task pinned to the node) before the job
starts, so every node that runs a model stage finds its weights in its own cache, and a node that cannot have
them (a weight file or model directory that exists only on the driver, no route to the hub) is named before any
work is done.
"""

from __future__ import annotations

import logging

from curate.config import Config

log = logging.getLogger(__name__)


class NodeSetupError(ValueError):
    """A node of the cluster cannot have the job's models; the message names the node and the reason."""


def preflight(cfg: Config) -> None:
    """Fails before any work when a model or an optional package cannot be had."""
    if cfg.scenes.detector == "transnetv2":
        from curate.video.scenes.transnet import load_package

        load_package()
    if cfg.scoring.aesthetic.enabled:
        from filters.aesthetic_spec import preflight, spec_from_config

        preflight(spec_from_config(cfg.scoring.aesthetic, cfg.profile))
    if cfg.scoring.ocr.enabled or cfg.scoring.safety.enabled:
        from curate.job.stages import ScoreStage

        ScoreStage(cfg).preflight()
    if cfg.caption.enabled:
        from captioner.backends import preflight as caption_preflight

        caption_preflight(cfg.caption, cfg.profile)
        if cfg.caption.rewrite.enabled:
            from captioner.prompts import get_prompt

            get_prompt(cfg.caption.rewrite.prompt, input="text")  # an unknown id fails here, not in an actor
            caption_preflight(cfg.caption.rewrite_section(), cfg.profile)


def _preflight_here(cfg: Config) -> str | None:
    """`preflight` on the node this task runs on: None, or the reason in one line."""
    from curate.video.media import one_line

    try:
        preflight(cfg)
    except Exception as e:  # noqa: BLE001 - reported to the driver, which stops the run
        return f"{type(e).__name__}: {one_line(e)}"
    return None


def prepare_every_node(cfg: Config, *, timeout_s: float = 1800.0) -> int:
    """Runs `preflight` once on every alive node of the connected Ray cluster; returns the number of nodes.

    Raises:
        NodeSetupError: the first node that cannot have the models, with its reason.
    """
    from curate.job.cluster import alive_nodes, on_each_node

    nodes = alive_nodes()
    if len(nodes) <= 1:
        return len(nodes)  # the driver's preflight ran on this very machine
    for node, error in zip(nodes, on_each_node(_preflight_here, nodes, cfg, timeout_s=timeout_s)):
        if error:
            raise NodeSetupError(f"node {node['NodeManagerAddress']} ({node['NodeID'][:8]}) cannot load the job's "
                                 f"models: {error}")
    log.info("models prepared on %d nodes", len(nodes))
    return len(nodes)
