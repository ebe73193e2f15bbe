package main

import (
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/go-sql-driver/mysql"
)

// runMySQL plays the `mysql` client the Doris images ship and their
// scripts call (docker/runtime/*/resource/init_*.sh):
//
//	mysql -uroot -P9030 -hHOST [-pPASSWORD] [--comments] [-e SQL] < statements
//
// It prints each result as the client's batch mode does (a header line, then
// tab-separated rows) and exits 1 with "ERROR <number> ...: <message>" on an
// error, as the client does.
func runMySQL(args []string, stdin io.Reader, stdout io.Writer) error {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Net, cfg.Addr = "root", "tcp", "127.0.0.1:9030"
	host, port, execute := "127.0.0.1", "9030", ""
	for i := 0; i < len(args); i++ {
		flag, value := args[i], ""
		if len(flag) > 2 && flag[0] == '-' && flag[1] != '-' {
			flag, value = flag[:2], flag[2:]
		} else if name, v, ok := strings.Cut(flag, "="); ok && strings.HasPrefix(flag, "--") {
			flag, value = name, v
		}
		if value == "" && i+1 < len(args) && strings.Contains("-u -h -P -e --user --host --port --execute", flag) {
			i++
			value = args[i]
		}
		switch flag {
		case "-u", "--user":
			cfg.User = value
		case "-p", "--password":
			cfg.Passwd = value
		case "-h", "--host":
			host = value
		case "-P", "--port":
			port = value
		case "-e", "--execute":
			execute = value
		}
	}
	cfg.Addr = host + ":" + port
	if execute == "" {
		data, err := io.ReadAll(stdin)
		if err != nil {
			return err
		}
		execute = string(data)
	}
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		return err
	}
	defer db.Close()
	for _, statement := range strings.Split(execute, ";") {
		if statement = strings.TrimSpace(statement); statement != "" {
			if err := printQuery(db, statement, stdout); err != nil {
				return err
			}
		}
	}
	return nil
}

func printQuery(db *sql.DB, statement string, out io.Writer) error {
	rows, err := db.Query(statement)
	if err != nil {
		var answer *mysql.MySQLError
		if errors.As(err, &answer) {
			return fmt.Errorf("ERROR %d (%s): %s", answer.Number, answer.SQLState, answer.Message)
		}
		return fmt.Errorf("ERROR 2003 (HY000): Can't connect to MySQL server: %v", err)
	}
	defer rows.Close()
	columns, _ := rows.Columns()
	if len(columns) > 0 {
		fmt.Fprintln(out, strings.Join(columns, "\t"))
	}
	values := make([]sql.NullString, len(columns))
	pointers := make([]any, len(columns))
	for i := range values {
		pointers[i] = &values[i]
	}
	for rows.Next() {
		if err := rows.Scan(pointers...); err != nil {
			return err
		}
		cells := make([]string, len(values))
		for i, v := range values {
			cells[i] = v.String
			if !v.Valid {
				cells[i] = "NULL"
			}
		}
		fmt.Fprintln(out, strings.Join(cells, "\t"))
	}
	return rows.Err()
}

// exitMySQL reports err as the client does, on stderr, and exits 1.
func exitMySQL(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}
