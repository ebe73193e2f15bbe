package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// dockerfileBuild is how the Dockerfile builds the agent; the size below is
// of a binary built the same way.
const dockerfileBuild = `go build -trimpath -ldflags "-s -w -X main.version=${VERSION}"`

// maxAgentSize is what the agent may weigh: it is copied into every Doris pod.
const maxAgentSize = 20 << 20

// The agent is copied into every Doris pod: it stays at most 20 MiB, built
// as the Dockerfile builds it.
func TestAgentIsSmall(t *testing.T) {
	dockerfile, err := os.ReadFile(filepath.Join("..", "..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(dockerfile), dockerfileBuild) {
		t.Fatalf("the Dockerfile no longer builds with %s: update this test to build as it does", dockerfileBuild)
	}
	binary := filepath.Join(t.TempDir(), "doris-admission-agent")
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X main.version=test", "-o", binary, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the agent: %v\n%s", err, out)
	}
	info, err := os.Stat(binary)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the agent is %.1f MiB", float64(info.Size())/(1<<20))
	if info.Size() > maxAgentSize {
		t.Errorf("the agent is %.1f MiB, more than %d MiB: see what it imports (go list -deps ./cmd/doris-admission-agent)",
			float64(info.Size())/(1<<20), maxAgentSize>>20)
	}
}

// The agent imports what it needs and none of the server: not the webhook,
// the policy engine, CEL, controller-runtime, the typed Kubernetes clients or
// k8s.io/api.
func TestAgentImportsNoneOfTheServer(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	forbidden := []string{
		"github.com/doris-admission/doris-admission/webhook",
		"github.com/doris-admission/doris-admission/policies",
		"github.com/doris-admission/doris-admission/certs",
		"github.com/doris-admission/doris-admission/audit",
		"github.com/google/cel-go",
		"sigs.k8s.io/controller-runtime",
		"k8s.io/apiserver",
		"k8s.io/client-go/kubernetes",
		"k8s.io/api/",
	}
	for _, pkg := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if pkg == f || strings.HasPrefix(pkg, strings.TrimSuffix(f, "/")+"/") {
				t.Errorf("the agent imports %s", pkg)
			}
		}
	}
}
