#!/bin/sh
# Install CPython $1 (from the deadsnakes PPA on Ubuntu bases that lack it), the tools the Backend.AI
# agent's entrypoint needs, and a virtual environment at /opt/venv that the image's labels point at.
set -eu
PY="$1"
[ -n "$PY" ] || { echo "usage: install-python.sh 3.Z" >&2; exit 2; }

need_apt=""
command -v "python$PY" >/dev/null 2>&1 || need_apt=1
for tool in bash getent useradd groupadd usermod chpasswd ssh; do
    command -v "$tool" >/dev/null 2>&1 || need_apt=1
done

if [ -n "$need_apt" ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # openssh-client: a cluster session's main1 starts the other containers' workers over SSH.
    apt-get install -y -qq --no-install-recommends bash passwd libc-bin ca-certificates openssh-client
    if ! command -v "python$PY" >/dev/null 2>&1; then
        apt-get install -y -qq --no-install-recommends software-properties-common gpg-agent
        add-apt-repository -y ppa:deadsnakes/ppa
        apt-get install -y -qq --no-install-recommends "python$PY" "python$PY-venv"
    fi
    rm -rf /var/lib/apt/lists/*
fi

"python$PY" -m venv /opt/venv
/opt/venv/bin/python -c "import sys; assert sys.version.startswith('$PY.'), sys.version"
