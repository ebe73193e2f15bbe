package agent

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"
)

// FERegistration says which FE joins the cluster, and how.
type FERegistration struct {
	// FE is where SHOW FRONTENDS and ALTER SYSTEM run: this FE's own query port.
	FE Connection
	// IP and EditLogPort are this FE's identity in the cluster.
	IP          string
	EditLogPort int
	// PodName identifies this pod in the HostName column of old Doris versions.
	PodName string
	// Role is FOLLOWER or OBSERVER.
	Role string
	// StateFile, on the FE's metadata volume, remembers the address this pod
	// last registered, so an entry under an old IP is known to be its own.
	StateFile string
	// Wait bounds how long to wait for the FE to answer; Poll is the pause
	// between tries.
	Wait, Poll time.Duration
	Log        *Logger
}

// RegisterFE makes this FE a member of the cluster: if SHOW FRONTENDS lacks
// it, it is added; if this pod's own entry is there under an old address, that
// entry is dropped first. No other FE is ever dropped, alive or not.
func RegisterFE(ctx context.Context, r FERegistration) error {
	self, err := quoteAddress(r.IP, r.EditLogPort)
	if err != nil {
		return err
	}
	fe, err := Open(r.FE)
	if err != nil {
		return err
	}
	defer fe.Close()
	if err := waitForFE(ctx, fe, r.FE, r.Wait, r.Poll, r.Log); err != nil {
		return err
	}
	frontends, err := fe.Frontends(ctx)
	if err != nil {
		return err
	}
	address := strings.Trim(self, `"`)
	for _, f := range frontends {
		if f.Host == r.IP && f.EditLogPort == r.EditLogPort {
			r.Log.Printf("this FE (%s) is already a member of the cluster as %s", address, f.Role)
			return r.remember(address)
		}
	}
	for _, f := range frontends {
		if r.isOwnOldEntry(f) {
			r.Log.Printf("dropping this pod's own entry under its old address %s (alive: %v)", f.Address(), f.Alive)
			drop, err := dropFrontendStatement(f)
			if err != nil {
				return err
			}
			if err := fe.Exec(ctx, drop); err != nil {
				return err
			}
		}
	}
	if err := fe.Exec(ctx, "ALTER SYSTEM ADD "+r.Role+" "+self); err != nil {
		return err
	}
	r.Log.Printf("added this FE (%s) to the cluster as %s", address, r.Role)
	return r.remember(address)
}

// isOwnOldEntry tells this pod's own entry under another address: the address
// it last registered (StateFile), or, in old Doris versions, its host name.
func (r FERegistration) isOwnOldEntry(f Frontend) bool {
	if f.Host == r.IP && f.EditLogPort == r.EditLogPort {
		return false
	}
	if last, err := os.ReadFile(r.StateFile); err == nil && strings.TrimSpace(string(last)) == f.Address() {
		return true
	}
	return r.PodName != "" && f.HostName == r.PodName
}

// remember records the address this pod is registered under.
func (r FERegistration) remember(address string) error {
	if r.StateFile == "" {
		return nil
	}
	if err := os.WriteFile(r.StateFile, []byte(address+"\n"), 0o644); err != nil {
		return fmt.Errorf("recording this FE's address in %s: %w", r.StateFile, err)
	}
	return nil
}

// waitForFE pings fe every poll until it answers or wait has passed.
func waitForFE(ctx context.Context, fe *FE, c Connection, wait, poll time.Duration, log *Logger) error {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for attempt := 1; ; attempt++ {
		err := fe.Ping(ctx)
		if err == nil {
			return nil
		}
		if attempt == 1 {
			log.Printf("waiting for the FE at %s to answer (up to %s)", c.Address(), wait)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the FE at %s did not answer within %s: %w", c.Address(), wait, err)
		case <-time.After(poll):
		}
	}
}
