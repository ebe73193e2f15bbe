// Package fakefe is a fake Apache Doris FE for tests: it speaks the real
// MySQL wire protocol (through the vitess protocol layer), keeps the
// frontends and backends of a cluster, carries out the ALTER SYSTEM
// statements the agent sends, drains the tablets of a decommissioned BE over
// time, and can be made slow, stuck, unreachable or faulty: a statement can
// fail, lose its answer or never be answered (see Inject), and a password
// can be required.
package fakefe

import (
	"context"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dolthub/vitess/go/mysql"
	"github.com/dolthub/vitess/go/sqltypes"
	querypb "github.com/dolthub/vitess/go/vt/proto/query"
	"github.com/dolthub/vitess/go/vt/sqlparser"
)

// Frontend is one FE of the fake cluster.
type Frontend struct {
	Name        string
	Host        string
	HostName    string // shown only in the legacy layout
	EditLogPort int
	Role        string // FOLLOWER or OBSERVER
	IsMaster    bool
	Alive       bool
}

// Address is host:edit_log_port, the FE's identity.
func (f Frontend) Address() string { return net.JoinHostPort(f.Host, strconv.Itoa(f.EditLogPort)) }

// Backend is one BE of the fake cluster.
type Backend struct {
	ID             int64
	Host           string
	HeartbeatPort  int
	Alive          bool
	Decommissioned bool
	TabletNum      int64
}

// Address is host:heartbeat_port, the BE's identity.
func (b Backend) Address() string { return net.JoinHostPort(b.Host, strconv.Itoa(b.HeartbeatPort)) }

// FE is a running fake FE. Its fields may be changed between statements
// under Lock/Unlock or with the helper methods.
type FE struct {
	mu sync.Mutex
	// Legacy answers SHOW FRONTENDS with the IP and HostName columns of
	// Doris before 2.0 instead of Host.
	Legacy    bool
	Frontends []Frontend
	Backends  []Backend
	// Delay holds every answer back this long.
	Delay time.Duration
	// Stuck keeps decommissioned BEs from ever draining (as when no other
	// BE can take their replicas).
	Stuck bool
	// DrainPerShow is how many tablets a decommissioned BE loses each time
	// SHOW BACKENDS is asked; at 0 the BE is dropped.
	DrainPerShow int64
	// Statements lists every statement received, in order.
	Statements []string
	// Forward, when set, carries out every statement that changes the
	// cluster in place of this FE, as a follower forwards it to the master
	// (qe/MasterOpExecutor.java); SHOW is answered here, from what this FE
	// has replayed.
	Forward func(statement string) error

	faults   []*Fault
	auth     mysql.AuthServer
	host     string
	port     int
	listener *mysql.Listener
	conns    map[*mysql.Conn]bool
	// closed is closed when the FE is closed for good: hung answers end.
	closed chan struct{}
	nextID int64
}

// Start serves a fake FE on a loopback port that accepts any password.
func Start() (*FE, error) {
	return start(mysql.NewAuthServerNone())
}

// StartWithPassword serves a fake FE whose user root must give password,
// and is refused with MySQL error 1045 otherwise, as Doris refuses a login.
func StartWithPassword(password string) (*FE, error) {
	config := fmt.Sprintf(`{"root": [{"Password": %q}]}`, password)
	return start(mysql.NewAuthServerStatic("", config, 0))
}

// StartOn serves a fake FE at address (host:port) that accepts any
// password: the MySQL side of the Doris stand-in (test/standin).
func StartOn(address string) (*FE, error) {
	return startOn(address, mysql.NewAuthServerNone())
}

func start(auth mysql.AuthServer) (*FE, error) {
	return startOn("127.0.0.1:0", auth)
}

func startOn(address string, auth mysql.AuthServer) (*FE, error) {
	fe := &FE{DrainPerShow: 100, nextID: 10001, auth: auth, conns: map[*mysql.Conn]bool{}, closed: make(chan struct{})}
	if err := fe.listen(address); err != nil {
		return nil, err
	}
	fe.host, _, _ = net.SplitHostPort(address)
	fe.port = fe.listener.Addr().(*net.TCPAddr).Port
	return fe, nil
}

