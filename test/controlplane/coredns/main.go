// Command coredns is CoreDNS, built from github.com/coredns/coredns at the
// version pinned in this module, with only the plugins the one-node cluster
// of the e2e suite (test/node) uses: kubernetes (cluster.local), bind,
// errors, log, health, ready and cache. CoreDNS' own way to choose plugins is the imports
// of its plugin packages; the order they run in is its fixed directive list.
package main

import (
	"github.com/coredns/coredns/coremain"
	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"
)

func main() {
	coremain.Run()
}
