package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/doris-admission/doris-admission/policies"
)

// exposeOptions are the settings of expose-be.
type exposeOptions struct {
	pod, namespace, serviceType string
	nodePort, port              int32
	errorURL, kubeconfig        string
	live                        bool
}

func newExposeBECommand() *cobra.Command {
	var opts exposeOptions
	cmd := &cobra.Command{
		Use:   "expose-be POD [-n NAMESPACE] [--type NodePort|LoadBalancer] [--node-port N] [--error-url URL]",
		Short: "Reach one BE's webserver from outside the cluster, e.g. for a Stream Load ErrorURL",
		Long: `A Stream Load error answers with an ErrorURL on the BE pod's in-cluster name,
which cannot be opened from outside the cluster. expose-be prints a Service
that exposes the webserver port of that one BE pod (checked by the node port
rules first); apply it with kubectl. Then, with --error-url, it prints the
ErrorURL rewritten to the address reachable from outside: a node's InternalIP
and the Service's node port, or the load balancer's address. Delete the
Service when done.`,
		Example: `  doris-admission expose-be doris-be-2 -n doris | kubectl apply -f -
  doris-admission expose-be doris-be-2 -n doris --error-url 'http://doris-be-2.doris-be.doris.svc.cluster.local:8040/api/_load_error_log?file=...'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.pod = args[0]
			if opts.errorURL != "" {
				return opts.printReachableURL(cmd.Context(), cmd.OutOrStdout())
			}
			return opts.printService(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cmd.Flags().StringVarP(&opts.namespace, "namespace", "n", "default", "namespace of the BE pod")
	cmd.Flags().StringVar(&opts.serviceType, "type", "NodePort", "NodePort or LoadBalancer")
	cmd.Flags().Int32Var(&opts.nodePort, "node-port", 0, "node port to ask for (default: the API server picks one)")
	cmd.Flags().Int32Var(&opts.port, "port", 8040, "the BE webserver port")
	cmd.Flags().StringVar(&opts.errorURL, "error-url", "", "print this ErrorURL rewritten to go through the Service")
	cmd.Flags().BoolVar(&opts.live, "live", false, "also check the node port against the Services in the cluster")
	cmd.Flags().StringVar(&opts.kubeconfig, "kubeconfig", "", "kubeconfig file, for --error-url and --live (default: $KUBECONFIG, then ~/.kube/config)")
	return cmd
}

// serviceName is the name of the debug Service of a pod.
func (o exposeOptions) serviceName() string { return o.pod + "-debug" }

// service is the Service that exposes the pod's webserver port.
func (o exposeOptions) service() *corev1.Service {
	return &corev1.Service{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{
			Name: o.serviceName(), Namespace: o.namespace,
			Labels: map[string]string{"app.kubernetes.io/managed-by": "doris-admission", "doris-admission.io/role": "debug"},
		},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceType(o.serviceType),
			Selector: map[string]string{"statefulset.kubernetes.io/pod-name": o.pod},
			Ports: []corev1.ServicePort{{
				Name: "webserver-port", Port: o.port, TargetPort: intstr.FromInt32(o.port),
				Protocol: corev1.ProtocolTCP, NodePort: o.nodePort,
			}},
		},
	}
}

// printService checks the Service with the built-in policies and prints it.
func (o exposeOptions) printService(ctx context.Context, out, errOut io.Writer) error {
	if o.serviceType != string(corev1.ServiceTypeNodePort) && o.serviceType != string(corev1.ServiceTypeLoadBalancer) {
		return fmt.Errorf("--type is %q: use NodePort or LoadBalancer", o.serviceType)
	}
	content, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o.service())
	if err != nil {
		return err
	}
	obj := &unstructured.Unstructured{Object: content}
	unstructured.RemoveNestedField(obj.Object, "metadata", "creationTimestamp")
	unstructured.RemoveNestedField(obj.Object, "status")
	run, err := newOfflineRun(offlineOptions{}, nil, errOut)
	if err != nil {
		return err
	}
	run.docs = []policies.Document{{Origin: "expose-be", Index: 1, Object: obj}}
	if o.live {
		if err := run.takeLiveNodePorts(ctx, o.kubeconfig); err != nil {
			return err
		}
	}
	if err := run.validate(ctx, errOut, "text"); err != nil {
		return fmt.Errorf("the Service for %s is refused by the policies; see above", o.pod)
	}
	data, err := yaml.Marshal(obj.Object)
	if err != nil {
		return err
	}
	_, err = out.Write(data)
	return err
}

// printReachableURL rewrites the ErrorURL's host and port to the address the
// debug Service is reachable at from outside.
func (o exposeOptions) printReachableURL(ctx context.Context, out io.Writer) error {
	u, err := url.Parse(o.errorURL)
	if err != nil || u.Host == "" {
		return fmt.Errorf("--error-url %q is not a URL with a host", o.errorURL)
	}
	kube, err := kubeClient(o.kubeconfig)
	if err != nil {
		return err
	}
	address, err := o.reachableAddress(ctx, kube)
	if err != nil {
		return err
	}
	u.Host = address
	_, err = fmt.Fprintln(out, u.String())
	return err
}

// reachableAddress is host:port of the debug Service from outside the cluster.
func (o exposeOptions) reachableAddress(ctx context.Context, kube kubernetes.Interface) (string, error) {
	svc, err := kube.CoreV1().Services(o.namespace).Get(ctx, o.serviceName(), metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("reading Service %s/%s (create it first: doris-admission expose-be %s -n %s | kubectl apply -f -): %w",
			o.namespace, o.serviceName(), o.pod, o.namespace, err)
	}
	if svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
		for _, ingress := range svc.Status.LoadBalancer.Ingress {
			if host := firstNonEmpty(ingress.IP, ingress.Hostname); host != "" {
				return net.JoinHostPort(host, strconv.Itoa(int(o.port))), nil
			}
		}
		return "", fmt.Errorf("the Service %s/%s has no load balancer address yet; try again when kubectl get service shows an EXTERNAL-IP", o.namespace, o.serviceName())
	}
	var nodePort int32
	for _, p := range svc.Spec.Ports {
		if p.Port == o.port {
			nodePort = p.NodePort
		}
	}
	if nodePort == 0 {
		return "", fmt.Errorf("the Service %s/%s has no node port for port %d", o.namespace, o.serviceName(), o.port)
	}
	nodes, err := kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return "", fmt.Errorf("reading the nodes: %w", err)
	}
	for _, node := range nodes.Items {
		for _, a := range node.Status.Addresses {
			if a.Type == corev1.NodeInternalIP {
				return net.JoinHostPort(a.Address, strconv.Itoa(int(nodePort))), nil
			}
		}
	}
	return "", fmt.Errorf("no node has an InternalIP to reach node port %d on", nodePort)
}

func firstNonEmpty(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}
