"""The run summary: what `curate run` prints at the end and the Python API returns."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class RunSummary:
    run_id: str
    output: str
    videos_seen: int = 0
    videos_skipped: int = 0  # already finished by an earlier run
    videos_ok: int = 0
    videos_failed: int = 0
    scenes: int = 0
    kept: int = 0
    clips: int = 0
    hours_in: float = 0.0
    hours_out: float = 0.0
    wall_s: float = 0.0
    partial_videos_redone: int = 0
    versions: dict[str, int] = field(default_factory=dict)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (uri, error)

    @property
    def tag(self) -> str:
        return f"run-{self.run_id}"

    def to_dict(self) -> dict:
        return asdict(self)

    def format(self) -> str:
        lines = [
            f"run {self.run_id} -> {self.output}",
            f"  videos: {self.videos_ok} ok, {self.videos_failed} failed, {self.videos_skipped} skipped "
            f"(already done) of {self.videos_seen}",
            f"  scenes: {self.scenes}, kept: {self.kept}, clips written: {self.clips}",
            f"  hours in: {self.hours_in:.4f}, hours out: {self.hours_out:.4f}, wall: {self.wall_s:.1f} s",
        ]
        if self.partial_videos_redone:
            lines.append(f"  resumed: removed partial rows of {self.partial_videos_redone} interrupted videos")
        if self.versions:
            lines.append("  versions: " + ", ".join(f"{k}=v{v}" for k, v in self.versions.items())
                         + f" (tag {self.tag})")
        for uri, err in self.failures[:20]:
            lines.append(f"  failed: {uri}: {err}")
        if len(self.failures) > 20:
            lines.append(f"  ... and {len(self.failures) - 20} more failures (see videos.lance)")
        return "\n".join(lines)
