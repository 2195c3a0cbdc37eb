"""Peak memory of every Ray worker of the job against the length of the input (issue 12).

Inputs: 720p 30 fps `testsrc2` videos of each length given (generated once with PyAV's lavfi source, libx264
ultrafast, under --workdir). Each is curated alone with the tiny profile, captions off and `policy.score_only`
(every scene is kept, so every scene is encoded: the heaviest path). A sampler polls the resident memory of every
Ray worker process (`ray::...`) every 0.2 s; the figure per input is the busiest worker's peak, with the stage
it ran. The peer is the shortest input, run the same way in the same script: the target is the longest within
20% of it.

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
        return rss / 2**20, title.split(" ")[0][5:][:60]


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
    results = []
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    for minutes in args.minutes:
        t = time.perf_counter()
        video = make_testsrc2(work / f"testsrc2-720p-{minutes:g}min.mp4", minutes * 60)
        made = time.perf_counter() - t
        out = work / f"ds-{minutes:g}"
        shutil.rmtree(out, ignore_errors=True)
        t = time.perf_counter()
        with WorkerMemory() as mem:
            summary = curate.run([str(video)], str(out), config=cfg, progress=False)
        peak, stage = mem.busiest()
        results.append((minutes, peak, stage, summary.clips, time.perf_counter() - t))
        print(f"{minutes:g} min: made in {made:.0f} s, curated in {results[-1][4]:.0f} s, {summary.clips} "
              f"clips, busiest worker {peak:.0f} MiB ({stage})", flush=True)
    ray.shutdown()
    base = results[0][1]
    print(f"\n{'input':>8s} {'clips':>6s} {'busiest worker MiB':>19s} {'x shortest':>11s}  stage at its peak")
    for minutes, peak, stage, clips, _ in results:
        print(f"{minutes:6g} m {clips:6d} {peak:19.0f} {peak / base:11.2f}  {stage}")


if __name__ == "__main__":
    main()
