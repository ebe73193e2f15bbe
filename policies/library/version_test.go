package library

import "testing"

func withMeta(obj map[string]any, key string, values map[string]any) map[string]any {
	obj["metadata"].(map[string]any)[key] = values
	return obj
}

func withServiceName(obj map[string]any) map[string]any {
	obj["spec"].(map[string]any)["serviceName"] = "doris-internal"
	return obj
}

func TestVersion(t *testing.T) {
	tests := []struct {
		name string
		obj  map[string]any
		want string
	}{
		{"official FE", statefulSet(nil, container("x", "apache/doris:fe-2.1.7")), "2.1.7"},
		{"official BE with digest", statefulSet(nil, container("x", "apache/doris:be-3.0.2@sha256:abc")), "3.0.2"},
		{"seed image", statefulSet(nil, container("x", "zyzcenter/apache-doris:1.2.4.1-fe")), "1.2.4.1"},
		{"selectdb", statefulSet(nil, container("x", "selectdb/doris.be-ubuntu:2.0.3")), "2.0.3"},
		{"a tag that says nothing, the annotation does", withMeta(statefulSet(map[string]any{RoleLabel: "fe"}, container("fe", "registry.local/doris:latest")),
			"annotations", map[string]any{VersionKey: "2.1.5"}), "2.1.5"},
		{"the label", statefulSet(map[string]any{RoleLabel: "be", VersionKey: "1.2.8"}, container("be", "registry.local/doris")), "1.2.8"},
		{"nothing says", statefulSet(map[string]any{RoleLabel: "be"}, container("be", "registry.local/doris:stable")), ""},
	}
	for _, tt := range tests {
		if got := Version(tt.obj); got != tt.want {
			t.Errorf("%s: Version = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestHostMode(t *testing.T) {
	official := func() map[string]any {
		return withServiceName(statefulSet(nil, container("x", "apache/doris:fe-2.1.7")))
	}
	seed := func() map[string]any {
		return withServiceName(statefulSet(nil, container("x", "zyzcenter/apache-doris:1.2.4.1-fe")))
	}
	unknown := func() map[string]any {
		return withServiceName(statefulSet(map[string]any{RoleLabel: "fe"}, container("fe", "registry.local/doris:stable")))
	}
	fqdnStored := official()
	fqdnStored["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)["env"] =
		[]any{map[string]any{"name": NodeAddressEnv, "value": "x"}}
	tests := []struct {
		name     string
		obj, old map[string]any
		fallback string
		want     string
	}{
		{"Doris 2.x is created in FQDN mode", official(), nil, "1.2", FQDNMode},
		{"Doris 1.x has no FE FQDN mode", seed(), nil, "2.1", IPMode},
		{"the setting decides when nothing says the version", unknown(), nil, "2.1", FQDNMode},
		{"the setting, 1.x", unknown(), nil, "1.2", IPMode},
		{"the annotation wins", withMeta(official(), "annotations", map[string]any{HostModeAnnotation: "ip"}), nil, "2.1", IPMode},
		{"the annotation wins on 1.x too", withMeta(seed(), "annotations", map[string]any{HostModeAnnotation: "fqdn"}), nil, "2.1", FQDNMode},
		{"no serviceName, no stable names", statefulSet(nil, container("x", "apache/doris:fe-2.1.7")), nil, "2.1", IPMode},
		{"an IP-mode cluster stays in IP mode on update", official(), official(), "2.1", IPMode},
		{"an FQDN cluster stays in FQDN mode", official(), fqdnStored, "2.1", FQDNMode},
	}
	for _, tt := range tests {
		if got := HostMode(tt.obj, tt.old, tt.fallback); got != tt.want {
			t.Errorf("%s: HostMode = %q, want %q", tt.name, got, tt.want)
		}
	}
}
