package playground

import (
	"errors"
	"regexp"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"

	"github.com/doris-admission/doris-admission/policies"
	"github.com/doris-admission/doris-admission/policies/lint"
)

// documentNodes are the policies editor's documents parsed with positions,
// by "Kind name", so a problem at a policy's field can be put on its line
// and column.
type documentNodes struct {
	byPolicy map[string]*yaml.Node
	text     []rune
}

// parseNodes parses text as far as it parses; a document that does not is
// left out (its problem is reported from the decoding).
func parseNodes(text string) *documentNodes {
	nodes := &documentNodes{byPolicy: map[string]*yaml.Node{}, text: []rune(text)}
	decoder := yaml.NewDecoder(strings.NewReader(text))
	for {
		var doc yaml.Node
		if err := decoder.Decode(&doc); err != nil || len(doc.Content) == 0 {
			return nodes
		}
		root := doc.Content[0]
		kind, name := lint.Node(root, "kind"), lint.Node(root, "metadata.name")
		if kind != root && name != root {
			nodes.byPolicy[kind.Value+" "+name.Value] = root
		}
	}
}

// expressionPosition finds the position in an expression a compiler message
// gives ("ERROR: <input>:2:14: ...") or a lint finding's ("at 2:14: ...").
var expressionPosition = regexp.MustCompile(`(?:<input>:|^at )(\d+):(\d+):`)

// position is where field of policy is in the editor, or where in it the
// compiler message points when field is an expression; fallbackLine when the
// policy is not found.
func (d *documentNodes) position(policy, field, message string, fallbackLine int) (line, column int) {
	root := d.byPolicy[policy]
	if root == nil {
		return fallbackLine, 0
	}
	node := lint.Node(root, field)
	line, column = node.Line, node.Column
	m := expressionPosition.FindStringSubmatch(message)
	if m == nil || node.Kind != yaml.ScalarNode {
		return line, column
	}
	exprLine, _ := strconv.Atoi(m[1])
	exprColumn, _ := strconv.Atoi(m[2])
	return inScalar(node, d.from(node), exprLine, exprColumn)
}

// inScalar is the editor position of line:column (1-based) of the scalar
// node's value. The value is what YAML made of the text (quotes and escapes
// removed, a folded block's line breaks turned to spaces), so its characters
// are matched, in order, to the text the node was read from; a character
// the text does not have within reach leaves the position at the node.
func inScalar(node *yaml.Node, src []rune, line, column int) (int, int) {
	value := []rune(node.Value)
	target := 0
	for l := 1; l < line && target < len(value); target++ {
		if value[target] == '\n' {
			l++
		}
	}
	target += column - 1
	if len(src) == 0 || target < 0 || target >= len(value) {
		return node.Line, node.Column
	}
	srcLine, srcColumn, j := node.Line, node.Column, 0
	for i := 0; i <= target; i++ {
		skipped := 0
		for j < len(src) && src[j] != value[i] {
			if skipped++; skipped > 200 {
				return node.Line, node.Column
			}
			srcLine, srcColumn = advance(src[j], srcLine, srcColumn)
			j++
		}
		if j == len(src) {
			return node.Line, node.Column
		}
		if i == target {
			return srcLine, srcColumn
		}
		srcLine, srcColumn = advance(src[j], srcLine, srcColumn)
		j++
	}
	return node.Line, node.Column
}

// advance moves a position past r.
func advance(r rune, line, column int) (int, int) {
	if r == '\n' {
		return line + 1, 1
	}
	return line, column + 1
}

// from is the editor's text from node's position on.
func (d *documentNodes) from(node *yaml.Node) []rune {
	offset, line, column := 0, 1, 1
	for offset < len(d.text) && (line < node.Line || line == node.Line && column < node.Column) {
		line, column = advance(d.text[offset], line, column)
		offset++
	}
	return d.text[offset:]
}

// documentProblems turns an error of reading an editor's documents into a
// problem per document it is about, on that document's line.
func documentProblems(editor, text string, err error) []Problem {
	if err == nil {
		return nil
	}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		var out []Problem
		for _, e := range joined.Unwrap() {
			out = append(out, documentProblems(editor, text, e)...)
		}
		return out
	}
	p := Problem{Editor: editor, Severity: "error", Message: err.Error()}
	var derr *policies.DocumentError
	if errors.As(err, &derr) {
		p.Line = documentLine(text, derr.Index)
		p.Message = derr.Err.Error()
		if m := yamlLine.FindStringSubmatch(p.Message); m != nil {
			n, _ := strconv.Atoi(m[1])
			p.Line += n - 1
		}
	}
	return []Problem{p}
}

// yamlLine finds the line a YAML parser's message gives within a document.
var yamlLine = regexp.MustCompile(`line (\d+):`)

// documentLine is the first line of the index-th (1-based) non-empty
// document of text, as policies.DecodeStream counts them.
func documentLine(text string, index int) int {
	lines := strings.Split(text, "\n")
	seen := 0
	for start, end := range documents(lines) {
		if hasContent(lines[start:end]) {
			if seen++; seen == index {
				return start + 1
			}
		}
	}
	return 1
}

// documents yields the first line and the end of each document of lines.
func documents(lines []string) func(yield func(int, int) bool) {
	return func(yield func(int, int) bool) {
		start := 0
		for i := 0; i <= len(lines); i++ {
			if i < len(lines) && !isSeparator(lines[i]) {
				continue
			}
			if !yield(start, i) {
				return
			}
			start = i + 1
		}
	}
}

// readableOnly is text with the lines of every document YAML cannot parse
// blanked, so lint and the positions see the other documents at the lines
// they have in the editor.
func readableOnly(text string) string {
	lines := strings.Split(text, "\n")
	for start, end := range documents(lines) {
		var node yaml.Node
		if yaml.Unmarshal([]byte(strings.Join(lines[start:end], "\n")), &node) != nil {
			for i := start; i < end; i++ {
				lines[i] = ""
			}
		}
	}
	return strings.Join(lines, "\n")
}

func isSeparator(line string) bool {
	return line == "---" || strings.HasPrefix(line, "--- ")
}

func hasContent(lines []string) bool {
	for _, l := range lines {
		if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "#") {
			return true
		}
	}
	return false
}
