# Sourced by the other scripts: `. scripts/venv.sh [EXTRAS]`, e.g. `. scripts/venv.sh test,serving`.
#
# Uses the active virtualenv if there is one, else creates (once) and uses `.venv` in the project
# root, installs the project into it in editable mode with EXTRAS, and leaves `python` on PATH
# pointing at that environment. The install is skipped when this environment already holds it with
# these extras, setup.py is unchanged and every declared dependency is still installed.
# Works where the only Python is an externally-managed system one (PEP 668, Debian/Ubuntu).
# Returns 1 with one `error:` line when it cannot.

_srgan_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_srgan_extras="${1:-}"

# True when "$1" runs Python 3.9 or newer.
_srgan_python_ok() {
  "$1" -c 'import sys; sys.exit(sys.version_info < (3, 9))' >/dev/null 2>&1
}

if [ -n "${VIRTUAL_ENV:-}" ]; then
  _srgan_venv="$VIRTUAL_ENV"
  if ! _srgan_python_ok "$_srgan_venv/bin/python"; then
    echo "error: the active virtualenv $_srgan_venv has no Python 3.9 or newer: deactivate it or recreate it" >&2
    return 1
  fi
else
  _srgan_venv="$_srgan_root/.venv"
  if ! "$_srgan_venv/bin/python" -m pip --version >/dev/null 2>&1; then
    _srgan_python=""
    for _srgan_candidate in python3 python; do
      if command -v "$_srgan_candidate" >/dev/null 2>&1 && _srgan_python_ok "$_srgan_candidate"; then
        _srgan_python="$_srgan_candidate"
        break
      fi
    done
    if [ -z "$_srgan_python" ]; then
      echo "error: no python3 (3.9 or newer) on PATH; on Debian/Ubuntu: sudo apt install python3 python3-venv" >&2
      return 1
    fi
    # Debian/Ubuntu ship `venv` without ensurepip unless python3-venv is installed.
    if ! "$_srgan_python" -c 'import ensurepip, venv' >/dev/null 2>&1; then
      echo "error: $(command -v "$_srgan_python") cannot create a virtualenv (no ensurepip); on Debian/Ubuntu: sudo apt install python3-venv" >&2
      return 1
    fi
    rm -rf "$_srgan_venv"  # a half-made .venv from an interrupted run
    echo "creating the virtualenv $_srgan_venv with $(command -v "$_srgan_python")"
    if ! "$_srgan_python" -m venv "$_srgan_venv"; then
      echo "error: $_srgan_python -m venv $_srgan_venv failed (message above)" >&2
      return 1
    fi
  fi
fi
export VIRTUAL_ENV="$_srgan_venv"
export PATH="$_srgan_venv/bin:$PATH"
hash -r

# What the install depends on: the interpreter, the project path, setup.py and the extras.
_srgan_stamp_file="$_srgan_venv/srgan_tf-install.stamp"
_srgan_stamp="$(python -I - "$_srgan_root" "$_srgan_extras" <<'PY'
import hashlib, sys
root, extras = sys.argv[1], sys.argv[2]
with open(f"{root}/setup.py", "rb") as f:
    setup_hash = hashlib.sha256(f.read()).hexdigest()[:16]
print(sys.executable, sys.version.split()[0], root, setup_hash, ",".join(sorted(filter(None, extras.split(",")))))
PY
)"

# True when srgan_tf is installed editable from this root and every requirement of it and of the
# requested extras is present (distribution names only; versions are covered by the setup.py hash).
_srgan_installed() {
  grep -qxF "$_srgan_stamp" "$_srgan_stamp_file" 2>/dev/null || return 1
  python -I - "$_srgan_root" "$_srgan_extras" <<'PY'
import importlib.metadata as md, importlib.util, os, re, sys
root, extras = sys.argv[1], set(filter(None, sys.argv[2].split(",")))
spec = importlib.util.find_spec("srgan_tf")
if spec is None or os.path.dirname(os.path.dirname(spec.origin)) != root:
    sys.exit(1)
for requirement in md.requires("srgan_tf") or []:
    name = re.match(r"[A-Za-z0-9._-]+", requirement).group(0)
    extra = re.search(r"""extra\s*==\s*["']([^"']+)["']""", requirement)
    if extra and extra.group(1) not in extras:
        continue
    try:
        md.version(name)
    except md.PackageNotFoundError:
        sys.exit(1)
PY
}

if ! _srgan_installed; then
  _srgan_target="$_srgan_root"
  [ -n "$_srgan_extras" ] && _srgan_target="$_srgan_root[$_srgan_extras]"
  echo "installing srgan_tf${_srgan_extras:+[$_srgan_extras]} into $_srgan_venv (the first time downloads TensorFlow, ~600 MB)"
  if ! python -m pip install --quiet -e "$_srgan_target"; then
    echo "error: pip install -e '$_srgan_target' into $_srgan_venv failed (message above)" >&2
    return 1
  fi
  echo "$_srgan_stamp" >>"$_srgan_stamp_file"
fi
unset _srgan_extras _srgan_python _srgan_candidate _srgan_stamp _srgan_stamp_file _srgan_target
