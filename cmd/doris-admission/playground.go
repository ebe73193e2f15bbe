package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/doris-admission/doris-admission/playground"
)

func newPlaygroundCommand() *cobra.Command {
	var address string
	var port int
	opts := playground.Options{Timeout: playground.DefaultTimeout}
	cmd := &cobra.Command{
		Use:   "playground",
		Short: "Write policies in the browser and see what the engine does, as you type",
		Long: `Serve a local web page to write CEL policies on: paste policies, a resource
(with its old object for an UPDATE or DELETE), parameter objects and namespace
labels, and after every edit the page shows the mutated object and its diff, the
JSON patch the API server would get, every validation result, the errors of
every expression at their line and column, the estimated cost of each
expression, what policy lint says and what policy export makes of the policies.

The evaluation is this binary's engine, the one serve runs: what the page shows
is what the cluster will do. The page's address holds the case, to share it;
Save writes it as a policy test suite under --suites.`,
		Example: `  doris-admission playground
  doris-admission playground --port 9000 --suites ./policy-tests`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			listener, err := net.Listen("tcp", net.JoinHostPort(address, strconv.Itoa(port)))
			if err != nil {
				return fmt.Errorf("listening on %s port %d: %w (choose another with --port)", address, port, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "doris-admission playground: open http://%s/ in a browser; Ctrl-C stops it\n", listener.Addr())
			server := &http.Server{Handler: playground.NewHandler(opts), ReadHeaderTimeout: 10 * time.Second}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			go func() {
				<-ctx.Done()
				server.Close()
			}()
			if err := server.Serve(listener); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	flags := cmd.Flags()
	flags.StringVar(&address, "address", "127.0.0.1", "address the page is served on; 127.0.0.1 keeps it to this machine")
	flags.IntVar(&port, "port", 8765, "port the page is served on; 0 picks a free one")
	flags.StringVar(&opts.SuitesDir, "suites", "playground-suites", "folder the Save button writes policy test suites to, one folder each")
	flags.DurationVar(&opts.Timeout, "timeout", opts.Timeout, "longest evaluation of one case")
	return cmd
}
