package library

import (
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

// ClusterLabel ties the FE and BE StatefulSets of one Doris cluster.
const ClusterLabel = "doris.apache.org/cluster"

var (
	statefulSetKind = schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "StatefulSet"}
	serviceKind     = schema.GroupVersionKind{Version: "v1", Kind: "Service"}
)

// FEService is the name of the Service in namespace that selects the FE pods
// of the BE StatefulSet be's cluster, or "" when none is found. The FE
// StatefulSet is the one with the same cluster label, or named X-fe for a BE
// named X-be, or the only FE in the namespace. Of the Services whose selector
// picks its pods, one that exposes the FE query port is preferred.
func FEService(cluster Cluster, be map[string]any, namespace string) (string, error) {
	if cluster == nil {
		return "", nil
	}
	sets, err := list(cluster, statefulSetKind, namespace)
	if err != nil {
		return "", err
	}
	fe := feOf(sets, be)
	if fe == nil {
		return "", nil
	}
	podLabels := stringMap(path(fe, "spec", "template", "metadata", "labels"))
	queryPort, _ := Port(fe, "query")
	services, err := list(cluster, serviceKind, namespace)
	if err != nil {
		return "", err
	}
	slices.SortFunc(services, func(a, b map[string]any) int { return strings.Compare(name(a), name(b)) })
	found := ""
	for _, svc := range services {
		selector := stringMap(path(svc, "spec", "selector"))
		if len(selector) == 0 || !subset(selector, podLabels) {
			continue
		}
		if exposes(svc, queryPort) {
			return name(svc), nil
		}
		if found == "" {
			found = name(svc)
		}
	}
	return found, nil
}

// feOf picks the FE StatefulSet of be's cluster among sets.
func feOf(sets []map[string]any, be map[string]any) map[string]any {
	var fes []map[string]any
	for _, sts := range sets {
		if Role(sts) == "fe" {
			fes = append(fes, sts)
		}
	}
	cluster := stringMap(path(be, "metadata", "labels"))[ClusterLabel]
	beName := name(be)
	for _, fe := range fes {
		if cluster != "" && stringMap(path(fe, "metadata", "labels"))[ClusterLabel] == cluster {
			return fe
		}
		if strings.HasSuffix(beName, "-be") && name(fe) == strings.TrimSuffix(beName, "-be")+"-fe" {
			return fe
		}
	}
	if len(fes) == 1 {
		return fes[0]
	}
	return nil
}

// exposes tells whether a Service has port as its port or target port.
func exposes(svc map[string]any, port int) bool {
	ports, _ := path(svc, "spec", "ports").([]any)
	for _, p := range ports {
		m := asMap(p)
		if number(m["port"]) == port || number(m["targetPort"]) == port {
			return true
		}
	}
	return false
}

func number(v any) int {
	switch n := v.(type) {
	case int64:
		return int(n)
	case float64:
		return int(n)
	}
	return 0
}

func name(obj map[string]any) string {
	n, _ := path(obj, "metadata", "name").(string)
	return n
}

func stringMap(v any) map[string]string {
	out := map[string]string{}
	for k, val := range asMap(v) {
		if s, ok := val.(string); ok {
			out[k] = s
		}
	}
	return out
}

func subset(small, big map[string]string) bool {
	for k, v := range small {
		if big[k] != v {
			return false
		}
	}
	return true
}

// SelectedPorts lists the declared container ports of the Doris containers
// of the StatefulSets in namespace whose pods svc selects; empty when it
// selects no Doris pods, or they declare no ports.
func SelectedPorts(cluster Cluster, svc map[string]any, namespace string) ([]int, error) {
	selector := stringMap(path(svc, "spec", "selector"))
	if cluster == nil || len(selector) == 0 {
		return nil, nil
	}
	sets, err := list(cluster, statefulSetKind, namespace)
	if err != nil {
		return nil, err
	}
	var ports []int
	for _, sts := range sets {
		i := Container(sts)
		if i < 0 || !subset(selector, stringMap(path(sts, "spec", "template", "metadata", "labels"))) {
			continue
		}
		declared, _ := containers(sts)[i]["ports"].([]any)
		for _, p := range declared {
			if n := number(asMap(p)["containerPort"]); n > 0 && !slices.Contains(ports, n) {
				ports = append(ports, n)
			}
		}
	}
	slices.Sort(ports)
	return ports, nil
}

// StatefulSetRole is the Doris role of the StatefulSet namespace/name in
// the cluster, or "": what a request on its scale subresource, which
// carries only a Scale, is about.
func StatefulSetRole(cluster Cluster, namespace, statefulSet string) (string, error) {
	s, err := find(cluster, statefulSetKind, namespace, statefulSet)
	if s == nil {
		return "", err
	}
	return Role(s), nil
}

// Service is the Service namespace/name in the cluster, or nil.
func Service(cluster Cluster, namespace, service string) (map[string]any, error) {
	return find(cluster, serviceKind, namespace, service)
}

// find is the object of kind namespace/name in the cluster, nil when the
// cluster is known not to hold it.
func find(cluster Cluster, kind schema.GroupVersionKind, namespace, objName string) (map[string]any, error) {
	if cluster == nil {
		return nil, nil
	}
	objects, err := list(cluster, kind, namespace)
	for _, obj := range objects {
		if name(obj) == objName {
			return obj, nil
		}
	}
	return nil, err
}

// list is cluster.List with an error that says what was read.
func list(cluster Cluster, kind schema.GroupVersionKind, namespace string) ([]map[string]any, error) {
	objects, err := cluster.List(kind, namespace)
	if err != nil {
		return nil, fmt.Errorf("reading the %s objects of namespace %s: %w", kind.Kind, namespace, err)
	}
	return objects, nil
}
