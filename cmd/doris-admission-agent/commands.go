package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/doris-admission/doris-admission/agent"
)

// feFlags are the settings every subcommand that talks to an FE shares.
type feFlags struct {
	user, passwordFile string
	timeout, deadline  time.Duration
	poll               time.Duration
}

// bind adds the flags; a hook's lines also go to the container's main
// output, where kubectl logs shows them.
func (f *feFlags) bind(cmd *cobra.Command, deadline, poll time.Duration) {
	f.bindFlags(cmd, deadline, poll)
	bindLogToMain(cmd, true)
}

func (f *feFlags) bindFlags(cmd *cobra.Command, deadline, poll time.Duration) {
	cmd.Flags().StringVar(&f.user, "user", envOr("DORIS_USER", "root"), "FE user")
	cmd.Flags().StringVar(&f.passwordFile, "password-file", os.Getenv("DORIS_PASSWORD_FILE"), "file holding the FE password (default: $DORIS_PASSWORD)")
	cmd.Flags().DurationVar(&f.timeout, "timeout", 10*time.Second, "bound on connecting to the FE and on each statement or API request")
	cmd.Flags().DurationVar(&f.deadline, "deadline", deadline, "bound on the whole command, every try and wait included")
	cmd.Flags().DurationVar(&f.poll, "poll", poll, "first pause between tries (it doubles up to 30s), and between looks at a decommission")
}

// connection is how to reach the FE at host:port with these credentials.
func (f *feFlags) connection(host string, port int) (agent.Connection, error) {
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

func (f *feFlags) pacing(cmd *cobra.Command) agent.Pacing {
	return agent.Pacing{Poll: f.poll, Log: logger(cmd)}
}

func newInstallCommand() *cobra.Command {
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
			target := filepath.Join(to, "doris-admission-agent")
			if err := os.WriteFile(target+".tmp", data, 0o755); err != nil {
				return fmt.Errorf("installing the agent in %s: %w", to, err)
			}
			if err := os.Rename(target+".tmp", target); err != nil {
				return fmt.Errorf("installing the agent in %s: %w", to, err)
			}
			logger(cmd).Printf("installed %s", target)
			return nil
		},
	}
	cmd.Flags().StringVar(&to, "to", "/opt/doris-admission/bin", "folder to copy the binary into")
	bindLogToMain(cmd, false)
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
			logger(cmd).Printf("%s", done)
			return nil
		},
	}
	cmd.Flags().StringVar(&opts.From, "from", "", "the image's conf dir")
	cmd.Flags().StringVar(&opts.To, "to", "/opt/doris-admission/conf", "where the prepared conf goes")
	cmd.Flags().StringVar(&opts.File, "file", "", "the conf file to set the key in: fe.conf or be.conf")
	cmd.Flags().StringVar(&opts.IPVariable, "ip-variable", "", "environment variable with the pod IP: FE_IPADDRESS or BE_IPADDRESS")
	cmd.Flags().BoolVar(&opts.FQDN, "fqdn", false, "set enable_fqdn_mode = true instead of priority_networks")
	bindLogToMain(cmd, false)
	_ = cmd.MarkFlagRequired("from")
	_ = cmd.MarkFlagRequired("file")
	return cmd
}

