# shellcheck shell=bash
# Sourced (not run) by e2e/test-all.sh and ./quickstart, from the repository root: installs what
# the testbed needs on a fresh Debian machine (Debian packages, a Go toolchain if the machine's is
# missing or too old) and sets the cache and state folders. Idempotent: what is there is kept.
# Everything downloaded is cached outside the repository ($OXBOW_CACHE_DIR, default
# ~/.cache/oxbow; Go's and Cargo's usual caches), keyed by version. Defines `log`.

export OXBOW_CACHE_DIR="${OXBOW_CACHE_DIR:-$HOME/.cache/oxbow}"
export OXBOW_TESTBED_DIR="${OXBOW_TESTBED_DIR:-/tmp/oxbow-testbed}"
log() { printf '\n== %s (%ss)\n' "$*" "$SECONDS"; }

log "system packages"
pkgs=(build-essential pkg-config libssl-dev zlib1g-dev openjdk-17-jdk-headless maven python3 curl unzip iproute2 ca-certificates)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "cargo (Rust >= 1.88) is required on PATH" >&2; exit 1; }

log "go toolchain"
# The control plane's go.mod says `go 1.24.0`. Use the machine's Go when it is new enough,
# else fetch a Go toolchain as a module from the Go module proxy, as GOTOOLCHAIN=auto would.
go_ok() { command -v go >/dev/null && go version | grep -qE 'go1\.(2[4-9]|[3-9][0-9])'; }
if ! go_ok; then
  gov=1.24.6
  gocache="$OXBOW_CACHE_DIR/go-$gov"
  if [ ! -x "$gocache/go/bin/go" ]; then
    mkdir -p "$gocache"
    curl -fsSL -o "$gocache/go.zip" "https://proxy.golang.org/golang.org/toolchain/@v/v0.0.1-go${gov}.linux-amd64.zip"
    (cd "$gocache" && unzip -q go.zip && mv "golang.org/toolchain@v0.0.1-go${gov}.linux-amd64" go && chmod +x go/bin/* go/pkg/tool/*/* && rm -rf go.zip golang.org)
  fi
  export PATH="$gocache/go/bin:$PATH"
fi
go version
