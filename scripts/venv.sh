# Sourced by serve.sh / test.sh: create .venv, install a requirements file and the project itself (editable,
# so `beal …` works as typed in .venv/bin) once; re-run when a requirements file or pyproject.toml changes.
# torch==2.13.0 is pinned so pip takes the CPU build, not several GB of CUDA wheels.
req=$1
python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
stamp=".venv/.installed-$(basename "$req")-$(cat requirements*.txt pyproject.toml beal_backend/__init__.py | sha256sum | cut -c1-12)"  # __init__: the version
if [ ! -f "$stamp" ]; then
  echo "installing $req and beal-backend (editable) into .venv (first run only)..." >&2
  .venv/bin/python -m pip install -q --upgrade pip >&2
  .venv/bin/python -m pip install -q -r "$req" >&2
  .venv/bin/python -m pip install -q --no-deps -e . >&2
  touch "$stamp"
fi
