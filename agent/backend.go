package agent

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// BEConfig says which BE this is and which FE it belongs to.
type BEConfig struct {
	// FE is an FE of the cluster (its Service): where the statements run.
	FE Connection
	// IP and HeartbeatPort are this BE's identity in the cluster.
	IP            string
	HeartbeatPort int
	// Deadline bounds the whole operation; Poll is the first pause between
	// tries (registration backs off from it, decommission polls with it).
	Deadline, Poll time.Duration
	Log            *Logger
}

// open returns a session with the FE and this BE's address, quoted for
// ALTER SYSTEM.
func (c BEConfig) open() (*FE, string, error) {
	self, err := quoteAddress(c.IP, c.HeartbeatPort)
	if err != nil {
		return nil, "", err
	}
	fe, err := Open(c.FE)
	return fe, self, err
}

// maxBackoff caps the pause between registration tries.
const maxBackoff = 30 * time.Second

// RegisterBE adds this BE to the cluster unless SHOW BACKENDS already has
// it, trying again with backoff until the deadline.
func RegisterBE(ctx context.Context, c BEConfig) error {
	fe, self, err := c.open()
	if err != nil {
		return err
	}
	defer fe.Close()
	ctx, cancel := context.WithTimeout(ctx, c.Deadline)
	defer cancel()
	pause := c.Poll
	for attempt := 1; ; attempt++ {
		err := registerOnce(ctx, fe, c, self)
		if err == nil {
			return nil
		}
		c.Log.Printf("registering this BE (%s) with the FE at %s failed (attempt %d): %v", strings.Trim(self, `"`), c.FE.Address(), attempt, err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("this BE (%s) is not registered: the FE at %s did not accept it within %s; last error: %w", strings.Trim(self, `"`), c.FE.Address(), c.Deadline, err)
		case <-time.After(pause):
		}
		pause = min(2*pause, maxBackoff)
	}
}

func registerOnce(ctx context.Context, fe *FE, c BEConfig, self string) error {
	backends, err := fe.Backends(ctx)
	if err != nil {
		return err
	}
	if b, ok := findBackend(backends, c.IP, c.HeartbeatPort); ok {
		c.Log.Printf("this BE (%s) is already in the cluster as backend %s", b.Address(), b.ID)
		return nil
	}
	if err := fe.Exec(ctx, "ALTER SYSTEM ADD BACKEND "+self); err != nil {
		return err
	}
	c.Log.Printf("added this BE (%s) to the cluster", strings.Trim(self, `"`))
	return nil
}

func findBackend(backends []Backend, ip string, port int) (Backend, bool) {
	for _, b := range backends {
		if b.Host == ip && b.HeartbeatPort == port {
			return b, true
		}
	}
	return Backend{}, false
}

// Departure says whether this pod is leaving its StatefulSet for good.
type Departure struct {
	Leaving bool
	// Reason says why, for the log.
	Reason string
}

// DecommissionBE decommissions this BE when it leaves for good (a
// scale-down), and does nothing on a restart or rolling update. It then
// polls until the BE reports no tablets or is gone, or until the deadline,
// and logs the state it leaves.
func DecommissionBE(ctx context.Context, c BEConfig, departure Departure) error {
	if !departure.Leaving {
		c.Log.Printf("not decommissioning: %s", departure.Reason)
		return nil
	}
	fe, self, err := c.open()
	if err != nil {
		return err
	}
	defer fe.Close()
	address := strings.Trim(self, `"`)
	ctx, cancel := context.WithTimeout(ctx, c.Deadline)
	defer cancel()
	backends, err := fe.Backends(ctx)
	if err != nil {
		return fmt.Errorf("this BE (%s) is leaving (%s) but the cluster could not be read, so it was not decommissioned: %w", address, departure.Reason, err)
	}
	b, ok := findBackend(backends, c.IP, c.HeartbeatPort)
	if !ok {
		c.Log.Printf("this BE (%s) is leaving (%s) and is not in the cluster: nothing to decommission", address, departure.Reason)
		return nil
	}
	if !b.Decommissioned {
		if err := fe.Exec(ctx, "ALTER SYSTEM DECOMMISSION BACKEND "+self); err != nil {
			return fmt.Errorf("this BE (%s) is leaving (%s) but could not be decommissioned: %w", address, departure.Reason, err)
		}
	}
	c.Log.Printf("decommissioning this BE (%s, %d tablets) because it is leaving: %s", address, b.TabletNum, departure.Reason)
	return waitForDrain(ctx, fe, c, b)
}

// waitForDrain polls until the BE is gone or holds no tablets.
func waitForDrain(ctx context.Context, fe *FE, c BEConfig, last Backend) error {
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("stopped waiting after %s: this BE (%s) is still decommissioning with %d tablets left; Doris keeps moving them, and drops the BE when none are left",
				c.Deadline, last.Address(), last.TabletNum)
		case <-time.After(c.Poll):
		}
		backends, err := fe.Backends(ctx)
		if err != nil {
			c.Log.Printf("reading the decommission progress failed: %v", err)
			continue
		}
		b, ok := findBackend(backends, c.IP, c.HeartbeatPort)
		switch {
		case !ok:
			c.Log.Printf("this BE (%s) is decommissioned: its tablets moved and Doris dropped it", last.Address())
			return nil
		case b.Decommissioned && b.TabletNum == 0:
			c.Log.Printf("this BE (%s) is decommissioned: it holds no tablets", b.Address())
			return nil
		}
		if b.TabletNum != last.TabletNum {
			c.Log.Printf("this BE (%s) still has %d tablets to move", b.Address(), b.TabletNum)
		}
		last = b
	}
}