func (fe *FE) listen(address string) error {
	l, err := mysql.NewListener("tcp", address, fe.auth, &handler{fe}, time.Minute, time.Minute)
	if err != nil {
		return err
	}
	fe.mu.Lock()
	fe.listener = l
	fe.mu.Unlock()
	go l.Accept()
	return nil
}

// Port is the port the fake FE's MySQL protocol listens on.
func (fe *FE) Port() int { return fe.port }

// Close makes the FE unreachable for good: connections are refused from now
// on, open ones are cut and answers held back by a Hang fault end.
func (fe *FE) Close() {
	fe.Down()
	fe.mu.Lock()
	defer fe.mu.Unlock()
	select {
	case <-fe.closed:
	default:
		close(fe.closed)
	}
}

// Down takes the FE off the network, as in an outage: open connections are
// cut and new ones refused, until Up.
func (fe *FE) Down() {
	fe.mu.Lock()
	defer fe.mu.Unlock()
	fe.listener.Close()
	for c := range fe.conns {
		c.Close()
	}
}

// Up brings the FE back on its port after Down.
func (fe *FE) Up() error {
	return fe.listen(net.JoinHostPort(fe.host, strconv.Itoa(fe.port)))
}

// FaultKind is what a Fault does to a statement it hits.
type FaultKind int

const (
	// Fail answers with the fault's MySQL error; the statement is not carried out.
	Fail FaultKind = iota
	// Reset carries the statement out, then cuts the connection in the
	// middle of the answer (after the column definitions of a result set):
	// the client cannot tell whether it took effect.
	Reset
	// Hang never answers (until the FE is closed); the statement is not
	// carried out.
	Hang
	// Race carries the statement out once as if another client had sent it
	// just before, then carries it out again for this one, as when two
	// registrations race.
	Race
)

// Fault makes the next Times statements that contain Match (case-insensitive)
// go wrong in the way Kind says.
type Fault struct {
	Match string
	Times int
	Kind  FaultKind
	// Code and Message are the MySQL error a Fail answers with (default
	// 1105, Doris' code for its own errors).
	Code    int
	Message string
}

// Inject adds a fault; faults are matched in the order they were added.
func (fe *FE) Inject(f Fault) {
	fe.mu.Lock()
	defer fe.mu.Unlock()
	fe.faults = append(fe.faults, &f)
}

// fault returns the fault that hits statement, counting it, or nil.
func (fe *FE) fault(statement string) *Fault {
	for _, f := range fe.faults {
		if f.Times > 0 && strings.Contains(strings.ToUpper(statement), strings.ToUpper(f.Match)) {
			f.Times--
			return f
		}
	}
	return nil
}

func (f *Fault) err() error {
	code := f.Code
	if code == 0 {
		code = mysql.ERUnknownError
	}
	return mysql.NewSQLError(code, "HY000", "%s", f.Message)
}

// Lock and Unlock guard the state between statements.
func (fe *FE) Lock()   { fe.mu.Lock() }
func (fe *FE) Unlock() { fe.mu.Unlock() }

// Snapshot returns copies of the frontends and backends.
func (fe *FE) Snapshot() ([]Frontend, []Backend) {
	fe.mu.Lock()
	defer fe.mu.Unlock()
	return append([]Frontend(nil), fe.Frontends...), append([]Backend(nil), fe.Backends...)
}

// StatementsMatching returns the statements received that contain s.
func (fe *FE) StatementsMatching(s string) []string {
	fe.mu.Lock()
	defer fe.mu.Unlock()
	var out []string
	for _, st := range fe.Statements {
		if strings.Contains(st, s) {
			out = append(out, st)
		}
	}
	return out
}

