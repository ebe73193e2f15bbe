// Command doris-standin plays an Apache Doris FE or BE in the e2e suite's
// pods, where Doris itself cannot run. It does what this project relies on
// Doris doing, and each behaviour names the Doris source it follows: conf
// files with ${VAR} substitution, the address chosen by priority_networks or
// enable_fqdn_mode, identity kept in the meta dir, the MySQL protocol with the
// membership statements (test/fakefe), heartbeats that make Alive the truth,
// and /api/health. The images' bin/start_*.sh and stop_*.sh (image/) start
// and stop it as Doris' own scripts do.
//
//	doris-standin fe --home DIR [--helper HOST:PORT]
//	doris-standin be --home DIR
//	doris-standin mysql -uroot -P9030 -hHOST [-e SQL]   (the images' /usr/bin/mysql)
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "mysql" {
		if err := runMySQL(os.Args[2:], os.Stdin, os.Stdout); err != nil {
			exitMySQL(err)
		}
		return
	}
	if len(os.Args) < 2 {
		log.Fatal("usage: doris-standin fe|be --home DIR [--helper HOST:PORT]")
	}
	flags := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	home := flags.String("home", "", "DORIS_HOME of the FE or BE")
	helper := flags.String("helper", "", "an FE of the cluster to join through (FE only)")
	flags.Parse(os.Args[2:])
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	var err error
	switch os.Args[1] {
	case "fe":
		err = runFE(ctx, *home, *helper)
	case "be":
		err = runBE(ctx, *home)
	default:
		err = fmt.Errorf("unknown role %q: fe or be", os.Args[1])
	}
	if err != nil {
		log.Printf("ERROR %v", err)
		os.Exit(1)
	}
}
