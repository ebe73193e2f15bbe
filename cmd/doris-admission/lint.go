package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/doris-admission/doris-admission/policies/lint"
)

func newPolicyLintCommand() *cobra.Command {
	var resources []string
	cmd := &cobra.Command{
		Use:   "lint FILE|DIR... [-f RESOURCES]",
		Short: "Find mistakes in policy files before they are applied",
		Long: `Check every MutatingPolicy and ValidatingPolicy under each path:

  - fields the policy kinds do not have (a misspelled spec field);
  - expressions that do not compile, or that name a field the matched kinds do
    not have, checked against their schemas;
  - expressions whose estimated cost has no bound;
  - messageExpressions that fail where their validation fails;
  - mutations that change their own result again (not idempotent).

The last two are tried on the resources of the test suites under the path and
on those given with -f. Each finding gives the file, line, policy, field and
expression, and a suggestion. The costliest expression of each policy is
reported against the limit of 1,000,000 per expression. The exit status is 1
when there is an error.`,
		Example: `  doris-admission policy lint my-policies/
  doris-admission policy lint policy.yaml -f manifests/`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			errors, warnings, count := 0, 0, 0
			for _, path := range args {
				report, err := lint.Lint(cmd.Context(), path, resources)
				if err != nil {
					fmt.Fprintln(cmd.ErrOrStderr(), "Error:", err)
					errors++
				}
				if report == nil {
					continue
				}
				for _, f := range report.Findings {
					fmt.Fprintln(out, f)
				}
				lint.WriteCosts(out, report.Costs)
				count += report.Policies
				errors += report.Errors()
				warnings += len(report.Findings) - report.Errors()
			}
			fmt.Fprintf(out, "%d policies: %d errors, %d warnings\n", count, errors, warnings)
			if errors > 0 {
				return errFailed
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&resources, "filename", "f", nil, "manifests to try the policies on, besides the test suites' resources; repeatable")
	return cmd
}
