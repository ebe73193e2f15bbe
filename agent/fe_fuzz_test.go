package agent

import (
	"regexp"
	"strconv"
	"testing"
)

// safeDrop is the only shape of statement the agent may build from a row of
// SHOW FRONTENDS: a known role and a quoted plain host and port.
var safeDrop = regexp.MustCompile(`^ALTER SYSTEM DROP (FOLLOWER|OBSERVER) "(\[[0-9A-Za-z.:\-]+\]|[0-9A-Za-z.\-]+):[0-9]{1,5}"$`)

// safeDecommission is the only shape of statement about a BE.
var safeDecommission = regexp.MustCompile(`^ALTER SYSTEM DECOMMISSION BACKEND "(\[[0-9A-Za-z.:\-]+\]|[0-9A-Za-z.\-]+):[0-9]{1,5}"$`)

// FuzzShowFrontends reads arbitrary SHOW FRONTENDS rows, in both column
// layouts. Properties: no panic; the address comes from the Host (or IP)
// column; a port that is not a whole number reads as 0; any DROP statement
// built from the row is refused or has the safe shape, whatever the FE sent.
func FuzzShowFrontends(f *testing.F) {
	f.Add("fe_a", "10.0.0.1", "doris-fe-0", "9010", "FOLLOWER", "true", "true", false)
	f.Add("fe_b", "10.0.0.2", "", "9010", "OBSERVER", "false", "false", true)
	f.Add("fe_c", "fd00::7", "", "9010", "follower", "TRUE", "True", false)
	f.Add("fe_d", "doris-fe-0.doris-fe.ns.svc.cluster.local", "", "65535", "OBSERVER", "", "", false)
	// What a hostile or broken FE could answer: statements in the role or
	// host, ports out of range or not numbers, NULLs (empty strings).
	f.Add("x", `10.0.0.1"; DROP DATABASE d; --`, "", "9010", "FOLLOWER", "true", "true", false)
	f.Add("x", "10.0.0.1", "", "9010", `FOLLOWER "1.2.3.4:1"; DROP DATABASE d; --`, "true", "true", false)
	f.Add("x", "10.0.0.1", "", "-1", "MASTER", "yes", "1", true)
	f.Add("x", "10.0.0.1", "", "99999999999999999999", "FOLLOWER", "", "", false)
	f.Add("x", "", "", "", "", "", "", false)
	f.Add("x", "10.0.0.1", "", "0x2332", "OBSERVER", "", "", false)
	f.Add("x", "10.0.0.1\n", "", " 9010", "OBSERVER\x00", "", "", true)
	f.Fuzz(func(t *testing.T, name, host, hostName, port, role, isMaster, alive string, legacy bool) {
		r := row{"Name": name, "EditLogPort": port, "Role": role, "IsMaster": isMaster, "Alive": alive}
		if legacy {
			r["IP"], r["HostName"] = host, hostName
		} else {
			r["Host"] = host
		}
		fe := frontendFromRow(r)
		if fe.Host != host || fe.Name != name || fe.Role != role {
			t.Errorf("row %v read as %+v", r, fe)
		}
		if n, err := strconv.Atoi(port); err != nil && fe.EditLogPort != 0 || err == nil && fe.EditLogPort != n {
			t.Errorf("EditLogPort %q read as %d", port, fe.EditLogPort)
		}
		_ = fe.Address()
		if drop, err := dropFrontend(fe); err == nil && !safeDrop.MatchString(drop.text) {
			t.Errorf("row %v gives the statement %q", r, drop.text)
		}
		// A row written from what was read reads the same.
		back := row{"Name": fe.Name, "EditLogPort": strconv.Itoa(fe.EditLogPort), "Role": fe.Role,
			"IsMaster": strconv.FormatBool(fe.IsMaster), "Alive": strconv.FormatBool(fe.Alive), "Host": fe.Host, "HostName": fe.HostName}
		if again := frontendFromRow(back); again != fe {
			t.Errorf("%+v written as a row reads as %+v", fe, again)
		}
	})
}

// FuzzShowBackends reads arbitrary SHOW BACKENDS rows. Properties: no panic;
// a TabletNum that is not a whole number never reads as 0 (a BE that looks
// drained would be let go with its tablets); a port that is not a whole
// number reads as 0; statements about the BE are refused or safe.
func FuzzShowBackends(f *testing.F) {
	f.Add("10001", "10.0.1.1", "9050", "true", "false", "250")
	f.Add("7", "10.0.1.1", "9050", "false", "true", "0")
	f.Add("7", "fd00::9", "9050", "True", "TRUE", "12")
	f.Add("", "", "", "", "", "")
	f.Add("7", "10.0.1.1", "9050", "", "true", "NULL")
	f.Add("7", "10.0.1.1", "9050", "", "true", "1,234")
	f.Add("7", "10.0.1.1", "9050", "", "true", "-0")
	f.Add("7", "10.0.1.1", "9050", "", "true", "-3")
	f.Add("7", "10.0.1.1", "9050", "", "true", "99999999999999999999")
	f.Add("7", `10.0.1.1"; DROP DATABASE d; --`, "9050", "", "", "")
	f.Fuzz(func(t *testing.T, id, host, port, alive, decommissioned, tablets string) {
		r := row{"BackendId": id, "Host": host, "HeartbeatPort": port, "Alive": alive, "SystemDecommissioned": decommissioned, "TabletNum": tablets}
		be := backendFromRow(r)
		if be.ID != id || be.Host != host {
			t.Errorf("row %v read as %+v", r, be)
		}
		n, err := strconv.ParseInt(tablets, 10, 64)
		switch {
		case err != nil || n < 0:
			if be.TabletNum != -1 {
				t.Errorf("TabletNum %q read as %d, want -1 (unknown)", tablets, be.TabletNum)
			}
		case be.TabletNum != n:
			t.Errorf("TabletNum %q read as %d", tablets, be.TabletNum)
		}
		if p, err := strconv.Atoi(port); err != nil && be.HeartbeatPort != 0 || err == nil && be.HeartbeatPort != p {
			t.Errorf("HeartbeatPort %q read as %d", port, be.HeartbeatPort)
		}
		_ = be.Address()
		if a, err := NewAddress(be.Host, be.HeartbeatPort); err == nil {
			if statement := decommissionBackend(a).text; !safeDecommission.MatchString(statement) {
				t.Errorf("row %v gives the statement %q", r, statement)
			}
		}
		back := row{"BackendId": be.ID, "Host": be.Host, "HeartbeatPort": strconv.Itoa(be.HeartbeatPort), "Alive": strconv.FormatBool(be.Alive),
			"SystemDecommissioned": strconv.FormatBool(be.Decommissioned), "TabletNum": strconv.FormatInt(be.TabletNum, 10)}
		if again := backendFromRow(back); again != be {
			t.Errorf("%+v written as a row reads as %+v", be, again)
		}
	})
}
