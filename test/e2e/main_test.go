// Package e2e runs doris-admission in front of a real kube-apiserver and etcd,
// built from source by test/controlplane/build.sh, and drives it with kubectl
// the way users do.
package e2e

import (
	"fmt"
	"os"
	"path/filepath"
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
	defer c.stop()
	return m.Run()
}

// repoRoot is the repository's top folder, relative to this package.
var repoRoot = filepath.Join("..", "..")
