package policies

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// Document is one object read from a YAML or JSON stream.
type Document struct {
	// Origin is the file the document came from ("-" for standard input).
	Origin string
	// Index is the document's 1-based position in its file.
	Index int
	// Object is the decoded object.
	Object *unstructured.Unstructured
}

// DocumentError says which document of which file could not be read.
type DocumentError struct {
	Origin string
	Index  int
	Err    error
}

func (e *DocumentError) Error() string {
	return fmt.Sprintf("%s: document %d: %v", e.Origin, e.Index, e.Err)
}

func (e *DocumentError) Unwrap() error { return e.Err }

// ReadDocuments reads every document of path: a file, a folder (its .yaml,
// .yml and .json files, recursively, in name order) or "-" for stdin. A
// document that cannot be decoded is reported in the joined error and the
// others are still returned.
func ReadDocuments(path string, stdin io.Reader) ([]Document, error) {
	if path == "-" {
		return DecodeStream("-", stdin)
	}
	files, err := manifestFiles(path)
	if err != nil {
		return nil, err
	}
	var docs []Document
	var errs []error
	for _, file := range files {
		f, err := os.Open(file)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		fileDocs, err := DecodeStream(file, f)
		f.Close()
		docs = append(docs, fileDocs...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return docs, errors.Join(errs...)
}

// manifestFiles lists path itself, or the manifest files under the folder path.
func manifestFiles(path string) ([]string, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !info.IsDir() {
		return []string{path}, nil
	}
	var files []string
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch strings.ToLower(filepath.Ext(p)) {
		case ".yaml", ".yml", ".json":
			if !d.IsDir() {
				files = append(files, p)
			}
		}
		return nil
	})
	sort.Strings(files)
	return files, err
}

// DecodeStream splits a YAML (or JSON) stream into documents. Empty documents
// are skipped; a document without apiVersion or kind is an error.
func DecodeStream(origin string, r io.Reader) ([]Document, error) {
	reader := utilyaml.NewYAMLReader(bufio.NewReader(r))
	var docs []Document
	var errs []error
	for index := 1; ; index++ {
		raw, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			errs = append(errs, &DocumentError{origin, index, err})
			break
		}
		if len(bytes.TrimSpace(stripComments(raw))) == 0 {
			index--
			continue
		}
		obj, err := DecodeObject(raw)
		if err != nil {
			errs = append(errs, &DocumentError{origin, index, err})
			continue
		}
		docs = append(docs, Document{Origin: origin, Index: index, Object: obj})
	}
	return docs, errors.Join(errs...)
}

// DecodeObject decodes one document into an object with apiVersion and kind.
func DecodeObject(raw []byte) (*unstructured.Unstructured, error) {
	data, err := yaml.YAMLToJSON(raw)
	if err != nil {
		return nil, fmt.Errorf("not valid YAML: %w", err)
	}
	// utiljson keeps whole numbers as int64, as the API machinery does.
	var content map[string]any
	if err := utiljson.Unmarshal(data, &content); err != nil {
		return nil, fmt.Errorf("not a mapping: %w", err)
	}
	if content == nil {
		return nil, errors.New("not an object: a manifest must be a mapping with apiVersion and kind")
	}
	obj := &unstructured.Unstructured{Object: content}
	switch {
	case obj.GetKind() == "":
		return nil, errors.New("no kind: every manifest needs apiVersion and kind")
	case obj.GetAPIVersion() == "":
		return nil, fmt.Errorf("%s has no apiVersion: every manifest needs apiVersion and kind", obj.GetKind())
	}
	return obj, nil
}

// stripComments drops comment lines, so a document of only comments counts as empty.
func stripComments(raw []byte) []byte {
	var out bytes.Buffer
	for line := range bytes.Lines(raw) {
		if !bytes.HasPrefix(bytes.TrimSpace(line), []byte("#")) {
			out.Write(line)
		}
	}
	return out.Bytes()
}

// DocumentFromRaw decodes one JSON or YAML object, such as an admission
// request's object.
func DocumentFromRaw(origin string, raw []byte) (Document, error) {
	obj, err := DecodeObject(raw)
	if err != nil {
		return Document{}, &DocumentError{origin, 1, err}
	}
	return Document{Origin: origin, Index: 1, Object: obj}, nil
}
