#!/usr/bin/env bash
# Makes sure the services the test suite uses are running: PostgreSQL, Redis and RabbitMQ on
# 127.0.0.1.
# Where one cannot be started, its tests skip with a reason, except under CI=true, where the
# suite fails instead (see tests/conftest.py).
set -u

up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if ! up 5432 && command -v pg_ctlcluster >/dev/null 2>&1; then
  echo "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
fi
if ! up 6379 && command -v redis-server >/dev/null 2>&1; then
  echo "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
fi
if ! up 5672 && command -v rabbitmq-server >/dev/null 2>&1; then
  echo "starting RabbitMQ"
  RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 rabbitmq-server -detached >/dev/null 2>&1 || true
fi
for _ in $(seq 1 60); do
  up 5432 && up 6379 && up 5672 && break
  sleep 1
done
up 5432 && echo "PostgreSQL: up" || echo "PostgreSQL: not running (its tests will skip unless CI=true)"
up 6379 && echo "Redis: up" || echo "Redis: not running (its tests will skip unless CI=true)"
up 5672 && echo "RabbitMQ: up" || echo "RabbitMQ: not running (its tests will skip unless CI=true)"
exit 0
