package agent

import (
	"os"
	"path/filepath"
	"testing"
)

// fakeProc writes a /proc with the given cgroup per process folder.
func fakeProc(t *testing.T, cgroups map[string]string) string {
	t.Helper()
	proc := t.TempDir()
	for pid, cgroup := range cgroups {
		if err := os.MkdirAll(filepath.Join(proc, pid), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(proc, pid, "cgroup"), []byte(cgroup), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return proc
}

// With shareProcessNamespace, PID 1 is the pod's pause process: the hook's
// lines go to the first process of its own container, where kubectl logs
// reads them.
func TestMainProcessIsTheContainersFirst(t *testing.T) {
	proc := fakeProc(t, map[string]string{
		"1": "4:memory:/pod/pause\n", "12": "4:memory:/pod/init\n",
		"23": "4:memory:/pod/doris\n", "31": "4:memory:/pod/doris\n", "40": "4:memory:/pod/doris\n",
		"self": "4:memory:/pod/doris\n",
	})
	if got, want := mainProcess(proc), filepath.Join(proc, "23"); got != want {
		t.Errorf("main process %s, want %s", got, want)
	}
}

func TestMainProcessIsPID1WhenNothingElseIsKnown(t *testing.T) {
	proc := fakeProc(t, map[string]string{"1": "a\n", "5": "b\n"})
	if got, want := mainProcess(proc), filepath.Join(proc, "1"); got != want {
		t.Errorf("main process %s, want %s", got, want)
	}
}
