#!/usr/bin/env bash
# Makes sure PostgreSQL, MariaDB and Redis answer on 127.0.0.1 (installing them
# with apt-get on a machine that lacks them), as the store tests need.
set -uo pipefail

need_root() { [ "$(id -u)" = 0 ] || { echo "services.sh: run as root to install or start $1" >&2; exit 1; }; }
apt_ready=""
install() {
  need_root "$1"
  if [ -z "$apt_ready" ]; then apt-get update -qq >/dev/null && apt_ready=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
wait_for() { # name, command...
  local name=$1; shift
  for _ in $(seq 1 60); do "$@" >/dev/null 2>&1 && { echo "services: $name answers"; return 0; }; sleep 1; done
  echo "services: $name does not answer" >&2; return 1
}

pg_up() { pg_isready -h 127.0.0.1 -p 5432 -q; }
if ! pg_up; then
  command -v pg_ctlcluster >/dev/null || install postgresql
  # Trust auth on localhost for the postgres user, as the tests expect.
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n1)" main start || true
fi
wait_for postgresql pg_up || exit 1

my_up() { mysqladmin --protocol=tcp -h 127.0.0.1 -P 3306 -u root ping; }
if ! my_up >/dev/null 2>&1; then
  command -v mariadbd >/dev/null || install mariadb-server mariadb-client
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql || true
fi
wait_for mariadb my_up || exit 1

redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping | grep -q PONG; }
if ! redis_up; then
  command -v redis-server >/dev/null || install redis-server
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
fi
wait_for redis redis_up || exit 1

# nginx is started by the tests themselves (deploy/nginx/nginx.conf in front of
# the gateways); it only has to be installed.
if ! [ -x /usr/sbin/nginx ]; then
  install nginx
  # Debian's package starts a server on port 80; the tests run their own.
  /usr/sbin/nginx -s stop >/dev/null 2>&1 || true
fi
echo "services: nginx installed"
