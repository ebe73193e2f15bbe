package library

import (
	"regexp"
	"strings"
)

// VersionKey is the annotation (or label) that says which Doris version a
// StatefulSet runs, when its image tag does not.
const VersionKey = "doris.apache.org/version"

// HostModeAnnotation chooses how Doris nodes are known: "fqdn" or "ip".
const HostModeAnnotation = "doris.apache.org/host-mode"

// Host modes.
const (
	FQDNMode = "fqdn"
	IPMode   = "ip"
)

// versionPattern is a version as Doris tags it: 2.1, 2.1.7, 1.2.4.1.
const versionPattern = `^[0-9]+\.[0-9]+(\.[0-9]+)*`

// fqdnVersionPattern matches the versions from 2.0 on: a major version of 2
// or more.
const fqdnVersionPattern = `^0*([2-9]|[1-9][0-9]+)(\.|$)`

var (
	leadingVersion = regexp.MustCompile(versionPattern)
	fqdnVersion    = regexp.MustCompile(fqdnVersionPattern)
)

// Version is the Doris version the StatefulSet obj runs: read from the Doris
// container's image tag (apache/doris:fe-2.1.7, x/apache-doris:1.2.4.1-fe,
// selectdb/doris.fe-ubuntu:2.1.7), else the annotation or label
// doris.apache.org/version; "" when none says.
func Version(obj map[string]any) string {
	if i := Container(obj); i >= 0 {
		image, _ := containers(obj)[i]["image"].(string)
		image, _, _ = strings.Cut(image, "@")
		if j := strings.LastIndex(image, ":"); j > strings.LastIndex(image, "/") {
			tag := strings.TrimPrefix(strings.TrimPrefix(image[j+1:], "fe-"), "be-")
			if v := leadingVersion.FindString(tag); v != "" {
				return v
			}
		}
	}
	for _, meta := range []string{"annotations", "labels"} {
		if v, _ := asMap(path(obj, "metadata", meta))[VersionKey].(string); leadingVersion.MatchString(v) {
			return leadingVersion.FindString(v)
		}
	}
	return ""
}

// HostMode is how the Doris nodes of the StatefulSet obj are known, "fqdn"
// or "ip":
//   - the annotation doris.apache.org/host-mode, when set;
//   - "ip" without spec.serviceName: the pods have no stable names;
//   - on an update (old is the stored StatefulSet), the mode it runs in: an
//     IP-mode cluster is switched to FQDN only by a procedure, never by an
//     apply. A StatefulSet doris-admission has not set up yet runs in Doris'
//     default, IP mode;
//   - else FQDN from Doris 2.0 on (the version of Version, or
//     defaultVersion), IP before: Doris 1.x's FE has no FQDN mode.
func HostMode(obj, old map[string]any, defaultVersion string) string {
	switch mode, _ := asMap(path(obj, "metadata", "annotations"))[HostModeAnnotation].(string); mode {
	case FQDNMode, IPMode:
		return mode
	}
	if name, _ := path(obj, "spec", "serviceName").(string); name == "" {
		return IPMode
	}
	if old != nil {
		return storedHostMode(old)
	}
	version := Version(obj)
	if version == "" {
		version = defaultVersion
	}
	if fqdnVersion.MatchString(version) {
		return FQDNMode
	}
	return IPMode
}

// storedHostMode is the mode a stored StatefulSet runs in, from what
// doris-admission set up in it: FQDN when its Doris container has
// DORIS_NODE_ADDRESS (doris-env gives it only in FQDN mode), else IP.
func storedHostMode(obj map[string]any) string {
	if i := Container(obj); i >= 0 {
		env, _ := containers(obj)[i]["env"].([]any)
		for _, e := range env {
			if asMap(e)["name"] == NodeAddressEnv {
				return FQDNMode
			}
		}
	}
	return IPMode
}

// NodeAddressEnv is the variable that holds a Doris node's FQDN in FQDN
// mode: what it registers and looks itself up by.
const NodeAddressEnv = "DORIS_NODE_ADDRESS"
