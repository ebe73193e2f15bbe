package builtin

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// TestChineseReadmeKeepsUp holds README.zh-CN.md to README.md: the same two
// commands open both, and both name every built-in policy, every setting,
// every annotation and every agent command.
func TestChineseReadmeKeepsUp(t *testing.T) {
	read := func(name string) string {
		data, err := os.ReadFile(filepath.Join("..", "..", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	english, chinese := read("README.md"), read("README.zh-CN.md")
	commands := regexp.MustCompile("(?s)```sh\n(.*?)```")
	if en, zh := commands.FindStringSubmatch(english), commands.FindStringSubmatch(chinese); en == nil || zh == nil || en[1] != zh[1] {
		t.Errorf("the two commands differ: README.md %q, README.zh-CN.md %q", en, zh)
	}
	var names []string
	entries, err := Policies.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		names = append(names, "`"+strings.TrimSuffix(e.Name(), ".yaml")+"`")
	}
	var settings struct{ Data map[string]string }
	if err := yaml.Unmarshal(Settings, &settings); err != nil {
		t.Fatal(err)
	}
	for key := range settings.Data {
		names = append(names, "`"+key+"`")
	}
	for _, re := range []string{`doris\.apache\.org/[a-z-]+`, "`(install|prepare-conf|wrap-start|fe-start|fe-register|be-register|be-decommission|fe-stop)`"} {
		names = append(names, regexp.MustCompile(re).FindAllString(english, -1)...)
		names = append(names, regexp.MustCompile(re).FindAllString(chinese, -1)...)
	}
	for _, name := range names {
		for file, text := range map[string]string{"README.md": english, "README.zh-CN.md": chinese} {
			if !strings.Contains(text, name) {
				t.Errorf("%s does not name %s", file, name)
			}
		}
	}
}
