package agentcli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/doris-admission/doris-admission/test/fakefe"
)

// The scenarios run the agent binary as a Doris pod's hooks run it, against
// a fake FE that speaks the MySQL protocol and a stub API server, with the
// faults a user's cluster has. Each asserts the cluster membership the FE is
// left with and the agent's exit status.

// agentBinary is the agent under test: built from cmd/doris-admission-agent, or the
// binary AGENT_BINARY names (to run the scenarios against another build).
var agentBinary string

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	agentBinary = os.Getenv("AGENT_BINARY")
	if agentBinary == "" {
		dir, err := os.MkdirTemp("", "doris-admission-agent")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		agentBinary = filepath.Join(dir, "doris-admission-agent")
		if out, err := exec.Command("go", "build", "-o", agentBinary, "github.com/doris-admission/doris-admission/cmd/doris-admission-agent").CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building the agent: %v\n%s", err, out)
			return 1
		}
	}
	return m.Run()
}

// ranAgent is what one run of the agent did.
type ranAgent struct {
	exit   int
	output string
}

// runAgent runs the agent with args and only the environment env, and kills
// it if it is still running after limit: a run that has to be killed fails
// the test, since every command must end by its own deadline.
func runAgent(t *testing.T, limit time.Duration, env []string, args ...string) ranAgent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	// Before "--", after which the arguments are fe-start's script's.
	if i := slices.Index(args, "--"); i >= 0 {
		args = slices.Concat(args[:i], []string{"--log-to-main=false"}, args[i:])
	} else {
		args = append(args, "--log-to-main=false")
	}
	cmd := exec.CommandContext(ctx, agentBinary, args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("agent %s was still running after %s and was killed; output:\n%s", args[0], limit, out)
	}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return ranAgent{exit: exit.ExitCode(), output: string(out)}
	case err != nil:
		t.Fatalf("running the agent: %v", err)
	}
	return ranAgent{output: string(out)}
}

// startFE starts a fake FE that is closed when the test ends.
func startFE(t *testing.T) *fakefe.FE {
	t.Helper()
	fe, err := fakefe.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fe.Close)
	return fe
}

func addresses[T fakefe.Frontend | fakefe.Backend](items []T) []string {
	out := []string{}
	for _, item := range items {
		switch v := any(item).(type) {
		case fakefe.Frontend:
			out = append(out, fmt.Sprintf("%s:%d", v.Host, v.EditLogPort))
		case fakefe.Backend:
			state := ""
			if v.Decommissioned {
				state = " decommissioning"
			}
			out = append(out, fmt.Sprintf("%s:%d%s", v.Host, v.HeartbeatPort, state))
		}
	}
	return out
}

