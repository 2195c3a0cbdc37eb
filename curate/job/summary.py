"""The run summary: what `curate run` prints at the end and the Python API returns."""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone


def new_run_id() -> str:
    """A run's id: its UTC start time (ids sort by age) and a random suffix (two runs may start together)."""
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("vidcurate")
    except PackageNotFoundError:
        return "unknown"


@dataclass
class RunSummary:
    run_id: str
    output: str
    videos_seen: int = 0
    videos_skipped: int = 0  # already finished by an earlier run
    videos_ok: int = 0
    videos_failed: int = 0  # final: corrupt, unsupported, empty (redone only with --retry-failed)
    videos_retryable: int = 0  # transient failures: the next run redoes them
    scenes: int = 0
    kept: int = 0
    clips: int = 0
    hours_in: float = 0.0
    hours_out: float = 0.0
    wall_s: float = 0.0
    captioned: int = 0  # clips whose caption passed the checks
    caption_retried: int = 0  # clips that needed more than one attempt
    caption_failed: int = 0  # clips kept without a usable caption (reason in clips.caption_error)
    caption_tokens: int = 0  # output tokens over all attempts
    caption_gen_s: float = 0.0  # time inside the caption backend, summed over actors
    partial_videos_redone: int = 0
    versions: dict[str, int] = field(default_factory=dict)
    dedup: dict | None = None  # curate.job.dedup.DedupSummary, when `dedup.on_run`
    failures: list[tuple[str, str]] = field(default_factory=list)  # (uri, error)
    # Where the wall time went (seconds): the driver's phases, see `timings_line`.
    timings: dict[str, float] = field(default_factory=dict)
    # Each Ray Data operator's busy time summed over its tasks and actors (fused stages share one operator).
    stage_busy_s: dict[str, float] = field(default_factory=dict)

    @property
    def tag(self) -> str:
        return f"run-{self.run_id}"

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def caption_tokens_per_s(self) -> float:
        return self.caption_tokens / self.caption_gen_s if self.caption_gen_s else 0.0

    def caption_line(self) -> str:
        # no rate where generation time is not ours to measure (Ray Data LLM's engine stage, caption_batch.py)
        rate = f" at {self.caption_tokens_per_s:.0f} tokens/s per actor" if self.caption_gen_s else ""
        return (f"  captions: {self.captioned} ok, {self.caption_failed} failed, {self.caption_retried} retried; "
                f"{self.caption_tokens} output tokens{rate}")

    def timings_line(self) -> str:
        """Ray's share apart from the work: start-up, the streaming execution (workers starting, models loading,
        every stage), the driver's commits, and the closing compaction and tags."""
        t = self.timings
        if not t:
            return ""
        done = self.videos_ok + self.videos_failed + self.videos_retryable
        per_video = f" ({1000 * t.get('commit_s', 0.0) / done:.0f} ms a video)" if done else ""
        busy = ", ".join(f"{name} {s:.1f} s" for name, s in self.stage_busy_s.items())
        return (f"  time: prepare {t.get('prepare_s', 0.0):.1f} s, Ray start {t.get('ray_start_s', 0.0):.1f} s, "
                f"execute {t.get('execute_s', 0.0):.1f} s, commits {t.get('commit_s', 0.0):.1f} s{per_video}, "
                f"closing {t.get('finish_s', 0.0):.1f} s" + (f"; stages busy: {busy}" if busy else ""))

    def format(self) -> str:
        lines = [
            f"run {self.run_id} -> {self.output}",
            f"  videos: {self.videos_ok} ok, {self.videos_failed} failed, {self.videos_retryable} retryable "
            f"(the next run redoes them), {self.videos_skipped} skipped (already done) of {self.videos_seen}",
            f"  scenes: {self.scenes}, kept: {self.kept}, clips written: {self.clips}",
            *([self.caption_line()] if self.captioned or self.caption_failed else []),
            f"  hours in: {self.hours_in:.4f}, hours out: {self.hours_out:.4f}, wall: {self.wall_s:.1f} s",
            *([self.timings_line()] if self.timings else []),
        ]
        if self.partial_videos_redone:
            lines.append(f"  resumed: removed partial rows of {self.partial_videos_redone} interrupted videos")
        if self.versions:
            lines.append("  versions: " + ", ".join(f"{k}=v{v}" for k, v in self.versions.items())
                         + f" (tag {self.tag})")
        if self.dedup:
            d, applied = self.dedup, self.dedup.get("refilter") or {}
            lines.append(f"  dedup: {d['duplicates']} duplicates in {d['groups']} groups, "
                         f"{applied.get('newly_dropped', 0)} clips dropped as duplicates "
                         f"(tag run-{applied.get('run_id')})")
        for uri, err in self.failures[:20]:
            lines.append(f"  failed: {uri}: {err}")
        if len(self.failures) > 20:
            lines.append(f"  ... and {len(self.failures) - 20} more failures (see videos.lance)")
        return "\n".join(lines)
