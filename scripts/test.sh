#!/usr/bin/env bash
# Set up .venv with the test extras (if needed) and run the test suite; extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip setuptools wheel
.venv/bin/python -m pip install -q -e '.[test]'
# The original SAM2 package is a test-only numerical oracle. Its metadata asks for torchvision and a
# CUDA torch, so it is installed without dependencies (what it imports comes with the test extras).
if ! .venv/bin/python -c "import sam2" 2>/dev/null; then
  SAM2_BUILD_CUDA=0 .venv/bin/python -m pip install -q --no-build-isolation --no-deps sam2==1.1.0
fi
if .venv/bin/python -m pip show torchvision >/dev/null 2>&1; then
  echo "torchvision is installed in .venv; with CPU torch it breaks transformers imports. Remove it." >&2
  exit 1
fi
# The UI browser test drives Debian's Chromium; install it when we can (root + apt), else that test skips.
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  (apt-get install -y -qq chromium >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium >/dev/null 2>&1; }) \
    || echo "could not install chromium; the UI browser test will be skipped" >&2
fi
exec .venv/bin/python -m pytest "$@"