var (
	alterFrontend = regexp.MustCompile(`(?i)^ALTER SYSTEM (ADD|DROP) (FOLLOWER|OBSERVER) "([^"]+):(\d+)"$`)
	alterBackend  = regexp.MustCompile(`(?i)^ALTER SYSTEM (ADD|DECOMMISSION|DROPP) BACKEND "([^"]+):(\d+)"$`)
	cancelBackend = regexp.MustCompile(`(?i)^CANCEL (DECOMMISSION) BACKEND "([^"]+):(\d+)"$`)
)

// answer carries out statement here or, when it changes the cluster and
// Forward is set, at the master.
func (fe *FE) answer(statement string, fault *Fault) (*sqltypes.Result, error) {
	fe.mu.Lock()
	forward := fe.Forward
	fe.mu.Unlock()
	if forward != nil && !strings.HasPrefix(strings.ToUpper(statement), "SHOW ") {
		return &sqltypes.Result{}, forward(statement)
	}
	fe.mu.Lock()
	defer fe.mu.Unlock()
	if fault != nil && fault.Kind == Race {
		fe.execute(statement)
	}
	return fe.execute(statement)
}

// Execute carries out statement as if a client had sent it, and returns
// the MySQL error it would get: what a master does with a forwarded one.
func (fe *FE) Execute(statement string) error {
	fe.mu.Lock()
	defer fe.mu.Unlock()
	_, err := fe.execute(statement)
	return err
}

// execute carries out one statement and returns its result. The caller
// holds the lock.
func (fe *FE) execute(statement string) (*sqltypes.Result, error) {
	switch upper := strings.ToUpper(statement); {
	case upper == "SHOW FRONTENDS":
		return fe.showFrontends(), nil
	case upper == "SHOW BACKENDS":
		fe.drain()
		return fe.showBackends(), nil
	case alterFrontend.MatchString(statement):
		m := alterFrontend.FindStringSubmatch(statement)
		port, _ := strconv.Atoi(m[4])
		return &sqltypes.Result{}, fe.alterFrontend(strings.ToUpper(m[1]), strings.ToUpper(m[2]), m[3], port)
	case alterBackend.MatchString(statement):
		m := alterBackend.FindStringSubmatch(statement)
		port, _ := strconv.Atoi(m[3])
		return &sqltypes.Result{}, fe.alterBackend(strings.ToUpper(m[1]), m[2], port)
	case cancelBackend.MatchString(statement):
		m := cancelBackend.FindStringSubmatch(statement)
		port, _ := strconv.Atoi(m[3])
		return &sqltypes.Result{}, fe.alterBackend("CANCEL", m[2], port)
	default:
		return nil, mysql.NewSQLError(mysql.ERUnknownError, "HY000", "fake FE: unsupported statement: %s", statement)
	}
}

func (fe *FE) alterFrontend(verb, role, host string, port int) error {
	i := fe.frontend(host, port)
	switch {
	case verb == "ADD" && i >= 0:
		return mysql.NewSQLError(mysql.ERUnknownError, "HY000", "frontend already exists: %s:%d", host, port)
	case verb == "ADD":
		fe.Frontends = append(fe.Frontends, Frontend{Name: fmt.Sprintf("fe_%s_%d", host, port), Host: host, EditLogPort: port, Role: role, Alive: true})
	case i < 0:
		return mysql.NewSQLError(mysql.ERUnknownError, "HY000", "frontend does not exist: %s:%d", host, port)
	default:
		fe.Frontends = append(fe.Frontends[:i], fe.Frontends[i+1:]...)
	}
	return nil
}

func (fe *FE) alterBackend(verb, host string, port int) error {
	i := fe.backend(host, port)
	switch {
	case verb == "ADD" && i >= 0:
		return mysql.NewSQLError(mysql.ERUnknownError, "HY000", "Same backend already exists[%s:%d]", host, port)
	case verb == "ADD":
		fe.Backends = append(fe.Backends, Backend{ID: fe.nextID, Host: host, HeartbeatPort: port, Alive: true})
		fe.nextID++
	case i < 0:
		return mysql.NewSQLError(mysql.ERUnknownError, "HY000", "backend does not exist: %s:%d", host, port)
	case verb == "DECOMMISSION":
		fe.Backends[i].Decommissioned = true
	case verb == "CANCEL":
		fe.Backends[i].Decommissioned = false
	default: // DROPP
		fe.Backends = append(fe.Backends[:i], fe.Backends[i+1:]...)
	}
	return nil
}

