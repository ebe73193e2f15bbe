// Command doris-admission is the Kubernetes admission webhook and CEL policy
// server for Apache Doris, and the offline CLI on the same engine.
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := newRootCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(1)
	}
}
