package harness

import (
	"time"

	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// ControlPlane is an envtest environment of the etcd and kube-apiserver
// built in assets (the folder test/controlplane/build.sh prints), with the
// CRDs of crdDir installed when it is not "". The caller sets what else it
// needs (API server flags, webhooks) and starts it.
func ControlPlane(assets, crdDir string) *envtest.Environment {
	env := &envtest.Environment{
		BinaryAssetsDirectory:    assets,
		ControlPlaneStartTimeout: 2 * time.Minute,
		ControlPlaneStopTimeout:  time.Minute,
	}
	if crdDir != "" {
		env.CRDInstallOptions = envtest.CRDInstallOptions{Paths: []string{crdDir}, ErrorIfPathMissing: true}
	}
	return env
}
