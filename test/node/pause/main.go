// Command pause is the pod sandbox's process on the test node: it holds the
// pod's namespaces and waits, as Kubernetes' own pause container does
// (build/pause/linux/pause.c), until it is told to stop. When the pod shares
// one process namespace it is PID 1 there, and reaps the processes orphaned
// to it, as pause.c does: a daemon's exit must not leave a zombie that
// `kill -0` still finds. No image registry is reachable here, so the node
// builds its pause image from this.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range signals {
		if s != syscall.SIGCHLD {
			return
		}
		reap()
	}
}

// reap collects every child that has exited.
func reap() {
	for {
		var status syscall.WaitStatus
		if pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil); pid <= 0 || err != nil {
			return
		}
	}
}
