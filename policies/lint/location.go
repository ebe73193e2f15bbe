package lint

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// parsedFile is a policy file parsed with positions.
type parsedFile struct {
	file string
	// docs are the file's non-empty documents, in order: document i of the
	// reader (1-based) is docs[i-1].
	docs []*yaml.Node
}

// sourceOf parses file once.
func sourceOf(cache map[string]*parsedFile, file string) (*parsedFile, error) {
	if src, ok := cache[file]; ok {
		return src, nil
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	src := &parsedFile{file: file}
	decoder := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc yaml.Node
		err := decoder.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		if len(doc.Content) == 0 || doc.Content[0].Kind == yaml.ScalarNode && doc.Content[0].Tag == "!!null" {
			continue // empty, as the policy reader skips them
		}
		src.docs = append(src.docs, doc.Content[0])
	}
	cache[file] = src
	return src, nil
}

// location is one document of a source.
type location struct {
	src   *parsedFile
	index int
}

func (l location) file() string {
	if l.src == nil {
		return "(unknown file)"
	}
	return l.src.file
}

// line is the line of field (a path like spec.validations[0].expression) in
// the document, or of the deepest part of it that is there.
func (l location) line(field string) int {
	if l.src == nil || l.index < 1 || l.index > len(l.src.docs) {
		return 0
	}
	return Node(l.src.docs[l.index-1], field).Line
}

// Node is the node of field (a path like spec.validations[0].expression) in
// the document doc, or of the deepest part of it that is there.
func Node(doc *yaml.Node, field string) *yaml.Node {
	node := doc
	for _, part := range splitPath(field) {
		next := child(node, part)
		if next == nil {
			break
		}
		node = next
	}
	return node
}

// splitPath turns a.b[0].c into a, b, 0, c.
func splitPath(field string) []string {
	var parts []string
	for _, p := range strings.Split(field, ".") {
		name, rest, _ := strings.Cut(p, "[")
		if name != "" {
			parts = append(parts, name)
		}
		for rest != "" {
			index, after, _ := strings.Cut(rest, "]")
			parts = append(parts, index)
			_, rest, _ = strings.Cut(after, "[")
		}
	}
	return parts
}

// child is the value of key in a mapping, or item i of a sequence.
func child(node *yaml.Node, part string) *yaml.Node {
	switch node.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(node.Content); i += 2 {
			if node.Content[i].Value == part {
				return node.Content[i+1]
			}
		}
	case yaml.SequenceNode:
		if i, err := strconv.Atoi(part); err == nil && i >= 0 && i < len(node.Content) {
			return node.Content[i]
		}
	}
	return nil
}
