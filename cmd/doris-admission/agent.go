package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"

	"github.com/doris-admission/doris-admission/agent"
)

// newAgentCommand returns the in-pod agent the built-in policies' init
// containers and lifecycle hooks call. Its settings come from the environment
// the doris-env policy injects; flags override them.
func newAgentCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "The in-pod helper the Doris init containers and lifecycle hooks run",
		Long: `The agent runs inside a Doris pod. The built-in policies inject it: an init
container installs it and prepares the conf, and the lifecycle hooks call it to
register an FE or BE with the cluster and to decommission a BE that leaves for
good. It reads the environment the doris-env policy injects (FE_IPADDRESS,
FE_PORT, FE_EDIT_PORT, BE_IPADDRESS, BE_PORT, FE_MASTER_IP, FE_MASTER_PORT,
POD_NAME, POD_NAMESPACE); flags override it. The FE user and password come
from DORIS_USER (default root) and DORIS_PASSWORD or the file DORIS_PASSWORD_FILE.
Every line it logs starts with "doris-admission agent:" and also goes to the
container's main output, so kubectl logs shows it.`,
	}
	cmd.AddCommand(newAgentInstallCommand(), newPrepareConfCommand(), newFERegisterCommand(),
		newFEStopCommand(), newBERegisterCommand(), newBEDecommissionCommand())
	for _, sub := range cmd.Commands() {
		logFailures(sub)
	}
	return cmd
}

// logFailures makes a subcommand's error a log line too, so a failed hook
// says why in the container's main output, not only in the kubelet's event.
func logFailures(cmd *cobra.Command) {
	run := cmd.RunE
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		err := run(cmd, args)
		if err != nil {
			agent.NewLogger(io.Discard, mainOutput(cmd)...).Printf("%s failed: %v", cmd.Name(), err)
		}
		return err
	}
}

// mainOutput is the container's main output, unless --log-to-main is off or
// it cannot be written.
func mainOutput(cmd *cobra.Command) []io.Writer {
	if logToMain, err := cmd.Flags().GetBool("log-to-main"); err != nil || !logToMain {
		return nil
	}
	if w := agent.MainOutput(); w != nil {
		return []io.Writer{w}
	}
	return nil
}

// agentFlags are the settings every subcommand that talks to an FE shares.
type agentFlags struct {
	user, passwordFile string
	timeout            time.Duration
}

func (f *agentFlags) bind(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.user, "user", envOr("DORIS_USER", "root"), "FE user")
	cmd.Flags().StringVar(&f.passwordFile, "password-file", os.Getenv("DORIS_PASSWORD_FILE"), "file holding the FE password (default: $DORIS_PASSWORD)")
	cmd.Flags().DurationVar(&f.timeout, "timeout", 10*time.Second, "bound on connecting to the FE and on each statement")
	cmd.Flags().Bool("log-to-main", true, "also write log lines to the container's main output (/proc/1/fd/1)")
}

// connection is how to reach the FE at host:port with these credentials.
func (f *agentFlags) connection(host string, port int) (agent.Connection, error) {
	password := os.Getenv("DORIS_PASSWORD")
	if f.passwordFile != "" {
		data, err := os.ReadFile(f.passwordFile)
		if err != nil {
			return agent.Connection{}, fmt.Errorf("reading the FE password from %s: %w", f.passwordFile, err)
		}
		password = strings.TrimRight(string(data), "\r\n")
	}
	if host == "" {
		return agent.Connection{}, fmt.Errorf("no FE address: set FE_MASTER_IP or --fe-host")
	}
	return agent.Connection{Host: host, Port: port, User: f.user, Password: password, Timeout: f.timeout}, nil
}

func (f *agentFlags) logger(cmd *cobra.Command) *agent.Logger {
	return agent.NewLogger(cmd.ErrOrStderr(), mainOutput(cmd)...)
}

func newAgentInstallCommand() *cobra.Command {
	var to string
	cmd := &cobra.Command{
		Use:   "install --to DIR",
		Short: "Copy this binary into DIR (the pod's shared agent volume)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			self, err := os.Executable()
			if err != nil {
				return fmt.Errorf("finding this binary: %w", err)
			}
			data, err := os.ReadFile(self)
			if err != nil {
				return fmt.Errorf("reading this binary: %w", err)
			}
			target := filepath.Join(to, "doris-admission")
			if err := os.WriteFile(target+".tmp", data, 0o755); err != nil {
				return fmt.Errorf("installing the agent in %s: %w", to, err)
			}
			if err := os.Rename(target+".tmp", target); err != nil {
				return fmt.Errorf("installing the agent in %s: %w", to, err)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "%s installed %s\n", "doris-admission agent:", target)
			return nil
		},
	}
	cmd.Flags().StringVar(&to, "to", "/opt/doris-admission/bin", "folder to copy the binary into")
	return cmd
}

