#!/usr/bin/env bash
# create-secrets.sh - create or update the Secrets that manifests/ reference, idempotently
# (kubectl create secret generic ... --dry-run=client -o yaml | kubectl apply -f -).
# Nothing secret is ever committed: values come from the environment, files, the Secrets
# already in the cluster, or are generated.
#
# Usage: scripts/create-secrets.sh [--local] [--namespace NS] [--env-file FILE] [--print]
#                                  [--rotate-jwt [--force]]
#   --local       for overlays/local: also create v2m-mysql and v2m-mongodb, and point the
#                 DSN/URI at the in-cluster MySQL and MongoDB (passwords generated)
#   --namespace   default v2m
#   --env-file    source FILE first (see manifests/secrets.example.env)
#   --print       print the Secrets as YAML instead of applying them (no cluster needed;
#                 existing values are not looked up)
#   --rotate-jwt  replace auth's JWT signing key with a new one (V2M_JWT_KEY_FILE, else
#                 generated) and keep the old key's public half as jwt-previous-key, which
#                 auth verifies with (V2MD_JWT_VERIFY_KEY_FILES): tokens signed before the
#                 rotation stay valid until they expire. auth reads the mounted files again
#                 by itself (--jwt-reload-interval): no restart. The time of the rotation is
#                 the Secret's annotation v2m.io/jwt-rotated-at; a second rotation within the
#                 token TTL (V2M_TOKEN_TTL, else the cluster's ConfigMap v2m-auth
#                 V2MD_TOKEN_TTL, else 24h) would drop a key that live tokens still need, and
#                 is refused unless --force.
#
# Variables (VAR_FILE reads the value from a file instead):
#   V2M_MYSQL_DSN        auth's MySQL DSN (RDS): user:pass@tcp(host:3306)/auth?parseTime=true
#   V2M_MONGO_URI        MongoDB URI (Atlas): mongodb+srv://user:pass@cluster.example.mongodb.net/
#   V2M_RABBITMQ_USER    RabbitMQ user (default v2m); V2M_RABBITMQ_PASSWORD generated if unset
#   V2M_AMQP_URL         default amqp://USER:PASSWORD@rabbitmq.NS.svc:5672/
#   V2M_RABBITMQ_MANAGEMENT_URL  KEDA's URL of the management API (ready + unacked counts),
#                        default http://USER:PASSWORD@rabbitmq.NS.svc:15672/
#   V2M_SMTP_PASSWORD    notify's SMTP password
#   V2M_JWT_KEY_FILE     auth's Ed25519 private key (PEM); generated with `v2md keygen` when
#                        neither this nor the cluster has one (V2MD=path/to/v2md, else v2md
#                        in PATH, else go run ./cmd/v2md)
set -euo pipefail

NS=v2m
LOCAL=0
PRINT=0
ROTATE=0
FORCE=0
while [ $# -gt 0 ]; do
	case "$1" in
	--local) LOCAL=1 ;;
	--print) PRINT=1 ;;
	--namespace | -n) NS="$2"; shift ;;
	--env-file) set -a; . "$2"; set +a; shift ;;
	--rotate-jwt) ROTATE=1 ;;
	--force) FORCE=1 ;;
	-h | --help) sed -n '2,37p' "$0"; exit 0 ;;
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
# The RabbitmqCluster's default user (spec.secretBackend.externalSecret): the operator reads
# default_user.conf; KEDA reads management-url.
MGMT_URL=$(value V2M_RABBITMQ_MANAGEMENT_URL v2m-rabbitmq management-url "http://$RMQ_USER:$RMQ_PASS@rabbitmq.$NS.svc:15672/")
put management-url "$MGMT_URL"
printf 'default_user = %s\ndefault_pass = %s\n' "$RMQ_USER" "$RMQ_PASS" > "$WORK/default_user.conf"
put rmq-host "rabbitmq.$NS.svc"
put rmq-port 5672
put rmq-provider rabbitmq
put rmq-type rabbitmq
put smtp-password "$SMTP_PASSWORD"

keygen() {
	log "generating a new Ed25519 JWT key with v2md keygen"
	if [ -n "${V2MD:-}" ]; then
		"$V2MD" keygen -o "$1"
	elif command -v v2md >/dev/null; then
		v2md keygen -o "$1"
	else
		(cd "$ROOT" && go run ./cmd/v2md keygen -o "$1")
	fi
}

# pubkey PRIVATE PUBLIC: the public half of an Ed25519 PEM private key.
pubkey() {
	openssl pkey -in "$1" -pubout -out "$2" 2>/dev/null || { log "openssl cannot read the JWT key $1"; exit 1; }
}

