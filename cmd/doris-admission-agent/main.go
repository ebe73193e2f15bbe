// Command doris-admission-agent is what runs inside a Doris pod: the init
// containers the built-in policies add install it and prepare the conf with
// it, and the lifecycle hooks call it to register an FE or BE and to
// decommission a BE that leaves for good. It is its own small binary: it
// imports the agent package, a MySQL client and a minimal API client, and
// none of the webhook server.
package main

import (
	"context"
	"errors"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/doris-admission/doris-admission/agent"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "devel"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	err := newRootCommand().ExecuteContext(ctx)
	stop()
	if err != nil {
		// A subcommand's failure is logged already; cobra's own (an unknown
		// command) is not.
		if !errors.As(err, new(logged)) {
			agent.NewLogger(os.Stderr).Printf("%v (see doris-admission-agent --help)", err)
		}
		os.Exit(1)
	}
}

// logged is an error that has been written to the log.
type logged struct{ error }

func (l logged) Unwrap() error { return l.error }

// newRootCommand returns the agent with every subcommand.
func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "doris-admission-agent",
		Short: "The in-pod helper the Doris init containers and lifecycle hooks run",
		Long: `doris-admission-agent runs inside a Doris pod. The built-in policies of
doris-admission inject it: an init container installs it and prepares the conf,
and the lifecycle hooks call it to register an FE or BE with the cluster and to
decommission a BE that leaves for good. It reads the environment the doris-env
policy injects (FE_IPADDRESS, FE_PORT, FE_EDIT_PORT, BE_IPADDRESS, BE_PORT,
FE_MASTER_IP, FE_MASTER_PORT, POD_NAME, POD_NAMESPACE, DORIS_NODE_ADDRESS,
DORIS_FE_PEERS, DORIS_FE_FIRST_POD, DORIS_FE_FOLLOWERS, DORIS_FE_ROLE); flags
override it. An FE's start script runs it first (fe-start) to join the FE to
its cluster. The FE user and password come from DORIS_USER (default root) and
DORIS_PASSWORD or the file DORIS_PASSWORD_FILE.

Whatever talks to the FE or the API server tries again on what may pass (a
refused connection, a timeout, an FE that is starting) until the command's
deadline, and fails at once on what cannot (access denied, a statement Doris
rejects). Every line it writes starts with "doris-admission agent:" and also
goes to the container's main output, so kubectl logs shows it.`,
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newInstallCommand(), newPrepareConfCommand(), newFERegisterCommand(),
		newWrapStartCommand(), newFEStartCommand(), newFEStopCommand(), newBERegisterCommand(), newBEDecommissionCommand())
	for _, sub := range root.Commands() {
		logFailures(sub)
	}
	return root
}

// logFailures makes a subcommand's error its last log line, on stderr (the
// kubelet's hook event) and in the container's main output.
func logFailures(cmd *cobra.Command) {
	run := cmd.RunE
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		err := run(cmd, args)
		if err != nil {
			logger(cmd).Printf("%s failed: %v", cmd.Name(), err)
			return logged{err}
		}
		return nil
	}
	cmd.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		logger(cmd).Printf("%s: %v (see %s --help)", cmd.Name(), err, cmd.CommandPath())
		return logged{err}
	})
}

// bindLogToMain adds --log-to-main: on for the hooks, whose output the
// kubelet keeps only in an event; off for the init containers, whose own
// output kubectl logs shows.
func bindLogToMain(cmd *cobra.Command, on bool) {
	cmd.Flags().Bool("log-to-main", on, "also write log lines to the container's main output, which kubectl logs shows")
}

// logger writes to stderr and, unless --log-to-main is off, to the
// container's main output.
func logger(cmd *cobra.Command) *agent.Logger {
	var extra []io.Writer
	if toMain, err := cmd.Flags().GetBool("log-to-main"); err == nil && toMain {
		if w := agent.MainOutput(); w != nil {
			extra = append(extra, w)
		}
	}
	return agent.NewLogger(cmd.ErrOrStderr(), extra...)
}

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

func envInt(name string, fallback int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return n
	}
	return fallback
}
