package library

import (
	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"

	"github.com/doris-admission/doris-admission/policies/inventory"
)

// Inventory is the CEL library over the cluster indexes:
//
//   - inventory.nodePortOwners(port) list: the Service ports that hold the
//     node port, each {namespace, name, port, protocol}; an error when the
//     index has not read the cluster's Services yet. At most
//     MaxNodePortOwners, in order of namespace, name and port.
func Inventory(nodePorts *inventory.NodePorts) cel.EnvOption {
	return cel.Lib(inventoryLib{nodePorts})
}

type inventoryLib struct {
	nodePorts *inventory.NodePorts
}

func (inventoryLib) LibraryName() string { return "doris-admission.inventory" }

func (l inventoryLib) CompileOptions() []cel.EnvOption {
	owner := cel.MapType(cel.StringType, cel.StringType)
	return []cel.EnvOption{
		cel.Function("inventory.nodePortOwners", cel.Overload("inventory_node_port_owners_int", []*cel.Type{cel.IntType}, cel.ListType(owner),
			cel.UnaryBinding(func(port ref.Val) ref.Val { return l.owners(int32(port.(types.Int))) }))),
	}
}

func (inventoryLib) ProgramOptions() []cel.ProgramOption { return nil }

func (l inventoryLib) owners(port int32) ref.Val {
	if l.nodePorts == nil || !l.nodePorts.Synced() {
		return types.NewErr("the node port inventory has not read the cluster's Services yet; try again in a moment")
	}
	var out []map[string]string
	owners := l.nodePorts.Owners(port)
	for _, o := range owners[:min(len(owners), MaxNodePortOwners)] {
		out = append(out, map[string]string{"namespace": o.Namespace, "name": o.Name, "port": o.Port, "protocol": string(o.Protocol)})
	}
	return types.DefaultTypeAdapter.NativeToValue(out)
}
