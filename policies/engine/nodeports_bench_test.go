package engine

import (
	"context"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/doris-admission/doris-admission/policies"
	"github.com/doris-admission/doris-admission/policies/builtin"
	"github.com/doris-admission/doris-admission/policies/source"
)

// BenchmarkNodePortRules validates a NodePort Service through the built-in
// policies with 100, 1,000 and 10,000 Services holding node ports: the cost
// per check must stay flat as the cluster grows.
func BenchmarkNodePortRules(b *testing.B) {
	for _, services := range []int{100, 1000, 10000} {
		e := benchmarkEngine(b)
		for i := range services {
			e.nodePorts.Set(&corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Namespace: "load", Name: fmt.Sprintf("svc-%d", i)},
				Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "web", NodePort: int32(40000 + i), Protocol: corev1.ProtocolTCP}}},
			})
		}
		docs, err := policies.ReadDocuments("../../deploy/examples/nodeport-plan.yaml", nil)
		if err != nil {
			b.Fatal(err)
		}
		req, err := e.RequestForObject(docs[1].Object)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("services=%d", services), func(b *testing.B) {
			for b.Loop() {
				res, err := e.Validate(context.Background(), req)
				if err != nil || len(res.Denied) > 0 {
					b.Fatalf("%v %v", res.Denied, err)
				}
			}
		})
	}
}

func benchmarkEngine(b *testing.B) *Engine {
	b.Helper()
	builtins, err := builtin.Builtin(builtin.DefaultNamespace, nil)
	if err != nil {
		b.Fatal(err)
	}
	e := NewEngine(source.Offline(nil))
	e.Load(builtins)
	return e
}
