package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// kernelSettings are what the kubelet sets at start (pkg/kubelet/cm
// setupKernelTunables) unless protectKernelDefaults makes it refuse to run:
// the node writes them back when it stops.
var kernelSettings = []string{"vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
	"kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes"}

func readSysctls() map[string]string {
	out := map[string]string{}
	for _, k := range kernelSettings {
		if data, err := os.ReadFile(filepath.Join("/proc/sys", k)); err == nil {
			out[k] = strings.TrimSpace(string(data))
		}
	}
	return out
}

func restoreSysctls(saved map[string]string) error {
	var errs []error
	for k, v := range saved {
		if err := os.WriteFile(filepath.Join("/proc/sys", k), []byte(v), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("restoring %s: %w", k, err))
		}
	}
	return errors.Join(errs...)
}

// cgroupHierarchies are the cgroup v1 hierarchies the kubelet uses.
var cgroupHierarchies = []string{"cpu", "cpuacct", "cpuset", "memory", "pids", "blkio", "devices", "freezer", "hugetlb", "systemd"}

// prepareCgroups makes cgroupRoot in every hierarchy, with cpuset's cpus
// and mems from its parent (a cpuset cgroup without them takes no task).
func prepareCgroups() error {
	for _, h := range cgroupHierarchies {
		base := filepath.Join("/sys/fs/cgroup", h)
		if _, err := os.Stat(base); err != nil {
			continue
		}
		if err := os.MkdirAll(filepath.Join(base, cgroupRoot), 0o755); err != nil {
			return fmt.Errorf("making cgroup %s in %s: %w", cgroupRoot, h, err)
		}
	}
	for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
		data, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/cpuset", f))
		if err != nil {
			continue
		}
		os.WriteFile(filepath.Join("/sys/fs/cgroup/cpuset", cgroupRoot, f), data, 0o644)
	}
	return nil
}

// stopTimeout bounds waiting for the pods to go when the node stops.
const stopTimeout = 2 * time.Minute

// Stop deletes the node's pods, stops every process and removes what the
// node made on this machine; it reports what it could not remove.
func (n *Node) Stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	n.logf("stopping: deleting the pods, then the processes, mounts, cgroups, bridge and rules")
	n.stopProcesses("kube-controller-manager", "kube-scheduler")
	n.deletePods(ctx)
	n.stopProcesses("kubelet", "kube-proxy", "coredns")
	n.removeContainers(ctx)
	n.stopProcesses("containerd")
	var errs []error
	if n.opts.Assets != "" {
		if out, err := run(filepath.Join(n.opts.Assets, "kube-proxy"), "--cleanup"); err != nil {
			errs = append(errs, fmt.Errorf("removing kube-proxy's rules: %w: %s", err, out))
		}
	}
	errs = append(errs, removeKubeChains(), removeNodeState(n.dir))
	if n.sysctls != nil {
		errs = append(errs, restoreSysctls(n.sysctls))
	}
	errs = append(errs, os.RemoveAll(n.dir))
	return errors.Join(errs...)
}

// stopProcesses stops the named processes the node started.
func (n *Node) stopProcesses(names ...string) {
	for _, p := range n.processes {
		for _, name := range names {
			if p.name == name {
				p.stop(15 * time.Second)
			}
		}
	}
}

// deletePods deletes every pod on the node and waits until the kubelet has
// torn them down: their sandboxes stopped, so CNI has freed their network
// namespaces, addresses and rules.
func (n *Node) deletePods(ctx context.Context) {
	if _, err := n.kubectl(ctx, "delete", "pods", "--all", "--all-namespaces", "--grace-period=5", "--wait=false"); err != nil {
		n.logf("deleting the pods: %v", err)
		return
	}
	if !waitGone(ctx, func() bool {
		out, err := n.kubectl(ctx, "get", "pods", "--all-namespaces", "--field-selector", "spec.nodeName="+Name, "-o", "name")
		return err == nil && strings.TrimSpace(out) == ""
	}) {
		n.logf("pods were still on the node after %s", stopTimeout)
	}
}

// removeContainers stops and removes what containerd still runs, sandboxes
// included, so that no shim outlives it.
func (n *Node) removeContainers(ctx context.Context) {
	out, err := n.ctr(ctx, "tasks", "ls", "-q")
	if err != nil {
		return
	}
	for _, id := range strings.Fields(out) {
		n.ctr(ctx, "tasks", "kill", "-s", "SIGKILL", id)
		n.ctr(ctx, "tasks", "rm", "-f", id)
	}
}

// removeKubeChains removes the iptables chains the kubelet makes
// (KUBE-FIREWALL, KUBE-KUBELET-CANARY, KUBE-IPTABLES-HINT) and any other
// KUBE- chain left, with the rules that jump to them, for IPv4 and IPv6;
// kube-proxy --cleanup removes only its own.
func removeKubeChains() error {
	var errs []error
	for _, tool := range []string{"iptables", "ip6tables"} {
		for _, table := range []string{"filter", "nat", "mangle"} {
			errs = append(errs, removeKubeChainsOf(tool, table))
		}
	}
	return errors.Join(errs...)
}

