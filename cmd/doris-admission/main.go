// Command doris-admission is the Kubernetes admission webhook and CEL policy
// server for Apache Doris, and the offline CLI on the same engine.
package main

import (
	"errors"
	"fmt"
	"os"
)

func main() {
	if err := newRootCommand().Execute(); err != nil {
		// errFailed means the command already said what went wrong.
		if !errors.Is(err, errFailed) {
			fmt.Fprintln(os.Stderr, "Error:", err)
		}
		os.Exit(1)
	}
}
