#!/usr/bin/env bash
# create-secrets.sh - create or update the Secrets that manifests/ reference, idempotently
# (kubectl create secret generic ... --dry-run=client -o yaml | kubectl apply -f -).
# Nothing secret is ever committed: values come from the environment, files, the Secrets
# already in the cluster, or are generated.
#
# Usage: scripts/create-secrets.sh [--local] [--namespace NS] [--env-file FILE] [--print]
#   --local       for overlays/local: also create v2m-mysql and v2m-mongodb, and point the
#                 DSN/URI at the in-cluster MySQL and MongoDB (passwords generated)
#   --namespace   default v2m
#   --env-file    source FILE first (see manifests/secrets.example.env)
#   --print       print the Secrets as YAML instead of applying them (no cluster needed;
#                 existing values are not looked up)
#
# Variables (VAR_FILE reads the value from a file instead):
#   V2M_MYSQL_DSN        auth's MySQL DSN (RDS): user:pass@tcp(host:3306)/auth?parseTime=true
#   V2M_MONGO_URI        MongoDB URI (Atlas): mongodb+srv://user:pass@cluster.example.mongodb.net/
#   V2M_RABBITMQ_USER    RabbitMQ user (default v2m); V2M_RABBITMQ_PASSWORD generated if unset
#   V2M_AMQP_URL         default amqp://USER:PASSWORD@rabbitmq.NS.svc:5672/
#   V2M_SMTP_PASSWORD    notify's SMTP password
#   V2M_JWT_KEY_FILE     auth's Ed25519 private key (PEM); generated with `v2md keygen` when
#                        neither this nor the cluster has one (V2MD=path/to/v2md, else v2md
#                        in PATH, else go run ./cmd/v2md)
set -euo pipefail

NS=v2m
LOCAL=0
PRINT=0
while [ $# -gt 0 ]; do
	case "$1" in
	--local) LOCAL=1 ;;
	--print) PRINT=1 ;;
	--namespace | -n) NS="$2"; shift ;;
	--env-file) set -a; . "$2"; set +a; shift ;;
	-h | --help) sed -n '2,27p' "$0"; exit 0 ;;
	*) echo "create-secrets.sh: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done

KUBECTL=${KUBECTL:-kubectl}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

log() { echo "create-secrets: $*" >&2; }

# existing SECRET KEY: the value already in the cluster, or nothing.
existing() {
	[ "$PRINT" = 1 ] && return 0
	local v
	v=$("$KUBECTL" -n "$NS" get secret "$1" -o "jsonpath={.data.$2}" 2>/dev/null) || return 0
	[ -n "$v" ] && printf '%s' "$v" | base64 -d
	return 0
}

# value VAR SECRET KEY [DEFAULT]: $VAR, else the file $VAR_FILE, else the cluster's, else DEFAULT.
value() {
	local var=$1 file_var="${1}_FILE" v
	if [ -n "${!var:-}" ]; then
		printf '%s' "${!var}"
	elif [ -n "${!file_var:-}" ]; then
		cat "${!file_var}"
	else
		v=$(existing "$2" "$3")
		printf '%s' "${v:-${4:-}}"
	fi
}

password() { head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 24; }

require() {
	if [ -z "$2" ]; then
		log "$1 is not set (nor in the cluster): see manifests/secrets.example.env"
		exit 1
	fi
}

# secret NAME KEY=FILE...: write a Secret manifest from files (values never on a command line).
secret() {
	local name=$1 args=()
	shift
	for kv in "$@"; do args+=("--from-file=$kv"); done
	"$KUBECTL" create secret generic "$name" -n "$NS" "${args[@]}" --dry-run=client -o yaml
	echo "---"
}

put() { printf '%s' "$2" > "$WORK/$1"; }

# RabbitMQ.
RMQ_USER=$(value V2M_RABBITMQ_USER v2m-rabbitmq username v2m)
RMQ_PASS=$(value V2M_RABBITMQ_PASSWORD v2m-rabbitmq password "$(password)")
put rmq-user "$RMQ_USER"
put rmq-pass "$RMQ_PASS"

