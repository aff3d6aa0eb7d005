#!/bin/sh
# Installs the peer tools the OCI benchmark sections compare against (Debian/Ubuntu), and
# gnuplot for the plot: skopeo, umoci, containerd (its `ctr` client included), docker-registry
# (CNCF distribution 2.8, which the `registry` section starts on 127.0.0.1) and gnuplot-nox.
# The bench starts its own containerd daemon on a private socket and root directory under the
# bench data directory; it needs root for that (as containerd does), nothing else here is
# configured or started. Not for CI: the benches are run by hand (docs/BENCHMARKS.md).
set -eu

packages=""
command -v skopeo >/dev/null 2>&1 || packages="$packages skopeo"
command -v umoci >/dev/null 2>&1 || packages="$packages umoci"
command -v containerd >/dev/null 2>&1 && command -v ctr >/dev/null 2>&1 || packages="$packages containerd"
command -v docker-registry >/dev/null 2>&1 || packages="$packages docker-registry"
command -v gnuplot >/dev/null 2>&1 || packages="$packages gnuplot-nox"

if [ -z "$packages" ]; then
    echo "bench-setup: skopeo, umoci, containerd, docker-registry and gnuplot are installed"
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    as_root=""
elif command -v sudo >/dev/null 2>&1; then
    as_root="sudo"
else
    echo "bench-setup: need root (or sudo) to install:$packages" >&2
    exit 1
fi

echo "bench-setup: installing$packages"
$as_root apt-get update -qq
# shellcheck disable=SC2086 # the package list is split on purpose
DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq $packages
