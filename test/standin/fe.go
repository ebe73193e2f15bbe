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
	ready         bool
}

// runFE starts the FE as fe/.../catalog/Env.java initialize does: read the
// conf, pick the address, find the node's role and name in the meta dir or
// found a cluster, then serve the query port (MySQL), the HTTP port and
// the edit log and RPC ports, and heartbeat the cluster's nodes.
func runFE(ctx context.Context, home, helper string) error {
	c, self, err := readNode(home, "fe.conf")
	if err != nil {
		return err
	}
	fe := &frontend{home: home, self: self, editLogPort: c.port("edit_log_port", 9010), metaDir: c["meta_dir"]}
	if fe.metaDir == "" {
		fe.metaDir = filepath.Join(home, "doris-meta")
	}
	log.Printf("INFO this FE is %s:%d", self, fe.editLogPort)
	if helper != "" && helper != fmt.Sprintf("%s:%d", self, fe.editLogPort) {
		return errors.New("the stand-in does not play joining a cluster through --helper yet")
	}
	if fe.cluster, err = fakefe.StartOn(fmt.Sprintf(":%d", c.port("query_port", 9030))); err != nil {
		return err
	}
	defer fe.cluster.Close()
	if err := fe.loadOrFound(); err != nil {
		return err
	}
	for _, port := range []int{fe.editLogPort, c.port("rpc_port", 9020)} {
		if err := listenAndDrop(ctx, port); err != nil {
			return err
		}
	}
	go fe.serveHTTP(ctx, c.port("http_port", 8030))
	fe.ready = true
	log.Printf("INFO the FE is ready")
	fe.heartbeat(ctx)
	return nil
}

// state is what the master keeps of the cluster in its meta dir (Doris
// keeps it in its image and BDBJE journal).
type state struct {
	ClusterID string            `json:"clusterId"`
	Frontends []fakefe.Frontend `json:"frontends"`
	Backends  []fakefe.Backend  `json:"backends"`
}

func (fe *frontend) statePath() string { return filepath.Join(fe.metaDir, "standin-cluster.json") }

// loadOrFound reads the cluster from the meta dir, or founds one on an
// empty meta dir with no helper (Env.getClusterIdAndRole: the first FE
// writes image/ROLE and image/VERSION). An FE whose address is not in the
// cluster it finds there exits, as Env.java does on becoming master.
func (fe *frontend) loadOrFound() error {
	data, err := os.ReadFile(fe.statePath())
	if errors.Is(err, os.ErrNotExist) {
		return fe.found()
	}
	if err != nil {
		return err
	}
	var s state
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("the meta dir's cluster is unreadable: %w", err)
	}
	for _, f := range s.Frontends {
		if f.Host == fe.self && f.EditLogPort == fe.editLogPort {
			fe.cluster.Lock()
			fe.cluster.Frontends, fe.cluster.Backends = s.Frontends, s.Backends
			fe.cluster.Unlock()
			fe.clusterID = s.ClusterID
			log.Printf("INFO this FE is %s in cluster %s", f.Name, s.ClusterID)
			return nil
		}
	}
	//lint:ignore ST1005 Doris' own message, word for word (Env.java).
	return fmt.Errorf("current node %s:%d is not added to the cluster, will exit. Your FE IP maybe changed, please set 'priority_networks' config in fe.conf properly.", fe.self, fe.editLogPort)
}

func (fe *frontend) found() error {
	name, cluster := "fe_"+randomHex(8), randomHex(4)
	fe.clusterID = cluster
	if err := os.MkdirAll(filepath.Join(fe.metaDir, "image"), 0o755); err != nil {
		return err
	}
	files := map[string]string{"ROLE": "role=FOLLOWER\nname=" + name + "\n", "VERSION": "clusterId=" + cluster + "\n"}
	for file, data := range files {
		if err := os.WriteFile(filepath.Join(fe.metaDir, "image", file), []byte(data), 0o644); err != nil {
			return err
		}
	}
	fe.cluster.Lock()
	fe.cluster.Frontends = []fakefe.Frontend{{Name: name, Host: fe.self, EditLogPort: fe.editLogPort, Role: "FOLLOWER", IsMaster: true, Alive: true}}
	fe.cluster.Unlock()
	log.Printf("INFO founded cluster %s as %s on an empty meta dir", cluster, name)
	return fe.save()
}

// save writes the cluster to the meta dir.
func (fe *frontend) save() error {
	frontends, backends := fe.cluster.Snapshot()
	data, err := json.Marshal(state{ClusterID: fe.clusterID, Frontends: frontends, Backends: backends})
	if err != nil {
		return err
	}
	return os.WriteFile(fe.statePath(), data, 0o644)
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

// serveHTTP answers /api/health as the FE does (httpv2/rest/HealthAction):
// 503 "Server is not ready" until it is ready, then the backend counts.
func (fe *frontend) serveHTTP(ctx context.Context, port int) {
	mux := http.NewServeMux()
	mux.HandleFunc("/api/health", func(w http.ResponseWriter, _ *http.Request) {
		if !fe.ready {
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