func removeKubeChainsOf(tool, table string) error {
	out, err := run(tool, "-t", table, "-S")
	if err != nil {
		return nil // no such table here
	}
	var chains []string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) >= 2 && (f[0] == "-N" || f[0] == "-P") {
			chains = append(chains, f[1])
		}
	}
	var errs []error
	for _, chain := range chains {
		if strings.HasPrefix(chain, "KUBE-") {
			_, err := run(tool, "-t", table, "-F", chain)
			errs = append(errs, err)
			continue
		}
		errs = append(errs, deleteJumpsToKube(tool, table, chain))
	}
	for _, chain := range chains {
		if strings.HasPrefix(chain, "KUBE-") {
			_, err := run(tool, "-t", table, "-X", chain)
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// deleteJumpsToKube deletes the rules of chain whose target is a KUBE-
// chain, by number, last first.
func deleteJumpsToKube(tool, table, chain string) error {
	out, err := run(tool, "-t", table, "-L", chain, "-n", "--line-numbers")
	if err != nil {
		return err
	}
	var numbers []string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) >= 2 && strings.HasPrefix(f[1], "KUBE-") {
			numbers = append([]string{f[0]}, numbers...)
		}
	}
	for _, number := range numbers {
		if _, err := run(tool, "-t", table, "-D", chain, number); err != nil {
			return err
		}
	}
	return nil
}

// removeLeftovers removes what an earlier run that did not stop cleanly
// left: its processes, mounts and folders, cgroups, bridge.
func removeLeftovers() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "doris-admission-node-*"))
	for _, dir := range dirs {
		removeNodeState(dir)
		os.RemoveAll(dir)
	}
	removeKubeChains()
	removeNodeState("")
	removeCNIResults()
}

// cniResults is where libcni (in containerd) caches each sandbox's result,
// deleted when the sandbox is; a killed run leaves its own.
const cniResults = "/var/lib/cni/results"

// removeCNIResults removes the cached results of the node's network, and the
// loopback results of the same sandboxes.
func removeCNIResults() {
	prefix := cniNetwork + "-"
	ours, _ := filepath.Glob(filepath.Join(cniResults, prefix+"*"))
	for _, path := range ours {
		id := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(path), prefix), "-eth0")
		os.Remove(path)
		os.Remove(filepath.Join(cniResults, "cni-loopback-"+id+"-lo"))
	}
}

// removeNodeState kills the processes that mention dir (containerd's shims
// run on after it), unmounts what is mounted under dir, and removes the
// pods' cgroups and the bridge. An empty dir does only the last two.
func removeNodeState(dir string) error {
	var errs []error
	if dir != "" {
		killMentioning(dir)
		errs = append(errs, unmountUnder(dir))
	}
	errs = append(errs, removeCgroups())
	if _, err := os.Stat(filepath.Join("/sys/class/net", bridgeName)); err == nil {
		if _, err := run("ip", "link", "delete", bridgeName); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// killMentioning kills every process whose command line mentions dir.
func killMentioning(dir string) {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscan(e.Name(), &pid); err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(cmdline), dir) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// unmountUnder unmounts every mount point under dir, deepest first.
func unmountUnder(dir string) error {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	var points []string
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) > 4 && strings.HasPrefix(fields[4], dir+"/") {
			points = append(points, fields[4])
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(points)))
	var errs []error
	for _, p := range points {
		if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
			errs = append(errs, fmt.Errorf("unmounting %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// removeCgroups removes cgroupRoot and the cgroups under it, deepest first,
// in every hierarchy.
func removeCgroups() error {
	var errs []error
	for _, h := range cgroupHierarchies {
		root := filepath.Join("/sys/fs/cgroup", h, cgroupRoot)
		var dirs []string
		filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, path)
			}
			return nil
		})
		sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
		for _, d := range dirs {
			if err := os.Remove(d); err != nil && !os.IsNotExist(err) {
				errs = append(errs, fmt.Errorf("removing cgroup %s: %w", d, err))
			}
		}
	}
	return errors.Join(errs...)
}

// Leftovers lists what the node left on this machine after Stop: processes
// or mounts of its folder (the pods' network namespaces among them), KUBE-
// iptables chains, its bridge, pod cgroups, CNI results, kernel settings not
// put back. Empty when Stop removed everything.
func (n *Node) Leftovers() []string {
	var out []string
	if data, err := os.ReadFile("/proc/self/mountinfo"); err == nil && strings.Contains(string(data), n.dir) {
		out = append(out, "mounts under "+n.dir)
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline")); err == nil && strings.Contains(string(cmdline), n.dir) {
			out = append(out, "process "+e.Name()+": "+strings.ReplaceAll(string(cmdline), "\x00", " "))
		}
	}
	for _, tool := range []string{"iptables-save", "ip6tables-save"} {
		if rules, err := run(tool); err == nil && strings.Contains(rules, "KUBE-") {
			out = append(out, tool+" lists KUBE- chains")
		}
	}
	if _, err := os.Stat(filepath.Join("/sys/class/net", bridgeName)); err == nil {
		out = append(out, "the bridge "+bridgeName)
	}
	if _, err := os.Stat(filepath.Join("/sys/fs/cgroup/memory", cgroupRoot)); err == nil {
		out = append(out, "the cgroup "+cgroupRoot)
	}
	if results, _ := filepath.Glob(filepath.Join(cniResults, cniNetwork+"-*")); len(results) > 0 {
		out = append(out, fmt.Sprintf("%d CNI results in %s", len(results), cniResults))
	}
	now := readSysctls()
	for k, v := range n.sysctls {
		if now[k] != v {
			out = append(out, fmt.Sprintf("%s is %s, was %s", k, now[k], v))
		}
	}
	return out
}
