package agent

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// FERegistration says which FE joins the cluster, and how.
type FERegistration struct {
	// FE is where SHOW FRONTENDS and ALTER SYSTEM run: this FE's own query
	// port (a follower forwards ALTER SYSTEM to the master).
	FE Connection
	// Self is this FE's identity in the cluster: host:edit_log_port.
	Self Address
	Role Role
	// PodName is this FE's host name, shown as HostName by Doris 1.x.
	PodName string
	// MetaDir is the FE's meta dir, whose image/ROLE file holds the node
	// name the cluster knows this FE by.
	MetaDir string
	// StateFile, on the FE's meta volume, remembers the address and name
	// this pod last registered under.
	StateFile string
	// Deadline bounds the whole registration, waiting for the FE included.
	Deadline time.Duration
	Pacing
}

// RegisterFE makes this FE a member of the cluster: if SHOW FRONTENDS lacks
// it, it is added, trying again until the deadline. An entry is dropped only
// when it is this pod's own entry under an old address and the cluster shows
// it dead (see feIdentity); an FE that is alive is never dropped.
func RegisterFE(ctx context.Context, r FERegistration) error {
	fe, err := Open(r.FE, r.Log)
	if err != nil {
		return err
	}
	defer fe.Close()
	ctx, cancel := context.WithTimeout(ctx, r.Deadline)
	defer cancel()
	id := r.identity()
	var dropped []string
	r.Log.Printf("registering this FE (%s) as %s through the FE at %s (trying for up to %s)", r.Self, r.Role, r.FE.Address(), r.Deadline)
	err = r.Retry(ctx, "registering this FE", func(ctx context.Context) error {
		return r.registerOnce(ctx, fe, id, &dropped)
	})
	if err == nil {
		return nil
	}
	state := "the cluster was not changed"
	if len(dropped) > 0 {
		state = fmt.Sprintf("this pod's old entry %s was dropped, so this FE is in the cluster under no address", strings.Join(dropped, ", "))
	}
	return fmt.Errorf("this FE (%s) is not a member of the cluster and %s; add it by hand with ALTER SYSTEM ADD %s %s: %w",
		r.Self, state, r.Role, r.Self.quoted(), err)
}

func (r FERegistration) registerOnce(ctx context.Context, fe *FE, id feIdentity, dropped *[]string) error {
	frontends, err := fe.Frontends(ctx)
	if err != nil {
		return err
	}
	if f, ok := findFrontend(frontends, r.Self); ok {
		r.Log.Printf("this FE (%s) is a member of the cluster as %s", r.Self, f.Role)
		return r.remember(f)
	}
	for _, f := range frontends {
		if err := r.dropIfOwnStale(ctx, fe, id, f, dropped); err != nil {
			return err
		}
	}
	already, err := fe.exec(ctx, addFrontend(r.Role, r.Self))
	if err != nil {
		return err
	}
	if already {
		r.Log.Printf("this FE (%s) was added by another registration at the same time", r.Self)
	} else {
		r.Log.Printf("added this FE (%s) to the cluster as %s", r.Self, r.Role)
	}
	frontends, err = fe.Frontends(ctx)
	if err != nil {
		return err
	}
	f, ok := findFrontend(frontends, r.Self)
	if !ok {
		return fmt.Errorf("SHOW FRONTENDS does not list this FE (%s) after it was added", r.Self)
	}
	return r.remember(f)
}

// dropIfOwnStale drops f when it is this pod's own entry under an old
// address that the cluster shows dead, and says why another is left alone.
func (r FERegistration) dropIfOwnStale(ctx context.Context, fe *FE, id feIdentity, f Frontend, dropped *[]string) error {
	if !id.owns(f) {
		return nil
	}
	if f.Alive || f.IsMaster {
		r.Log.Printf("%s (%s) looks like this pod's old entry but is alive: another FE has that address or name now, so it is left alone", f.Address(), f.Name)
		return nil
	}
	drop, err := dropFrontend(f)
	if err != nil {
		return err
	}
	if _, err := fe.exec(ctx, drop); err != nil {
		return err
	}
	*dropped = append(*dropped, f.Address())
	r.Log.Printf("dropped this pod's own entry under its old address %s (%s, not alive)", f.Address(), f.Name)
	return nil
}

func findFrontend(frontends []Frontend, self Address) (Frontend, bool) {
	for _, f := range frontends {
		if f.Host == self.Host && f.EditLogPort == self.Port {
			return f, true
		}
	}
	return Frontend{}, false
}

// feIdentity is what tells this pod's own entry under another address. The
// node name decides when it is known: Doris names an FE once (Env.java
// genFeNodeName), keeps the name in the FE's meta dir (image/ROLE, written by
// persist/Storage.java) and shows it in SHOW FRONTENDS' Name column, so a
// name cannot pass to another FE the way a reused pod IP does. Without a
// name, Doris 1.x's HostName (the pod name) decides; without either, the
// address this pod last registered.
type feIdentity struct {
	names      []string
	hostName   string
	oldAddress string
}

func (id feIdentity) owns(f Frontend) bool {
	switch {
	case len(id.names) > 0:
		return slices.Contains(id.names, f.Name)
	case id.hostName != "" && f.HostName != "":
		return f.HostName == id.hostName
	}
	return id.oldAddress != "" && f.Address() == id.oldAddress
}

// identity reads this FE's name from its meta dir, and its last address and
// name from the state file.
func (r FERegistration) identity() feIdentity {
	id := feIdentity{hostName: r.PodName}
	if name := readProperties(filepath.Join(r.MetaDir, "image", "ROLE"))["name"]; name != "" {
		id.names = append(id.names, name)
	}
	state := readProperties(r.StateFile)
	if name := state["name"]; name != "" && !slices.Contains(id.names, name) {
		id.names = append(id.names, name)
	}
	id.oldAddress = state["address"]
	return id
}

// remember records the address and name this FE is registered under.
func (r FERegistration) remember(f Frontend) error {
	if r.StateFile == "" {
		return nil
	}
	data := fmt.Sprintf("address=%s\nname=%s\n", f.Address(), f.Name)
	if err := os.WriteFile(r.StateFile, []byte(data), 0o644); err != nil {
		return permanent{fmt.Errorf("recording this FE's address in %s: %w", r.StateFile, err)}
	}
	return nil
}

// readProperties reads key=value lines (a Java properties file, or the state
// file); a line without '=' is the address alone, as older agents wrote it.
// A file that cannot be read has no properties.
func readProperties(path string) map[string]string {
	out := map[string]string{}
	data, err := os.ReadFile(path)
	if err != nil {
		return out
	}
	lines := bufio.NewScanner(bytes.NewReader(data))
	for lines.Scan() {
		line := strings.TrimSpace(lines.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			key, value = "address", line
		}
		out[strings.TrimSpace(key)] = strings.TrimSpace(value)
	}
	return out
}
