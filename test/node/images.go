package node

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
	"runtime"
	"sort"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Image is a container image the node builds from files of this machine:
// no image registry is reachable here.
type Image struct {
	// Name is the reference pods use, e.g. apache/doris:fe-2.1.7. A tag
	// other than latest, so that the kubelet does not try to pull it.
	Name string
	// Files are the image's files by path.
	Files map[string]File
	// Entrypoint, Cmd and Env are the image's config.
	Entrypoint, Cmd, Env []string
}

// File is one file of an image: the contents of a file of this machine
// (From), bytes (Data), or a symbolic link (Link).
type File struct {
	From string
	Data []byte
	Link string
	// Mode is the file's permission bits; 0 means 0755.
	Mode int64
}

// WriteTarball writes the image as a docker-archive tarball at path, the
// form `ctr images import` takes.
func (im Image) WriteTarball(path string) error {
	layerData, err := im.layer()
	if err != nil {
		return fmt.Errorf("image %s: %w", im.Name, err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerData)), nil
	})
	if err != nil {
		return fmt.Errorf("image %s: %w", im.Name, err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return fmt.Errorf("image %s: %w", im.Name, err)
	}
	config, err := img.ConfigFile()
	if err != nil {
		return fmt.Errorf("image %s: %w", im.Name, err)
	}
	config = config.DeepCopy()
	config.Architecture, config.OS = runtime.GOARCH, "linux"
	config.Config = v1.Config{Entrypoint: im.Entrypoint, Cmd: im.Cmd, Env: im.Env}
	if img, err = mutate.ConfigFile(img, config); err != nil {
		return fmt.Errorf("image %s: %w", im.Name, err)
	}
	ref, err := name.NewTag(im.Name)
	if err != nil {
		return fmt.Errorf("image name %s: %w", im.Name, err)
	}
	return tarball.WriteToFile(path, ref, img)
}

// layer is the image's one layer: a tar of its files, with the folders
// they need.
func (im Image) layer() ([]byte, error) {
	var buf bytes.Buffer
	w := tar.NewWriter(&buf)
	paths := make([]string, 0, len(im.Files))
	for p := range im.Files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	dirs := map[string]bool{}
	for _, p := range paths {
		for _, dir := range parents(p) {
			if !dirs[dir] {
				dirs[dir] = true
				if err := w.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o755}); err != nil {
					return nil, err
				}
			}
		}
		if err := writeFile(w, p, im.Files[p]); err != nil {
			return nil, err
		}
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func writeFile(w *tar.Writer, p string, f File) error {
	name := p[1:] // paths in a layer are relative to its root
	mode := f.Mode
	if mode == 0 {
		mode = 0o755
	}
	if f.Link != "" {
		return w.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: f.Link, Mode: 0o777})
	}
	data := f.Data
	if f.From != "" {
		var err error
		if data, err = os.ReadFile(f.From); err != nil {
			return err
		}
	}
	if err := w.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data))}); err != nil {
		return err
	}
	_, err := w.Write(data)
	return err
}

// parents are the folders above p, outermost first, without the root.
func parents(p string) []string {
	var out []string
	for dir := path.Dir(p); dir != "/" && dir != "."; dir = path.Dir(dir) {
		out = append([]string{dir[1:]}, out...)
	}
	return out
}
