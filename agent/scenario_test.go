package agent

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/doris-admission/doris-admission/test/fakefe"
)

// fastFE is a fake FE and the connection to it, with short timeouts.
func fastFE(t *testing.T) (*fakefe.FE, Connection) {
	t.Helper()
	fake, err := fakefe.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Close)
	return fake, Connection{Host: "127.0.0.1", Port: fake.Port(), User: "root", Timeout: time.Second}
}

func hosts(frontends []fakefe.Frontend) []string {
	var out []string
	for _, f := range frontends {
		out = append(out, f.Host)
	}
	return out
}

func TestFirstFEIsAlreadyAMember(t *testing.T) {
	fake, conn := fastFE(t)
	fake.Frontends = []fakefe.Frontend{{Name: "fe_0", Host: "10.0.0.1", EditLogPort: 9010, Role: "FOLLOWER", IsMaster: true, Alive: true}}
	state := filepath.Join(t.TempDir(), "address")
	var log bytes.Buffer
	err := RegisterFE(context.Background(), FERegistration{FE: conn, IP: "10.0.0.1", EditLogPort: 9010, Role: "FOLLOWER",
		StateFile: state, Wait: time.Second, Poll: 10 * time.Millisecond, Log: NewLogger(&log)})
	if err != nil {
		t.Fatal(err)
	}
	if alters := fake.StatementsMatching("ALTER"); len(alters) != 0 {
		t.Errorf("the first FE sent %v", alters)
	}
	if data, _ := os.ReadFile(state); string(data) != "10.0.0.1:9010\n" {
		t.Errorf("state file holds %q", data)
	}
	if !strings.Contains(log.String(), "doris-admission agent: this FE (10.0.0.1:9010) is already a member") {
		t.Errorf("log: %s", log.String())
	}
}

// An FE restarted with a new IP replaces only its own stale entry; another
// FE that is down is kept.
func TestFERestartWithNewIP(t *testing.T) {
	for _, legacy := range []bool{false, true} {
		fake, conn := fastFE(t)
		fake.Legacy = legacy
		fake.Frontends = []fakefe.Frontend{
			{Name: "fe_0", Host: "10.0.0.1", EditLogPort: 9010, Role: "FOLLOWER", IsMaster: true, Alive: true},
			{Name: "fe_1", Host: "10.0.0.2", HostName: "doris-fe-1", EditLogPort: 9010, Role: "FOLLOWER"},
			{Name: "fe_2", Host: "10.0.0.3", HostName: "doris-fe-2", EditLogPort: 9010, Role: "FOLLOWER"},
		}
		state := filepath.Join(t.TempDir(), "address")
		if !legacy { // identity from the state file; in the legacy layout, from HostName
			os.WriteFile(state, []byte("10.0.0.2:9010\n"), 0o644)
		}
		err := RegisterFE(context.Background(), FERegistration{FE: conn, IP: "10.0.0.9", EditLogPort: 9010, PodName: "doris-fe-1", Role: "FOLLOWER",
			StateFile: state, Wait: time.Second, Poll: 10 * time.Millisecond, Log: NewLogger(&bytes.Buffer{})})
		if err != nil {
			t.Fatal(err)
		}
		frontends, _ := fake.Snapshot()
		if diff := cmp.Diff([]string{"10.0.0.1", "10.0.0.3", "10.0.0.9"}, hosts(frontends)); diff != "" {
			t.Errorf("legacy=%v: members (-want +got):\n%s", legacy, diff)
		}
	}
}