// drain moves tablets off decommissioned BEs and drops the empty ones.
func (fe *FE) drain() {
	if fe.Stuck {
		return
	}
	kept := fe.Backends[:0]
	for _, b := range fe.Backends {
		if b.Decommissioned {
			b.TabletNum = max(0, b.TabletNum-fe.DrainPerShow)
			if b.TabletNum == 0 {
				continue
			}
		}
		kept = append(kept, b)
	}
	fe.Backends = kept
}

func (fe *FE) frontend(host string, port int) int {
	for i, f := range fe.Frontends {
		if f.Host == host && f.EditLogPort == port {
			return i
		}
	}
	return -1
}

func (fe *FE) backend(host string, port int) int {
	for i, b := range fe.Backends {
		if b.Host == host && b.HeartbeatPort == port {
			return i
		}
	}
	return -1
}

// showFrontends answers in the column layout of Doris 2.x/3.x, or of 1.x
// when Legacy is set; LastHeartbeat is NULL for an FE never heard from.
func (fe *FE) showFrontends() *sqltypes.Result {
	columns := []string{"Name", "Host", "EditLogPort", "HttpPort", "QueryPort", "RpcPort", "ArrowFlightSqlPort", "Role", "IsMaster",
		"ClusterId", "Join", "Alive", "ReplayedJournalId", "LastStartTime", "LastHeartbeat", "IsHelper", "ErrMsg", "Version", "CurrentConnected"}
	if fe.Legacy {
		columns = []string{"Name", "IP", "HostName", "EditLogPort", "HttpPort", "QueryPort", "RpcPort", "Role", "IsMaster",
			"ClusterId", "Join", "Alive", "ReplayedJournalId", "LastHeartbeat", "IsHelper", "ErrMsg", "Version"}
	}
	var rows []map[string]sqltypes.Value
	for _, f := range fe.Frontends {
		heartbeat := sqltypes.NULL
		if f.Alive {
			heartbeat = sqltypes.NewVarChar("2026-11-23 07:00:00")
		}
		rows = append(rows, map[string]sqltypes.Value{
			"Name": str(f.Name), "Host": str(f.Host), "IP": str(f.Host), "HostName": str(f.HostName),
			"EditLogPort": num(int64(f.EditLogPort)), "HttpPort": num(8030), "QueryPort": num(9030), "RpcPort": num(9020),
			"ArrowFlightSqlPort": num(-1), "Role": str(f.Role), "IsMaster": boolean(f.IsMaster), "ClusterId": num(1),
			"Join": boolean(true), "Alive": boolean(f.Alive), "ReplayedJournalId": num(100), "LastStartTime": heartbeat,
			"LastHeartbeat": heartbeat, "IsHelper": boolean(true), "ErrMsg": str(""), "Version": str("doris-2.1.7"),
			"CurrentConnected": str("No"),
		})
	}
	return table(columns, rows)
}

func (fe *FE) showBackends() *sqltypes.Result {
	columns := []string{"BackendId", "Host", "HeartbeatPort", "BePort", "HttpPort", "BrpcPort", "ArrowFlightSqlPort", "LastStartTime",
		"LastHeartbeat", "Alive", "SystemDecommissioned", "TabletNum", "DataUsedCapacity", "AvailCapacity", "Status"}
	var rows []map[string]sqltypes.Value
	for _, b := range fe.Backends {
		rows = append(rows, map[string]sqltypes.Value{
			"BackendId": num(b.ID), "Host": str(b.Host), "HeartbeatPort": num(int64(b.HeartbeatPort)), "BePort": num(9060),
			"HttpPort": num(8040), "BrpcPort": num(8060), "ArrowFlightSqlPort": num(-1), "LastStartTime": sqltypes.NULL,
			"LastHeartbeat": sqltypes.NULL, "Alive": boolean(b.Alive), "SystemDecommissioned": boolean(b.Decommissioned),
			"TabletNum": num(b.TabletNum), "DataUsedCapacity": str("0.000"), "AvailCapacity": str("1.000 TB"), "Status": str("{}"),
		})
	}
	return table(columns, rows)
}

