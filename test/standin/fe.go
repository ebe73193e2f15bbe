package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/doris-admission/doris-admission/test/fakefe"
)

// frontend is a running stand-in FE.
type frontend struct {
	home, metaDir string
	self          string
	clusterID     string
	editLogPort   int
	cluster       *fakefe.FE
	ready         atomic.Bool
	// master is the master's host:edit_log_port; empty on the master.
	master string
}

// runFE starts the FE as fe/.../catalog/Env.java initialize does: read the
// conf, pick the address, find the node's role and name in the meta dir,
// found a cluster or join one through the helper, then serve the query port
// (MySQL), the HTTP port and the edit log and RPC ports. The master
// heartbeats the cluster's nodes; a follower replays the master's journal
// and forwards what changes the cluster to it.
func runFE(ctx context.Context, home, helper string) error {
	c, self, err := readNode(home, "fe.conf")
	if err != nil {
		return err
	}
	fe := &frontend{home: home, self: self, editLogPort: c.port("edit_log_port", 9010), metaDir: c["meta_dir"]}
	if fe.metaDir == "" {
		fe.metaDir = filepath.Join(home, "doris-meta")
	}
	log.Printf("INFO this FE is %s", fe.address())
	if helper == fe.address() {
		//lint:ignore ST1005 Doris' own message, word for word (Env.getHelperNodes).
		return errors.New("Do not specify the helper node to FE itself. Please specify it to the existing running Leader or Follower FE")
	}
	s, err := fe.loadFoundOrJoin(ctx, helper)
	if err != nil {
		return err
	}
	// The ports open once the FE knows its cluster, as Doris opens them
	// once its catalog is ready: a joining FE takes no statements.
	if fe.cluster, err = fakefe.StartOn(fmt.Sprintf(":%d", c.port("query_port", 9030))); err != nil {
		return err
	}
	defer fe.cluster.Close()
	fe.cluster.Lock()
	// The stand-in drains decommissioned BEs over time (balance), not per SHOW.
	fe.cluster.Stuck = true
	if fe.master != "" {
		fe.cluster.Forward = fe.forward
	}
	fe.cluster.Unlock()
	fe.replace(s)
	if err := fe.save(); err != nil {
		return err
	}
	go fe.serveJournal(ctx)
	if err := listenAndDrop(ctx, c.port("rpc_port", 9020)); err != nil {
		return err
	}
	go fe.serveHTTP(ctx, c.port("http_port", 8030))
	fe.ready.Store(true)
	log.Printf("INFO the FE is ready")
	if fe.master == "" {
		fe.heartbeat(ctx)
	} else {
		fe.replay(ctx)
	}
	return nil
}

func (fe *frontend) address() string {
	return net.JoinHostPort(fe.self, strconv.Itoa(fe.editLogPort))
}

// state is what the master keeps of the cluster in its meta dir (Doris
// keeps it in its image and BDBJE journal), and what a follower replays.
type state struct {
	ClusterID string            `json:"clusterId"`
	Frontends []fakefe.Frontend `json:"frontends"`
	Backends  []fakefe.Backend  `json:"backends"`
}

func (fe *frontend) statePath() string { return filepath.Join(fe.metaDir, "standin-cluster.json") }

// loadFoundOrJoin reads the cluster from the meta dir (the helper is then
// ignored, Env.getClusterIdAndRole), founds one on an empty meta dir with
// no helper, or joins through the helper.
func (fe *frontend) loadFoundOrJoin(ctx context.Context, helper string) (state, error) {
	var s state
	data, err := os.ReadFile(fe.statePath())
	switch {
	case errors.Is(err, os.ErrNotExist) && helper == "":
		s, err = fe.found()
	case errors.Is(err, os.ErrNotExist):
		s, err = fe.join(ctx, helper)
	case err == nil:
		if err := json.Unmarshal(data, &s); err != nil {
			return s, fmt.Errorf("the meta dir's cluster is unreadable: %w", err)
		}
	}
	if err != nil {
		return s, err
	}
	return s, fe.take(s)
}

