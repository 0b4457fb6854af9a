#!/usr/bin/env bash
# Validates the Kubernetes manifests offline (part of `make test`): renders k8s/base and each
# overlay with kustomize (kubectl's, 1.27 or newer) and checks every object against the
# Kubernetes API schemas with kubernetes-validate (pinned in scripts/requirements-oracle.txt)
# in strict mode, where a field the API does not know is an error. The production overlay is
# rendered with its secrets/*.example files (placeholders where none) in place of the real ones. CRDs without a
# bundled schema (KEDA's ScaledObject) are reported, not checked: tests/tests/deploy_manifests.rs
# checks what they name.
set -euo pipefail
cd "$(dirname "$0")/.."
versions=${K8S_VERSIONS:-1.29.0 1.37.0}
validator=.venv/bin/kubernetes-validate
[ -x "$validator" ] || { echo "validate-k8s: $validator missing: run scripts/ensure-python.sh" >&2; exit 1; }
if command -v kustomize >/dev/null; then
  render=(kustomize build)
elif kubectl kustomize --help >/dev/null 2>&1 && [ "$(kubectl version --client -o json | jq -r '.clientVersion.minor' | tr -dc 0-9)" -ge 27 ]; then
  render=(kubectl kustomize)
else
  echo "validate-k8s: needs kustomize, or kubectl 1.27 or newer (Debian's kubectl 1.20 cannot read these kustomizations)" >&2
  exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r k8s "$work/k8s"
# The files the production overlay's Secrets are made from (git-ignored): the examples where
# there are some, a placeholder line otherwise.
for overlay in "$work"/k8s/overlays/*; do
  for file in $(grep -o 'secrets/[A-Za-z0-9._-]*' "$overlay/kustomization.yaml" | sort -u); do
    [ -e "$overlay/$file" ] && continue
    if [ -e "$overlay/$file.example" ]; then cp "$overlay/$file.example" "$overlay/$file"
    else echo "placeholder" >"$overlay/$file"; fi
  done
done
for dir in base overlays/dev overlays/production; do
  rendered="$work/${dir//\//-}.yaml"
  "${render[@]}" "$work/k8s/$dir" >"$rendered"
  objects=$(grep -c '^kind:' "$rendered")
  for version in $versions; do
    if ! "$validator" --strict --quiet --kubernetes-version "$version" "$rendered" >"$work/report" 2>&1; then
      sed "s|$rendered|k8s/$dir|" "$work/report" >&2
      echo "validate-k8s: k8s/$dir does not validate against Kubernetes $version" >&2
      exit 1
    fi
    sed "s|$rendered|k8s/$dir|; s/^/  /" "$work/report"
  done
  echo "validate-k8s: k8s/$dir: $objects objects valid against Kubernetes ${versions// /, } (strict)"
done