# seconds DURATION: a Go duration made of h, m and s (24h, 1h30m, 90s) in seconds.
seconds() {
	local d=$1 total=0 n
	[[ "$d" =~ ^([0-9]+[hms])+$ ]] || { log "token TTL \"$d\" is not a duration like 24h or 1h30m"; exit 1; }
	while [[ "$d" =~ ^([0-9]+)([hms])(.*)$ ]]; do
		n=${BASH_REMATCH[1]}
		case ${BASH_REMATCH[2]} in h) n=$((n * 3600)) ;; m) n=$((n * 60)) ;; esac
		total=$((total + n))
		d=${BASH_REMATCH[3]}
	done
	echo "$total"
}

# The JWT signing key: given, already in the cluster, or generated; with --rotate-jwt a new
# one, the cluster's becoming jwt-previous-key. jwt-previous-key always exists (auth mounts
# it): before any rotation it is the current key's public half.
existing v2m-auth jwt-key > "$WORK/jwt-key.cluster"
existing v2m-auth jwt-previous-key > "$WORK/jwt-previous-key.cluster"
ROTATED_AT=""
[ "$PRINT" = 1 ] || ROTATED_AT=$("$KUBECTL" -n "$NS" get secret v2m-auth -o 'jsonpath={.metadata.annotations.v2m\.io/jwt-rotated-at}' 2>/dev/null || true)
if [ "$ROTATE" = 1 ]; then
	[ -s "$WORK/jwt-key.cluster" ] || { log "--rotate-jwt: the cluster has no JWT key to rotate (Secret $NS/v2m-auth)"; exit 1; }
	if [ -n "$ROTATED_AT" ]; then
		TTL=${V2M_TOKEN_TTL:-}
		[ -n "$TTL" ] || TTL=$("$KUBECTL" -n "$NS" get configmap v2m-auth -o 'jsonpath={.data.V2MD_TOKEN_TTL}' 2>/dev/null || true)
		TTL=${TTL:-24h}
		# Tokens of the previous key live until ROTATED_AT + TTL (plus the verifiers' leeway).
		until=$((ROTATED_AT + $(seconds "$TTL") + 60))
		if [ "$(date +%s)" -lt "$until" ] && [ "$FORCE" != 1 ]; then
			log "--rotate-jwt: the last rotation was at $(date -u -d "@$ROTATED_AT" +%FT%TZ); tokens signed with the key before it stay valid until $(date -u -d "@$until" +%FT%TZ) (token TTL $TTL). Rotating again now would refuse them: wait until then, or pass --force"
			exit 1
		fi
	fi
	pubkey "$WORK/jwt-key.cluster" "$WORK/jwt-previous-key"
	if [ -n "${V2M_JWT_KEY_FILE:-}" ]; then
		cp "$V2M_JWT_KEY_FILE" "$WORK/jwt-key"
	else
		keygen "$WORK/jwt-key"
	fi
	ROTATED_AT=$(date +%s)
	log "JWT key rotated: the old key stays a verification key (jwt-previous-key)"
else
	if [ -n "${V2M_JWT_KEY_FILE:-}" ]; then
		cp "$V2M_JWT_KEY_FILE" "$WORK/jwt-key"
	elif [ -s "$WORK/jwt-key.cluster" ]; then
		cp "$WORK/jwt-key.cluster" "$WORK/jwt-key"
	else
		keygen "$WORK/jwt-key"
	fi
	if [ -s "$WORK/jwt-previous-key.cluster" ]; then
		cp "$WORK/jwt-previous-key.cluster" "$WORK/jwt-previous-key"
	else
		pubkey "$WORK/jwt-key" "$WORK/jwt-previous-key"
	fi
fi
grep -q "PRIVATE KEY" "$WORK/jwt-key" || { log "the JWT key is not a PEM private key"; exit 1; }
cmp -s "$WORK/jwt-key" "$WORK/jwt-key.cluster" && [ "$ROTATE" = 1 ] && { log "--rotate-jwt: the new key is the old one"; exit 1; }

{
	secret v2m-auth "mysql-dsn=$WORK/mysql-dsn" "jwt-key=$WORK/jwt-key" "jwt-previous-key=$WORK/jwt-previous-key" |
		if [ -n "$ROTATED_AT" ]; then
			"$KUBECTL" annotate --local -f - -o yaml "v2m.io/jwt-rotated-at=$ROTATED_AT"
			echo "---"
		else
			cat
		fi
	secret v2m-backends "mongo-uri=$WORK/mongo-uri" "amqp-url=$WORK/amqp-url"
	secret v2m-notify "smtp-password=$WORK/smtp-password"
	secret v2m-rabbitmq "username=$WORK/rmq-user" "password=$WORK/rmq-pass" "default_user.conf=$WORK/default_user.conf" \
		"management-url=$WORK/management-url" "host=$WORK/rmq-host" "port=$WORK/rmq-port" \
		"provider=$WORK/rmq-provider" "type=$WORK/rmq-type"
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
