package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"strings"
	"time"

	"github.com/dolthub/vitess/go/mysql"
)

// The edit log port carries what BDBJE carries between Doris FEs: a
// joining FE reads the cluster from its helper, followers replay the
// master's journal, and statements that change the cluster go to the
// master. Here that is plain HTTP on the same port:
//
//	GET  /journal  the cluster as this FE knows it
//	POST /forward  a statement, carried out on the master
//
// A connection that is taken is what the master's heartbeat counts as an
// FE alive.

// forwarded is the master's answer to a forwarded statement that failed.
type forwarded struct {
	Number  int    `json:"number"`
	State   string `json:"state"`
	Message string `json:"message"`
}

func (fe *frontend) serveJournal(ctx context.Context) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /journal", func(w http.ResponseWriter, _ *http.Request) {
		json.NewEncoder(w).Encode(fe.state())
	})
	mux.HandleFunc("POST /forward", func(w http.ResponseWriter, r *http.Request) {
		if fe.master != "" || !fe.ready.Load() {
			http.Error(w, "this FE is not the master", http.StatusServiceUnavailable)
			return
		}
		statement, _ := io.ReadAll(r.Body)
		err := fe.cluster.Execute(string(statement))
		if err == nil {
			if err := fe.save(); err != nil {
				log.Printf("WARN saving the cluster: %v", err)
			}
			return
		}
		answer := forwarded{Number: mysql.ERUnknownError, State: mysql.SSUnknownSQLState, Message: err.Error()}
		var sqlErr *mysql.SQLError
		if errors.As(err, &sqlErr) {
			answer = forwarded{Number: sqlErr.Num, State: sqlErr.State, Message: sqlErr.Message}
		}
		w.WriteHeader(http.StatusConflict)
		json.NewEncoder(w).Encode(answer)
	})
	serve(ctx, fe.editLogPort, mux)
}

var journalClient = http.Client{Timeout: 3 * time.Second}

// forward carries out statement on the master (qe/MasterOpExecutor.java).
// A master that cannot be reached answers as Doris does then, with an
// error the client may retry.
func (fe *frontend) forward(statement string) error {
	res, err := journalClient.Post("http://"+fe.master+"/forward", "text/plain", strings.NewReader(statement))
	if err == nil && res.StatusCode == http.StatusServiceUnavailable {
		res.Body.Close()
		err = errors.New(res.Status)
	}
	if err != nil {
		log.Printf("WARN forwarding %q to the master %s: %v", statement, fe.master, err)
		return mysql.NewSQLError(mysql.ERUnknownError, mysql.SSUnknownSQLState, "Failed to get master client.")
	}
	defer res.Body.Close()
	if res.StatusCode == http.StatusOK {
		return nil
	}
	var answer forwarded
	if err := json.NewDecoder(res.Body).Decode(&answer); err != nil {
		return mysql.NewSQLError(mysql.ERUnknownError, mysql.SSUnknownSQLState, "the master's answer is unreadable: %v", err)
	}
	return mysql.NewSQLError(answer.Number, answer.State, "%s", answer.Message)
}

// replay keeps this follower's copy of the cluster in step with the
// master's journal, and in its meta dir.
func (fe *frontend) replay(ctx context.Context) {
	reached := true
	for {
		s, err := fetchJournal(ctx, fe.master)
		switch {
		case err != nil && reached:
			log.Printf("WARN the master %s cannot be reached: %v", fe.master, err)
		case err == nil:
			fe.replace(s)
			if err := fe.save(); err != nil {
				log.Printf("WARN saving the cluster: %v", err)
			}
		}
		reached = err == nil
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// fetchJournal reads the cluster from the FE at address (host:edit_log_port).
func fetchJournal(ctx context.Context, address string) (state, error) {
	var s state
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+address+"/journal", nil)
	if err != nil {
		return s, err
	}
	res, err := journalClient.Do(req)
	if err != nil {
		return s, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return s, fmt.Errorf("the FE at %s answers %s", address, res.Status)
	}
	return s, json.NewDecoder(res.Body).Decode(&s)
}

func or(s, fallback string) string {
	if s == "" {
		return fallback
	}
	return s
}
