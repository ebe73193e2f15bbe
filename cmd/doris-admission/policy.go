package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/doris-admission/doris-admission/policies"
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
	cmd := &cobra.Command{
		Use:   "list [--policies DIR]",
		Short: "List the loaded policies: built-in and from files",
		Long: `List the policies the engine loads, in the order they are applied: built-in
policies first, then by name. Each line gives the kind, where the policy comes
from, the resources it applies to, and whether every expression compiles.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			loaded, err := sources.load(policies.DefaultNamespace, cmd.InOrStdin())
			engine := policies.NewEngine(policies.OfflineConfig(nil))
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tKIND\tORIGIN\tRESOURCES\tSTATUS")
			for _, l := range engine.Load(loaded) {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", l.Name(), l.Kind(), l.Origin, strings.Join(l.Resources, ","), status(l))
			}
			if flushErr := w.Flush(); flushErr != nil {
				return flushErr
			}
			return err
		},
	}
	sources.bindFlags(cmd)
	return cmd
}

// status is "Ready", or how many expressions have problems.
func status(l policies.Loaded) string {
	if len(l.Problems) == 0 {
		return "Ready"
	}
	return fmt.Sprintf("%d problems: %s", len(l.Problems), l.Problems[0].Field)
}
