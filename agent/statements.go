package agent

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Every value that goes into a statement is checked here first, whether it
// came from a flag, the environment or an FE's answer: nothing outside the
// agent can change what a statement does.

// Address is a host and port that may go into an ALTER SYSTEM statement:
// an FE's host:edit_log_port or a BE's host:heartbeat_port.
type Address struct {
	Host string
	Port int
}

// NewAddress checks that host is an IP address or a DNS name and port a TCP
// port, so that the address cannot change the statement it goes into.
func NewAddress(host string, port int) (Address, error) {
	if net.ParseIP(host) == nil && len(validation.IsDNS1123Subdomain(host)) > 0 {
		return Address{}, fmt.Errorf("%q is neither an IP address nor a DNS name", host)
	}
	if port < 1 || port > 65535 {
		return Address{}, fmt.Errorf("port %d of %s is not between 1 and 65535", port, host)
	}
	return Address{Host: host, Port: port}, nil
}

// String is host:port, with an IPv6 host in brackets, as Doris writes it.
func (a Address) String() string { return net.JoinHostPort(a.Host, strconv.Itoa(a.Port)) }

func (a Address) quoted() string { return `"` + a.String() + `"` }

// Role is the role an FE joins as.
type Role string

// The roles an FE can be added with.
const (
	Follower Role = "FOLLOWER"
	Observer Role = "OBSERVER"
)

// ParseRole reads FOLLOWER or OBSERVER, in any case, and refuses anything else.
func ParseRole(s string) (Role, error) {
	switch r := Role(strings.ToUpper(s)); r {
	case Follower, Observer:
		return r, nil
	}
	return "", fmt.Errorf("FE role %q is neither FOLLOWER nor OBSERVER", s)
}

// statement is one membership statement, and the words in an FE's error that
// mean what it asks for is already so (Doris' messages, from
// fe/fe-core/.../catalog/Env.java addFrontend and dropFrontend, and
// system/SystemInfoService.java addBackends, alter/SystemHandler.java
// checkDecommission and cancel).
type statement struct {
	text     string
	doneWhen string
}

func addFrontend(role Role, a Address) statement {
	return statement{"ALTER SYSTEM ADD " + string(role) + " " + a.quoted(), "already exists"}
}

// dropFrontend drops f, an entry of SHOW FRONTENDS, whose role and address
// are checked like any other value.
func dropFrontend(f Frontend) (statement, error) {
	role, err := ParseRole(f.Role)
	if err != nil {
		return statement{}, fmt.Errorf("SHOW FRONTENDS lists %s: %w; not dropping it", f.Address(), err)
	}
	a, err := NewAddress(f.Host, f.EditLogPort)
	if err != nil {
		return statement{}, fmt.Errorf("SHOW FRONTENDS lists an FE whose address %w; not dropping it", err)
	}
	return statement{"ALTER SYSTEM DROP " + string(role) + " " + a.quoted(), "does not exist"}, nil
}

func addBackend(a Address) statement {
	return statement{"ALTER SYSTEM ADD BACKEND " + a.quoted(), "already exists"}
}

func decommissionBackend(a Address) statement {
	return statement{"ALTER SYSTEM DECOMMISSION BACKEND " + a.quoted(), "does not exist"}
}

func cancelDecommission(a Address) statement {
	return statement{"CANCEL DECOMMISSION BACKEND " + a.quoted(), "does not exist"}
}
