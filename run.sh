#!/usr/bin/env bash
# The two commands of the README:
#   bash run.sh demo   set up .venv (first time only) and run the end-to-end demo
#   bash run.sh test   set up .venv (first time only), lint, build the docs strictly, and run the test suite
set -euo pipefail
cd "$(dirname "$0")"

setup() {
    local stamp=.venv/.mdfx-installed
    local want
    want=$(cat requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)
    if [[ -f $stamp && "$(cat "$stamp")" == "$want" ]]; then
        return
    fi
    echo "== setting up .venv (pinned requirements.txt) =="
    if [[ ! -x .venv/bin/python ]]; then
        python3 -m venv .venv
    fi
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -r requirements.txt
    .venv/bin/python -m pip install --quiet --no-deps -e .
    echo "$want" > "$stamp"
}

case "${1:-}" in
    demo)
        setup
        .venv/bin/python examples/demo.py
        ;;
    test)
        setup
        .venv/bin/ruff check mdfx tests examples bench
        # the manual: --strict turns a broken link or a page missing from the nav into a failure
        site=$(mktemp -d)
        .venv/bin/mkdocs build --strict --quiet --site-dir "$site"
        rm -rf "$site"
        shift
        .venv/bin/python -m pytest -q "$@"
        ;;
    *)
        echo "usage: bash run.sh demo | bash run.sh test [pytest args]" >&2
        exit 2
        ;;
esac
