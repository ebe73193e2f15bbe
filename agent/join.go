package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// FEJoin says how an FE joins its cluster before its first start. Doris
// needs both halves of a join (Env.java, BDBEnvironment.java): the master
// adds the new FE (ALTER SYSTEM ADD FOLLOWER|OBSERVER), and the new FE starts
// with --helper naming a live FE. An FE that starts on an empty meta dir
// without a helper founds a new cluster of its own.
type FEJoin struct {
	// Self is this FE's identity: host:edit_log_port.
	Self Address
	// MetaDir is the FE's meta dir: once it holds image/ROLE, the FE knows
	// its cluster and the helper is ignored.
	MetaDir string
	// Peers is a DNS name whose addresses are the cluster's FE pods: the
	// governing Service, which publishes not-ready addresses.
	Peers string
	// Query is how to reach a peer's MySQL port (Host is set per peer).
	Query Connection
	// First is true for the StatefulSet's first pod: the only FE that may
	// found the cluster, and only when no other FE answers.
	First bool
	// Followers is how many FOLLOWERs the cluster should have in all; an FE
	// that joins beyond them joins as an OBSERVER.
	Followers int
	Deadline  time.Duration
	Pacing
}

// JoinFE decides how this FE starts and makes the cluster ready for it. It
// returns the --helper to start with: "" when the meta dir holds the FE's
// cluster already, or when this is the first FE and no other answers (it
// founds the cluster); else the master's host:edit_log_port, after this FE
// was added there. An FE that is not the first waits for the cluster until
// the deadline: it never founds a second cluster.
func JoinFE(ctx context.Context, j FEJoin) (string, error) {
	if _, err := os.Stat(filepath.Join(j.MetaDir, "image", "ROLE")); err == nil {
		j.Log.Printf("the meta dir %s holds this FE's cluster: starting it as it is", j.MetaDir)
		return "", nil
	}
	ctx, cancel := context.WithTimeout(ctx, j.Deadline)
	defer cancel()
	j.Log.Printf("this FE (%s) starts on an empty meta dir: looking for its cluster at %s (for up to %s)", j.Self, j.Peers, j.Deadline)
	var helper string
	err := j.Retry(ctx, "joining this FE to its cluster", func(ctx context.Context) error {
		var err error
		helper, err = j.joinOnce(ctx)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("this FE (%s) did not join its cluster and was not started; it starts again when its container restarts: %w", j.Self, err)
	}
	return helper, nil
}

// errNoCluster means no peer answered.
var errNoCluster = errors.New("no other FE answers")

func (j FEJoin) joinOnce(ctx context.Context) (string, error) {
	frontends, at, err := j.findCluster(ctx)
	switch {
	case errors.Is(err, errNoCluster) && j.First:
		j.Log.Printf("no other FE of the cluster answers, and this is its first FE: it founds the cluster")
		return "", nil
	case errors.Is(err, errNoCluster):
		return "", pending{fmt.Sprintf("no FE of the cluster at %s answers yet; this FE waits for it (an FE other than the first never founds a cluster)", j.Peers)}
	case err != nil:
		return "", err
	}
	master := slices.IndexFunc(frontends, func(f Frontend) bool { return f.IsMaster })
	if master < 0 {
		return "", pending{"the cluster has no master yet"}
	}
	helper := frontends[master].Address()
	if _, ok := findFrontend(frontends, j.Self); ok {
		j.Log.Printf("this FE (%s) is a member already: starting it with --helper %s", j.Self, helper)
		return helper, nil
	}
	role := j.role(frontends)
	fe, err := j.open(at)
	if err != nil {
		return "", err
	}
	defer fe.Close()
	// A follower forwards it to the master.
	if _, err := fe.exec(ctx, addFrontend(role, j.Self)); err != nil {
		return "", err
	}
	j.Log.Printf("added this FE (%s) as %s through the FE at %s: starting it with --helper %s", j.Self, role, at, helper)
	return helper, nil
}

// role is FOLLOWER until the cluster has Followers of them, then OBSERVER.
func (j FEJoin) role(frontends []Frontend) Role {
	followers := 0
	for _, f := range frontends {
		if f.Role == string(Follower) {
			followers++
		}
	}
	if followers < j.Followers {
		return Follower
	}
	return Observer
}

// open is a session with the FE at host.
func (j FEJoin) open(host string) (*FE, error) {
	c := j.Query
	c.Host = host
	return Open(c, j.Log)
}

// findCluster asks each peer but this FE for SHOW FRONTENDS, and returns the
// first answer and the peer that gave it.
func (j FEJoin) findCluster(ctx context.Context) ([]Frontend, string, error) {
	peers, err := net.DefaultResolver.LookupHost(ctx, j.Peers)
	if err != nil {
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
			return nil, "", errNoCluster
		}
		return nil, "", err
	}
	own, _ := net.DefaultResolver.LookupHost(ctx, j.Self.Host)
	var last error
	for _, peer := range peers {
		if slices.Contains(own, peer) || peer == j.Self.Host {
			continue
		}
		fe, err := j.open(peer)
		if err != nil {
			return nil, "", err
		}
		frontends, err := fe.Frontends(ctx)
		fe.Close()
		if err == nil {
			return frontends, peer, nil
		}
		last = err
	}
	if last != nil {
		j.Log.Printf("no other FE answered SHOW FRONTENDS; the last said: %v", last)
	}
	return nil, "", errNoCluster
}

