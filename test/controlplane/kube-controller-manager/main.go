// Command kube-controller-manager is the upstream Kubernetes controller manager, built from k8s.io/kubernetes at
// the version pinned in this module, for the one-node cluster of the e2e
// suite (test/node).
package main

import (
	"os"
	_ "time/tzdata" // CronJob time zones, as in upstream

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	"k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

func main() {
	os.Exit(cli.Run(app.NewControllerManagerCommand()))
}