func wantMembers(t *testing.T, fe *fakefe.FE, frontends, backends []string) {
	t.Helper()
	f, b := fe.Snapshot()
	if diff := cmp.Diff(frontends, addresses(f)); frontends != nil && diff != "" {
		t.Errorf("frontends (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(backends, addresses(b)); backends != nil && diff != "" {
		t.Errorf("backends (-want +got):\n%s", diff)
	}
}

func wantExit(t *testing.T, run ranAgent, code int, says ...string) {
	t.Helper()
	if run.exit != code {
		t.Errorf("exit status %d, want %d; output:\n%s", run.exit, code, run.output)
	}
	for _, s := range says {
		if !strings.Contains(run.output, s) {
			t.Errorf("output does not say %q:\n%s", s, run.output)
		}
	}
}

func wantNoStatement(t *testing.T, fe *fakefe.FE, s string) {
	t.Helper()
	if got := fe.StatementsMatching(s); len(got) != 0 {
		t.Errorf("the FE received %v", got)
	}
}

// feRegister runs fe-register for the pod with ip against fe.
func feRegister(t *testing.T, fe *fakefe.FE, ip, stateFile string, env ...string) ranAgent {
	return runAgent(t, time.Minute, env, "fe-register", "--fe-host", "127.0.0.1", "--query-port", fmt.Sprint(fe.Port()),
		"--address", ip, "--edit-log-port", "9010", "--pod-name", "doris-fe-1", "--state-file", stateFile, "--poll", "20ms")
}

// beHome is a BE home whose bin/stop_be.sh writes its arguments to stopped.
func beHome(t *testing.T) string {
	return stopHome(t, "stop_be.sh")
}

// stopHome is a Doris home whose bin/<script> writes its arguments to the
// file stopped.
func stopHome(t *testing.T, script string) string {
	t.Helper()
	home := t.TempDir()
	if err := os.Mkdir(filepath.Join(home, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	text := "#!/bin/sh\necho \"$@\" >>" + filepath.Join(home, "stopped") + "\n"
	if err := os.WriteFile(filepath.Join(home, "bin", script), []byte(text), 0o755); err != nil {
		t.Fatal(err)
	}
	return home
}

// beArgs are the flags of the BE subcommands for the BE at ip.
func beArgs(fe *fakefe.FE, ip string) []string {
	return []string{"--fe-host", "127.0.0.1", "--fe-port", fmt.Sprint(fe.Port()), "--address", ip, "--heartbeat-port", "9050", "--poll", "20ms"}
}

// Kubernetes reuses pod IPs: the address this pod last had now belongs to
// another FE, which is alive. It is not this pod's to drop.
func TestFERegisterKeepsALiveFEAtItsOldAddress(t *testing.T) {
	fe := startFE(t)
	fe.Frontends = []fakefe.Frontend{
		{Name: "fe_master", Host: "10.0.0.1", EditLogPort: 9010, Role: "FOLLOWER", IsMaster: true, Alive: true},
		{Name: "fe_other", Host: "10.0.0.2", EditLogPort: 9010, Role: "FOLLOWER", Alive: true},
	}
	state := filepath.Join(t.TempDir(), "address")
	os.WriteFile(state, []byte("10.0.0.2:9010\n"), 0o644)
	run := feRegister(t, fe, "10.0.0.9", state)
	wantExit(t, run, 0)
	wantMembers(t, fe, []string{"10.0.0.1:9010", "10.0.0.2:9010", "10.0.0.9:9010"}, nil)
	wantNoStatement(t, fe, "DROP")
}

// A pod leaving in a scale-down meets one transient FE fault: the
// decommission goes on and the BE leaves the cluster.
func TestBEDecommissionRidesOutATransientFault(t *testing.T) {
	notReady := "Exception, msg: Node catalog is not ready, please wait for a while."
	forward := "ForwardToMasterException, msg: forward to master FE TNetworkAddress(hostname:10.0.0.1, port:9020), statement id: 7 : failed, cause: EOF"
	for name, inject := range map[string]func(*fakefe.FE){
		"SHOW BACKENDS fails":         func(fe *fakefe.FE) { fe.Inject(fakefe.Fault{Match: "SHOW BACKENDS", Times: 1, Message: notReady}) },
		"DECOMMISSION fails":          func(fe *fakefe.FE) { fe.Inject(fakefe.Fault{Match: "DECOMMISSION", Times: 1, Message: forward}) },
		"DECOMMISSION answer is lost": func(fe *fakefe.FE) { fe.Inject(fakefe.Fault{Match: "DECOMMISSION", Times: 1, Kind: fakefe.Reset}) },
		"SHOW BACKENDS answer is cut": func(fe *fakefe.FE) { fe.Inject(fakefe.Fault{Match: "SHOW BACKENDS", Times: 2, Kind: fakefe.Reset}) },
		"the FE is down for a moment": func(fe *fakefe.FE) {
			fe.Down()
			time.AfterFunc(300*time.Millisecond, func() { fe.Up() })
		},
	} {
		t.Run(name, func(t *testing.T) {
			fe := startFE(t)
			fe.Backends = []fakefe.Backend{
				{ID: 1, Host: "10.0.1.4", HeartbeatPort: 9050, Alive: true, TabletNum: 300},
				{ID: 2, Host: "10.0.1.5", HeartbeatPort: 9050, Alive: true, TabletNum: 300},
			}
			api := startAPI(t, pod("lake-be-1", 3600), statefulSet(1, 0))
			inject(fe)
			run := runAgent(t, time.Minute, nil, append([]string{"be-decommission", "--home", beHome(t), "--kubeconfig", api.kubeconfig,
				"--namespace", "default", "--pod-name", "lake-be-1", "--deadline", "30s"}, beArgs(fe, "10.0.1.5")...)...)
			wantExit(t, run, 0, "is decommissioned")
			wantMembers(t, fe, nil, []string{"10.0.1.4:9050"})
		})
	}
}

// ADD FOLLOWER fails once, or races with another registration: the FE ends
// up a member, once.
func TestFERegisterRetriesAddFollower(t *testing.T) {
	for name, fault := range map[string]fakefe.Fault{
		"fails once":  {Match: "ADD FOLLOWER", Times: 1, Message: "Exception, msg: Failed to get master client."},
		"lost answer": {Match: "ADD FOLLOWER", Times: 1, Kind: fakefe.Reset},
		"races":       {Match: "ADD FOLLOWER", Times: 1, Kind: fakefe.Race},
	} {
		t.Run(name, func(t *testing.T) {
			fe := startFE(t)
			fe.Frontends = []fakefe.Frontend{{Name: "fe_master", Host: "10.0.0.1", EditLogPort: 9010, Role: "FOLLOWER", IsMaster: true, Alive: true}}
			fe.Inject(fault)
			run := feRegister(t, fe, "10.0.0.9", filepath.Join(t.TempDir(), "address"))
			wantExit(t, run, 0)
			wantMembers(t, fe, []string{"10.0.0.1:9010", "10.0.0.9:9010"}, nil)
		})
	}
}

// The API server takes the connection and never answers: the command still
// ends by its deadline, and decommissions nothing on a guess.
func TestBEDecommissionEndsByItsDeadlineWhenTheAPIServerStalls(t *testing.T) {
	fe := startFE(t)
	fe.Backends = []fakefe.Backend{{ID: 2, Host: "10.0.1.5", HeartbeatPort: 9050, Alive: true, TabletNum: 300}}
	api := startAPI(t, pod("lake-be-1", 3600), statefulSet(1, 0))
	api.stall()
	run := runAgent(t, 30*time.Second, nil, append([]string{"be-decommission", "--home", beHome(t), "--kubeconfig", api.kubeconfig,
		"--namespace", "default", "--pod-name", "lake-be-1", "--deadline", "2s"}, beArgs(fe, "10.0.1.5")...)...)
	wantExit(t, run, 1, "not decommissioning")
	wantMembers(t, fe, nil, []string{"10.0.1.5:9050"})
}

// A StatefulSet whose ordinals start at 3: its pods are lake-be-3 and
// lake-be-4, and only a pod outside start..start+replicas-1 is leaving.
func TestBEDecommissionCountsFromTheOrdinalsStart(t *testing.T) {
	for _, c := range []struct {
		pod     string
		leaving bool
	}{{"lake-be-4", false}, {"lake-be-3", false}, {"lake-be-5", true}, {"lake-be-2", true}} {
		t.Run(c.pod, func(t *testing.T) {
			fe := startFE(t)
			fe.Backends = []fakefe.Backend{
				{ID: 1, Host: "10.0.1.4", HeartbeatPort: 9050, Alive: true, TabletNum: 300},
				{ID: 2, Host: "10.0.1.5", HeartbeatPort: 9050, Alive: true, TabletNum: 300},
			}
			api := startAPI(t, pod(c.pod, 3600), statefulSet(2, 3))
			run := runAgent(t, time.Minute, nil, append([]string{"be-decommission", "--home", beHome(t), "--kubeconfig", api.kubeconfig,
				"--namespace", "default", "--pod-name", c.pod, "--deadline", "30s"}, beArgs(fe, "10.0.1.5")...)...)
			wantExit(t, run, 0)
			if c.leaving {
				wantMembers(t, fe, nil, []string{"10.0.1.4:9050"})
			} else {
				wantMembers(t, fe, nil, []string{"10.0.1.4:9050", "10.0.1.5:9050"})
				wantNoStatement(t, fe, "DECOMMISSION")
			}
		})
	}
}

// A StatefulSet scaled to 0 or deleted stops the cluster; its BEs keep
// their data for when it comes back, so none is decommissioned.
func TestBEScaleToZeroDecommissionsNothing(t *testing.T) {
	deleted := statefulSet(1, 0)
	deleted["metadata"].(map[string]any)["deletionTimestamp"] = time.Now().UTC().Format(time.RFC3339)
	for name, c := range map[string]struct {
		statefulSet map[string]any
		says        string
	}{
		"scaled to 0":   {statefulSet(0, 0), "is scaled to 0"},
		"being deleted": {deleted, "is being deleted as a whole"},
		"already gone":  {nil, "is being deleted as a whole"},
	} {
		t.Run(name, func(t *testing.T) {
			fe := startFE(t)
			fe.Backends = []fakefe.Backend{{ID: 1, Host: "10.0.1.4", HeartbeatPort: 9050, Alive: true, TabletNum: 300}}
			api := startAPI(t, pod("lake-be-0", 3600), c.statefulSet)
			run := runAgent(t, time.Minute, nil, append([]string{"be-decommission", "--home", beHome(t), "--kubeconfig", api.kubeconfig,
				"--namespace", "default", "--pod-name", "lake-be-0", "--deadline", "30s"}, beArgs(fe, "10.0.1.4")...)...)
			wantExit(t, run, 0, c.says)
			wantMembers(t, fe, nil, []string{"10.0.1.4:9050"})
			wantNoStatement(t, fe, "DECOMMISSION")
		})
	}
}

// A preStop hook also runs when the kubelet restarts a container (a failed
// liveness probe): the pod is not being deleted, so nothing is decommissioned,
// even for an ordinal the StatefulSet no longer keeps.
func TestBEContainerRestartDecommissionsNothing(t *testing.T) {
	fe := startFE(t)
	fe.Backends = []fakefe.Backend{{ID: 1, Host: "10.0.1.5", HeartbeatPort: 9050, Alive: true, TabletNum: 300}}
	restarting := pod("lake-be-5", 3600)
	delete(restarting["metadata"].(map[string]any), "deletionTimestamp")
	api := startAPI(t, restarting, statefulSet(2, 3))
	home := beHome(t)
	run := runAgent(t, time.Minute, nil, append([]string{"be-decommission", "--home", home, "--kubeconfig", api.kubeconfig,
		"--namespace", "default", "--pod-name", "lake-be-5", "--deadline", "30s"}, beArgs(fe, "10.0.1.5")...)...)
	wantExit(t, run, 0, "is not being deleted", "stopped the BE with "+home+"/bin/stop_be.sh --grace")
	wantNoStatement(t, fe, "DECOMMISSION")
	if stopped, _ := os.ReadFile(filepath.Join(home, "stopped")); string(stopped) != "--grace\n" {
		t.Errorf("stop_be.sh ran with %q, want --grace: running queries finish", stopped)
	}
}

// A BE whose pod starts again while Doris is still draining it gets its
// decommission cancelled, and says so.
func TestReturningBECancelsItsDecommission(t *testing.T) {
	fe := startFE(t)
	fe.Stuck = true
	fe.Backends = []fakefe.Backend{
		{ID: 1, Host: "10.0.1.4", HeartbeatPort: 9050, Alive: true, TabletNum: 300},
		{ID: 2, Host: "10.0.1.5", HeartbeatPort: 9050, Alive: true, Decommissioned: true, TabletNum: 120},
	}
	run := runAgent(t, time.Minute, nil, append([]string{"be-register", "--deadline", "30s"}, beArgs(fe, "10.0.1.5")...)...)
	wantExit(t, run, 0, "cancelled")
	wantMembers(t, fe, nil, []string{"10.0.1.4:9050", "10.0.1.5:9050"})
}

// Values from the environment or flags that would change a statement are
// refused before anything is sent.
func TestNothingFromTheEnvironmentChangesAStatement(t *testing.T) {
	fe := []string{"fe-register", "--fe-host", "127.0.0.1", "--edit-log-port", "9010", "--poll", "20ms"}
	be := []string{"be-register", "--fe-host", "127.0.0.1", "--heartbeat-port", "9050", "--deadline", "5s", "--poll", "20ms"}
	for name, c := range map[string]struct {
		env  []string
		args []string
	}{
		"FE role":            {[]string{`DORIS_FE_ROLE=OBSERVER "6.6.6.6:9010" --`}, append(fe, "--address", "10.0.0.9")},
		"FE role lower case": {[]string{"DORIS_FE_ROLE=observer; DROP"}, append(fe, "--address", "10.0.0.9")},
		"FE address":         {nil, append(fe, "--address", `10.0.0.9:9010", "6.6.6.6`)},
		"FE edit log port":   {[]string{"FE_IPADDRESS=10.0.0.9"}, append(fe, "--edit-log-port", "70000")},
		"BE address":         {[]string{`BE_IPADDRESS=10.0.1.5" --`}, be},
		"BE host name":       {nil, append(be, "--address", "be 1.lake")},
		"BE port":            {nil, append(be, "--address", "10.0.1.5", "--heartbeat-port", "0")},
	} {
		t.Run(name, func(t *testing.T) {
			fake := startFE(t)
			fake.Frontends = []fakefe.Frontend{{Name: "fe_master", Host: "10.0.0.1", EditLogPort: 9010, Role: "FOLLOWER", IsMaster: true, Alive: true}}
			port := []string{"--query-port", fmt.Sprint(fake.Port()), "--state-file", filepath.Join(t.TempDir(), "address")}
			if c.args[0] == "be-register" {
				port = []string{"--fe-port", fmt.Sprint(fake.Port())}
			}
			run := runAgent(t, time.Minute, c.env, append(slices.Clone(c.args), port...)...)
			wantExit(t, run, 1)
			wantNoStatement(t, fake, "ALTER")
			wantMembers(t, fake, []string{"10.0.0.1:9010"}, []string{})
		})
	}
}

// A wrong password cannot get better by trying again: the command fails at
// once and says why.
func TestWrongPasswordFailsAtOnce(t *testing.T) {
	fe, err := fakefe.StartWithPassword("secret")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fe.Close)
	run := runAgent(t, 30*time.Second, []string{"DORIS_PASSWORD=wrong"},
		append([]string{"be-register", "--deadline", "10m"}, beArgs(fe, "10.0.1.5")...)...)
	wantExit(t, run, 1, "Error 1045", "Access denied")
	wantMembers(t, fe, nil, []string{})
}

// The FE answers with an error and then stops answering at all: the failure
// names what the FE said, not only the timeout that came last.
func TestFailureNamesTheRealCause(t *testing.T) {
	fe := startFE(t)
	fe.Inject(fakefe.Fault{Match: "SHOW BACKENDS", Times: 2, Message: "Exception, msg: Node catalog is not ready, please wait for a while."})
	fe.Inject(fakefe.Fault{Match: "SHOW BACKENDS", Times: 1000, Kind: fakefe.Hang})
	run := runAgent(t, 30*time.Second, nil, append([]string{"be-register", "--deadline", "2s", "--timeout", "300ms"}, beArgs(fe, "10.0.1.5")...)...)
	lines := strings.Split(strings.TrimSpace(run.output), "\n")
	wantExit(t, ranAgent{exit: run.exit, output: lines[len(lines)-1]}, 1, "Node catalog is not ready", "not registered")
}

// What the MySQL driver logs goes out as the agent's own lines.
func TestEveryLineCarriesTheAgentPrefix(t *testing.T) {
	fe := startFE(t)
	fe.Inject(fakefe.Fault{Match: "SHOW BACKENDS", Times: 2, Kind: fakefe.Reset})
	run := runAgent(t, time.Minute, nil, append([]string{"be-register", "--deadline", "30s"}, beArgs(fe, "10.0.1.5")...)...)
	wantExit(t, run, 0)
	prefix := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ doris-admission agent: `)
	for _, line := range strings.Split(strings.TrimSpace(run.output), "\n") {
		if !prefix.MatchString(line) {
			t.Errorf("a line without the agent's prefix: %q", line)
		}
	}
	if !strings.Contains(run.output, "MySQL driver: ") {
		t.Errorf("the driver's complaint about the cut answer is not in the output:\n%s", run.output)
	}
	wantMembers(t, fe, nil, []string{"10.0.1.5:9050"})
}

// stubAPI is an API server that answers GETs of the objects it holds, or
// takes connections and never answers once stalled.
type stubAPI struct {
	kubeconfig string
	mu         sync.Mutex
	objects    map[string]any
	stalled    chan struct{}
	stalling   bool
}

func (s *stubAPI) stall() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stalling = true
}

func (s *stubAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	object, ok := s.objects[r.URL.Path]
	stalling := s.stalling
	s.mu.Unlock()
	if stalling {
		<-s.stalled
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		json.NewEncoder(w).Encode(map[string]any{"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404,
			"message": r.URL.Path + " not found"})
		return
	}
	json.NewEncoder(w).Encode(object)
}

// startAPI serves a pod and its StatefulSet (none when nil) in namespace
// default.
func startAPI(t *testing.T, pod, statefulSet map[string]any) *stubAPI {
	t.Helper()
	s := &stubAPI{stalled: make(chan struct{}), objects: map[string]any{
		"/api/v1/namespaces/default/pods/" + pod["metadata"].(map[string]any)["name"].(string): pod,
	}}
	if statefulSet != nil {
		s.objects["/apis/apps/v1/namespaces/default/statefulsets/lake-be"] = statefulSet
	}
	server := httptest.NewServer(s)
	t.Cleanup(func() { close(s.stalled); server.Close() })
	s.kubeconfig = filepath.Join(t.TempDir(), "kubeconfig")
	config := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: stub, cluster: {server: %q}}]
users: [{name: stub, user: {token: stub}}]
contexts: [{name: stub, context: {cluster: stub, user: stub}}]
current-context: stub
`, server.URL)
	if err := os.WriteFile(s.kubeconfig, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	return s
}

// pod is a pod of StatefulSet lake-be being deleted, with grace seconds
// to stop, as a pod is when its preStop hook runs.
func pod(name string, grace int) map[string]any {
	deletion := time.Now().Add(time.Duration(grace) * time.Second).UTC().Format(time.RFC3339)
	return map[string]any{"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": name, "namespace": "default", "deletionTimestamp": deletion,
			"ownerReferences": []any{map[string]any{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "lake-be", "uid": "u1", "controller": true}}},
		"spec": map[string]any{"terminationGracePeriodSeconds": grace, "containers": []any{map[string]any{"name": "be", "image": "apache/doris:be-2.1.7"}}}}
}

// statefulSet is StatefulSet lake-be with replicas whose ordinals start at start.
func statefulSet(replicas, start int) map[string]any {
	spec := map[string]any{"replicas": replicas, "serviceName": "lake-be"}
	if start != 0 {
		spec["ordinals"] = map[string]any{"start": start}
	}
	return map[string]any{"apiVersion": "apps/v1", "kind": "StatefulSet",
		"metadata": map[string]any{"name": "lake-be", "namespace": "default", "uid": "u1"}, "spec": spec}
}

// In FQDN mode the built-ins give the pod DORIS_NODE_ADDRESS, and every
// lookup and registration uses that name: an FE listed under its name is a
// member, and no phantom follower is added under its pod IP.
func TestFQDNModeRegistersByName(t *testing.T) {
	fe := startFE(t)
	const name = "doris-fe-0.doris-fe-internal.lake.svc.cluster.local"
	fe.Frontends = []fakefe.Frontend{{Name: "fe_1", Host: name, EditLogPort: 9010, Role: "FOLLOWER", IsMaster: true, Alive: true}}
	run := runAgent(t, time.Minute, []string{"DORIS_NODE_ADDRESS=" + name, "FE_IPADDRESS=10.0.0.9"}, "fe-register", "--fe-host", "127.0.0.1",
		"--query-port", fmt.Sprint(fe.Port()), "--edit-log-port", "9010", "--pod-name", "doris-fe-0", "--state-file", filepath.Join(t.TempDir(), "state"), "--poll", "20ms")
	wantExit(t, run, 0, "this FE ("+name+":9010) is a member of the cluster")
	wantNoStatement(t, fe, "ADD")
	wantMembers(t, fe, []string{name + ":9010"}, nil)

	const be = "doris-be-1.doris-be-internal.lake.svc.cluster.local"
	run = runAgent(t, time.Minute, []string{"DORIS_NODE_ADDRESS=" + be, "BE_IPADDRESS=10.0.1.5"}, "be-register",
		"--fe-host", "127.0.0.1", "--fe-port", fmt.Sprint(fe.Port()), "--heartbeat-port", "9050", "--poll", "20ms")
	wantExit(t, run, 0, "added this BE ("+be+":9050)")
	wantMembers(t, fe, nil, []string{be + ":9050"})
}

// startScript is a start_fe.sh that writes the arguments it was given.
func startScript(t *testing.T) (script, ran string) {
	t.Helper()
	dir := t.TempDir()
	script, ran = filepath.Join(dir, "start_fe.doris.sh"), filepath.Join(dir, "ran")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho \"$@\" > "+ran+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return script, ran
}

// feStart runs fe-start for the FE at 10.0.0.9 in pod doris-fe-1, with the
// FE at port as its cluster (found through localhost) and metaDir.
func feStart(t *testing.T, port int, metaDir, script string, extra ...string) ranAgent {
	args := append([]string{"fe-start", "--peers", "localhost", "--query-port", fmt.Sprint(port), "--address", "10.0.0.9",
		"--edit-log-port", "9010", "--pod-name", "doris-fe-1", "--first-pod", "doris-fe-0", "--meta-dir", metaDir, "--poll", "20ms"}, extra...)
	return runAgent(t, time.Minute, nil, append(args, "--", script, "--daemon")...)
}

// A second FE on an empty meta dir is added at the master, then started
// with --helper naming it; beyond the followers setting it joins as an
// OBSERVER.
func TestFEStartJoinsTheCluster(t *testing.T) {
	for _, tt := range []struct {
		name      string
		followers []string
		role      string
	}{
		{"as a follower", []string{"10.0.0.1"}, "FOLLOWER"},
		{"as an observer beyond three followers", []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"}, "OBSERVER"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fe := startFE(t)
			for i, host := range tt.followers {
				fe.Frontends = append(fe.Frontends, fakefe.Frontend{Name: fmt.Sprint("fe_", i), Host: host, EditLogPort: 9010, Role: "FOLLOWER", IsMaster: i == 0, Alive: true})
			}
			script, ran := startScript(t)
			run := feStart(t, fe.Port(), t.TempDir(), script)
			wantExit(t, run, 0, "added this FE (10.0.0.9:9010) as "+tt.role, "starting the FE: "+script+" --daemon --helper 10.0.0.1:9010")
			if got, _ := os.ReadFile(ran); string(got) != "--daemon --helper 10.0.0.1:9010\n" {
				t.Errorf("start_fe.sh ran with %q, want --daemon --helper 10.0.0.1:9010", got)
			}
			if got := fe.StatementsMatching("ADD " + tt.role); len(got) != 1 {
				t.Errorf("statements %v, want one ADD %s", fe.Statements, tt.role)
			}
		})
	}
}

