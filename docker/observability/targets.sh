#!/usr/bin/env bash
# Writes the Prometheus file_sd targets of a running Jupiter deployment,
# from `jupiterctl status --json` (each role's `metrics` URL), so that the
# `jupiter-files` job of prometheus.yml scrapes it. This is how a LOCAL
# deployment (roles on this machine's loopback) is scraped; a Docker one is
# found without it (docker_sd_configs), and a Kubernetes one by its pod
# annotations. Every target gets the labels role, node, task (where the
# role has them) and deployment, like the Docker job's.
#
# Usage: docker/observability/targets.sh [--from FILE|-] [--out FILE|-]
#   --from  read the status JSON from FILE ('-': stdin) instead of running
#           `${JUPITERCTL:-jupiterctl} status --json` (JUPITER_STATE picks
#           the deployment, as for jupiterctl itself)
#   --out   where to write ('-': stdout); default
#           docker/observability/targets/<deployment>.json, which
#           compose.yaml mounts where Prometheus watches
# Needs jq. Run it again after a recovery moved roles; delete the file
# after `jupiterctl down` (or its targets stay, as down).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
FROM=""
OUT=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --from) FROM="${2:?--from needs a file or -}"; shift 2 ;;
    --out) OUT="${2:?--out needs a file or -}"; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "targets.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
command -v jq >/dev/null || { echo "targets.sh: needs jq (on Debian: apt-get install jq)" >&2; exit 1; }

if [[ -z "$FROM" ]]; then
  STATUS="$("${JUPITERCTL:-jupiterctl}" status --json)"
elif [[ "$FROM" == "-" ]]; then
  STATUS="$(cat)"
else
  STATUS="$(cat "$FROM")"
fi

# One target group per role: "http://HOST:PORT/PATH" -> target HOST:PORT,
# with the scheme and path as Prometheus' own __scheme__/__metrics_path__.
# Roles without a metrics URL (metrics off, or a backend this machine
# cannot reach them on) are left out.
TARGETS="$(jq '
  .deployment as $deployment
  | [ .roles[]
      | select(.metrics != null and .metrics != "")
      | (.metrics | capture("^(?<scheme>https?)://(?<host>[^/]+)(?<path>/.*)?$")) as $url
      | { targets: [ $url.host ],
          labels: (
            { role: .role, deployment: $deployment,
              __scheme__: $url.scheme, __metrics_path__: ($url.path // "/metrics") }
            + (if .node then { node: .node } else {} end)
            + (if .task then { task: .task } else {} end)) } ]' <<<"$STATUS")"

DEPLOYMENT="$(jq -r '.deployment' <<<"$STATUS")"
COUNT="$(jq 'length' <<<"$TARGETS")"
if [[ "$COUNT" == 0 ]]; then
  echo "targets.sh: deployment $DEPLOYMENT lists no role with a metrics URL" >&2
  exit 1
fi
if [[ "$(jq -r '.backend' <<<"$STATUS")" == "docker" ]]; then
  echo "targets.sh: note: the jupiter-docker job already finds Docker deployments; with this file too, each role is scraped twice (two jobs)" >&2
fi

if [[ "$OUT" == "-" ]]; then
  printf '%s\n' "$TARGETS"
  exit 0
fi
OUT="${OUT:-$HERE/targets/$DEPLOYMENT.json}"
mkdir -p "$(dirname "$OUT")"
# Whole or not at all: Prometheus rereads the file as soon as it changes.
printf '%s\n' "$TARGETS" >"$OUT.tmp"
mv -f "$OUT.tmp" "$OUT"
echo "targets.sh: $COUNT targets of $DEPLOYMENT in $OUT" >&2
