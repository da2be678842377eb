#!/usr/bin/env bash
# `make kind-e2e`: the chart end to end on a throw-away kind cluster (needs Docker, kind and
# kubectl; helm comes from `make helm-bin`). Builds and loads the images, installs the chart,
# opens a Market, trades once through the api and sees the trade on ws, then deletes the cluster.
set -euo pipefail

HELM=${HELM:?set by the Makefile}
CLUSTER=${KIND_CLUSTER:-xch-e2e}
NODE_IMAGE=${KIND_NODE_IMAGE:-kindest/node:v1.34.0}
TAG=${IMAGE_TAG:?set by the Makefile}
NS=exchange
MARKET=eth-usd  # examples/markets/eth-usd.yaml: no market maker, so two traders make the trade
PYTHON=${PYTHON:-.venv/bin/python}

for tool in docker kind kubectl; do
  command -v "$tool" >/dev/null || { echo "kind-e2e: $tool is not installed" >&2; exit 2; }
done
docker info >/dev/null 2>&1 || { echo "kind-e2e: no Docker engine reachable" >&2; exit 2; }

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  kind delete cluster --name "$CLUSTER"
}
kind create cluster --name "$CLUSTER" --image "$NODE_IMAGE" --wait 120s
trap cleanup EXIT

components=(engine api ws dbproc mm operator)
frontend=false
if [ -f frontend/package.json ]; then components+=(frontend); frontend=true; fi
for component in "${components[@]}"; do
  kind load docker-image --name "$CLUSTER" "exchange/$component:$TAG"
done

"$HELM" install exchange charts/exchange --namespace "$NS" --create-namespace \
  --set image.tag="$TAG" --set api.faucet=true --set frontend.enabled="$frontend" \
  --wait --timeout 10m

kubectl -n "$NS" apply -f "examples/markets/$MARKET.yaml"
kubectl -n "$NS" wait "market/$MARKET" --for=jsonpath='{.status.phase}'=Ready --timeout=300s

kubectl -n "$NS" port-forward service/exchange-api 18000:8000 >/dev/null & pids+=($!)
kubectl -n "$NS" port-forward service/exchange-ws 18090:8090 >/dev/null & pids+=($!)
sleep 3
"$PYTHON" scripts/kind_e2e_trade.py --api http://127.0.0.1:18000 --ws ws://127.0.0.1:18090/ws \
  --market "$MARKET"
echo "kind-e2e: passed"
