package agent

import (
	"errors"
	"fmt"
	"testing"

	"github.com/go-sql-driver/mysql"
)

// Values that would change a statement are refused; plain hosts and ports
// go in quoted, as Doris writes them.
func TestStatementValues(t *testing.T) {
	for _, c := range []struct {
		host string
		port int
		want string // the statement, or "" when refused
	}{
		{"10.0.1.5", 9050, `ALTER SYSTEM ADD BACKEND "10.0.1.5:9050"`},
		{"fd00::5", 9050, `ALTER SYSTEM ADD BACKEND "[fd00::5]:9050"`},
		{"doris-be-0.doris-be.lake.svc.cluster.local", 9050, `ALTER SYSTEM ADD BACKEND "doris-be-0.doris-be.lake.svc.cluster.local:9050"`},
		{`10.0.1.5:9050", "6.6.6.6`, 9050, ""},
		{`10.0.1.5" --`, 9050, ""},
		{"10.0.1.5\n", 9050, ""},
		{"be 0", 9050, ""},
		{"fe80::1%eth0", 9050, ""},
		{"", 9050, ""},
		{"10.0.1.5", 0, ""},
		{"10.0.1.5", 65536, ""},
	} {
		a, err := NewAddress(c.host, c.port)
		got := ""
		if err == nil {
			got = addBackend(a).text
		}
		if got != c.want {
			t.Errorf("NewAddress(%q, %d): statement %q, want %q (error %v)", c.host, c.port, got, c.want, err)
		}
	}
}

func TestRoles(t *testing.T) {
	for in, want := range map[string]Role{"FOLLOWER": Follower, "observer": Observer, `OBSERVER "6.6.6.6:9010" --`: "", "observer; DROP": "", "": "", "MASTER": ""} {
		got, err := ParseRole(in)
		if got != want || (want == "") != (err != nil) {
			t.Errorf("ParseRole(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

// The answers Doris gives, and what they mean for trying again (messages
// from fe/fe-core: ErrorCode.java, UserException, Env.checkReadyOrThrow,
// MasterOpExecutor).
func TestClassify(t *testing.T) {
	for _, c := range []struct {
		err       error
		permanent bool
	}{
		{&mysql.MySQLError{Number: 1045, Message: "Access denied for user 'root@10.0.0.5' (using password: YES)"}, true},
		{&mysql.MySQLError{Number: 1227, Message: "errCode = 2, detailMessage = Access denied; you need (at least one of) the (NODE) privilege(s) for this operation"}, true},
		{&mysql.MySQLError{Number: 1105, Message: "errCode = 2, detailMessage = Syntax error in line 1:\nALTER SYSTEM ADD FOLOWER"}, true},
		{&mysql.MySQLError{Number: 1105, Message: "errCode = 2, detailMessage = Unable to drop this alive follower, because the quorum requirements are not met"}, true},
		{&mysql.MySQLError{Number: 1105, Message: "errCode = 2, detailMessage = Failed to acquire env lock. Try again"}, false},
		{&mysql.MySQLError{Number: 1105, Message: "Exception, msg: Node catalog is not ready, please wait for a while."}, false},
		{&mysql.MySQLError{Number: 1105, Message: "ForwardToMasterException, msg: forward to master FE ..., cause: EOF"}, false},
		{fmt.Errorf("SHOW BACKENDS: %w", mysql.ErrInvalidConn), false},
		{errors.New("dial tcp 10.0.0.1:9030: connect: connection refused"), false},
	} {
		var perm permanent
		if got := errors.As(classify(c.err), &perm); got != c.permanent {
			t.Errorf("%v: permanent %v, want %v", c.err, got, c.permanent)
		}
	}
}