func newFERegisterCommand() *cobra.Command {
	var flags feFlags
	var r agent.FERegistration
	var host, address, role string
	var queryPort, editLogPort int
	cmd := &cobra.Command{
		Use:   "fe-register",
		Short: "Make this FE a member of the cluster (postStart hook)",
		Long: `Wait for this FE to answer on its query port, then add it with ALTER SYSTEM ADD
FOLLOWER (or OBSERVER) unless SHOW FRONTENDS already lists it, trying again
until the deadline. If this pod's own entry is listed under an old address and
the cluster shows it dead, that entry is dropped first. An entry is this pod's
own when its name is the one in the FE's meta dir (image/ROLE) or the one this
pod last registered under; an FE that is alive is never dropped.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if r.Role, err = agent.ParseRole(role); err != nil {
				return fmt.Errorf("--role or DORIS_FE_ROLE: %w", err)
			}
			if r.Self, err = agent.NewAddress(address, editLogPort); err != nil {
				return fmt.Errorf("this FE's address (--address, or DORIS_NODE_ADDRESS or FE_IPADDRESS; --edit-log-port or FE_EDIT_PORT): %w", err)
			}
			if r.FE, err = flags.connection(host, queryPort); err != nil {
				return err
			}
			r.Deadline, r.Pacing = flags.deadline, flags.pacing(cmd)
			if r.StateFile == "" {
				r.StateFile = filepath.Join(r.MetaDir, "doris-admission-address")
			}
			return agent.RegisterFE(cmd.Context(), r)
		},
	}
	flags.bind(cmd, 10*time.Minute, 5*time.Second)
	cmd.Flags().StringVar(&host, "fe-host", "127.0.0.1", "where this FE's query port is")
	cmd.Flags().IntVar(&queryPort, "query-port", envInt("FE_PORT", 9030), "this FE's query port")
	cmd.Flags().StringVar(&address, "address", nodeAddress("FE_IPADDRESS"), addressHelp)
	cmd.Flags().IntVar(&editLogPort, "edit-log-port", envInt("FE_EDIT_PORT", 9010), "this FE's edit log port")
	cmd.Flags().StringVar(&r.PodName, "pod-name", os.Getenv("POD_NAME"), "this pod's name")
	cmd.Flags().StringVar(&role, "role", envOr("DORIS_FE_ROLE", "FOLLOWER"), "FOLLOWER or OBSERVER")
	cmd.Flags().StringVar(&r.MetaDir, "meta-dir", "/opt/apache-doris/fe/doris-meta", "this FE's meta dir")
	cmd.Flags().StringVar(&r.StateFile, "state-file", "", "file that remembers this FE's last address and name (default: doris-admission-address in the meta dir)")
	return cmd
}

func newWrapStartCommand() *cobra.Command {
	var from, to string
	cmd := &cobra.Command{
		Use:   "wrap-start --from DIR --to DIR",
		Short: "Copy the FE's bin dir, with a start_fe.sh that joins the FE first (init container)",
		Long: `Copy the FE's bin dir --from into --to, keep Doris' start_fe.sh there as
start_fe.doris.sh, and write a start_fe.sh that runs "doris-admission-agent
fe-start" with it. Mounted over the bin dir, it makes whatever starts the FE
join it to its cluster first.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			self, err := os.Executable()
			if err != nil {
				return err
			}
			if err := agent.WrapStart(from, to, filepath.Join("/opt/doris-admission/bin", filepath.Base(self))); err != nil {
				return err
			}
			logger(cmd).Printf("copied the FE's bin dir %s, with a start_fe.sh that joins the FE to its cluster first", from)
			return nil
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "the image's FE bin dir")
	cmd.Flags().StringVar(&to, "to", "/opt/doris-admission/fe-bin", "where the wrapped bin dir goes")
	bindLogToMain(cmd, false)
	_ = cmd.MarkFlagRequired("from")
	return cmd
}

// feJoinFlags are the settings of the commands that find an FE's cluster
// through its peers: fe-start and fe-stop.
type feJoinFlags struct {
	feFlags
	join                   agent.FEJoin
	address, podName       string
	firstPod               string
	editLogPort, queryPort int
}

func (f *feJoinFlags) bind(cmd *cobra.Command, deadline time.Duration) {
	f.bindFlags(cmd, deadline, 2*time.Second)
	cmd.Flags().StringVar(&f.address, "address", nodeAddress("FE_IPADDRESS"), addressHelp)
	cmd.Flags().IntVar(&f.editLogPort, "edit-log-port", envInt("FE_EDIT_PORT", 9010), "this FE's edit log port")
	cmd.Flags().IntVar(&f.queryPort, "query-port", envInt("FE_PORT", 9030), "the FEs' query port")
	cmd.Flags().StringVar(&f.join.Peers, "peers", os.Getenv("DORIS_FE_PEERS"), "DNS name of the cluster's FE pods (the governing Service)")
	cmd.Flags().StringVar(&f.podName, "pod-name", os.Getenv("POD_NAME"), "this pod's name")
}

