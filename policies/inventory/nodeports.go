package inventory

import (
	"cmp"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Owner is a Service port that holds a node port.
type Owner struct {
	Namespace string
	Name      string
	// Port is the Service port's name ("" when unnamed).
	Port     string
	Protocol corev1.Protocol
	// expires is when a reservation lapses; zero for what the cluster holds.
	expires time.Time
}

// NodePorts indexes node ports by number and by Service: what the cluster
// holds, and short-lived reservations of what was just admitted. It is safe
// for concurrent use; readers never wait for each other.
type NodePorts struct {
	mu       sync.RWMutex
	held     index
	reserved index
	// reservations are the reserved Services, oldest first, and until are
	// when each one's current reservation lapses: expired ones are purged
	// and the oldest goes when there are more than maxReservations.
	reservations []reservation
	until        map[types.NamespacedName]time.Time
	synced       bool
}

// reservation is one Reserve of a Service, until expires.
type reservation struct {
	service types.NamespacedName
	expires time.Time
}

// maxReservations bounds the reservations held at once. Reservations come
// from admission requests; a client that is not the API server (where the
// server does not check client certificates) could otherwise make it hold
// any number of them. At the API server's rate a reservation lives 30 s, so
// this is far above what a cluster makes.
const maxReservations = 4096

// index maps node ports to their owners and Services to their node ports.
type index struct {
	byPort    map[int32][]Owner
	byService map[types.NamespacedName][]int32
}

// NewNodePorts returns an empty index that is not yet synced.
func NewNodePorts() *NodePorts {
	return &NodePorts{held: newIndex(), reserved: newIndex(), until: map[types.NamespacedName]time.Time{}}
}

func newIndex() index {
	return index{byPort: map[int32][]Owner{}, byService: map[types.NamespacedName][]int32{}}
}

// Set records the node ports svc holds now, replacing what it held or had
// reserved before.
func (n *NodePorts) Set(svc *corev1.Service) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.unreserve(key(svc.Namespace, svc.Name))
	n.held.put(svc, time.Time{})
}

// Reserve records, for hold, the node ports of a Service that has just been
// admitted but that the cluster has not reported yet, so a second request
// for the same port in that window sees it taken. What the Service already
// holds is kept: the request may still fail.
func (n *NodePorts) Reserve(svc *corev1.Service, hold time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	now := time.Now()
	n.purge(now)
	k, expires := key(svc.Namespace, svc.Name), now.Add(hold)
	n.reserved.put(svc, expires)
	n.until[k] = expires
	n.reservations = append(n.reservations, reservation{k, expires})
}

// purge drops the reservations that lapsed by now, and the oldest ones
// beyond maxReservations. A Service reserved again is dropped only with its
// latest reservation. The caller holds the lock.
func (n *NodePorts) purge(now time.Time) {
	dropped := 0
	for _, r := range n.reservations {
		if r.expires.After(now) && len(n.reservations)-dropped < maxReservations {
			break
		}
		if n.until[r.service].Equal(r.expires) {
			n.unreserve(r.service)
		}
		dropped++
	}
	n.reservations = n.reservations[dropped:]
}

// unreserve forgets the reservation of Service k. The caller holds the lock.
func (n *NodePorts) unreserve(k types.NamespacedName) {
	n.reserved.remove(k)
	delete(n.until, k)
}

// Reservations is how many reservations the index holds, lapsed ones not
// purged yet included.
func (n *NodePorts) Reservations() int {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return len(n.until)
}

// Delete forgets the node ports of Service namespace/name.
func (n *NodePorts) Delete(namespace, name string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.held.remove(key(namespace, name))
	n.unreserve(key(namespace, name))
}

func key(namespace, name string) types.NamespacedName {
	return types.NamespacedName{Namespace: namespace, Name: name}
}

// put replaces the entries of svc with its node ports.
func (x index) put(svc *corev1.Service, expires time.Time) {
	k := key(svc.Namespace, svc.Name)
	x.remove(k)
	var ports []int32
	for _, p := range svc.Spec.Ports {
		if p.NodePort == 0 {
			continue
		}
		owner := Owner{Namespace: svc.Namespace, Name: svc.Name, Port: p.Name, Protocol: p.Protocol, expires: expires}
		x.byPort[p.NodePort] = append(x.byPort[p.NodePort], owner)
		ports = append(ports, p.NodePort)
	}
	if len(ports) > 0 {
		x.byService[k] = ports
	}
}

func (x index) remove(k types.NamespacedName) {
	for _, port := range x.byService[k] {
		owners := slices.DeleteFunc(x.byPort[port], func(o Owner) bool { return o.Namespace == k.Namespace && o.Name == k.Name })
		if len(owners) == 0 {
			delete(x.byPort, port)
		} else {
			x.byPort[port] = owners
		}
	}
	delete(x.byService, k)
}

// Owners returns who holds or has reserved port, each Service port once, in
// a stable order.
func (n *NodePorts) Owners(port int32) []Owner {
	n.mu.RLock()
	defer n.mu.RUnlock()
	now := time.Now()
	owners := slices.Clone(n.held.byPort[port])
	for _, o := range n.reserved.byPort[port] {
		if o.expires.After(now) && !slices.ContainsFunc(owners, o.same) {
			owners = append(owners, o)
		}
	}
	slices.SortFunc(owners, func(a, b Owner) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name), cmp.Compare(a.Port, b.Port))
	})
	return owners
}

// same tells whether two entries are the same Service port.
func (o Owner) same(other Owner) bool {
	return o.Namespace == other.Namespace && o.Name == other.Name && o.Port == other.Port && o.Protocol == other.Protocol
}

// MarkSynced says the index holds every Service of the cluster.
func (n *NodePorts) MarkSynced() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.synced = true
}

// Synced tells whether the index holds every Service of the cluster.
func (n *NodePorts) Synced() bool {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.synced
}
