//go:build tools

// Package tools records the helm command as a dependency of this module, so that
// `go mod tidy` keeps its requirements and go.sum pins every module it builds from.
package tools

import _ "helm.sh/helm/v3/cmd/helm"
