package agent

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// BEConfig says which BE this is and which FE it belongs to.
type BEConfig struct {
	// FE is an FE of the cluster (its Service): where the statements run.
	FE Connection
	// Self is this BE's identity in the cluster: host:heartbeat_port.
	Self Address
	// Deadline bounds the whole operation.
	Deadline time.Duration
	Pacing
}

// RegisterBE makes this BE a member of the cluster: added unless SHOW
// BACKENDS lists it, and, when its pod starts while Doris is still
// decommissioning it, its decommission cancelled. It tries again until the
// deadline.
func RegisterBE(ctx context.Context, c BEConfig) error {
	fe, err := Open(c.FE, c.Log)
	if err != nil {
		return err
	}
	defer fe.Close()
	ctx, cancel := context.WithTimeout(ctx, c.Deadline)
	defer cancel()
	err = c.Retry(ctx, "registering this BE", func(ctx context.Context) error { return c.registerOnce(ctx, fe) })
	if err != nil {
		return fmt.Errorf("this BE (%s) is not registered: the FE at %s did not accept it, and the cluster was left as it was: %w", c.Self, c.FE.Address(), err)
	}
	return nil
}

func (c BEConfig) registerOnce(ctx context.Context, fe *FE) error {
	backends, err := fe.Backends(ctx)
	if err != nil {
		return err
	}
	b, ok := findBackend(backends, c.Self)
	switch {
	case ok && !b.Decommissioned:
		c.Log.Printf("this BE (%s) is in the cluster as backend %s", c.Self, b.ID)
		return nil
	case ok:
		if _, err := fe.exec(ctx, cancelDecommission(c.Self)); err != nil {
			return err
		}
		c.Log.Printf("this BE (%s) was being decommissioned (%d tablets left) when its pod started again: cancelled the decommission, so it stays in the cluster with its data", c.Self, b.TabletNum)
	default:
		already, err := fe.exec(ctx, addBackend(c.Self))
		if err != nil {
			return err
		}
		if !already {
			c.Log.Printf("added this BE (%s) to the cluster", c.Self)
		}
	}
	backends, err = fe.Backends(ctx)
	if err != nil {
		return err
	}
	if b, ok := findBackend(backends, c.Self); !ok || b.Decommissioned {
		return fmt.Errorf("SHOW BACKENDS does not list this BE (%s) as a member yet", c.Self)
	}
	return nil
}

func findBackend(backends []Backend, self Address) (Backend, bool) {
	for _, b := range backends {
		if b.Host == self.Host && b.HeartbeatPort == self.Port {
			return b, true
		}
	}
	return Backend{}, false
}

// DecommissionBE decommissions this BE when it leaves for good (a
// scale-down), and does nothing otherwise. It then watches until the BE
// holds no tablets or Doris has dropped it, or until the deadline, riding
// out transient faults, and says what state it leaves.
func DecommissionBE(ctx context.Context, c BEConfig, departure Departure) error {
	if !departure.Leaving {
		c.Log.Printf("not decommissioning: %s", departure.Reason)
		return nil
	}
	fe, err := Open(c.FE, c.Log)
	if err != nil {
		return err
	}
	defer fe.Close()
	ctx, cancel := context.WithTimeout(ctx, c.Deadline)
	defer cancel()
	d := decommission{BEConfig: c, reason: departure.Reason}
	if err := c.Retry(ctx, "decommissioning this BE", func(ctx context.Context) error { return d.step(ctx, fe) }); err != nil {
		return d.failure(err)
	}
	return nil
}

// decommission is one BE's decommission under way, and what was seen of it.
type decommission struct {
	BEConfig
	reason string
	// draining is set once SHOW BACKENDS has shown the BE decommissioning.
	draining bool
	last     Backend
}

// step looks at the BE once, starts its decommission if it has not
// started, and says whether it is done (nil) or still draining (pending).
func (d *decommission) step(ctx context.Context, fe *FE) error {
	backends, err := fe.Backends(ctx)
	if err != nil {
		return err
	}
	b, ok := findBackend(backends, d.Self)
	switch {
	case !ok && !d.draining:
		d.Log.Printf("this BE (%s) is leaving (%s) and is not in the cluster: nothing to decommission", d.Self, d.reason)
		return nil
	case !ok:
		d.Log.Printf("this BE (%s) is decommissioned: its tablets moved and Doris dropped it", d.Self)
		return nil
	case b.Decommissioned && b.TabletNum == 0:
		d.Log.Printf("this BE (%s) is decommissioned: it holds no tablets", d.Self)
		return nil
	case !b.Decommissioned && d.draining:
		return permanent{fmt.Errorf("the decommission was cancelled (CANCEL DECOMMISSION) while this BE still had %d tablets; it stays in the cluster", b.TabletNum)}
	case !b.Decommissioned:
		if _, err := fe.exec(ctx, decommissionBackend(d.Self)); err != nil {
			return err
		}
		d.Log.Printf("decommissioning this BE (%s, %d tablets) because it is leaving: %s", d.Self, b.TabletNum, d.reason)
		return pending{"the decommission was asked for"}
	}
	if !d.draining || b.TabletNum != d.last.TabletNum {
		d.Log.Printf("this BE (%s) is decommissioning: %d tablets still to move", d.Self, b.TabletNum)
	}
	d.draining, d.last = true, b
	return pending{fmt.Sprintf("%d tablets still to move", b.TabletNum)}
}

// failure says what state the BE was left in when the decommission did not
// finish.
func (d *decommission) failure(err error) error {
	var perm permanent
	if d.draining && !errors.As(err, &perm) {
		return fmt.Errorf("stopped waiting: this BE (%s) is still decommissioning with %d tablets left; Doris keeps moving them, and drops the BE when none are left (%w)",
			d.Self, d.last.TabletNum, err)
	}
	if d.draining {
		return fmt.Errorf("this BE (%s) is leaving (%s) but is not decommissioned: %w", d.Self, d.reason, err)
	}
	return fmt.Errorf("this BE (%s) is leaving (%s) but was not decommissioned: %w. It stays in the cluster and will show as not alive once its pod is gone; "+
		"decommission it with ALTER SYSTEM DECOMMISSION BACKEND %s, or start the pod again", d.Self, d.reason, err, d.Self.quoted())
}
