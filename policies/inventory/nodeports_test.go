package inventory

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func service(namespace, name string, ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Ports: ports},
	}
}

func port(name string, nodePort int32, protocol corev1.Protocol) corev1.ServicePort {
	return corev1.ServicePort{Name: name, NodePort: nodePort, Protocol: protocol}
}

func TestNodePorts(t *testing.T) {
	n := NewNodePorts()
	n.Set(service("default", "doris-fe", port("http", 32130, corev1.ProtocolTCP), port("query", 32230, corev1.ProtocolTCP)))
	n.Set(service("dns", "resolver", port("dns-tcp", 31053, corev1.ProtocolTCP), port("dns-udp", 31053, corev1.ProtocolUDP)))
	n.Set(service("other", "clash", port("", 32130, corev1.ProtocolTCP)))

	want := []Owner{{Namespace: "default", Name: "doris-fe", Port: "http", Protocol: corev1.ProtocolTCP}, {Namespace: "other", Name: "clash", Protocol: corev1.ProtocolTCP}}
	if diff := cmp.Diff(want, n.Owners(32130), cmp.AllowUnexported(Owner{})); diff != "" {
		t.Errorf("owners of 32130 (-want +got):\n%s", diff)
	}
	if got := n.Owners(31053); len(got) != 2 {
		t.Errorf("TCP and UDP of one Service port should both be listed: %v", got)
	}

	// An update replaces what the Service held; a delete forgets it.
	n.Set(service("default", "doris-fe", port("http", 32131, corev1.ProtocolTCP)))
	if diff := cmp.Diff([]Owner{{Namespace: "other", Name: "clash", Protocol: corev1.ProtocolTCP}}, n.Owners(32130), cmp.AllowUnexported(Owner{})); diff != "" {
		t.Errorf("owners of 32130 after the update (-want +got):\n%s", diff)
	}
	if got := n.Owners(32230); len(got) != 0 {
		t.Errorf("32230 is still owned after the update: %v", got)
	}
	n.Delete("other", "clash")
	if got := n.Owners(32130); len(got) != 0 {
		t.Errorf("32130 is still owned after the delete: %v", got)
	}
	if n.Synced() {
		t.Error("a new index says it is synced")
	}
	n.MarkSynced()
	if !n.Synced() {
		t.Error("MarkSynced did not stick")
	}
}

// BenchmarkOwners looks up a port among 100, 1,000 and 10,000 Services, each
// holding its own node port (as the API server's allocator ensures, with a
// --service-node-port-range wide enough): the cost per lookup stays flat.
func BenchmarkOwners(b *testing.B) {
	for _, services := range []int{100, 1000, 10000} {
		n := NewNodePorts()
		for i := range services {
			n.Set(service("ns", fmt.Sprintf("svc-%d", i), port("http", int32(30000+i), corev1.ProtocolTCP)))
		}
		b.Run(fmt.Sprintf("services=%d", services), func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				n.Owners(int32(30000 + i%services))
			}
		})
	}
}

func TestNodePortReservationsLapse(t *testing.T) {
	n := NewNodePorts()
	n.Reserve(service("default", "new", port("web", 31000, corev1.ProtocolTCP)), 50*time.Millisecond)
	if got := n.Owners(31000); len(got) != 1 || got[0].Name != "new" {
		t.Fatalf("the reservation is not seen: %v", got)
	}
	time.Sleep(60 * time.Millisecond)
	if got := n.Owners(31000); len(got) != 0 {
		t.Errorf("the reservation did not lapse: %v", got)
	}
	n.Reserve(service("default", "new", port("web", 31000, corev1.ProtocolTCP)), time.Hour)
	n.Set(service("default", "new", port("web", 31001, corev1.ProtocolTCP)))
	if got := n.Owners(31000); len(got) != 0 {
		t.Errorf("what the cluster reports did not replace the reservation: %v", got)
	}
}

func TestAFailedUpdateKeepsWhatTheServiceHolds(t *testing.T) {
	n := NewNodePorts()
	n.Set(service("default", "web", port("http", 31080, corev1.ProtocolTCP)))
	n.Reserve(service("default", "web", port("http", 31081, corev1.ProtocolTCP)), 20*time.Millisecond)
	time.Sleep(30 * time.Millisecond) // the update never reached the cluster
	if got := n.Owners(31080); len(got) != 1 {
		t.Errorf("the Service's own node port was lost with its lapsed reservation: %v", got)
	}
}

// Reservations a stranger could make cannot pile up: lapsed ones are purged
// at the next Reserve, and there are never more than maxReservations (the
// oldest go first); a Service reserved again keeps its latest reservation.
func TestReservationsArePurgedAndBounded(t *testing.T) {
	n := NewNodePorts()
	for i := range 10 {
		n.Reserve(service("forged", fmt.Sprint("lapsed-", i), port("web", int32(31000+i), corev1.ProtocolTCP)), time.Nanosecond)
	}
	time.Sleep(time.Millisecond)
	n.Reserve(service("default", "web", port("web", 32000, corev1.ProtocolTCP)), time.Hour)
	if got := n.Reservations(); got != 1 {
		t.Errorf("%d reservations after the lapsed ones, want 1", got)
	}
	for i := range maxReservations + 100 {
		n.Reserve(service("forged", fmt.Sprint("flood-", i), port("web", int32(30000+i%2000), corev1.ProtocolTCP)), time.Hour)
	}
	if got := n.Reservations(); got != maxReservations {
		t.Errorf("%d reservations after a flood, want at most %d", got, maxReservations)
	}
	if got := n.Owners(32000); len(got) != 0 {
		t.Errorf("the oldest reservation was not the one to go: %v", got)
	}
	n.Reserve(service("default", "again", port("web", 32001, corev1.ProtocolTCP)), time.Nanosecond)
	n.Reserve(service("default", "again", port("web", 32001, corev1.ProtocolTCP)), time.Hour)
	time.Sleep(time.Millisecond)
	n.Reserve(service("default", "other", port("web", 32002, corev1.ProtocolTCP)), time.Hour)
	if got := n.Owners(32001); len(got) != 1 {
		t.Errorf("the first, lapsed reservation of a Service reserved again dropped its latest: %v", got)
	}
}
