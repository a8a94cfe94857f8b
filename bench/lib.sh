# Shared by the load scripts in bench/: installing tools, measuring CPU, running wrk.
# Expects $work (a scratch directory), $conns and $duration; `wrk_extra` (an array) adds wrk
# arguments (headers) to the next runs.

need() { command -v "$1" >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2"; }; }

wrk_extra=()

# The demo key of config/sluice.toml (published in the README); the auth plugin's route entry
# accepting it as a static key (its hash under the demo secret); a per-key rate limit that
# is never reached.
key=sk_test_8I9J0eqU4SxFzleP5BTG3F90vy8gUJRZ0Fjj3G
auth="{ plugin = \"auth\", config = { secret = \"demo-secret-please-change-me\", lookup_statement = \"\", touch_statement = \"\", required_scopes = [\"read\"], static_keys = [{ id = -1, hash = \"45ee5a983ba02465b215b5002f978dec3b8bfba1421974f6caf4f39733a46752\", owner = \"demo\", scopes = [\"read\"], tier = \"free\" }] } }"
limit='{ plugin = "ratelimit", config = { limits = [{ name = "per-key", key = "api_key", limit = 1000000000000, period = "1s" }] } }'

# Builds the gateway as it is deployed (`--profile production`: fat LTO, one codegen unit) and
# the plugins, and sets $sluice to it; with SLUICE_BINARY=PATH, that gateway is measured
# instead and nothing is built (an older commit's, for an A/B; its plugins are built in).
# Expects $root.
build_sluice() {
  if [ -n "${SLUICE_BINARY:-}" ]; then
    sluice=$SLUICE_BINARY
    return
  fi
  cargo build --profile production -q -p sluice -p sluice-artifacts
  sluice="$root/target/production/sluice"
}

# CPU ticks (user + system) used so far by the processes $@ and their children's threads.
cpu_ticks() {
  local total=0 p t
  for p in "$@" $(for q in "$@"; do pgrep -P "$q" || true; done); do
    for t in /proc/"$p"/task/*/stat; do
      total=$((total + $(awk '{print $14 + $15}' "$t" 2>/dev/null || echo 0)))
    done
  done
  echo "$total"
}

# Waits until every port in $@ answers HTTP on /.
wait_ports() {
  local port
  for port in "$@"; do
    for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
  done
}

# Runs wrk on a URL; prints a table row and keeps requests/s, CPU µs/request and the number
# of requests made in $work/KEY.rps, $work/KEY.cpu and $work/KEY.requests, and the p99 in
# microseconds in $work/KEY.p99.
run() { # name url key [pids whose CPU per request is measured]
  local out before after
  before=$(cpu_ticks "${@:4}")
  out=$(wrk -t2 -c"$conns" -d"${duration}s" --latency "${wrk_extra[@]}" "$2")
  after=$(cpu_ticks "${@:4}")
  local rps p50 p99
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  local errors
  errors=$(awk '/Non-2xx|Socket errors/ {print}' <<<"$out" | tr '\n' ' ')
  local requests cpu_us="-"
  requests=$(awk '/requests in/ {print $1}' <<<"$out")
  if [ $# -gt 3 ] && [ "${requests:-0}" -gt 0 ]; then
    cpu_us=$(awk -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" -v n="$requests" 'BEGIN { printf "%.1f", t / hz * 1e6 / n }')
  fi
  printf '| %s | %s | %s | %s | %s | %s |\n' "$1" "$rps" "$p50" "$p99" "$cpu_us" "${errors:-none}"
  echo "$rps" > "$work/$3.rps"
  echo "${requests:-0}" > "$work/$3.requests"
  echo "$cpu_us" > "$work/$3.cpu"
  awk -v t="$p99" 'BEGIN { v = t + 0; if (t ~ /ms$/) v *= 1000; else if (t ~ /[0-9]s$/) v *= 1e6; print v }' > "$work/$3.p99"
}