// take makes s this FE's cluster. An FE whose address is not in it exits,
// as Env.java does (on becoming master; a follower's BDBJE node cannot join
// the group under another address either).
func (fe *frontend) take(s state) error {
	var me *fakefe.Frontend
	for i, f := range s.Frontends {
		if f.Address() == fe.address() {
			me = &s.Frontends[i]
		}
	}
	if me == nil {
		//lint:ignore ST1005 Doris' own message, word for word (Env.java).
		return fmt.Errorf("current node %s is not added to the cluster, will exit. Your FE IP maybe changed, please set 'priority_networks' config in fe.conf properly.", fe.address())
	}
	fe.master = ""
	for _, f := range s.Frontends {
		if f.IsMaster && f.Address() != fe.address() {
			fe.master = f.Address()
		}
	}
	log.Printf("INFO this FE is %s (%s) in cluster %s; master: %s", me.Name, me.Role, s.ClusterID, or(fe.master, "this FE"))
	return nil
}

func (fe *frontend) replace(s state) {
	fe.cluster.Lock()
	fe.cluster.Frontends, fe.cluster.Backends = s.Frontends, s.Backends
	fe.cluster.Unlock()
	fe.clusterID = s.ClusterID
}

func (fe *frontend) found() (state, error) {
	name, cluster := "fe_"+randomHex(8), randomHex(4)
	log.Printf("INFO founding cluster %s as %s on an empty meta dir", cluster, name)
	return state{ClusterID: cluster, Frontends: []fakefe.Frontend{
		{Name: name, Host: fe.self, EditLogPort: fe.editLogPort, Role: "FOLLOWER", IsMaster: true, Alive: true}}}, fe.writeRole("FOLLOWER", name, cluster)
}