// WrapStart copies the FE's bin dir from into to, keeping Doris' own
// start_fe.sh as start_fe.doris.sh and writing in its place a start_fe.sh
// that runs agent fe-start first: whatever starts the FE (the seed's
// command, the official image's entrypoint) then joins it to its cluster.
func WrapStart(from, to, agentPath string) error {
	if _, err := os.Stat(filepath.Join(from, startScript)); err != nil {
		return fmt.Errorf("the FE's bin dir %s has no %s: say where the FE is with the annotation doris.apache.org/conf-dir (its bin dir is beside the conf dir): %w", from, startScript, err)
	}
	if err := copyDir(from, to); err != nil {
		return fmt.Errorf("copying the FE's bin dir %s to %s: %w", from, to, err)
	}
	own := startScript[:len(startScript)-len(".sh")] + ".doris.sh"
	if err := os.Rename(filepath.Join(to, startScript), filepath.Join(to, own)); err != nil {
		return err
	}
	wrapper := fmt.Sprintf(`#!/bin/sh
# Written by doris-admission: joins this FE to its cluster before its first
# start (doris-admission-agent fe-start), then runs Doris' own start script,
# kept beside this one as %[2]s.
exec %[1]s fe-start -- "$(dirname "$0")/%[2]s" "$@"
`, agentPath, own)
	return os.WriteFile(filepath.Join(to, startScript), []byte(wrapper), 0o755)
}

// startScript is the script that starts an FE, in its bin dir.
const startScript = "start_fe.sh"

// LeaveFE drops this FE's own entry from its cluster when its pod leaves
// for good (a scale-down), through another FE of the cluster; the FE itself
// was stopped first. Only this FE's entry is dropped, and only when the
// pod leaves: a restart keeps it.
func LeaveFE(ctx context.Context, j FEJoin, departure Departure) error {
	if !departure.Leaving {
		j.Log.Printf("keeping this FE in the cluster: %s", departure.Reason)
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, j.Deadline)
	defer cancel()
	err := j.Retry(ctx, "dropping this FE from its cluster", func(ctx context.Context) error {
		frontends, at, err := j.findCluster(ctx)
		if err != nil {
			return err
		}
		f, ok := findFrontend(frontends, j.Self)
		if !ok {
			j.Log.Printf("this FE (%s) is not a member of the cluster (any more): nothing to drop", j.Self)
			return nil
		}
		drop, err := dropFrontend(f)
		if err != nil {
			return permanent{err}
		}
		fe, err := j.open(at)
		if err != nil {
			return err
		}
		defer fe.Close()
		if _, err := fe.exec(ctx, drop); err != nil {
			return err
		}
		j.Log.Printf("dropped this FE (%s, %s) from the cluster through the FE at %s: %s", j.Self, f.Role, at, departure.Reason)
		return nil
	})
	if err != nil {
		return fmt.Errorf("this FE (%s) left for good but is still listed in the cluster; drop it with ALTER SYSTEM DROP FOLLOWER|OBSERVER %s: %w", j.Self, j.Self.quoted(), err)
	}
	return nil
}