// feJoin is the FEJoin the flags say.
func (f *feJoinFlags) feJoin(cmd *cobra.Command) (agent.FEJoin, error) {
	j := f.join
	var err error
	if j.Self, err = agent.NewAddress(f.address, f.editLogPort); err != nil {
		return j, fmt.Errorf("this FE's address (--address, or DORIS_NODE_ADDRESS or FE_IPADDRESS; --edit-log-port or FE_EDIT_PORT): %w", err)
	}
	if j.Peers == "" {
		return j, fmt.Errorf("no --peers (DORIS_FE_PEERS): the governing Service's name is needed to find the cluster; give the StatefulSet a spec.serviceName")
	}
	if j.Query, err = f.connection(j.Peers, f.queryPort); err != nil {
		return j, err
	}
	j.First, j.Deadline, j.Pacing = f.podName == f.firstPod, f.deadline, f.pacing(cmd)
	return j, nil
}

func newFEStartCommand() *cobra.Command {
	var flags feJoinFlags
	cmd := &cobra.Command{
		Use:   "fe-start [flags] -- START_SCRIPT [ARGS...]",
		Short: "Join this FE to its cluster, then run its start script (start_fe.sh)",
		Long: `On an empty meta dir, find the cluster through --peers (the governing
Service's name): if an FE answers, add this FE at the master (FOLLOWER until
the cluster has --followers of them, then OBSERVER) and run START_SCRIPT with
--helper <master>. Only the first pod (--first-pod) starts without a helper
when no FE answers: it founds the cluster. Any other FE waits for the cluster
until the deadline and then fails, to be restarted. With a meta dir that holds
the cluster, START_SCRIPT runs as it is.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			j, err := flags.feJoin(cmd)
			if err != nil {
				return err
			}
			helper, err := agent.JoinFE(cmd.Context(), j)
			if err != nil {
				return err
			}
			if helper != "" {
				args = append(args, "--helper", helper)
			}
			logger(cmd).Printf("starting the FE: %s", strings.Join(args, " "))
			return syscall.Exec(args[0], args, os.Environ())
		},
	}
	// It runs in the FE's own process: its output is the main output.
	flags.bind(cmd, 10*time.Minute)
	cmd.Flags().StringVar(&flags.firstPod, "first-pod", os.Getenv("DORIS_FE_FIRST_POD"), "the StatefulSet's first pod, the only FE that may found the cluster")
	cmd.Flags().IntVar(&flags.join.Followers, "followers", envInt("DORIS_FE_FOLLOWERS", 3), "FOLLOWERs the cluster should have in all; FEs beyond join as OBSERVER")
	cmd.Flags().StringVar(&flags.join.MetaDir, "meta-dir", envOr("DORIS_FE_META_DIR", "/opt/apache-doris/fe/doris-meta"), "this FE's meta dir")
	bindLogToMain(cmd, false)
	return cmd
}

// leaveIfLeaving drops this FE's entry from its cluster when its pod leaves
// for good; without --peers there is no cluster to find, and nothing to do.
func leaveIfLeaving(cmd *cobra.Command, flags *feJoinFlags, kubeconfig, namespace string) error {
	if flags.join.Peers == "" {
		return nil
	}
	j, err := flags.feJoin(cmd)
	if err != nil {
		return err
	}
	departure, err := readDeparture(cmd, kubeconfig, flags.timeout, j.Pacing, namespace, flags.podName, &j.Deadline)
	if err != nil {
		return fmt.Errorf("keeping this FE in the cluster, because whether this pod leaves for good is unknown: %w", err)
	}
	return agent.LeaveFE(cmd.Context(), j, departure)
}

func newFEStopCommand() *cobra.Command {
	var flags feJoinFlags
	var home, kubeconfig, namespace string
	var grace bool
	cmd := &cobra.Command{
		Use:   "fe-stop",
		Short: "Drop this FE from its cluster when it leaves for good, and stop it cleanly (preStop hook)",
		Long: `When the pod is being deleted and its ordinal is outside the ones the
StatefulSet keeps (a scale-down), drop this FE's own entry from the cluster
(ALTER SYSTEM DROP FOLLOWER|OBSERVER) through another FE, found through
--peers. A restart, rolling update or eviction keeps it, and so does a pod
whose fate cannot be read. Then stop the FE with bin/stop_fe.sh (with
--grace, which Doris 2.0 and later take: SIGTERM instead of SIGKILL).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// The entry goes first: once the FE stops, its container may end
			// and this hook with it.
			left := leaveIfLeaving(cmd, &flags, kubeconfig, namespace)
			var args []string
			if grace {
				args = append(args, "--grace")
			}
			return errors.Join(left, stopDoris(cmd, "FE", filepath.Join(home, "bin", "stop_fe.sh"), args...))
		},
	}
	flags.bind(cmd, 0)
	cmd.Flags().StringVar(&home, "home", envOr("DORIS_HOME", "/opt/apache-doris/fe"), "the FE's home dir")
	cmd.Flags().BoolVar(&grace, "grace", false, "stop with stop_fe.sh --grace (Doris 2.0 and later)")
	cmd.Flags().StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file (default: the pod's service account)")
	cmd.Flags().StringVar(&namespace, "namespace", os.Getenv("POD_NAMESPACE"), "this pod's namespace")
	bindLogToMain(cmd, true)
	return cmd
}

