package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"time"
)

// runBE starts the BE: read be.conf (${VAR} substituted, an undefined one
// fatal), pick its address, open the be, brpc and heartbeat ports, and answer
// on the webserver port /api/health (be/src/http/action/health_action.cpp:
// 200 {"status": "OK", "msg": "To Be Added"}) and the Stream Load error logs
// an ErrorURL points at (/api/_load_error_log?file=..., served by
// be/src/http/action/download_action.cpp in its error-log mode; here a line
// naming the file). On SIGTERM it lets running
// work finish for a moment and exits (stop_be.sh --grace, the BE's graceful
// shutdown).
func runBE(ctx context.Context, home string) error {
	c, self, err := readNode(home, "be.conf")
	if err != nil {
		return err
	}
	log.Printf("INFO this BE is %s:%d", self, c.port("heartbeat_service_port", 9050))
	for _, port := range []int{c.port("be_port", 9060), c.port("brpc_port", 8060), c.port("heartbeat_service_port", 9050)} {
		if err := listenAndDrop(ctx, port); err != nil {
			return err
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/health", func(w http.ResponseWriter, _ *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"status": "OK", "msg": "To Be Added"})
	})
	mux.HandleFunc("/api/_load_error_log", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "Reason: column count mismatch. src line [%s]; error log of BE %s\n", r.URL.Query().Get("file"), self)
	})
	go serve(ctx, c.port("webserver_port", 8040), mux)
	log.Printf("INFO the BE is ready")
	<-ctx.Done()
	log.Printf("INFO stopping: letting running work finish")
	time.Sleep(time.Second)
	return nil
}
