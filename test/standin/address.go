package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
)

// selfAddress is the address a Doris node is known by. In FQDN mode
// (enable_fqdn_mode = true) it is the host's canonical name
// (fe/.../service/FrontendOptions.java: InetAddress.getLocalHost()
// .getCanonicalHostName(); in a StatefulSet <pod>.<service>.<ns>.svc.<domain>).
// Otherwise it is the local address inside priority_networks, or the first
// address that is not loopback when none is set (FrontendOptions.init,
// be/src/service/backend_options.cpp).
func selfAddress(c conf) (string, error) {
	if strings.EqualFold(c["enable_fqdn_mode"], "true") {
		return canonicalHostName()
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return "", err
	}
	var networks []*net.IPNet
	for _, cidr := range strings.Split(c["priority_networks"], ";") {
		if _, n, err := net.ParseCIDR(strings.TrimSpace(cidr)); err == nil {
			networks = append(networks, n)
		}
	}
	for _, a := range addrs {
		ipnet, ok := a.(*net.IPNet)
		if !ok || ipnet.IP.IsLoopback() {
			continue
		}
		if len(networks) == 0 {
			return ipnet.IP.String(), nil
		}
		for _, n := range networks {
			if n.Contains(ipnet.IP) {
				return ipnet.IP.String(), nil
			}
		}
	}
	return "", fmt.Errorf("no local address is inside priority_networks %q", c["priority_networks"])
}

// readNode reads the node's conf file in home/conf and the address it
// binds.
func readNode(home, file string) (conf, string, error) {
	c, err := readConf(filepath.Join(home, "conf", file))
	if err != nil {
		return nil, "", err
	}
	self, err := selfAddress(c)
	return c, self, err
}

// canonicalHostName is the host's full name as Java's
// InetAddress.getLocalHost().getCanonicalHostName() finds it: the host name's
// address, looked up in reverse. In a StatefulSet's pod, /etc/hosts maps the
// pod IP to <pod>.<serviceName>.<ns>.svc.<domain> first.
func canonicalHostName() (string, error) {
	host, err := os.Hostname()
	if err != nil {
		return "", err
	}
	addrs, err := net.LookupHost(host)
	if err != nil || len(addrs) == 0 {
		return "", fmt.Errorf("resolving this host's name %s: %v", host, err)
	}
	names, err := net.LookupAddr(addrs[0])
	if err != nil || len(names) == 0 {
		return "", fmt.Errorf("resolving this host's address %s back to a name: %v", addrs[0], err)
	}
	return strings.TrimSuffix(names[0], "."), nil
}
