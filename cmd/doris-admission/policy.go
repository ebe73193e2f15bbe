package main

import (
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/doris-admission/doris-admission/policies"
	"github.com/doris-admission/doris-admission/policies/api/v1alpha1"
	"github.com/doris-admission/doris-admission/policies/builtin"
	"github.com/doris-admission/doris-admission/policies/engine"
	"github.com/doris-admission/doris-admission/policies/source"
)

func newPolicyCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Work with policies: list, test, lint and export them",
	}
	cmd.AddCommand(newPolicyListCommand())
	cmd.AddCommand(newPolicyExportCommand())
	cmd.AddCommand(newPolicyTestCommand(), newPolicyLintCommand())
	return cmd
}

func newPolicyListCommand() *cobra.Command {
	var sources policySources
	var live bool
	var kubeconfig string
	cmd := &cobra.Command{
		Use:   "list [--policies DIR] [--live]",
		Short: "List the loaded policies: built-in, from files and, with --live, the cluster's",
		Long: `List the policies the engine loads, in the order they are applied: built-in
policies first, then by name. Each line gives the kind, where the policy comes
from, the resources it applies to, and whether every expression compiles.
With --live, the cluster's policy objects too, each with what the server
found when it loaded them (its Ready condition): expressions that do not
compile, or a paramKind it cannot read.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			loaded, err := sources.load(builtin.DefaultNamespace, cmd.InOrStdin())
			if live {
				client, mapper, connectErr := clusterClients(kubeconfig)
				if connectErr != nil {
					return connectErr
				}
				var readErrs []error
				cluster, listErr := listClusterPolicies(cmd.Context(), client, mapper, func(e error) { readErrs = append(readErrs, e) })
				loaded, err = append(loaded, cluster...), errors.Join(err, listErr, errors.Join(readErrs...))
			}
			eng := engine.NewEngine(source.Offline(nil))
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tKIND\tORIGIN\tRESOURCES\tSTATUS")
			for _, l := range eng.Load(loaded) {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", l.Name(), l.Kind(), l.Origin, strings.Join(l.Resources, ","), status(l))
			}
			if flushErr := w.Flush(); flushErr != nil {
				return flushErr
			}
			return err
		},
	}
	sources.bindFlags(cmd)
	cmd.Flags().BoolVar(&live, "live", false, "also list the cluster's policies, with what the server found when it loaded them")
	cmd.Flags().StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file of the cluster, with --live (default: $KUBECONFIG, then ~/.kube/config)")
	return cmd
}

// status is "Ready", or how many problems the policy has: those the server
// found in a cluster policy (its Ready condition) where it says so, else
// those found here.
func status(l engine.Loaded) string {
	if ready := serverReady(l.Policy); ready != nil && ready.Status != metav1.ConditionTrue {
		return "server: " + ready.Message
	}
	if len(l.Problems) == 0 {
		return "Ready"
	}
	return fmt.Sprintf("%d problems: %s", len(l.Problems), l.Problems[0].Field)
}

// serverReady is the Ready condition the server wrote on a cluster policy
// for its current generation, or nil.
func serverReady(p policies.Policy) *metav1.Condition {
	var status v1alpha1.PolicyStatus
	var generation int64
	switch {
	case p.Mutating != nil:
		status, generation = p.Mutating.Status, p.Mutating.Generation
	case p.Validating != nil:
		status, generation = p.Validating.Status, p.Validating.Generation
	}
	ready := meta.FindStatusCondition(status.Conditions, v1alpha1.ConditionReady)
	if ready == nil || ready.ObservedGeneration != generation {
		return nil
	}
	return ready
}
