package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportsRunOneWay keeps the packages layered: main wires handlers,
// handlers uses the packages under internal/ and models, and nothing
// below imports what is above it. The packages under internal/ are
// independent of each other; testenv, which assembles the whole product
// for tests as main does for the server, is the one that may import them
// all.
func TestImportsRunOneWay(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const mod = "ttconsole"
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg, imports := fields[0], fields[1:]
		for _, imp := range imports {
			if imp != mod && !strings.HasPrefix(imp, mod+"/") {
				continue
			}
			var why string
			switch {
			case imp == mod+"/handlers" && pkg != mod && pkg != mod+"/internal/testenv":
				why = "only main (and testenv, for tests) wires the handlers"
			case strings.HasPrefix(pkg, mod+"/internal/") && pkg != mod+"/internal/testenv" &&
				(strings.HasPrefix(imp, mod+"/internal/") || imp == mod+"/views"):
				why = "the packages under internal/ are independent of each other and of the pages"
			case pkg == mod+"/models" && imp != mod+"/migrations":
				why = "models is the bottom layer: it imports only its migrations"
			}
			if why != "" {
				t.Errorf("%s imports %s: %s", pkg, imp, why)
			}
		}
	}
}
