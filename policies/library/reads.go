package library

// AnyKey stands for every list index or map key at its place in a path.
const AnyKey = "*"

// roleReads are the parts of a StatefulSet that Role and Container read.
var roleReads = [][]string{
	{"metadata", "labels", RoleLabel},
	{"spec", "template", "metadata", "labels", RoleLabel},
	{"spec", "template", "spec", "containers", AnyKey, "name"},
	{"spec", "template", "spec", "containers", AnyKey, "image"},
}

// confDirReads are the parts of a StatefulSet that ConfDir reads.
var confDirReads = append([][]string{{"metadata", "annotations", "doris.apache.org/conf-dir"}}, roleReads...)

// versionReads are the parts of a StatefulSet that Version reads.
var versionReads = append([][]string{
	{"metadata", "annotations", VersionKey},
	{"metadata", "labels", VersionKey},
}, roleReads...)

// ObjectReads are, for each function here that takes an object as its first
// argument, the parts of that object it reads: field names and map keys,
// AnyKey for any. The engine skips reinvoking a policy when a later policy
// changed none of what it reads, so a part missing here would leave a policy
// blind to a change: reads_test.go checks each function gives the same answer
// on objects cut down to these parts. A function not named here is taken to
// read the whole object.
var ObjectReads = map[string][][]string{
	"dorisRole":      roleReads,
	"dorisContainer": roleReads,
	"dorisPort": append([][]string{
		{"metadata", "annotations", AnyKey},
		{"spec", "template", "spec", "containers", AnyKey, "ports"},
	}, roleReads...),
	"dorisConfDir": confDirReads,
	"dorisMountedConf": append([][]string{
		{"spec", "template", "spec", "containers", AnyKey, "volumeMounts"},
		{"spec", "template", "spec", "volumes"},
	}, confDirReads...),
	"dorisFEService": {
		{"metadata", "name"},
		{"metadata", "labels", ClusterLabel},
	},
	"dorisVersion": versionReads,
	"dorisHostMode": append([][]string{
		{"metadata", "annotations", HostModeAnnotation},
		{"spec", "serviceName"},
	}, versionReads...),
	"dorisSelectedPorts": {
		{"spec", "selector"},
	},
}
