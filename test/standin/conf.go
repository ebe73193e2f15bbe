package main

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// conf is a Doris conf file (fe.conf, be.conf) read as Doris reads it.
type conf map[string]string

// variable is ${NAME} in a value.
var variable = regexp.MustCompile(`\$\{([^}]*)\}`)

// readConf reads key = value lines, replacing ${VAR} with the environment
// variable, as the FE (common/ConfigBase.java replacedByEnv) and the BE
// (common/configbase.cpp replaceenv) do. An undefined variable is fatal at
// start, as in Doris ("no such env variable").
func readConf(path string) (conf, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := conf{}
	lines := bufio.NewScanner(f)
	for lines.Scan() {
		line := strings.TrimSpace(lines.Text())
		key, value, ok := strings.Cut(line, "=")
		if line == "" || strings.HasPrefix(line, "#") || !ok {
			continue
		}
		var missing []string
		value = variable.ReplaceAllStringFunc(strings.TrimSpace(value), func(ref string) string {
			name := variable.FindStringSubmatch(ref)[1]
			v, ok := os.LookupEnv(name)
			if !ok {
				missing = append(missing, name)
			}
			return v
		})
		if len(missing) > 0 {
			return nil, fmt.Errorf("%s: %s: no such env variable: %s", path, strings.TrimSpace(key), missing[0])
		}
		out[strings.TrimSpace(key)] = value
	}
	return out, lines.Err()
}

// port is the key's port, or fallback when the conf does not set it.
func (c conf) port(key string, fallback int) int {
	if n, err := strconv.Atoi(c[key]); err == nil {
		return n
	}
	return fallback
}
