package agent_test

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/doris-admission/doris-admission/agent"
	"github.com/doris-admission/doris-admission/test/fakefe"
)

// startFE starts a fake FE and returns it with a session to it.
func startFE(t *testing.T) (*fakefe.FE, *agent.FE) {
	t.Helper()
	fake, err := fakefe.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Close)
	session, err := agent.Open(agent.Connection{Host: "127.0.0.1", Port: fake.Port(), User: "root", Timeout: 2 * time.Second}, agent.NewLogger(io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { session.Close() })
	return fake, session
}

func TestShowFrontendsInBothLayouts(t *testing.T) {
	for _, legacy := range []bool{false, true} {
		fake, session := startFE(t)
		fake.Legacy = legacy
		fake.Frontends = []fakefe.Frontend{
			{Name: "fe_a", Host: "10.0.0.1", HostName: "doris-fe-0", EditLogPort: 9010, Role: "FOLLOWER", IsMaster: true, Alive: true},
			{Name: "fe_b", Host: "10.0.0.2", EditLogPort: 9010, Role: "OBSERVER"},
		}
		got, err := session.Frontends(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		want := []agent.Frontend{
			{Name: "fe_a", Host: "10.0.0.1", EditLogPort: 9010, Role: "FOLLOWER", IsMaster: true, Alive: true},
			{Name: "fe_b", Host: "10.0.0.2", EditLogPort: 9010, Role: "OBSERVER"},
		}
		if legacy {
			want[0].HostName = "doris-fe-0"
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("legacy=%v: frontends (-want +got):\n%s", legacy, diff)
		}
	}
}

func TestShowBackendsReadsNulls(t *testing.T) {
	fake, session := startFE(t)
	fake.Backends = []fakefe.Backend{{ID: 7, Host: "10.0.1.1", HeartbeatPort: 9050, Decommissioned: true, TabletNum: 250}}
	fake.Stuck = true
	got, err := session.Backends(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []agent.Backend{{ID: "7", Host: "10.0.1.1", HeartbeatPort: 9050, Decommissioned: true, TabletNum: 250}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("backends (-want +got):\n%s", diff)
	}
}