func table(columns []string, rows []map[string]sqltypes.Value) *sqltypes.Result {
	res := &sqltypes.Result{}
	for _, c := range columns {
		res.Fields = append(res.Fields, &querypb.Field{Name: c, Type: querypb.Type_VARCHAR})
	}
	for _, r := range rows {
		values := make([]sqltypes.Value, len(columns))
		for i, c := range columns {
			values[i] = r[c]
		}
		res.Rows = append(res.Rows, values)
	}
	res.RowsAffected = uint64(len(res.Rows))
	return res
}

func str(s string) sqltypes.Value   { return sqltypes.NewVarChar(s) }
func num(n int64) sqltypes.Value    { return sqltypes.NewVarChar(strconv.FormatInt(n, 10)) }
func boolean(b bool) sqltypes.Value { return sqltypes.NewVarChar(strconv.FormatBool(b)) }

// handler answers the MySQL protocol's commands with the fake FE.
type handler struct{ fe *FE }

func (h *handler) ComQuery(_ context.Context, c *mysql.Conn, query string, callback mysql.ResultSpoolFn) error {
	fe := h.fe
	statement := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(query), ";"))
	fe.mu.Lock()
	fe.Statements = append(fe.Statements, statement)
	delay, fault := fe.Delay, fe.fault(statement)
	fe.mu.Unlock()
	time.Sleep(delay)
	if fault != nil && fault.Kind == Hang {
		<-fe.closed
		return fault.err()
	}
	if fault != nil && fault.Kind == Fail {
		return fault.err()
	}
	res, err := fe.answer(statement, fault)
	if fault != nil && fault.Kind == Reset {
		// Column definitions go out, then the connection is cut.
		if res != nil && len(res.Fields) > 0 {
			callback(&sqltypes.Result{Fields: res.Fields}, true)
		}
		c.Close()
		return fmt.Errorf("fake FE: connection reset in the middle of the answer to %s", statement)
	}
	if err != nil {
		return err
	}
	return callback(res, false)
}

func (h *handler) NewConnection(c *mysql.Conn) {
	h.fe.mu.Lock()
	defer h.fe.mu.Unlock()
	h.fe.conns[c] = true
}

func (h *handler) ConnectionClosed(c *mysql.Conn) {
	h.fe.mu.Lock()
	defer h.fe.mu.Unlock()
	delete(h.fe.conns, c)
}

func (h *handler) ConnectionAborted(*mysql.Conn, string) error { return nil }
func (h *handler) ComInitDB(*mysql.Conn, string) error         { return nil }
func (h *handler) WarningCount(*mysql.Conn) uint16             { return 0 }
func (h *handler) ComResetConnection(*mysql.Conn) error        { return nil }
func (h *handler) ComMultiQuery(ctx context.Context, c *mysql.Conn, query string, callback mysql.ResultSpoolFn) (string, error) {
	return "", h.ComQuery(ctx, c, query, callback)
}
func (h *handler) ComPrepare(context.Context, *mysql.Conn, string, *mysql.PrepareData) ([]*querypb.Field, error) {
	return nil, mysql.NewSQLError(mysql.ERUnknownError, "HY000", "fake FE: prepared statements are not supported")
}
func (h *handler) ComStmtExecute(context.Context, *mysql.Conn, *mysql.PrepareData, func(*sqltypes.Result) error) error {
	return mysql.NewSQLError(mysql.ERUnknownError, "HY000", "fake FE: prepared statements are not supported")
}
func (h *handler) ParserOptionsForConnection(*mysql.Conn) (sqlparser.ParserOptions, error) {
	return sqlparser.ParserOptions{}, nil
}
