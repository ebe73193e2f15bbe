package node

import (
	"os/exec"
	"strings"
)

// Busybox is an image with Debian's static busybox and its applets: a shell,
// nslookup, wget, nc and the rest, for pods that look around the node.
func Busybox(name string) (Image, error) {
	out, err := exec.Command("busybox", "--list").Output()
	if err != nil {
		return Image{}, err
	}
	files := map[string]File{"/bin/busybox": {From: "/usr/bin/busybox"}}
	for _, applet := range strings.Fields(string(out)) {
		if applet != "busybox" {
			files["/bin/"+applet] = File{Link: "busybox"}
		}
	}
	return Image{Name: name, Files: files, Env: []string{"PATH=/bin"}, Cmd: []string{"/bin/sh"}}, nil
}
