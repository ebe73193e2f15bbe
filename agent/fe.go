package agent

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Connection says how to reach an FE's MySQL port.
type Connection struct {
	Host     string
	Port     int
	User     string
	Password string
	// Timeout bounds connecting and each statement.
	Timeout time.Duration
}

// Address is host:port.
func (c Connection) Address() string {
	return net.JoinHostPort(c.Host, strconv.Itoa(c.Port))
}

// FE is a session with a Doris FE over the MySQL protocol.
type FE struct {
	db      *sql.DB
	timeout time.Duration
}

// Open returns a session with the FE at c; it connects on first use. What
// the MySQL driver has to say goes to log as the agent's own lines.
func Open(c Connection, log *Logger) (*FE, error) {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd = c.User, c.Password
	cfg.Net, cfg.Addr = "tcp", c.Address()
	cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = c.Timeout, c.Timeout, c.Timeout
	cfg.AllowNativePasswords = true
	cfg.Logger = driverLog{log}
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("configuring the connection to %s: %w", c.Address(), err)
	}
	db := sql.OpenDB(connector)
	db.SetMaxOpenConns(1)
	return &FE{db: db, timeout: c.Timeout}, nil
}

// Close ends the session.
func (f *FE) Close() error { return f.db.Close() }

// exec runs one membership statement. An error that says what the
// statement asks for is already so ("already exists" on an ADD) is success,
// and already is true.
func (f *FE) exec(ctx context.Context, s statement) (already bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	_, err = f.db.ExecContext(ctx, s.text)
	var answer *mysql.MySQLError
	if errors.As(err, &answer) && strings.Contains(strings.ToLower(answer.Message), s.doneWhen) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("%s: %w", s.text, err)
	}
	return false, nil
}

// Frontend is one row of SHOW FRONTENDS.
type Frontend struct {
	Name string
	// Host is the address the FE is known by: the Host column, or IP in
	// layouts before Doris 2.0.
	Host string
	// HostName is the FE's host name, in layouts before Doris 2.0.
	HostName    string
	EditLogPort int
	Role        string
	IsMaster    bool
	Alive       bool
}

// Address is host:edit_log_port, the FE's identity in ALTER SYSTEM.
func (f Frontend) Address() string {
	return net.JoinHostPort(f.Host, strconv.Itoa(f.EditLogPort))
}

// Backend is one row of SHOW BACKENDS.
type Backend struct {
	ID             string
	Host           string
	HeartbeatPort  int
	Alive          bool
	Decommissioned bool
	// TabletNum is -1 when SHOW BACKENDS does not give a number, so a BE is
	// never taken for drained on a value that could not be read.
	TabletNum int64
}

// Address is host:heartbeat_port, the BE's identity in ALTER SYSTEM.
func (b Backend) Address() string {
	return net.JoinHostPort(b.Host, strconv.Itoa(b.HeartbeatPort))
}

// Frontends runs SHOW FRONTENDS, reading columns by name.
func (f *FE) Frontends(ctx context.Context) ([]Frontend, error) {
	rows, err := f.query(ctx, "SHOW FRONTENDS")
	if err != nil {
		return nil, err
	}
	out := make([]Frontend, len(rows))
	for i, r := range rows {
		out[i] = frontendFromRow(r)
	}
	return out, nil
}

// frontendFromRow reads one SHOW FRONTENDS row, in either column layout.
func frontendFromRow(r row) Frontend {
	return Frontend{
		Name: r["Name"], Host: r.first("Host", "IP"), HostName: r["HostName"],
		EditLogPort: r.int("EditLogPort"), Role: r["Role"],
		IsMaster: r.bool("IsMaster"), Alive: r.bool("Alive"),
	}
}

// Backends runs SHOW BACKENDS, reading columns by name.
func (f *FE) Backends(ctx context.Context) ([]Backend, error) {
	rows, err := f.query(ctx, "SHOW BACKENDS")
	if err != nil {
		return nil, err
	}
	out := make([]Backend, len(rows))
	for i, r := range rows {
		out[i] = backendFromRow(r)
	}
	return out, nil
}

// backendFromRow reads one SHOW BACKENDS row.
func backendFromRow(r row) Backend {
	return Backend{
		ID: r["BackendId"], Host: r.first("Host", "IP"), HeartbeatPort: r.int("HeartbeatPort"),
		Alive: r.bool("Alive"), Decommissioned: r.bool("SystemDecommissioned"), TabletNum: r.count("TabletNum"),
	}
}

// row is one result row by column name; NULL reads as "".
type row map[string]string

func (r row) first(names ...string) string {
	for _, n := range names {
		if v := r[n]; v != "" {
			return v
		}
	}
	return ""
}

// int reads a whole number, or 0 when the column does not hold one (Atoi
// would give the largest int for one out of range).
func (r row) int(name string) int {
	n, err := strconv.Atoi(r[name])
	if err != nil {
		return 0
	}
	return n
}

// count reads a number of things, or -1 when the column does not hold a
// whole number: an unreadable count must not pass for zero.
func (r row) count(name string) int64 {
	n, err := strconv.ParseInt(r[name], 10, 64)
	if err != nil || n < 0 {
		return -1
	}
	return n
}

func (r row) bool(name string) bool {
	return strings.EqualFold(r[name], "true")
}

// query runs a statement and returns its rows by column name, whatever
// columns this Doris version has.
func (f *FE) query(ctx context.Context, statement string) ([]row, error) {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	rows, err := f.db.QueryContext(ctx, statement)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", statement, err)
	}
	defer rows.Close()
	columns, err := rows.Columns()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", statement, err)
	}
	var out []row
	for rows.Next() {
		values := make([]sql.NullString, len(columns))
		pointers := make([]any, len(columns))
		for i := range values {
			pointers[i] = &values[i]
		}
		if err := rows.Scan(pointers...); err != nil {
			return nil, fmt.Errorf("%s: %w", statement, err)
		}
		r := make(row, len(columns))
		for i, c := range columns {
			r[c] = values[i].String
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", statement, err)
	}
	return out, nil
}
