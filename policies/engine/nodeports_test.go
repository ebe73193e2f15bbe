package engine

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/doris-admission/doris-admission/policies"
	"github.com/doris-admission/doris-admission/policies/builtin"
	"github.com/doris-admission/doris-admission/policies/inventory"
	"github.com/doris-admission/doris-admission/policies/source"
)

// TestNodePortRules runs the built-in node-ports policy on one Service at a
// time, with one Service already holding ports: every rule, each way.
func TestNodePortRules(t *testing.T) {
	holder := `{apiVersion: v1, kind: Service, metadata: {name: doris-fe, namespace: default},
		spec: {type: NodePort, ports: [{name: http, port: 8030, nodePort: 32130, protocol: TCP}]}}`
	narrow := `{apiVersion: v1, kind: Namespace, metadata: {name: team, annotations: {doris-admission.io/node-port-range: "31000-31099"}}}`
	svc := func(namespace, spec string) string {
		return `{apiVersion: v1, kind: Service, metadata: {name: s, namespace: ` + namespace + `}, spec: ` + spec + `}`
	}
	tests := []struct {
		name, service string
		want          []string
	}{
		{"inside the range", svc("default", `{type: NodePort, ports: [{name: a, port: 80, nodePort: 30080}]}`), nil},
		{"omitted node port", svc("default", `{type: NodePort, ports: [{name: a, port: 80}]}`), nil},
		{"outside the range", svc("default", `{type: NodePort, ports: [{name: a, port: 80, nodePort: 40000}]}`),
			[]string{`nodePort 40000 (port "a") is outside the allowed range 30000-32767`}},
		{"outside the namespace's range", svc("team", `{type: NodePort, ports: [{name: a, port: 80, nodePort: 30080}]}`),
			[]string{`nodePort 30080 (port "a") is outside the allowed range 31000-31099`}},
		{"twice in one Service", svc("default", `{type: NodePort, ports: [{name: a, port: 80, nodePort: 30080}, {name: b, port: 81, nodePort: 30080}]}`),
			[]string{`nodePort 30080 is used by ports "a" and "b" of this Service`}},
		{"one port over TCP and UDP", svc("default", `{type: NodePort, ports: [{name: dns, port: 53, nodePort: 30053, protocol: TCP}, {name: dns-udp, port: 53, nodePort: 30053, protocol: UDP}]}`), nil},
		{"taken by another Service", svc("other", `{type: NodePort, ports: [{name: web, port: 80, nodePort: 32130, protocol: UDP}]}`),
			[]string{`nodePort 32130 is already used by Service default/doris-fe (port "http")`}},
		{"a Service keeps its own port", `{apiVersion: v1, kind: Service, metadata: {name: doris-fe, namespace: default}, spec: {type: NodePort, ports: [{name: http, port: 8030, nodePort: 32130}]}}`, nil},
		{"LoadBalancer gets node ports", svc("default", `{type: LoadBalancer, ports: [{name: a, port: 80, nodePort: 40000}]}`),
			[]string{`nodePort 40000 (port "a") is outside the allowed range 30000-32767`}},
		{"LoadBalancer without node ports", svc("default", `{type: LoadBalancer, allocateLoadBalancerNodePorts: false, ports: [{name: a, port: 80, nodePort: 40000}]}`), nil},
		{"ClusterIP", svc("default", `{ports: [{name: a, port: 80}]}`), nil},
		{"port out of bounds", svc("default", `{ports: [{name: a, port: 70000, targetPort: 80}]}`),
			[]string{`port "a" has port 70000 and targetPort 80; both must be in 1..65535`}},
		{"targetPort out of bounds", svc("default", `{ports: [{name: a, port: 80, targetPort: 0}]}`),
			[]string{`port "a" has port 80 and targetPort 0; both must be in 1..65535`}},
		{"named targetPort", svc("default", `{ports: [{name: a, port: 80, targetPort: http}]}`), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			namespace := policies.Document{Origin: "ns.yaml", Index: 1, Object: object(t, narrow)}
			e := builtinEngine(t, namespace)
			e.Admitted(object(t, holder), 0)
			res, err := e.Validate(context.Background(), request(t, object(t, tt.service)))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, v := range res.Denied {
				if v.Policy == "node-ports" {
					got = append(got, v.Message)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("denials (-want +got):\n%s", diff)
			}
		})
	}
}

// TestNodePortRulesBeforeTheIndexIsFilled: until the server has read the
// cluster's Services, the rule fails per its failurePolicy (Fail) and says why.
func TestNodePortRulesBeforeTheIndexIsFilled(t *testing.T) {
	cfg := source.Offline(nil)
	cfg.NodePorts = inventory.NewNodePorts() // never marked synced
	builtins, err := builtin.Builtin(builtin.DefaultNamespace, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := NewEngine(cfg)
	e.Load(builtins)
	res, err := e.Validate(context.Background(), request(t, object(t, `{apiVersion: v1, kind: Service, metadata: {name: s, namespace: default}, spec: {type: NodePort, ports: [{name: a, port: 80, nodePort: 30080}]}}`)))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Denied) != 1 || !strings.Contains(res.Denied[0].Message, "has not read the cluster's Services yet") {
		t.Errorf("denied %v, want one denial saying the inventory is not ready", res.Denied)
	}
}

// Services named by generateName each hold their node ports: a second one
// does not replace the first's reservation.
func TestGenerateNameServicesEachHoldTheirPorts(t *testing.T) {
	e := builtinEngine(t)
	web := `{apiVersion: v1, kind: Service, metadata: {generateName: web-, namespace: default}, spec: {type: NodePort, ports: [{name: http, port: 80, nodePort: %d}]}}`
	e.Admitted(object(t, fmt.Sprintf(web, 31001)), time.Minute)
	e.Admitted(object(t, fmt.Sprintf(web, 31002)), time.Minute)
	res, err := e.Validate(context.Background(), request(t, object(t, fmt.Sprintf(web, 31001))))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Denied) != 1 || !strings.Contains(res.Denied[0].Message, "nodePort 31001 is already used by Service default/web-(new ") {
		t.Errorf("denials %v, want nodePort 31001 taken by the first generateName Service", res.Denied)
	}
}
