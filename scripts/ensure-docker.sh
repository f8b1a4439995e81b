#!/usr/bin/env bash
# Makes sure a Docker engine, a Compose (v2 plugin or Debian's v1) and debootstrap are
# there. Installs Debian's packages and starts dockerd when they are missing (needs root);
# does nothing on a machine that already has them. Idempotent.
set -euo pipefail

log() { echo "[setup] $*"; }

need_apt=()
command -v dockerd >/dev/null 2>&1 || command -v docker >/dev/null 2>&1 || need_apt+=(docker.io)
if ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null 2>&1; then
  need_apt+=(docker-compose)
fi
command -v debootstrap >/dev/null 2>&1 || need_apt+=(debootstrap)
if ! docker info >/dev/null 2>&1 && ! command -v dockerd >/dev/null 2>&1; then
  need_apt+=(docker.io)
fi

if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "missing: ${need_apt[*]}; install them (apt-get install ${need_apt[*]}) or run as root" >&2
    exit 1
  fi
  log "installing ${need_apt[*]} from Debian"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need_apt[@]}" >/dev/null
fi

if docker info >/dev/null 2>&1; then
  exit 0
fi

if [ "$(id -u)" != 0 ]; then
  echo "the Docker engine is not running and only root can start it here" >&2
  exit 1
fi

start_dockerd() {
  local driver=$1
  log "starting dockerd (storage driver $driver)"
  nohup dockerd --storage-driver="$driver" >/var/log/dockerd-conformance.log 2>&1 &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && return 0
    kill -0 $! 2>/dev/null || return 1
    sleep 1
  done
  kill $! 2>/dev/null || true
  return 1
}

start_dockerd overlay2 || start_dockerd vfs || {
  echo "dockerd did not start; last lines of its log:" >&2
  tail -n 20 /var/log/dockerd-conformance.log >&2
  exit 1
}
log "dockerd running: $(docker info --format '{{.ServerVersion}} {{.Driver}}')"
