#!/usr/bin/env bash
# Make sure PostgreSQL (127.0.0.1:5432) and Redis (127.0.0.1:6379) answer, for
# `make test`. Starts them when installed but stopped; explains when absent.
set -euo pipefail

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  for _ in $(seq 1 50); do port_open "$1" && return 0; sleep 0.2; done
  return 1
}

if port_open 5432; then
  echo "PostgreSQL: up on 127.0.0.1:5432"
elif command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
  version="$(ls /etc/postgresql | sort -V | tail -n 1)"
  echo "PostgreSQL: starting cluster ${version}/main"
  pg_ctlcluster --skip-systemctl-redirect "${version}" main start
  wait_port 5432 || { echo "PostgreSQL did not come up on 5432" >&2; exit 1; }
else
  echo "PostgreSQL is not installed and nothing listens on 127.0.0.1:5432." >&2
  echo "Install it (Debian: apt-get install postgresql) or point DATABASE_URL at a server." >&2
  exit 1
fi

if port_open 6379; then
  echo "Redis: up on 127.0.0.1:6379"
elif command -v redis-server >/dev/null 2>&1; then
  echo "Redis: starting"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" \
    --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_port 6379 || { echo "Redis did not come up on 6379" >&2; exit 1; }
else
  echo "Redis is not installed and nothing listens on 127.0.0.1:6379." >&2
  echo "Install it (Debian: apt-get install redis-server) or set CELERY_BROKER_URL." >&2
  exit 1
fi
