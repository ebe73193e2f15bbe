// Package e2e runs doris-admission in front of a real kube-apiserver and etcd,
// built from source by test/controlplane/build.sh, and drives it with kubectl
// the way users do.
package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// suite is the control plane and the doris-admission server the tests share.
var suite *cluster

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	c, err := startCluster()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: cannot start the control plane:", err)
		return 1
	}
	suite = c
	code := m.Run()
	c.stop()
	// What the node did to this machine is undone, pass or fail.
	if c.node != nil {
		if left := c.node.Leftovers(); len(left) > 0 {
			fmt.Fprintf(os.Stderr, "e2e: the node left on this machine:\n  %s\n", strings.Join(left, "\n  "))
			return 1
		}
	}
	return code
}

// repoRoot is the repository's top folder, relative to this package.
var repoRoot = filepath.Join("..", "..")