// An FE whose meta dir holds its cluster starts as it is: no statement, no
// helper.
func TestFEStartWithItsMetaDirStartsAsItIs(t *testing.T) {
	fe := startFE(t)
	meta := t.TempDir()
	if err := os.MkdirAll(filepath.Join(meta, "image"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(meta, "image", "ROLE"), []byte("role=FOLLOWER\nname=fe_1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	script, ran := startScript(t)
	wantExit(t, feStart(t, fe.Port(), meta, script), 0, "holds this FE's cluster")
	if got, _ := os.ReadFile(ran); string(got) != "--daemon\n" {
		t.Errorf("start_fe.sh ran with %q, want --daemon alone", got)
	}
	if len(fe.Statements) != 0 {
		t.Errorf("statements %v, want none", fe.Statements)
	}
}

// When no FE answers, only the first pod starts, and founds the cluster;
// another FE waits until its deadline and is not started, so it never
// founds a second cluster.
func TestFEStartFoundsOnlyFromTheFirstPod(t *testing.T) {
	fe := startFE(t)
	port := fe.Port()
	fe.Close()
	script, ran := startScript(t)
	run := feStart(t, port, t.TempDir(), script, "--pod-name", "doris-fe-0")
	wantExit(t, run, 0, "this is its first FE: it founds the cluster")
	if got, _ := os.ReadFile(ran); string(got) != "--daemon\n" {
		t.Errorf("the first FE's start_fe.sh ran with %q, want --daemon alone", got)
	}
	os.Remove(ran)
	run = feStart(t, port, t.TempDir(), script, "--deadline", "1s")
	wantExit(t, run, 1, "an FE other than the first never founds a cluster", "this FE (10.0.0.9:9010) did not join its cluster and was not started")
	if _, err := os.Stat(ran); err == nil {
		t.Error("start_fe.sh ran for an FE that found no cluster")
	}
}

// wrap-start copies the bin dir and puts a start_fe.sh in front of Doris'
// own that runs fe-start.
func TestWrapStart(t *testing.T) {
	from, to := t.TempDir(), t.TempDir()
	for name, text := range map[string]string{"start_fe.sh": "doris start", "stop_fe.sh": "doris stop"} {
		if err := os.WriteFile(filepath.Join(from, name), []byte(text), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	wantExit(t, runAgent(t, time.Minute, nil, "wrap-start", "--from", from, "--to", to), 0, "copied the FE's bin dir")
	for name, want := range map[string]string{"start_fe.doris.sh": "doris start", "stop_fe.sh": "doris stop"} {
		if got, _ := os.ReadFile(filepath.Join(to, name)); string(got) != want {
			t.Errorf("%s is %q, want %q", name, got, want)
		}
	}
	wrapper, _ := os.ReadFile(filepath.Join(to, "start_fe.sh"))
	if !strings.Contains(string(wrapper), `fe-start -- "$(dirname "$0")/start_fe.doris.sh" "$@"`) {
		t.Errorf("start_fe.sh does not run fe-start with Doris' script:\n%s", wrapper)
	}
	wantExit(t, runAgent(t, time.Minute, nil, "wrap-start", "--from", t.TempDir(), "--to", to), 1, "has no start_fe.sh")
}

// fe-stop --grace (Doris 2.0 and later) stops the FE with stop_fe.sh
// --grace, SIGTERM instead of SIGKILL; without it, stop_fe.sh alone.
func TestFEStopGrace(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{{nil, "\n"}, {[]string{"--grace"}, "--grace\n"}} {
		home := stopHome(t, "stop_fe.sh")
		wantExit(t, runAgent(t, time.Minute, nil, append([]string{"fe-stop", "--home", home}, tt.args...)...), 0, "stopped the FE with")
		if got, _ := os.ReadFile(filepath.Join(home, "stopped")); string(got) != tt.want {
			t.Errorf("fe-stop %v ran stop_fe.sh with %q, want %q", tt.args, got, tt.want)
		}
	}
}
