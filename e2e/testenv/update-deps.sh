#!/usr/bin/env bash
# Regenerates go.mod for the pinned Kubernetes version: k8s.io/kubernetes requires its staging
# modules at v0.0.0 and its own replace lines do not apply to dependents, so every staging module
# is replaced here by its published v0.<minor>.<patch> tag, derived from that version's go.mod.
set -euo pipefail
cd "$(dirname "$0")"
. ./versions.env
stage="v0.${K8S_VERSION#v1.}"
gomod=$(go mod download -json "k8s.io/kubernetes@${K8S_VERSION}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
cat > go.mod <<EOM
module oxbow.rs/testenv

go 1.24.0
EOM
go mod edit -require="k8s.io/kubernetes@${K8S_VERSION}"
go mod edit -require="go.etcd.io/etcd/server/v3@${ETCD_VERSION}"
for m in $(grep -E '=> \./staging/' "$gomod" | awk '{print $1}'); do
  go mod edit -replace="${m}=${m}@${stage}"
done
go mod tidy
