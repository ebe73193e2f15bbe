package inventory

import (
	"cmp"
	"slices"
	"sync"

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
}

// NodePorts indexes node ports by number and by Service. It is safe for
// concurrent use; readers never wait for each other.
type NodePorts struct {
	mu        sync.RWMutex
	byPort    map[int32][]Owner
	byService map[types.NamespacedName][]int32
	synced    bool
}

// NewNodePorts returns an empty index that is not yet synced.
func NewNodePorts() *NodePorts {
	return &NodePorts{byPort: map[int32][]Owner{}, byService: map[types.NamespacedName][]int32{}}
}

// Set records the node ports svc holds now, replacing what it held before.
func (n *NodePorts) Set(svc *corev1.Service) {
	key := types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.remove(key)
	var ports []int32
	for _, p := range svc.Spec.Ports {
		if p.NodePort == 0 {
			continue
		}
		n.byPort[p.NodePort] = append(n.byPort[p.NodePort], Owner{Namespace: svc.Namespace, Name: svc.Name, Port: p.Name, Protocol: p.Protocol})
		ports = append(ports, p.NodePort)
	}
	if len(ports) > 0 {
		n.byService[key] = ports
	}
}

// Delete forgets the node ports of Service namespace/name.
func (n *NodePorts) Delete(namespace, name string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.remove(types.NamespacedName{Namespace: namespace, Name: name})
}

func (n *NodePorts) remove(key types.NamespacedName) {
	for _, port := range n.byService[key] {
		owners := slices.DeleteFunc(n.byPort[port], func(o Owner) bool { return o.Namespace == key.Namespace && o.Name == key.Name })
		if len(owners) == 0 {
			delete(n.byPort, port)
		} else {
			n.byPort[port] = owners
		}
	}
	delete(n.byService, key)
}

// Owners returns who holds port, in a stable order.
func (n *NodePorts) Owners(port int32) []Owner {
	n.mu.RLock()
	defer n.mu.RUnlock()
	owners := slices.Clone(n.byPort[port])
	slices.SortFunc(owners, func(a, b Owner) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name), cmp.Compare(a.Port, b.Port))
	})
	return owners
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