func TestFEUnreachable(t *testing.T) {
	fake, conn := fastFE(t)
	fake.Close()
	start := time.Now()
	err := RegisterFE(context.Background(), FERegistration{FE: conn, IP: "10.0.0.1", EditLogPort: 9010, Role: "FOLLOWER",
		Wait: 300 * time.Millisecond, Poll: 50 * time.Millisecond, Log: NewLogger(&bytes.Buffer{})})
	if err == nil || !strings.Contains(err.Error(), "did not answer within 300ms") {
		t.Errorf("error %v, want one saying the FE did not answer in time", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("RegisterFE kept trying for %s", time.Since(start))
	}
}

func beConfig(conn Connection, deadline time.Duration) BEConfig {
	return BEConfig{FE: conn, IP: "10.0.1.5", HeartbeatPort: 9050, Deadline: deadline, Poll: 10 * time.Millisecond, Log: NewLogger(&bytes.Buffer{})}
}

func TestBERegisterTwiceKeepsOneEntry(t *testing.T) {
	fake, conn := fastFE(t)
	for range 2 {
		if err := RegisterBE(context.Background(), beConfig(conn, time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	if _, backends := fake.Snapshot(); len(backends) != 1 || backends[0].Host != "10.0.1.5" {
		t.Errorf("backends after two registrations: %+v", backends)
	}
}

func TestBERegisterWhenTheFEIsUnreachable(t *testing.T) {
	fake, conn := fastFE(t)
	fake.Close()
	err := RegisterBE(context.Background(), beConfig(conn, 200*time.Millisecond))
	if err == nil || !strings.Contains(err.Error(), "did not accept it within 200ms") {
		t.Errorf("error %v, want one saying the FE did not accept the BE in time", err)
	}
}

func TestBERestartDoesNotDecommission(t *testing.T) {
	fake, conn := fastFE(t)
	fake.Backends = []fakefe.Backend{{ID: 1, Host: "10.0.1.5", HeartbeatPort: 9050, Alive: true, TabletNum: 500}}
	err := DecommissionBE(context.Background(), beConfig(conn, time.Second), Departure{Reason: "a rolling update"})
	if err != nil {
		t.Fatal(err)
	}
	if statements := fake.StatementsMatching("DECOMMISSION"); len(statements) != 0 {
		t.Errorf("a restart decommissioned the BE: %v", statements)
	}
}

func TestBEScaleDownDrainsAndLeaves(t *testing.T) {
	fake, conn := fastFE(t)
	fake.DrainPerShow = 200
	fake.Backends = []fakefe.Backend{
		{ID: 1, Host: "10.0.1.4", HeartbeatPort: 9050, Alive: true, TabletNum: 900},
		{ID: 2, Host: "10.0.1.5", HeartbeatPort: 9050, Alive: true, TabletNum: 900},
	}
	var log bytes.Buffer
	c := beConfig(conn, 5*time.Second)
	c.Log = NewLogger(&log)
	if err := DecommissionBE(context.Background(), c, Departure{Leaving: true, Reason: "a scale-down"}); err != nil {
		t.Fatal(err)
	}
	if _, backends := fake.Snapshot(); len(backends) != 1 || backends[0].Host != "10.0.1.4" {
		t.Errorf("backends after the scale-down: %+v", backends)
	}
	if !strings.Contains(log.String(), "is decommissioned: its tablets moved and Doris dropped it") {
		t.Errorf("log does not say the BE is gone:\n%s", log.String())
	}
}

func TestBEDecommissionThatCannotFinish(t *testing.T) {
	fake, conn := fastFE(t)
	fake.Stuck = true
	fake.Backends = []fakefe.Backend{{ID: 2, Host: "10.0.1.5", HeartbeatPort: 9050, Alive: true, TabletNum: 900}}
	start := time.Now()
	err := DecommissionBE(context.Background(), beConfig(conn, 300*time.Millisecond), Departure{Leaving: true, Reason: "a scale-down"})
	if err == nil || !strings.Contains(err.Error(), "still decommissioning with 900 tablets left") {
		t.Errorf("error %v, want one that says the BE is still decommissioning with its tablets", err)
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("the decommission ran %s past a 300ms deadline", elapsed)
	}
	if _, backends := fake.Snapshot(); len(backends) != 1 || !backends[0].Decommissioned {
		t.Errorf("the BE should be left decommissioning: %+v", backends)
	}
}

func TestSlowFEIsBoundedByTheTimeout(t *testing.T) {
	fake, conn := fastFE(t)
	fake.Delay = 3 * time.Second
	conn.Timeout = 100 * time.Millisecond
	start := time.Now()
	err := RegisterBE(context.Background(), beConfig(conn, 400*time.Millisecond))
	if err == nil || !strings.Contains(err.Error(), "is not registered") {
		t.Errorf("error %v, want one saying the BE is not registered", err)
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("a slow FE held the registration for %s", elapsed)
	}
}
