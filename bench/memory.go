package bench

import (
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"github.com/doris-admission/doris-admission/policies"
	"github.com/doris-admission/doris-admission/policies/builtin"
	"github.com/doris-admission/doris-admission/policies/engine"
	"github.com/doris-admission/doris-admission/policies/source"
)

// memoryStats are Go heap sizes after a full GC (runtime.MemStats.HeapAlloc:
// bytes of live objects), growing an engine step by step.
type memoryStats struct {
	policies, builtinCount, services int
	// builtinOnly and withPolicies are the heap the engine takes with the
	// built-in policies loaded, and with all the policies loaded.
	builtinOnly, withPolicies uint64
	// index is what the node port index grew by with every Service in it.
	index uint64
}

// heapAfterGC is the live heap after a full collection.
func heapAfterGC() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// measureMemory loads an engine (offline: no cluster caches, so only the
// engine and the index count) with n policies, the built-in ones and copies
// of them and of the example policies under new names, then puts services
// Services holding one node port each in its node port index.
func measureMemory(root string, n, services int) (*memoryStats, error) {
	all, err := policySet(root, n)
	if err != nil {
		return nil, err
	}
	builtins := slices.DeleteFunc(slices.Clone(all), func(p policies.Policy) bool { return p.Origin != policies.OriginBuiltin })
	st := &memoryStats{policies: len(all), services: services, builtinCount: len(builtins)}

	before := heapAfterGC()
	cfg := source.Offline(nil)
	eng := engine.NewEngine(cfg)
	eng.Load(builtins)
	st.builtinOnly = heapAfterGC() - before
	eng.Load(all)
	st.withPolicies = heapAfterGC() - before

	empty := heapAfterGC()
	for i := range services {
		cfg.NodePorts.Set(nodePortService(i))
	}
	st.index = heapAfterGC() - empty
	runtime.KeepAlive(eng)
	runtime.KeepAlive(cfg.NodePorts)
	return st, nil
}

// policySet is n policies: the built-in ones, then copies of them and of the
// example policies under new names.
func policySet(root string, n int) ([]policies.Policy, error) {
	builtins, err := builtin.Builtin(builtin.DefaultNamespace, nil)
	if err != nil {
		return nil, err
	}
	examples, err := policies.ReadPolicies(filepath.Join(root, "deploy", "examples", "policies"), nil)
	if err != nil {
		return nil, err
	}
	sources := append(slices.Clone(builtins), examples...)
	all := slices.Clone(builtins)
	for i := 0; len(all) < n; i++ {
		all = append(all, renamed(sources[i%len(sources)], fmt.Sprintf("copy-%d", i)))
	}
	return all, nil
}

// renamed is a copy of p under a new name, as if read from a file.
func renamed(p policies.Policy, suffix string) policies.Policy {
	out := policies.Policy{Origin: "bench"}
	if p.Mutating != nil {
		out.Mutating = p.Mutating.DeepCopy()
		out.Mutating.Name += "-" + suffix
	} else {
		out.Validating = p.Validating.DeepCopy()
		out.Validating.Name += "-" + suffix
	}
	return out
}

// vmRSS reads VmRSS from the text of /proc/<pid>/status.
func vmRSS(status string) (uint64, error) {
	for line := range strings.Lines(status) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmRSS in the process status")
}
