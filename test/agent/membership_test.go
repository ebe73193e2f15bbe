package agent_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/doris-admission/doris-admission/agent"
	"github.com/doris-admission/doris-admission/test/fakefe"
)

// fastFE is a fake FE and the connection to it, with short timeouts.
func fastFE(t *testing.T) (*fakefe.FE, agent.Connection) {
	t.Helper()
	fake, err := fakefe.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Close)
	return fake, agent.Connection{Host: "127.0.0.1", Port: fake.Port(), User: "root", Timeout: time.Second}
}

func hosts(frontends []fakefe.Frontend) []string {
	var out []string
	for _, f := range frontends {
		out = append(out, f.Host)
	}
	return out
}

func address(t *testing.T, host string, port int) agent.Address {
	t.Helper()
	a, err := agent.NewAddress(host, port)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func feRegistration(t *testing.T, conn agent.Connection, ip string, log io.Writer) agent.FERegistration {
	return agent.FERegistration{FE: conn, Self: address(t, ip, 9010), Role: agent.Follower, MetaDir: t.TempDir(),
		StateFile: filepath.Join(t.TempDir(), "address"), Deadline: 5 * time.Second, Pacing: agent.Pacing{Poll: 10 * time.Millisecond, Log: agent.NewLogger(log)}}
}

func TestFirstFEIsAlreadyAMember(t *testing.T) {
	fake, conn := fastFE(t)
	fake.Frontends = []fakefe.Frontend{{Name: "fe_0", Host: "10.0.0.1", EditLogPort: 9010, Role: "FOLLOWER", IsMaster: true, Alive: true}}
	var log bytes.Buffer
	r := feRegistration(t, conn, "10.0.0.1", &log)
	if err := agent.RegisterFE(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	if alters := fake.StatementsMatching("ALTER"); len(alters) != 0 {
		t.Errorf("the first FE sent %v", alters)
	}
	if data, _ := os.ReadFile(r.StateFile); string(data) != "address=10.0.0.1:9010\nname=fe_0\n" {
		t.Errorf("state file holds %q", data)
	}
	if !strings.Contains(log.String(), "doris-admission agent: this FE (10.0.0.1:9010) is a member") {
		t.Errorf("log: %s", log.String())
	}
}

// An FE back with a new IP replaces only its own dead entry, known by the
// name in its meta dir, the name or address it last registered, or (Doris
// 1.x) its host name; another FE that is down is kept.
func TestFERestartWithNewIP(t *testing.T) {
	for name, c := range map[string]struct {
		legacy     bool
		role, last string
	}{
		"name in ROLE":            {role: "#Mon Dec 07\nrole=FOLLOWER\nname=fe_1\n"},
		"name in the state file":  {last: "address=10.0.0.7:9010\nname=fe_1\n"},
		"address in a state file": {last: "10.0.0.2:9010\n"},
		"host name (Doris 1.x)":   {legacy: true},
	} {
		t.Run(name, func(t *testing.T) {
			fake, conn := fastFE(t)
			fake.Legacy = c.legacy
			fake.Frontends = []fakefe.Frontend{
				{Name: "fe_0", Host: "10.0.0.1", EditLogPort: 9010, Role: "FOLLOWER", IsMaster: true, Alive: true},
				{Name: "fe_1", Host: "10.0.0.2", HostName: "doris-fe-1", EditLogPort: 9010, Role: "FOLLOWER"},
				{Name: "fe_2", Host: "10.0.0.3", HostName: "doris-fe-2", EditLogPort: 9010, Role: "FOLLOWER"},
			}
			r := feRegistration(t, conn, "10.0.0.9", io.Discard)
			r.PodName = "doris-fe-1"
			if c.role != "" {
				os.MkdirAll(filepath.Join(r.MetaDir, "image"), 0o755)
				os.WriteFile(filepath.Join(r.MetaDir, "image", "ROLE"), []byte(c.role), 0o644)
			}
			if c.last != "" {
				os.WriteFile(r.StateFile, []byte(c.last), 0o644)
			}
			if err := agent.RegisterFE(context.Background(), r); err != nil {
				t.Fatal(err)
			}
			frontends, _ := fake.Snapshot()
			if diff := cmp.Diff([]string{"10.0.0.1", "10.0.0.3", "10.0.0.9"}, hosts(frontends)); diff != "" {
				t.Errorf("members (-want +got):\n%s", diff)
			}
		})
	}
}

// The address this pod last had went to another FE, which is down now: the
// name in the meta dir says it is not this pod's entry, so it is kept.
func TestFENameOutranksAReusedAddress(t *testing.T) {
	fake, conn := fastFE(t)
	fake.Frontends = []fakefe.Frontend{
		{Name: "fe_0", Host: "10.0.0.1", EditLogPort: 9010, Role: "FOLLOWER", IsMaster: true, Alive: true},
		{Name: "fe_other", Host: "10.0.0.2", EditLogPort: 9010, Role: "FOLLOWER"},
	}
	r := feRegistration(t, conn, "10.0.0.9", io.Discard)
	os.MkdirAll(filepath.Join(r.MetaDir, "image"), 0o755)
	os.WriteFile(filepath.Join(r.MetaDir, "image", "ROLE"), []byte("role=FOLLOWER\nname=fe_mine\n"), 0o644)
	os.WriteFile(r.StateFile, []byte("10.0.0.2:9010\n"), 0o644)
	if err := agent.RegisterFE(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	if drops := fake.StatementsMatching("DROP"); len(drops) != 0 {
		t.Errorf("dropped another FE's entry: %v", drops)
	}
}

func TestFEUnreachable(t *testing.T) {
	fake, conn := fastFE(t)
	fake.Close()
	r := feRegistration(t, conn, "10.0.0.1", io.Discard)
	r.Deadline = 300 * time.Millisecond
	err := agent.RegisterFE(context.Background(), r)
	if err == nil || !strings.Contains(err.Error(), "is not a member of the cluster and the cluster was not changed") ||
		!strings.Contains(err.Error(), "the deadline") || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("error %v, want one saying the FE did not answer by the deadline, and the state left", err)
	}
}

func beConfig(t *testing.T, conn agent.Connection, deadline time.Duration) agent.BEConfig {
	return agent.BEConfig{FE: conn, Self: address(t, "10.0.1.5", 9050), Deadline: deadline, Pacing: agent.Pacing{Poll: 10 * time.Millisecond, Log: agent.NewLogger(io.Discard)}}
}

func TestBERegisterTwiceKeepsOneEntry(t *testing.T) {
	fake, conn := fastFE(t)
	for range 2 {
		if err := agent.RegisterBE(context.Background(), beConfig(t, conn, time.Second)); err != nil {
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
	err := agent.RegisterBE(context.Background(), beConfig(t, conn, 200*time.Millisecond))
	if err == nil || !strings.Contains(err.Error(), "is not registered") || !strings.Contains(err.Error(), "the deadline") {
		t.Errorf("error %v, want one saying the FE did not accept the BE by the deadline", err)
	}
}

func TestBERestartDoesNotDecommission(t *testing.T) {
	fake, conn := fastFE(t)
	fake.Backends = []fakefe.Backend{{ID: 1, Host: "10.0.1.5", HeartbeatPort: 9050, Alive: true, TabletNum: 500}}
	err := agent.DecommissionBE(context.Background(), beConfig(t, conn, time.Second), agent.Departure{Reason: "a rolling update"})
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
	c := beConfig(t, conn, 5*time.Second)
	c.Log = agent.NewLogger(&log)
	if err := agent.DecommissionBE(context.Background(), c, agent.Departure{Leaving: true, Reason: "a scale-down"}); err != nil {
		t.Fatal(err)
	}
	if _, backends := fake.Snapshot(); len(backends) != 1 || backends[0].Host != "10.0.1.4" {
		t.Errorf("backends after the scale-down: %+v", backends)
	}
	for _, says := range []string{"tablets still to move", "is decommissioned: its tablets moved and Doris dropped it"} {
		if !strings.Contains(log.String(), says) {
			t.Errorf("log does not say %q:\n%s", says, log.String())
		}
	}
}

func TestBEDecommissionThatCannotFinish(t *testing.T) {
	fake, conn := fastFE(t)
	fake.Stuck = true
	fake.Backends = []fakefe.Backend{{ID: 2, Host: "10.0.1.5", HeartbeatPort: 9050, Alive: true, TabletNum: 900}}
	err := agent.DecommissionBE(context.Background(), beConfig(t, conn, 300*time.Millisecond), agent.Departure{Leaving: true, Reason: "a scale-down"})
	if err == nil || !strings.Contains(err.Error(), "still decommissioning with 900 tablets left") {
		t.Errorf("error %v, want one that says the BE is still decommissioning with its tablets", err)
	}
	if _, backends := fake.Snapshot(); len(backends) != 1 || !backends[0].Decommissioned {
		t.Errorf("the BE should be left decommissioning: %+v", backends)
	}
}

// Doris refuses the decommission itself (not enough BEs for the replicas):
// no use trying again; the error says the BE was not decommissioned and
// how to do it by hand.
func TestBEDecommissionRefused(t *testing.T) {
	fake, conn := fastFE(t)
	fake.Backends = []fakefe.Backend{{ID: 2, Host: "10.0.1.5", HeartbeatPort: 9050, Alive: true, TabletNum: 900}}
	fake.Inject(fakefe.Fault{Match: "DECOMMISSION", Times: 100, Message: "errCode = 2, detailMessage = After decommission, partition p of table d.t 's replication allocation { tag.location.default: 3 } > available backend num 2 on tag default, otherwise need to decrease the partition's replication num."})
	err := agent.DecommissionBE(context.Background(), beConfig(t, conn, time.Minute), agent.Departure{Leaving: true, Reason: "a scale-down"})
	if err == nil || !strings.Contains(err.Error(), "was not decommissioned") || !strings.Contains(err.Error(), `ALTER SYSTEM DECOMMISSION BACKEND "10.0.1.5:9050"`) {
		t.Errorf("error %v, want one saying the BE was not decommissioned and how to do it", err)
	}
	if tries := fake.StatementsMatching("DECOMMISSION"); len(tries) != 1 {
		t.Errorf("a refused decommission was sent %d times", len(tries))
	}
}

func TestSlowFEIsBoundedByTheTimeout(t *testing.T) {
	fake, conn := fastFE(t)
	fake.Delay = 3 * time.Second
	conn.Timeout = 100 * time.Millisecond
	start := time.Now()
	err := agent.RegisterBE(context.Background(), beConfig(t, conn, 400*time.Millisecond))
	if err == nil || !strings.Contains(err.Error(), "is not registered") {
		t.Errorf("error %v, want one saying the BE is not registered", err)
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("a slow FE held the registration for %s", elapsed)
	}
}
