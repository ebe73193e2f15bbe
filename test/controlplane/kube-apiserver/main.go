// Command kube-apiserver is the upstream Kubernetes API server, built from
// k8s.io/kubernetes at the version pinned in this module, for the e2e suite.
package main

import (
	"os"
	_ "time/tzdata" // CronJob time zones, as in upstream

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	os.Exit(cli.Run(app.NewAPIServerCommand()))
}
