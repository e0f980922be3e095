//go:build tools

// Package tools pins the Kubernetes commands that scripts/kube builds: the
// API server and the kubelet of k8s.io/kubernetes, their staging modules
// replaced by the published twins (see go.mod).
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
