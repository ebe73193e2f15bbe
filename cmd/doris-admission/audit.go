package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"

	"github.com/doris-admission/doris-admission/audit"
	"github.com/doris-admission/doris-admission/policies"
	"github.com/doris-admission/doris-admission/policies/builtin"
	"github.com/doris-admission/doris-admission/policies/engine"
	"github.com/doris-admission/doris-admission/policies/source"
)

func newAuditCommand() *cobra.Command {
	var opts offlineOptions
	var live bool
	var kubeconfig string
	cmd := &cobra.Command{
		Use:   "audit -f FILE|DIR|- | --live",
		Short: "Check objects that already exist against the policies",
		Long: `Evaluate every policy on objects as they are, the way the server's background
scan does for its PolicyReports: a validating policy passes or fails each
object it matches; a mutating policy fails an object that lacks what it would
add, and says how to have it added. With -f, the objects are the documents
given; with --live, the cluster's objects of every kind the policies name
(but those in kube-system and the server's namespace), with the cluster's
policies too. Prints one line per result; the exit status is 1 when an object
fails.`,
		Example: `  doris-admission audit -f manifests/
  doris-admission audit --live`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if live == (len(opts.files) > 0) {
				return errors.New("give either -f with the objects to check, or --live to check the cluster's")
			}
			if live {
				return auditLive(cmd, kubeconfig, opts.policySources)
			}
			run, err := newOfflineRun(opts, cmd.InOrStdin(), cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			err = printAudit(cmd.Context(), cmd.OutOrStdout(), run.engine, run.docs)
			if run.failed {
				return errFailed
			}
			return err
		},
	}
	cmd.Flags().StringArrayVarP(&opts.files, "filename", "f", nil, "manifest file, folder (searched recursively) or - for standard input; repeatable")
	opts.policySources.bindFlags(cmd)
	cmd.Flags().BoolVar(&live, "live", false, "check the cluster's objects, with the cluster's policies")
	cmd.Flags().StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file of the cluster, with --live (default: $KUBECONFIG, then ~/.kube/config)")
	return cmd
}

// auditLive audits the cluster's objects with the cluster's policies and
// those of sources. A policy that cannot be read is reported and makes the
// exit status 1; one that does not compile is a warning, as in the server.
func auditLive(cmd *cobra.Command, kubeconfig string, sources policySources) error {
	run := &offlineRun{stderr: cmd.ErrOrStderr()}
	local, err := sources.load(builtin.DefaultNamespace, nil)
	run.report(err)
	docs, clusterPolicies, err := liveObjects(cmd.Context(), kubeconfig, local, run.report)
	if err != nil {
		return err
	}
	eng := engine.NewEngine(source.Offline(docs))
	warnProblems(run.stderr, eng.Load(append(local, clusterPolicies...)))
	err = printAudit(cmd.Context(), cmd.OutOrStdout(), eng, docs)
	if run.failed {
		return errFailed
	}
	return err
}

// printAudit evaluates the policies on every document and prints the results.
func printAudit(ctx context.Context, out io.Writer, eng *engine.Engine, docs []policies.Document) error {
	// Every object exists already: each holds its node ports.
	for _, doc := range docs {
		eng.Admitted(doc.Object, 0)
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "RESULT\tRESOURCE\tPOLICY\tRULE\tMESSAGE")
	tally := map[string]int{}
	for _, doc := range docs {
		results, err := eng.Audit(ctx, doc.Object)
		if err != nil {
			continue // a kind the engine does not know: no policy names it
		}
		for _, r := range results {
			tally[r.Result]++
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", r.Result, resourceName(doc), r.Policy, r.Rule, r.Message)
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(out, "%d pass, %d fail, %d warn, %d error\n", tally[engine.ResultPass], tally[engine.ResultFail], tally[engine.ResultWarn], tally[engine.ResultError])
	if tally[engine.ResultFail]+tally[engine.ResultError] > 0 {
		return errFailed
	}
	return nil
}

func resourceName(doc policies.Document) string {
	o := doc.Object
	if o.GetNamespace() == "" {
		return o.GetKind() + "/" + o.GetName()
	}
	return o.GetKind() + "/" + o.GetNamespace() + "/" + o.GetName()
}

// liveObjects lists the cluster's policies, and its objects of every kind
// they and local name, outside the namespaces the webhooks never see. A
// policy object it cannot read goes to report.
func liveObjects(ctx context.Context, kubeconfig string, local []policies.Policy, report func(error)) ([]policies.Document, []policies.Policy, error) {
	client, mapper, err := clusterClients(kubeconfig)
	if err != nil {
		return nil, nil, err
	}
	clusterPolicies, err := listClusterPolicies(ctx, client, mapper, report)
	if err != nil {
		return nil, nil, err
	}
	// The engine only tells the kinds once it holds the policies.
	probe := engine.NewEngine(source.Offline(nil))
	probe.Load(append(slices.Clone(local), clusterPolicies...))
	var docs []policies.Document
	for _, gvk := range audit.Kinds(probe, mapper) {
		found, err := listKind(ctx, client, mapper, gvk)
		if err != nil {
			return nil, nil, fmt.Errorf("reading the cluster's %s objects: %w", gvk.Kind, err)
		}
		for _, doc := range found {
			if !slices.Contains([]string{"kube-system", builtin.DefaultNamespace}, doc.Object.GetNamespace()) {
				docs = append(docs, doc)
			}
		}
	}
	return docs, clusterPolicies, nil
}

// clusterClients connects to the cluster: a dynamic client, and a mapper
// from its discovery.
func clusterClients(kubeconfig string) (dynamic.Interface, meta.RESTMapper, error) {
	cfg, err := restConfig(kubeconfig)
	if err != nil {
		return nil, nil, err
	}
	client, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, nil, err
	}
	disco, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, nil, err
	}
	return client, restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disco)), nil
}

// listClusterPolicies lists the cluster's policy objects, with the status
// the server gave them; one it cannot read goes to report.
func listClusterPolicies(ctx context.Context, client dynamic.Interface, mapper meta.RESTMapper, report func(error)) ([]policies.Policy, error) {
	var out []policies.Policy
	for _, kind := range []string{policies.KindMutating, policies.KindValidating} {
		docs, err := listKind(ctx, client, mapper, schema.GroupVersionKind{Group: "policies.doris-admission.io", Version: "v1alpha1", Kind: kind})
		if err != nil {
			return nil, fmt.Errorf("reading the cluster's %s objects: %w", kind, err)
		}
		for _, doc := range docs {
			p, err := policies.PolicyFromDocument(doc)
			if err != nil {
				report(fmt.Errorf("%s %s in the cluster: %w", kind, doc.Object.GetName(), err))
				continue
			}
			p.Origin = policies.OriginCluster
			out = append(out, p)
		}
	}
	return out, nil
}

func listKind(ctx context.Context, client dynamic.Interface, mapper meta.RESTMapper, gvk schema.GroupVersionKind) ([]policies.Document, error) {
	mapping, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return nil, err
	}
	list, err := client.Resource(mapping.Resource).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	docs := make([]policies.Document, len(list.Items))
	for i := range list.Items {
		item := &list.Items[i]
		item.SetGroupVersionKind(gvk)
		docs[i] = policies.Document{Origin: "cluster", Index: i + 1, Object: item}
	}
	return docs, nil
}
