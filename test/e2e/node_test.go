package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/doris-admission/doris-admission/test/node"
)

// busyboxImage is the image of the node tests' own pods.
const busyboxImage = "doris-admission.test/busybox:1"

// startNode starts the node the suite's pods run on.
func (c *cluster) startNode() error {
	caFile := filepath.Join(c.workDir, "ca.crt")
	if err := os.WriteFile(caFile, c.env.Config.CAData, 0o644); err != nil {
		return err
	}
	busybox, err := node.Busybox(busyboxImage)
	if err != nil {
		return fmt.Errorf("the busybox image: %w", err)
	}
	images, err := nodeImages(c.workDir)
	if err != nil {
		return fmt.Errorf("the node's images: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c.node, err = node.Start(ctx, node.Options{
		Assets: os.Getenv("KUBEBUILDER_ASSETS"), Kubeconfig: c.kubeconfig, CAFile: caFile, ServiceCIDR: serviceCIDR,
		Images: append(images, busybox),
		Log:    func(format string, args ...any) { fmt.Fprintf(os.Stderr, "e2e: "+format+"\n", args...) },
	})
	return err
}

// TestPodsRunOnTheNode runs a pod the way the Doris pods run: an init
// container prepares a file, the downward API gives the pod its IP, a
// postStart hook runs, a ClusterIP Service and a NodePort reach it, names
// resolve through CoreDNS, and the preStop hook runs when it is deleted.
func TestPodsRunOnTheNode(t *testing.T) {
	hooks := t.TempDir()
	if out, err := suite.apply(node.Namespace("node-smoke") + "---\n" + fmt.Sprintf(`
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: node-smoke, labels: {app: web}}
spec:
  terminationGracePeriodSeconds: 5
  volumes:
    - {name: work, emptyDir: {}}
    - {name: hooks, hostPath: {path: %q}}
  initContainers:
    - name: prepare
      image: %[2]s
      command: [sh, -c, "echo prepared > /work/index.html"]
      volumeMounts: [{name: work, mountPath: /work}]
  containers:
    - name: web
      image: %[2]s
      command: [sh, -c, 'echo "pod ip $POD_IP"; exec httpd -f -p 8080 -h /work']
      env: [{name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}]
      ports: [{containerPort: 8080}]
      readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 1}
      volumeMounts: [{name: work, mountPath: /work}, {name: hooks, mountPath: /hooks}]
      lifecycle:
        postStart: {exec: {command: [sh, -c, "echo started > /hooks/postStart"]}}
        preStop: {exec: {command: [sh, -c, "echo stopping > /hooks/preStop"]}}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: node-smoke}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
`, hooks, busyboxImage)); err != nil {
		t.Fatalf("applying: %v\n%s", err, out)
	}
	t.Cleanup(func() { suite.kubectl("delete", "namespace", "node-smoke", "--wait=false") })
	if out, err := suite.kubectl("wait", "-n", "node-smoke", "pod/web", "--for=condition=Ready", "--timeout=120s"); err != nil {
		describe, _ := suite.kubectl("describe", "-n", "node-smoke", "pod/web")
		t.Fatalf("the pod is not Ready: %v\n%s\n%s", err, out, describe)
	}
	ip, _ := suite.kubectl("get", "-n", "node-smoke", "pod/web", "-o", "jsonpath={.status.podIP}")
	if logs, err := suite.kubectl("logs", "-n", "node-smoke", "web"); err != nil || !strings.Contains(logs, "pod ip "+ip) {
		t.Errorf("kubectl logs: %v\n%s; want the pod's IP %s from the downward API", err, logs, ip)
	}
	if data, _ := os.ReadFile(filepath.Join(hooks, "postStart")); string(data) != "started\n" {
		t.Errorf("the postStart hook did not run: %q", data)
	}
	// The Service by its DNS name, from another pod, through CoreDNS and kube-proxy.
	out, err := suite.kubectl("run", "-n", "node-smoke", "client", "--image", busyboxImage, "--restart=Never", "--attach", "--rm", "--quiet",
		"--command", "--", "wget", "-qO-", "http://web.node-smoke.svc.cluster.local/")
	if err != nil || !strings.Contains(out, "prepared") {
		t.Errorf("the Service by name from a pod: %v\n%s", err, out)
	}
	// The NodePort from the machine, on the node's address.
	port, _ := suite.kubectl("get", "-n", "node-smoke", "service/web", "-o", "jsonpath={.spec.ports[0].nodePort}")
	if body, err := httpGet(fmt.Sprintf("http://%s:%s/", suite.node.IP(), port)); err != nil || !strings.Contains(body, "prepared") {
		t.Errorf("the NodePort %s on %s: %v %q", port, suite.node.IP(), err, body)
	}
	if out, err := suite.kubectl("delete", "-n", "node-smoke", "pod/web", "--timeout=60s"); err != nil {
		t.Fatalf("deleting the pod: %v\n%s", err, out)
	}
	if data, _ := os.ReadFile(filepath.Join(hooks, "preStop")); string(data) != "stopping\n" {
		t.Errorf("the preStop hook did not run: %q", data)
	}
}

func httpGet(url string) (string, error) {
	client := http.Client{Timeout: 5 * time.Second}
	res, err := client.Get(url)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	return string(body), err
}
