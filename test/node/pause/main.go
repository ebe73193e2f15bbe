// Command pause is the pod sandbox's process on the test node: it holds the
// pod's namespaces and waits, as Kubernetes' own pause container does, until
// it is told to stop. No image registry is reachable here, so the node builds
// its pause image from this.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	<-stop
}