func newPrepareConfCommand() *cobra.Command {
	var opts agent.ConfOptions
	cmd := &cobra.Command{
		Use:   "prepare-conf --from DIR --to DIR --file fe.conf (--ip-variable VAR | --fqdn)",
		Short: "Copy the Doris conf dir and make Doris bind the pod's address",
		Long: `Copy the conf dir --from into --to and set, in --file, priority_networks =
${VAR}/32 (/128 for an IPv6 pod), which Doris resolves at every start, or with
--fqdn enable_fqdn_mode = true. A key the conf already sets is left as is;
every other line is kept.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			done, err := agent.PrepareConf(opts, os.Getenv)
			if err != nil {
				return err
			}
			agent.NewLogger(cmd.ErrOrStderr()).Printf("%s", done)
			return nil
		},
	}
	cmd.Flags().StringVar(&opts.From, "from", "", "the image's conf dir")
	cmd.Flags().StringVar(&opts.To, "to", "/opt/doris-admission/conf", "where the prepared conf goes")
	cmd.Flags().StringVar(&opts.File, "file", "", "the conf file to set the key in: fe.conf or be.conf")
	cmd.Flags().StringVar(&opts.IPVariable, "ip-variable", "", "environment variable with the pod IP: FE_IPADDRESS or BE_IPADDRESS")
	cmd.Flags().BoolVar(&opts.FQDN, "fqdn", false, "set enable_fqdn_mode = true instead of priority_networks")
	_ = cmd.MarkFlagRequired("from")
	_ = cmd.MarkFlagRequired("file")
	return cmd
}

func newFERegisterCommand() *cobra.Command {
	var flags agentFlags
	var r agent.FERegistration
	var host string
	var queryPort int
	cmd := &cobra.Command{
		Use:   "fe-register",
		Short: "Make this FE a member of the cluster (postStart hook)",
		Long: `Wait for this FE to answer on its query port, then add it with ALTER SYSTEM ADD
FOLLOWER (or OBSERVER) unless SHOW FRONTENDS already lists it. If this pod's
own entry is listed under an old address (its IP changed), that entry is
dropped first. No other FE is ever dropped, alive or not.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			conn, err := flags.connection(host, queryPort)
			if err != nil {
				return err
			}
			r.FE, r.Log, r.Role = conn, flags.logger(cmd), strings.ToUpper(r.Role)
			return agent.RegisterFE(cmd.Context(), r)
		},
	}
	flags.bind(cmd)
	cmd.Flags().StringVar(&host, "fe-host", "127.0.0.1", "where this FE's query port is")
	cmd.Flags().IntVar(&queryPort, "query-port", envInt("FE_PORT", 9030), "this FE's query port")
	cmd.Flags().StringVar(&r.IP, "ip", os.Getenv("FE_IPADDRESS"), "this FE's address")
	cmd.Flags().IntVar(&r.EditLogPort, "edit-log-port", envInt("FE_EDIT_PORT", 9010), "this FE's edit log port")
	cmd.Flags().StringVar(&r.PodName, "pod-name", os.Getenv("POD_NAME"), "this pod's name")
	cmd.Flags().StringVar(&r.Role, "role", envOr("DORIS_FE_ROLE", "FOLLOWER"), "FOLLOWER or OBSERVER")
	cmd.Flags().StringVar(&r.StateFile, "state-file", "/opt/apache-doris/fe/doris-meta/doris-admission-address", "file on the metadata volume that remembers this FE's last address")
	cmd.Flags().DurationVar(&r.Wait, "wait", 10*time.Minute, "how long to wait for this FE to answer")
	cmd.Flags().DurationVar(&r.Poll, "poll", 5*time.Second, "pause between tries")
	return cmd
}