if [ "$LOCAL" = 1 ]; then
	MYSQL_USER=$(value V2M_LOCAL_MYSQL_USER v2m-mysql username v2m)
	MYSQL_PASS=$(value V2M_LOCAL_MYSQL_PASSWORD v2m-mysql password "$(password)")
	MYSQL_ROOT=$(value V2M_LOCAL_MYSQL_ROOT_PASSWORD v2m-mysql root-password "$(password)")
	MONGO_USER=$(value V2M_LOCAL_MONGO_USER v2m-mongodb username root)
	MONGO_PASS=$(value V2M_LOCAL_MONGO_PASSWORD v2m-mongodb password "$(password)")
	put mysql-user "$MYSQL_USER"; put mysql-pass "$MYSQL_PASS"; put mysql-root "$MYSQL_ROOT"
	put mongo-user "$MONGO_USER"; put mongo-pass "$MONGO_PASS"
	: "${V2M_MYSQL_DSN:=$MYSQL_USER:$MYSQL_PASS@tcp(mysql.$NS.svc:3306)/auth?parseTime=true}"
	: "${V2M_MONGO_URI:=mongodb://$MONGO_USER:$MONGO_PASS@mongodb.$NS.svc:27017/?authSource=admin}"
	: "${V2M_SMTP_PASSWORD:=unused-by-mailpit}"
fi

MYSQL_DSN=$(value V2M_MYSQL_DSN v2m-auth mysql-dsn)
MONGO_URI=$(value V2M_MONGO_URI v2m-backends mongo-uri)
AMQP_URL=$(value V2M_AMQP_URL v2m-backends amqp-url "amqp://$RMQ_USER:$RMQ_PASS@rabbitmq.$NS.svc:5672/")
SMTP_PASSWORD=$(value V2M_SMTP_PASSWORD v2m-notify smtp-password)
require V2M_MYSQL_DSN "$MYSQL_DSN"
require V2M_MONGO_URI "$MONGO_URI"
require V2M_SMTP_PASSWORD "$SMTP_PASSWORD"
put mysql-dsn "$MYSQL_DSN"
put mongo-uri "$MONGO_URI"
put amqp-url "$AMQP_URL"
put smtp-password "$SMTP_PASSWORD"

# The JWT signing key: given, already in the cluster, or generated.
if [ -n "${V2M_JWT_KEY_FILE:-}" ]; then
	cp "$V2M_JWT_KEY_FILE" "$WORK/jwt-key"
else
	existing v2m-auth jwt-key > "$WORK/jwt-key.cluster"
	if [ -s "$WORK/jwt-key.cluster" ]; then
		mv "$WORK/jwt-key.cluster" "$WORK/jwt-key"
	else
		log "generating a new Ed25519 JWT key with v2md keygen"
		if [ -n "${V2MD:-}" ]; then
			"$V2MD" keygen -o "$WORK/jwt-key"
		elif command -v v2md >/dev/null; then
			v2md keygen -o "$WORK/jwt-key"
		else
			(cd "$ROOT" && go run ./cmd/v2md keygen -o "$WORK/jwt-key")
		fi
	fi
fi
grep -q "PRIVATE KEY" "$WORK/jwt-key" || { log "the JWT key is not a PEM private key"; exit 1; }

{
	secret v2m-auth "mysql-dsn=$WORK/mysql-dsn" "jwt-key=$WORK/jwt-key"
	secret v2m-backends "mongo-uri=$WORK/mongo-uri" "amqp-url=$WORK/amqp-url"
	secret v2m-notify "smtp-password=$WORK/smtp-password"
	secret v2m-rabbitmq "username=$WORK/rmq-user" "password=$WORK/rmq-pass"
	if [ "$LOCAL" = 1 ]; then
		secret v2m-mysql "username=$WORK/mysql-user" "password=$WORK/mysql-pass" "root-password=$WORK/mysql-root"
		secret v2m-mongodb "username=$WORK/mongo-user" "password=$WORK/mongo-pass"
	fi
} > "$WORK/secrets.yaml"

if [ "$PRINT" = 1 ]; then
	cat "$WORK/secrets.yaml"
	exit 0
fi
"$KUBECTL" create namespace "$NS" --dry-run=client -o yaml | "$KUBECTL" apply -f - >&2
"$KUBECTL" apply -f "$WORK/secrets.yaml"
log "Secrets applied in namespace $NS"
