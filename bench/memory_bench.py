"""Peak memory of every Ray worker of the job against the length of the input (issue 12).

Inputs: 720p 30 fps `testsrc2` videos of each length given, under --workdir: one minute generated with PyAV's lavfi
source (libx264 ultrafast), longer ones made from it by stream copy (no re-encode), minute after minute with
continuing timestamps (generating them frame by frame took 9 minutes for 8 minutes of video here). Each is curated
alone with the tiny profile, captions off and `policy.score_only` (every scene is kept, so every scene is encoded:
the heaviest path). A sampler polls the resident memory of every Ray worker process (`ray::...`) every 0.2 s; the
figure per input is the busiest worker's peak, with the stage it ran. The peer is the shortest input, run the same
way in the same script: the target is the longest within 20% of it.

    .venv/bin/python bench/memory_bench.py [--minutes 1 4 16 32] [--workdir bench/out/memory]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def make_input(work: Path, minutes: float) -> Path:
    """The `minutes`-long input: the 1-minute `testsrc2` itself, or whole copies of it (see module docstring)."""
    one = make_testsrc2(work / "testsrc2-720p-1min.mp4", 60)
    if minutes <= 1:
        return one if minutes == 1 else make_testsrc2(work / f"testsrc2-720p-{minutes:g}min.mp4", minutes * 60)
    return repeat_video(one, work / f"testsrc2-720p-{minutes:g}min-x.mp4", int(round(minutes)))


def repeat_video(src: Path, path: Path, times: int) -> Path:
    """`src`'s video stream `times` over, remuxed with continuing timestamps (no re-encode)."""
    import av

    if path.exists():
        return path
    tmp = path.with_suffix(".part.mp4")
    with av.open(str(src)) as first:
        stream = first.streams.video[0]
        span = stream.duration or int(stream.frames / stream.average_rate / stream.time_base)
    with av.open(str(tmp), "w") as out:
        for k in range(times):
            with av.open(str(src)) as inp:
                ins = inp.streams.video[0]
                if k == 0:
                    ost = out.add_stream_from_template(ins)
                for packet in inp.demux(ins):
                    if packet.dts is None:  # the demuxer's flush packet
                        continue
                    packet.pts += k * span
                    packet.dts += k * span
                    packet.stream = ost
                    out.mux(packet)
    tmp.rename(path)
    return path


def make_testsrc2(path: Path, seconds: float, *, size=(1280, 720), fps: int = 30) -> Path:
    """A `testsrc2` video of `seconds` at `size`, H.264 (ultrafast): made once, kept for later runs."""
    import av

    if path.exists():
        return path
    tmp = path.with_suffix(".part.mp4")
    graph = av.filter.Graph()
    src = graph.add("testsrc2", f"size={size[0]}x{size[1]}:rate={fps}:duration={seconds}")
    sink = graph.add("buffersink")
    src.link_to(sink)
    graph.configure()
    with av.open(str(tmp), "w") as out:
        enc = out.add_stream("libx264", rate=Fraction(fps))
        enc.width, enc.height, enc.pix_fmt = size[0], size[1], "yuv420p"
        enc.options = {"preset": "ultrafast", "crf": "23"}
        while True:
            try:
                frame = sink.pull()
            except (av.error.EOFError, BlockingIOError):
                break
            for packet in enc.encode(frame.reformat(format="yuv420p")):
                out.mux(packet)
        for packet in enc.encode():
            out.mux(packet)
    tmp.rename(path)
    return path


class WorkerMemory:
    """Polls the RSS of every Ray worker process on this machine; `peaks` is pid -> (max RSS bytes, title)."""

    def __init__(self, interval_s: float = 0.2):
        self.interval_s, self.peaks = interval_s, {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> WorkerMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            for p in psutil.process_iter(["pid", "cmdline", "memory_info"]):
                title = " ".join(p.info["cmdline"] or [])
                if not title.startswith("ray::") or p.info["memory_info"] is None:
                    continue
                rss = p.info["memory_info"].rss
                best = self.peaks.get(p.info["pid"], (0, ""))
                # A worker's title names the task it runs now: keep the one it had at its peak.
                self.peaks[p.info["pid"]] = (rss, title) if rss > best[0] else best
            self._stop.wait(self.interval_s)

    def busiest(self) -> tuple[float, str]:
        rss, title = max(self.peaks.values(), default=(0, ""))
        return rss / 2**20, stage_of(title)

    def by_stage(self) -> dict[str, float]:
        """MiB: the highest peak among the workers whose peak came while running each kind of task."""
        out: dict[str, float] = {}
        for rss, title in self.peaks.values():
            kind = stage_of(title)
            out[kind] = max(out.get(kind, 0.0), rss / 2**20)
        return out


def stage_of(title: str) -> str:
    """A short name for what a `ray::...` worker ran: its first and last stage (an actor: its stage)."""
    import re

    task = title.split(" ")[0][5:]
    names = re.findall(r"MapBatches\((\w+)\)", task)
    return "->".join(dict.fromkeys([names[0], names[-1]])) if names else task[:40]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, nargs="+", default=[1, 4, 16, 32])
    ap.add_argument("--workdir", default=str(REPO / "bench" / "out" / "memory"))
    args = ap.parse_args()
    import ray

    import curate
    from curate.config import Config

    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    cfg = Config()
    cfg.profile = "tiny"
    cfg.caption.enabled = False
    cfg.policy.score_only = True
    results, stages = [], []
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    for minutes in args.minutes:
        t = time.perf_counter()
        video = make_input(work, minutes)
        made = time.perf_counter() - t
        out = work / f"ds-{minutes:g}"
        shutil.rmtree(out, ignore_errors=True)
        t = time.perf_counter()
        with WorkerMemory() as mem:
            summary = curate.run([str(video)], str(out), config=cfg, progress=False)
        peak, stage = mem.busiest()
        results.append((minutes, peak, stage, summary.clips, time.perf_counter() - t))
        stages.append(mem.by_stage())
        print(f"{minutes:g} min: made in {made:.0f} s, curated in {results[-1][4]:.0f} s, {summary.clips} "
              f"clips, busiest worker {peak:.0f} MiB ({stage})", flush=True)
    ray.shutdown()
    base = results[0][1]
    print(f"\n{'input':>8s} {'clips':>6s} {'busiest worker MiB':>19s} {'x shortest':>11s}  stage at its peak")
    for minutes, peak, stage, clips, _ in results:
        print(f"{minutes:6g} m {clips:6d} {peak:19.0f} {peak / base:11.2f}  {stage}")
    kinds = sorted({k for s in stages for k in s})
    print("\nper kind of worker, MiB (the highest peak among the workers that peaked running it):")
    print(f"{'input':>8s} " + " ".join(f"{k[:30]:>30s}" for k in kinds))
    for (minutes, *_), per in zip(results, stages):
        print(f"{minutes:6g} m " + " ".join(f"{per.get(k, float('nan')):30.0f}" for k in kinds))


if __name__ == "__main__":
    main()