func newFEStopCommand() *cobra.Command {
	var home string
	cmd := &cobra.Command{
		Use:   "fe-stop",
		Short: "Stop this FE cleanly (preStop hook)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			script := filepath.Join(home, "bin", "stop_fe.sh")
			stop := exec.CommandContext(cmd.Context(), script)
			stop.Stdout, stop.Stderr = cmd.ErrOrStderr(), cmd.ErrOrStderr()
			if err := stop.Run(); err != nil {
				return fmt.Errorf("running %s: %w", script, err)
			}
			agent.NewLogger(cmd.ErrOrStderr()).Printf("stopped the FE with %s", script)
			return nil
		},
	}
	cmd.Flags().StringVar(&home, "home", envOr("DORIS_HOME", "/opt/apache-doris/fe"), "the FE's home dir")
	return cmd
}

// beFlags are the settings of the BE subcommands.
type beFlags struct {
	agentFlags
	host   string
	port   int
	config agent.BEConfig
}

func (f *beFlags) bind(cmd *cobra.Command, deadline, poll time.Duration) {
	f.agentFlags.bind(cmd)
	cmd.Flags().StringVar(&f.host, "fe-host", os.Getenv("FE_MASTER_IP"), "an FE of the cluster (its Service)")
	cmd.Flags().IntVar(&f.port, "fe-port", envInt("FE_MASTER_PORT", 9030), "the FE's query port")
	cmd.Flags().StringVar(&f.config.IP, "ip", os.Getenv("BE_IPADDRESS"), "this BE's address")
	cmd.Flags().IntVar(&f.config.HeartbeatPort, "heartbeat-port", envInt("BE_PORT", 9050), "this BE's heartbeat port")
	cmd.Flags().DurationVar(&f.config.Deadline, "deadline", deadline, "bound on the whole operation")
	cmd.Flags().DurationVar(&f.config.Poll, "poll", poll, "pause between tries")
}

func (f *beFlags) beConfig(cmd *cobra.Command) (agent.BEConfig, error) {
	conn, err := f.connection(f.host, f.port)
	c := f.config
	c.FE, c.Log = conn, f.logger(cmd)
	return c, err
}

func newBERegisterCommand() *cobra.Command {
	var flags beFlags
	cmd := &cobra.Command{
		Use:   "be-register",
		Short: "Add this BE to the cluster (postStart hook)",
		Long: `Add this BE with ALTER SYSTEM ADD BACKEND unless SHOW BACKENDS already lists it,
trying again with backoff until the deadline.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := flags.beConfig(cmd)
			if err != nil {
				return err
			}
			return agent.RegisterBE(cmd.Context(), c)
		},
	}
	flags.bind(cmd, 10*time.Minute, 2*time.Second)
	return cmd
}

func newBEDecommissionCommand() *cobra.Command {
	var flags beFlags
	var kubeconfig, namespace, podName string
	cmd := &cobra.Command{
		Use:   "be-decommission",
		Short: "Decommission this BE when it leaves for good (preStop hook)",
		Long: `Read this pod and its StatefulSet from the API server (with the pod's service
account). On a restart or rolling update (the pod's ordinal is below the
StatefulSet's replicas) do nothing. On a scale-down, run ALTER SYSTEM
DECOMMISSION BACKEND and wait until the BE holds no tablets or is gone, or
until the deadline (the pod's grace period less 30 s unless --deadline is
given), then say what state it left.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := flags.beConfig(cmd)
			if err != nil {
				return err
			}
			kube, err := kubeClient(kubeconfig)
			if err != nil {
				return err
			}
			departure, grace, err := agent.PodDeparture(cmd.Context(), kube, namespace, podName)
			if err != nil {
				return fmt.Errorf("not decommissioning, because whether this pod leaves for good is unknown: %w", err)
			}
			if !cmd.Flags().Changed("deadline") && grace > time.Minute {
				c.Deadline = grace - 30*time.Second
			}
			return agent.DecommissionBE(cmd.Context(), c, departure)
		},
	}
	flags.bind(cmd, 30*time.Second, 10*time.Second)
	cmd.Flags().StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file (default: the pod's service account)")
	cmd.Flags().StringVar(&namespace, "namespace", os.Getenv("POD_NAMESPACE"), "this pod's namespace")
	cmd.Flags().StringVar(&podName, "pod-name", os.Getenv("POD_NAME"), "this pod's name")
	return cmd
}

// kubeClient connects to the API server: the kubeconfig when given, else
// the pod's service account.
func kubeClient(kubeconfig string) (kubernetes.Interface, error) {
	cfg, err := restConfig(kubeconfig)
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(cfg)
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
