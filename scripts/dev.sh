#!/usr/bin/env bash
# dev.sh - run the distributed v2m on one machine: v2md auth, gateway, convert and notify as
# separate processes against the servers of scripts/services.sh (started here when they are
# not running). The gateway listens on 127.0.0.1:8080, like standalone, so v2m needs no flags.
# Ctrl-C stops the four processes (the servers keep running: scripts/services.sh down).
# Each service serves its Prometheus metrics on loopback at its API port + 1000 (gateway
# 127.0.0.1:9080/metrics, auth :9081, convert-1 :9083, notify :9090).
#
# Environment: V2M_SERVICES_DIR (default .cache/services), V2MD=path to v2md (default bin/v2md),
# GATEWAY_ADDR (default 127.0.0.1:8080), GATEWAY_METRICS_ADDR (default 127.0.0.1:9080),
# CONVERTERS (default 1).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
svc_dir=${V2M_SERVICES_DIR:-$root/.cache/services}
v2md=${V2MD:-$root/bin/v2md}
gateway=${GATEWAY_ADDR:-127.0.0.1:8080}
dev_dir=$root/.cache/dev
mkdir -p "$dev_dir"

[ -x "$v2md" ] || { echo "dev.sh: $v2md not found: run make build" >&2; exit 1; }
scripts/services.sh status "$svc_dir" >/dev/null 2>&1 || scripts/services.sh up "$svc_dir"
# shellcheck disable=SC1091
source "$svc_dir/env.sh"
[ -f "$dev_dir/jwt.pem" ] || "$v2md" keygen -o "$dev_dir/jwt.pem"

export V2MD_MONGO_URI=$V2M_TEST_MONGO_URI V2MD_AMQP_URL=$V2M_TEST_AMQP_URL V2MD_MONGO_DB=v2m_dev
pids=()
stop() {
	trap - INT TERM EXIT
	[ ${#pids[@]} -eq 0 ] || kill -TERM "${pids[@]}" 2>/dev/null || true
	wait
}
trap stop INT TERM EXIT
run() { # run NAME ARGS...: start one service, its log prefixed with its name
	local name=$1
	shift
	"$v2md" "$@" > >(sed -u "s/^/[$name] /") 2>&1 &
	pids+=($!)
}
run auth auth --listen 127.0.0.1:8081 --metrics-addr 127.0.0.1:9081 --mysql-dsn "$V2M_TEST_MYSQL_DSN" --jwt-key-file "$dev_dir/jwt.pem"
run gateway gateway --listen "$gateway" --metrics-addr "${GATEWAY_METRICS_ADDR:-127.0.0.1:9080}" --auth-url http://127.0.0.1:8081
for i in $(seq 1 "${CONVERTERS:-1}"); do
	run "convert-$i" convert --listen "127.0.0.1:$((8081 + i + 1))" --metrics-addr "127.0.0.1:$((9081 + i + 1))" --tmp-dir "$dev_dir"
done
run notify notify --listen 127.0.0.1:8090 --metrics-addr 127.0.0.1:9090 --smtp-addr "$V2M_TEST_SMTP_ADDR" --public-url "http://$gateway"
echo "v2m (distributed) on http://$gateway; mail at $V2M_TEST_MAILPIT_API; Ctrl-C to stop" >&2
wait