// join asks the helper for the cluster until the master has added this FE
// (Env.getClusterIdAndRoleFromHelperNode; until then Doris logs the line
// below and retries), then takes its role and name from there.
func (fe *frontend) join(ctx context.Context, helper string) (state, error) {
	for {
		s, err := fetchJournal(ctx, helper)
		if err == nil {
			for _, f := range s.Frontends {
				if f.Address() == fe.address() {
					log.Printf("INFO joining cluster %s through helper %s", s.ClusterID, helper)
					return s, fe.writeRole(f.Role, f.Name, s.ClusterID)
				}
			}
			log.Printf("WARN current node is not added to the group. please add it first. (helper %s)", helper)
		} else {
			log.Printf("WARN failed to get the cluster from helper %s: %v", helper, err)
		}
		select {
		case <-ctx.Done():
			return state{}, ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
}

// writeRole writes image/ROLE and image/VERSION as Env.getClusterIdAndRole
// does on an FE's first start.
func (fe *frontend) writeRole(role, name, cluster string) error {
	if err := os.MkdirAll(filepath.Join(fe.metaDir, "image"), 0o755); err != nil {
		return err
	}
	files := map[string]string{"ROLE": "role=" + role + "\nname=" + name + "\n", "VERSION": "clusterId=" + cluster + "\n"}
	for file, data := range files {
		if err := os.WriteFile(filepath.Join(fe.metaDir, "image", file), []byte(data), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// save writes the cluster to the meta dir.
func (fe *frontend) save() error {
	data, err := json.Marshal(fe.state())
	if err != nil {
		return err
	}
	return os.WriteFile(fe.statePath(), data, 0o644)
}

func (fe *frontend) state() state {
	frontends, backends := fe.cluster.Snapshot()
	return state{ClusterID: fe.clusterID, Frontends: frontends, Backends: backends}
}

// heartbeat is the master's heartbeat (system/HeartbeatMgr.java): every
// few seconds each node is reached on its heartbeat (BE) or edit log (FE)
// port, and Alive says whether it answered.
func (fe *frontend) heartbeat(ctx context.Context) {
	for {
		// Reached without the lock: statements go on meanwhile.
		frontends, backends := fe.cluster.Snapshot()
		alive := map[string]bool{net.JoinHostPort(fe.self, strconv.Itoa(fe.editLogPort)): true}
		for _, f := range frontends {
			if a := f.Address(); !alive[a] {
				alive[a] = answers(a)
			}
		}
		for _, b := range backends {
			alive[b.Address()] = answers(b.Address())
		}
		fe.cluster.Lock()
		for i := range fe.cluster.Frontends {
			fe.cluster.Frontends[i].Alive = alive[fe.cluster.Frontends[i].Address()]
		}
		for i := range fe.cluster.Backends {
			fe.cluster.Backends[i].Alive = alive[fe.cluster.Backends[i].Address()]
		}
		fe.balance()
		fe.cluster.Unlock()
		if err := fe.save(); err != nil {
			log.Printf("WARN saving the cluster: %v", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(2 * time.Second):
		}
	}
}

// Tablets: what a BE holds once the tablet scheduler has balanced onto it,
// and how many a decommission moves away per heartbeat.
const (
	tabletsPerBackend   = 30
	tabletsMovedPerTick = 10
)

// balance plays the tablet scheduler (clone/TabletScheduler.java): an alive
// BE gets its share of tablets; a decommissioned BE's tablets move to the
// other alive BEs, a few each round, and never when there is none to take
// them; an empty decommissioned BE is dropped (alter/SystemHandler.java,
// drop_backend_after_decommission = true). The caller holds the lock.
func (fe *frontend) balance() {
	targets := 0
	for i, b := range fe.cluster.Backends {
		if b.Alive && !b.Decommissioned {
			targets++
			if b.TabletNum == 0 {
				fe.cluster.Backends[i].TabletNum = tabletsPerBackend
			}
		}
	}
	kept := fe.cluster.Backends[:0]
	for _, b := range fe.cluster.Backends {
		if b.Decommissioned && targets > 0 {
			b.TabletNum = max(0, b.TabletNum-tabletsMovedPerTick)
			if b.TabletNum == 0 {
				log.Printf("INFO backend %s is decommissioned and empty: dropped", b.Address())
				continue
			}
		}
		kept = append(kept, b)
	}
	fe.cluster.Backends = kept
}

// serveHTTP answers /api/health as the FE does (httpv2/rest/HealthAction):
// 503 "Server is not ready" until it is ready, then the backend counts.
func (fe *frontend) serveHTTP(ctx context.Context, port int) {
	mux := http.NewServeMux()
	mux.HandleFunc("/api/health", func(w http.ResponseWriter, _ *http.Request) {
		if !fe.ready.Load() {
			http.Error(w, "Server is not ready", http.StatusServiceUnavailable)
			return
		}
		_, backends := fe.cluster.Snapshot()
		online := 0
		for _, b := range backends {
			if b.Alive {
				online++
			}
		}
		json.NewEncoder(w).Encode(map[string]any{"code": 0, "msg": "success",
			"data": map[string]int{"total_backend_num": len(backends), "online_backend_num": online}})
	})
	serve(ctx, port, mux)
}

func serve(ctx context.Context, port int, handler http.Handler) {
	server := &http.Server{Addr: ":" + strconv.Itoa(port), Handler: handler}
	go func() {
		<-ctx.Done()
		server.Close()
	}()
	if err := server.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Printf("ERROR serving HTTP on %d: %v", port, err)
	}
}

// listenAndDrop opens a port that takes connections and closes them: the
// thrift and BDBJE ports, which only need to be open here.
func listenAndDrop(ctx context.Context, port int) error {
	l, err := net.Listen("tcp", ":"+strconv.Itoa(port))
	if err != nil {
		return err
	}
	go func() {
		<-ctx.Done()
		l.Close()
	}()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return nil
}

// answers tells whether address (host:port) takes a connection.
func answers(address string) bool {
	c, err := net.DialTimeout("tcp", address, time.Second)
	if err == nil {
		c.Close()
	}
	return err == nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
