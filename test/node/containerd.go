package node

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// containerdConfig is containerd's config: everything under dir (the pods'
// network namespaces too, so a run that was killed leaves none that the next
// cannot find), the CRI
// plugin with runc on cgroupfs, the CNI plugins from Debian's package and
// the node's own network config, and the locally built pause image.
// restrict_oom_score_adj: this machine lacks CAP_SYS_RESOURCE, and without it
// every sandbox fails with "oom_score_adj: Permission denied".
const containerdConfig = `version = 2
root = "{{dir}}/containerd/root"
state = "{{dir}}/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]

[grpc]
  address = "{{dir}}/containerd/containerd.sock"

[plugins."io.containerd.internal.v1.opt"]
  path = "{{dir}}/containerd/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{{pause}}"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{{dir}}/cni/net.d"
`

// cniConfig is the pod network: a bridge on the node with host-local
// addresses from the pod CIDR, kept in dir; pods reach the node, and the
// node routes to them.
const cniConfig = `{
  "cniVersion": "1.0.0",
  "name": "{{network}}",
  "plugins": [{
    "type": "bridge",
    "bridge": "{{bridge}}",
    "isGateway": true,
    "ipMasq": true,
    "hairpinMode": true,
    "ipam": {
      "type": "host-local",
      "ranges": [[{"subnet": "{{podCIDR}}"}]],
      "routes": [{"dst": "0.0.0.0/0"}],
      "dataDir": "{{dir}}/cni/ipam"
    }
  }]
}`

// fill replaces {{key}} in template with values.
func fill(template string, values map[string]string) string {
	for k, v := range values {
		template = strings.ReplaceAll(template, "{{"+k+"}}", v)
	}
	return template
}

// startContainerd writes containerd's and the CNI config and starts it.
func (n *Node) startContainerd(ctx context.Context) error {
	values := map[string]string{"dir": n.dir, "pause": pauseImage, "bridge": bridgeName, "podCIDR": PodCIDR, "network": cniNetwork}
	files := map[string]string{
		filepath.Join(n.dir, "containerd", "config.toml"):                   containerdConfig,
		filepath.Join(n.dir, "cni", "net.d", "10-doris-admission.conflist"): cniConfig,
	}
	for path, template := range files {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, []byte(fill(template, values)), 0o644); err != nil {
			return err
		}
	}
	p, err := start(n.dir, "containerd", "containerd", "--config", filepath.Join(n.dir, "containerd", "config.toml"))
	if err != nil {
		return err
	}
	n.processes = append(n.processes, p)
	return p.waitFor(ctx, "an answer on its socket", func(ctx context.Context) error {
		_, err := n.ctr(ctx, "version")
		return err
	})
}

// ctr runs containerd's client against the node's containerd, in the
// namespace the CRI plugin uses.
func (n *Node) ctr(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "ctr", append([]string{"--address", n.containerdSocket(), "--namespace", "k8s.io"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ctr %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func (n *Node) containerdSocket() string {
	return filepath.Join(n.dir, "containerd", "containerd.sock")
}

// importImages builds each image and imports it into containerd.
func (n *Node) importImages(ctx context.Context, images []Image) error {
	for i, im := range images {
		path := filepath.Join(n.dir, "images", fmt.Sprintf("%d.tar", i))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := im.WriteTarball(path); err != nil {
			return err
		}
		if _, err := n.ctr(ctx, "images", "import", path); err != nil {
			return fmt.Errorf("importing image %s: %w", im.Name, err)
		}
		os.Remove(path)
	}
	return nil
}
