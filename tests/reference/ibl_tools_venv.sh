#!/usr/bin/env bash
# Make the virtual environment IBL's own tools run in (ibllib, brainbox, ONE), apart from iblvideo's:
# ibllib 4.1.0 pins its own stack and needs pandas < 3. The pins are those the committed fixtures were
# made with (tests/reference/ibllib/VERSIONS.txt, tests/reference/ibl_tools/VERSIONS.txt).
#
#   tests/reference/ibl_tools_venv.sh [DIR]     # DIR defaults to /tmp/ibl-tools-venv; python3.11 or PYTHON=...
#   DIR/bin/python tests/reference/make_ibl_tools_reference.py
#   DIR/bin/python tests/reference/make_ibllib_reference.py --iblvideo UPSTREAM_CHECKOUT
set -euo pipefail

DIR=${1:-/tmp/ibl-tools-venv}
PYTHON=${PYTHON:-python3.11}

if [ -e "$DIR" ] && [ ! -x "$DIR/bin/python" ]; then
    echo "$DIR exists and is not a virtual environment; give another folder" >&2
    exit 1
fi
"$PYTHON" -m venv "$DIR"
"$DIR/bin/python" -m pip install --upgrade pip
"$DIR/bin/python" -m pip install \
    ibllib==4.1.0 \
    ONE-api==3.6.1 \
    iblutil==1.20.0 \
    ibl-neuropixel==1.14.0 \
    "pandas==2.3.3" \
    numpy==2.4.6 \
    scipy==1.17.1 \
    pyarrow==26.0.1 \
    matplotlib==3.11.2 \
    opencv-python-headless==5.0.0.93 \
    av==18.1.0
"$DIR/bin/python" -c "import ibllib, one, brainbox, pandas; print('ibllib', ibllib.__version__, 'ONE', one.__version__, 'pandas', pandas.__version__)"
