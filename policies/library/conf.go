package library

import (
	pathpkg "path"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

var configMapKind = schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}

// ConfDir is the Doris conf dir of the StatefulSet obj: annotation
// doris.apache.org/conf-dir, else /opt/apache-doris/<role>/conf.
func ConfDir(obj map[string]any) string {
	if dir, ok := asMap(path(obj, "metadata", "annotations"))["doris.apache.org/conf-dir"].(string); ok && dir != "" {
		return dir
	}
	return "/opt/apache-doris/" + Role(obj) + "/conf"
}

// MountedConf is the content of the fe.conf or be.conf that the user mounts
// from a ConfigMap over the Doris container's conf dir (or over the file
// itself), or "" when none is mounted or the ConfigMap or key does not exist.
func MountedConf(cluster Cluster, obj map[string]any, namespace string) (string, error) {
	i := Container(obj)
	if cluster == nil || i < 0 {
		return "", nil
	}
	dir, file := ConfDir(obj), Role(obj)+".conf"
	mounts, _ := containers(obj)[i]["volumeMounts"].([]any)
	for _, m := range mounts {
		mount := asMap(m)
		mountPath, _ := mount["mountPath"].(string)
		if mountPath != dir && mountPath != pathpkg.Join(dir, file) {
			continue
		}
		volume, _ := mount["name"].(string)
		key, _ := mount["subPath"].(string)
		if key == "" {
			key = file
		}
		return configMapData(cluster, obj, namespace, volume, key)
	}
	return "", nil
}

// configMapData reads key (a file name inside the volume) of the ConfigMap
// behind the pod volume named volume.
func configMapData(cluster Cluster, obj map[string]any, namespace, volume, file string) (string, error) {
	volumes, _ := path(obj, "spec", "template", "spec", "volumes").([]any)
	for _, v := range volumes {
		vol := asMap(v)
		if vol["name"] != volume {
			continue
		}
		source := asMap(vol["configMap"])
		name, _ := source["name"].(string)
		key := file
		items, _ := source["items"].([]any)
		for _, item := range items {
			if it := asMap(item); it["path"] == file {
				key, _ = it["key"].(string)
			}
		}
		cm, err := find(cluster, configMapKind, namespace, name)
		if cm == nil {
			return "", err
		}
		data, _ := asMap(cm["data"])[key].(string)
		return data, nil
	}
	return "", nil
}
