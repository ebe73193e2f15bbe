package library

import (
	"fmt"
	"maps"
	"slices"
	"testing"

	kjson "sigs.k8s.io/json"
)

// readsObjects are StatefulSets and Services that reach every branch of the
// functions in ObjectReads: role by label, name and image, annotated ports
// and conf dir, declared ports, a conf mounted from a ConfigMap, cluster
// labels, selectors.
var readsObjects = []string{
	`{"kind": "StatefulSet", "metadata": {"name": "lake-fe", "namespace": "db", "labels": {"doris.apache.org/cluster": "lake"},
	  "annotations": {"doris.apache.org/http-port": "18030", "note": "x"}},
	  "spec": {"replicas": 3, "template": {"metadata": {"labels": {"app": "lake-fe"}}, "spec": {
	    "containers": [{"name": "log", "image": "fluent/fluent-bit:3", "ports": [{"name": "query-port", "containerPort": 1}]},
	      {"name": "main", "image": "apache/doris:fe-2.1.7", "env": [{"name": "A", "value": "b"}],
	       "ports": [{"name": "query-port", "containerPort": 19030}, {"name": "edit-log", "containerPort": 19010}],
	       "volumeMounts": [{"name": "conf", "mountPath": "/opt/apache-doris/fe/conf"}]}],
	    "volumes": [{"name": "conf", "configMap": {"name": "lake-conf", "items": [{"key": "fe-conf", "path": "fe.conf"}]}}]}}}}`,
	`{"kind": "StatefulSet", "metadata": {"name": "lake-be", "namespace": "db", "labels": {"doris.apache.org/role": "be"},
	  "annotations": {"doris.apache.org/conf-dir": "/etc/doris"}},
	  "spec": {"template": {"metadata": {"labels": {"app": "lake-be"}}, "spec": {
	    "containers": [{"name": "main", "image": "registry.local/db:7", "ports": [{"name": "heartbeat", "containerPort": 19050}],
	      "volumeMounts": [{"name": "be", "mountPath": "/etc/doris/be.conf", "subPath": "be-conf"}]}],
	    "volumes": [{"name": "be", "configMap": {"name": "lake-conf"}}]}}}}`,
	`{"kind": "StatefulSet", "metadata": {"name": "sea-be", "namespace": "db",
	  "annotations": {"doris.apache.org/version": "1.2.7", "doris.apache.org/host-mode": "fqdn"}},
	  "spec": {"serviceName": "sea-be-internal", "template": {"metadata": {"labels": {"doris.apache.org/role": "be"}}, "spec": {
	    "containers": [{"name": "doris-be", "image": "x"}]}}}}`,
	`{"kind": "Service", "metadata": {"name": "lake-fe-query", "namespace": "db"},
	  "spec": {"selector": {"app": "lake-fe"}, "ports": [{"port": 19030}]}}`,
	`{"kind": "ConfigMap", "metadata": {"name": "lake-conf", "namespace": "db"},
	  "data": {"fe-conf": "priority_networks = 10.0.0.0/8", "be-conf": "be_port = 9060"}}`,
}

// readsFunctions calls each function of ObjectReads the way its CEL
// binding does.
func readsFunctions(cluster Cluster) map[string]func(map[string]any) any {
	return map[string]func(map[string]any) any{
		"dorisRole":      func(o map[string]any) any { return Role(o) },
		"dorisContainer": func(o map[string]any) any { return Container(o) },
		"dorisPort": func(o map[string]any) any {
			var out []any
			for _, name := range slices.Sorted(maps.Keys(DefaultPorts)) {
				port, err := Port(o, name)
				out = append(out, name, port, err)
			}
			return out
		},
		"dorisConfDir":       func(o map[string]any) any { return ConfDir(o) },
		"dorisMountedConf":   func(o map[string]any) any { return both(MountedConf(cluster, o, "db")) },
		"dorisFEService":     func(o map[string]any) any { return both(FEService(cluster, o, "db")) },
		"dorisSelectedPorts": func(o map[string]any) any { return both(SelectedPorts(cluster, o, "db")) },
		"dorisVersion":       func(o map[string]any) any { return Version(o) },
		"dorisHostMode": func(o map[string]any) any {
			return []string{HostMode(o, nil, "2.1"), HostMode(o, nil, "1.2")}
		},
	}
}

// both is a result and its error, as one value to compare.
func both[T any](result T, err error) any { return []any{result, err} }

// TestObjectReadsAreAllAFunctionReads gives each function an object cut down
// to the parts ObjectReads declares for it: its answer must not change.
func TestObjectReadsAreAllAFunctionReads(t *testing.T) {
	var cluster objects
	for _, text := range readsObjects {
		var obj map[string]any
		if err := kjson.UnmarshalCaseSensitivePreserveInts([]byte(text), &obj); err != nil {
			t.Fatal(err)
		}
		cluster = append(cluster, obj)
	}
	functions := readsFunctions(cluster)
	if len(functions) != len(ObjectReads) {
		t.Fatalf("the test calls %d functions, ObjectReads declares %d", len(functions), len(ObjectReads))
	}
	for name, call := range functions {
		for _, obj := range cluster {
			cut := keepOnly(obj, ObjectReads[name])
			want, got := fmt.Sprint(call(obj)), fmt.Sprint(call(cut))
			if want != got {
				t.Errorf("%s of %s is %s, but %s on the parts ObjectReads declares: it reads more", name, path(obj, "metadata", "name"), want, got)
			}
		}
	}
}

// TestKeepOnlyCuts checks the cut the test above relies on.
func TestKeepOnlyCuts(t *testing.T) {
	obj := map[string]any{
		"a": map[string]any{"b": "1", "c": "2"},
		"l": []any{map[string]any{"n": "x", "m": "y"}, "z"},
	}
	got := fmt.Sprint(keepOnly(obj, [][]string{{"a", "b"}, {"l", AnyKey, "n"}}))
	if want := "map[a:map[b:1] l:[map[n:x] map[]]]"; got != want {
		t.Errorf("keepOnly = %s, want %s", got, want)
	}
}

// keepOnly copies obj with only what lies on paths; a list keeps its length,
// an element that has none of the parts becomes an empty map.
func keepOnly(obj map[string]any, paths [][]string) map[string]any {
	out := map[string]any{}
	for _, p := range paths {
		mergeInto(out, obj, p)
	}
	return out
}

func mergeInto(dst map[string]any, src any, p []string) {
	m := asMap(src)
	for key, value := range m {
		if key != p[0] && p[0] != AnyKey {
			continue
		}
		if len(p) == 1 {
			dst[key] = value
			continue
		}
		if list, ok := value.([]any); ok {
			dst[key] = mergeList(dst[key], list, p[1:])
			continue
		}
		if _, ok := value.(map[string]any); ok {
			sub, ok := dst[key].(map[string]any)
			if !ok {
				sub = map[string]any{}
				dst[key] = sub
			}
			mergeInto(sub, value, p[1:])
		}
	}
}

func mergeList(dst any, src []any, p []string) []any {
	out, ok := dst.([]any)
	if !ok {
		out = make([]any, len(src))
		for i := range out {
			out[i] = map[string]any{}
		}
	}
	for i, element := range src {
		if p[0] != AnyKey && p[0] != fmt.Sprint(i) {
			continue
		}
		if len(p) == 1 {
			out[i] = element
			continue
		}
		mergeInto(out[i].(map[string]any), element, p[1:])
	}
	return out
}