// addressHelp says what --address is.
const addressHelp = "the address this node is known by in the cluster: its name in FQDN mode (DORIS_NODE_ADDRESS), else its pod IP"

// nodeAddress is the default of --address: DORIS_NODE_ADDRESS, which the
// built-in policies set in FQDN mode, else the pod IP in ipVariable.
func nodeAddress(ipVariable string) string {
	return envOr("DORIS_NODE_ADDRESS", os.Getenv(ipVariable))
}

// stopDoris runs a Doris stop script, its output in the hook's log.
func stopDoris(cmd *cobra.Command, node, script string, args ...string) error {
	stop := exec.CommandContext(cmd.Context(), script, args...)
	stop.Stdout, stop.Stderr = cmd.ErrOrStderr(), cmd.ErrOrStderr()
	if err := stop.Run(); err != nil {
		return fmt.Errorf("stopping the %s with %s: %w", node, strings.Join(append([]string{script}, args...), " "), err)
	}
	logger(cmd).Printf("stopped the %s with %s", node, strings.Join(append([]string{script}, args...), " "))
	return nil
}

// beFlags are the settings of the BE subcommands.
type beFlags struct {
	feFlags
	host, address string
	port, self    int
}

func (f *beFlags) bind(cmd *cobra.Command, deadline, poll time.Duration) {
	f.feFlags.bind(cmd, deadline, poll)
	cmd.Flags().StringVar(&f.host, "fe-host", os.Getenv("FE_MASTER_IP"), "an FE of the cluster (its Service)")
	cmd.Flags().IntVar(&f.port, "fe-port", envInt("FE_MASTER_PORT", 9030), "the FE's query port")
	cmd.Flags().StringVar(&f.address, "address", nodeAddress("BE_IPADDRESS"), addressHelp)
	cmd.Flags().IntVar(&f.self, "heartbeat-port", envInt("BE_PORT", 9050), "this BE's heartbeat port")
}

func (f *beFlags) beConfig(cmd *cobra.Command) (agent.BEConfig, error) {
	self, err := agent.NewAddress(f.address, f.self)
	if err != nil {
		return agent.BEConfig{}, fmt.Errorf("this BE's address (--address, or DORIS_NODE_ADDRESS or BE_IPADDRESS; --heartbeat-port or BE_PORT): %w", err)
	}
	conn, err := f.connection(f.host, f.port)
	return agent.BEConfig{FE: conn, Self: self, Deadline: f.deadline, Pacing: f.pacing(cmd)}, err
}

