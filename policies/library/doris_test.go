package library

import (
	"fmt"
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

func statefulSet(labels map[string]any, containers ...map[string]any) map[string]any {
	list := make([]any, len(containers))
	for i, c := range containers {
		list[i] = c
	}
	return map[string]any{
		"metadata": map[string]any{"labels": labels},
		"spec":     map[string]any{"template": map[string]any{"spec": map[string]any{"containers": list}}},
	}
}

func container(name, image string) map[string]any {
	return map[string]any{"name": name, "image": image}
}

func TestRoleAndContainer(t *testing.T) {
	sidecar := container("log", "fluent/fluent-bit:3")
	tests := []struct {
		name      string
		obj       map[string]any
		role      string
		container int
	}{
		{"seed FE image", statefulSet(nil, container("x", "zyzcenter/apache-doris:1.2.4.1-fe")), "fe", 0},
		{"seed BE image after a sidecar", statefulSet(nil, sidecar, container("x", "zyzcenter/apache-doris:1.2.4.1-be")), "be", 1},
		{"official FE", statefulSet(nil, container("x", "apache/doris:fe-2.1.7")), "fe", 0},
		{"official BE with registry and digest", statefulSet(nil, container("x", "docker.io/apache/doris:be-3.0.2@sha256:abc")), "be", 0},
		{"selectdb FE", statefulSet(nil, container("x", "selectdb/doris.fe-ubuntu:2.0.3")), "fe", 0},
		{"container named doris-be", statefulSet(nil, sidecar, container("doris-be", "registry.local/db:7")), "be", 1},
		{"container named fe", statefulSet(nil, container("fe", "registry.local/db:7")), "fe", 0},
		{"label wins, first container", statefulSet(map[string]any{RoleLabel: "be"}, container("main", "registry.local/db:7")), "be", 0},
		{"not Doris", statefulSet(nil, container("web", "nginx:1.27"), sidecar), "", -1},
		{"apache but not doris", statefulSet(nil, container("web", "apache/httpd:fe-1")), "", -1},
		{"no containers", map[string]any{}, "", -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Role(tt.obj); got != tt.role {
				t.Errorf("Role = %q, want %q", got, tt.role)
			}
			if got := Container(tt.obj); got != tt.container {
				t.Errorf("Container = %d, want %d", got, tt.container)
			}
		})
	}
}

func TestPort(t *testing.T) {
	fe := func(annotations map[string]any, ports ...any) map[string]any {
		c := container("fe", "apache/doris:fe-2.1.7")
		c["ports"] = ports
		obj := statefulSet(nil, c)
		obj["metadata"].(map[string]any)["annotations"] = annotations
		return obj
	}
	tests := []struct {
		name string
		obj  map[string]any
		port string
		want int
		err  bool
	}{
		{"default", fe(nil), "query", 9030, false},
		{"named container port", fe(nil, map[string]any{"name": "query-port", "containerPort": int64(19030)}), "query", 19030, false},
		{"short name", fe(nil, map[string]any{"name": "http", "containerPort": int64(18030)}), "http", 18030, false},
		{"annotation wins", fe(map[string]any{"doris.apache.org/query-port": "29030"}, map[string]any{"name": "query-port", "containerPort": int64(19030)}), "query", 29030, false},
		{"bad annotation", fe(map[string]any{"doris.apache.org/query-port": "x"}), "query", 0, true},
		{"unknown name", fe(nil), "nope", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Port(tt.obj, tt.port)
			if got != tt.want || (err != nil) != tt.err {
				t.Errorf("Port = %d, %v; want %d, error %v", got, err, tt.want, tt.err)
			}
		})
	}
}

// objects is a Cluster over fixed objects.
type objects []map[string]any

func (o objects) List(kind schema.GroupVersionKind, namespace string) ([]map[string]any, error) {
	var out []map[string]any
	for _, obj := range o {
		if obj["kind"] == kind.Kind && path(obj, "metadata", "namespace") == namespace {
			out = append(out, obj)
		}
	}
	return out, nil
}

func object(kind, namespace, name string, labels map[string]any, spec map[string]any) map[string]any {
	return map[string]any{"kind": kind, "metadata": map[string]any{"name": name, "namespace": namespace, "labels": labels}, "spec": spec}
}

func TestFEService(t *testing.T) {
	fe := func(name string, labels map[string]any, app string) map[string]any {
		sts := statefulSet(labels, container("fe", "apache/doris:fe-2.1.7"))
		sts["kind"] = "StatefulSet"
		sts["metadata"].(map[string]any)["name"] = name
		sts["metadata"].(map[string]any)["namespace"] = "db"
		sts["spec"].(map[string]any)["template"].(map[string]any)["metadata"] = map[string]any{"labels": map[string]any{"app": app}}
		return sts
	}
	service := func(name, app string, port int64) map[string]any {
		return object("Service", "db", name, nil, map[string]any{"selector": map[string]any{"app": app}, "ports": []any{map[string]any{"port": port}}})
	}
	be := func(name string, labels map[string]any) map[string]any {
		return object("StatefulSet", "db", name, labels, nil)
	}
	cluster := objects{
		fe("lake-fe", nil, "lake-fe"), fe("meta", map[string]any{ClusterLabel: "sea"}, "meta"),
		service("lake-fe-edit", "lake-fe", 9010), service("lake-fe-query", "lake-fe", 9030),
		service("sea-query", "meta", 9030), service("other", "web", 9030),
	}
	tests := []struct {
		name    string
		cluster Cluster
		be      map[string]any
		want    string
	}{
		{"by name, preferring the query port", cluster, be("lake-be", nil), "lake-fe-query"},
		{"by cluster label", cluster, be("storage", map[string]any{ClusterLabel: "sea"}), "sea-query"},
		{"two FEs, no tie", cluster, be("storage", nil), ""},
		{"the only FE", objects{fe("meta", nil, "meta"), service("m", "meta", 9030)}, be("storage", nil), "m"},
		{"no Service selects it", objects{fe("meta", nil, "meta")}, be("storage", nil), ""},
		{"no cluster", nil, be("lake-be", nil), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := FEService(tt.cluster, tt.be, "db"); err != nil || got != tt.want {
				t.Errorf("FEService = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSelectedPorts(t *testing.T) {
	fe := statefulSet(nil, container("fe", "apache/doris:fe-2.1.7"))
	fe["kind"] = "StatefulSet"
	fe["metadata"].(map[string]any)["namespace"] = "db"
	fe["spec"].(map[string]any)["template"].(map[string]any)["metadata"] = map[string]any{"labels": map[string]any{"app": "fe", "tier": "meta"}}
	c := fe["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)
	c["ports"] = []any{map[string]any{"containerPort": int64(9030)}, map[string]any{"containerPort": int64(8030)}}
	svc := func(selector map[string]any) map[string]any {
		return map[string]any{"spec": map[string]any{"selector": selector}}
	}
	tests := []struct {
		name string
		svc  map[string]any
		want []int
	}{
		{"selects the FE", svc(map[string]any{"app": "fe"}), []int{8030, 9030}},
		{"selects something else", svc(map[string]any{"app": "web"}), nil},
		{"selects nothing", svc(nil), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _ := SelectedPorts(objects{fe}, tt.svc, "db")
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("SelectedPorts = %v, want %v", got, tt.want)
			}
		})
	}
}
