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
	synced   bool
}

// index maps node ports to their owners and Services to their node ports.
type index struct {
	byPort    map[int32][]Owner
	byService map[types.NamespacedName][]int32
}

// NewNodePorts returns an empty index that is not yet synced.
func NewNodePorts() *NodePorts {
	return &NodePorts{held: newIndex(), reserved: newIndex()}
}

func newIndex() index {
	return index{byPort: map[int32][]Owner{}, byService: map[types.NamespacedName][]int32{}}
}

// Set records the node ports svc holds now, replacing what it held or had
// reserved before.
func (n *NodePorts) Set(svc *corev1.Service) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.reserved.remove(key(svc.Namespace, svc.Name))
	n.held.put(svc, time.Time{})
}

// Reserve records, for hold, the node ports of a Service that has just been
// admitted but that the cluster has not reported yet, so a second request
// for the same port in that window sees it taken. What the Service already
// holds is kept: the request may still fail.
func (n *NodePorts) Reserve(svc *corev1.Service, hold time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.reserved.put(svc, time.Now().Add(hold))
}

// Delete forgets the node ports of Service namespace/name.
func (n *NodePorts) Delete(namespace, name string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.held.remove(key(namespace, name))
	n.reserved.remove(key(namespace, name))
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