func newBERegisterCommand() *cobra.Command {
	var flags beFlags
	cmd := &cobra.Command{
		Use:   "be-register",
		Short: "Add this BE to the cluster (postStart hook)",
		Long: `Add this BE with ALTER SYSTEM ADD BACKEND unless SHOW BACKENDS already lists it;
if Doris is still decommissioning it (its pod came back during a scale-down),
cancel the decommission. Tries again with backoff until the deadline.`,
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

// readDeparture reads whether this pod leaves for good, within --deadline
// when it is given, else apiReadLimit, and sets *deadline to what is left
// for the rest: of --deadline, or else 30 s (at most a quarter of the time
// left) before the kubelet kills the pod, from its deletion timestamp.
func readDeparture(cmd *cobra.Command, kubeconfig string, timeout time.Duration, p agent.Pacing, namespace, pod string, deadline *time.Duration) (agent.Departure, error) {
	cluster, err := agent.NewCluster(kubeconfig, timeout)
	if err != nil {
		return agent.Departure{}, err
	}
	given, start := cmd.Flags().Changed("deadline"), time.Now()
	limit := apiReadLimit
	if given {
		limit = *deadline
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), limit)
	defer cancel()
	departure, err := agent.PodDeparture(ctx, cluster, p, namespace, pod)
	if given {
		*deadline -= time.Since(start)
	} else if err == nil {
		left := time.Until(departure.StopAt)
		*deadline = left - min(30*time.Second, left/4)
	}
	return departure, err
}

// apiReadLimit bounds reading the pod and StatefulSet when no --deadline
// is given: the real deadline comes from the pod's deletion timestamp.
const apiReadLimit = 30 * time.Second

func newBEDecommissionCommand() *cobra.Command {
	var flags beFlags
	var kubeconfig, namespace, podName, home string
	cmd := &cobra.Command{
		Use:   "be-decommission",
		Short: "Decommission this BE when it leaves for good (preStop hook)",
		Long: `Read this pod and its StatefulSet from the API server (with the pod's service
account). Only when the pod is being deleted and its ordinal is outside the
ones the StatefulSet keeps (spec.ordinals.start to start+replicas-1: a
scale-down), run ALTER SYSTEM DECOMMISSION BACKEND and wait until the BE holds
no tablets or Doris has dropped it. A restart, rolling update or eviction, a
StatefulSet scaled to 0 or deleted, or a pod whose fate cannot be read
decommissions nothing. Everything ends by the deadline: --deadline, or 30s
(at most a quarter of the grace period) before the kubelet kills the pod;
then it says what state it left. Then, whatever was decided, it stops the BE
with bin/stop_be.sh --grace: running queries finish before the BE exits.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := flags.beConfig(cmd)
			if err != nil {
				return err
			}
			departure, err := readDeparture(cmd, kubeconfig, flags.timeout, c.Pacing, namespace, podName, &c.Deadline)
			if err != nil {
				err = fmt.Errorf("not decommissioning, because whether this pod leaves for good is unknown: %w", err)
			} else {
				err = agent.DecommissionBE(cmd.Context(), c, departure)
			}
			return errors.Join(err, stopDoris(cmd, "BE", filepath.Join(home, "bin", "stop_be.sh"), "--grace"))
		},
	}
	cmd.Flags().StringVar(&home, "home", envOr("DORIS_HOME", "/opt/apache-doris/be"), "the BE's home dir")
	flags.bind(cmd, 0, 10*time.Second)
	cmd.Flags().StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file (default: the pod's service account)")
	cmd.Flags().StringVar(&namespace, "namespace", os.Getenv("POD_NAMESPACE"), "this pod's namespace")
	cmd.Flags().StringVar(&podName, "pod-name", os.Getenv("POD_NAME"), "this pod's name")
	return cmd
}
